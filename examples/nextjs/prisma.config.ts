// Prisma 7 reads its datasource URL from here, not from .env by itself.
import "dotenv/config";
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "prisma/schema.prisma",
  // `prisma generate` needs no database; an unset URL must not make it throw.
  datasource: { url: process.env.DATABASE_URL ?? "" },
});
