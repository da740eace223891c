// The app's own tables, for a fresh database:
//   node scripts/db.mjs app    creates "Teacher" and "Student" exactly as `prisma migrate` would
//                              from prisma/schema.prisma (in your own app, use Prisma Migrate;
//                              it cannot download its engine on this offline machine);
//   node scripts/db.mjs seed   adds demo teachers and students if there are none. Their ids
//                              overlap on purpose: teacher 1 and student 1 both exist.
import "dotenv/config";
import pg from "pg";

const url = process.env.DATABASE_URL;
if (!url) {
  console.error("error: DATABASE_URL is not set (put it in .env; see .env.example)");
  process.exit(2);
}
// Prisma's ?schema= is not a libpq parameter: turn it into the search path.
const parsed = new URL(url);
const schema = parsed.searchParams.get("schema") ?? "public";
for (const p of ["schema", "connection_limit", "pool_timeout", "pgbouncer"]) parsed.searchParams.delete(p);
const client = new pg.Client({ connectionString: parsed.toString() });
await client.connect();
await client.query(`SET search_path TO "${schema.replaceAll('"', '""')}"`);

const command = process.argv[2];
if (command === "app") {
  await client.query(`
    CREATE TABLE IF NOT EXISTS "Teacher" ("id" SERIAL NOT NULL, "name" TEXT NOT NULL,
      CONSTRAINT "Teacher_pkey" PRIMARY KEY ("id"));
    CREATE TABLE IF NOT EXISTS "Student" ("id" SERIAL NOT NULL, "name" TEXT NOT NULL,
      CONSTRAINT "Student_pkey" PRIMARY KEY ("id"));`);
  console.log(`tables ${schema}."Teacher" and ${schema}."Student" are in place`);
} else if (command === "seed") {
  const { rows } = await client.query(`SELECT (SELECT count(*) FROM "Teacher") + (SELECT count(*) FROM "Student") AS n`);
  if (Number(rows[0].n) > 0) {
    console.log("teachers or students already exist; seed skipped");
  } else {
    await client.query(`INSERT INTO "Teacher" (name) VALUES ('Ms. Rivera'), ('Mr. Okafor')`);
    await client.query(`INSERT INTO "Student" (name) VALUES ('Ada Lovelace'), ('Ben Carter'), ('Chloé Dubois')`);
    console.log("seeded teachers 1 Ms. Rivera, 2 Mr. Okafor and students 1 Ada Lovelace, 2 Ben Carter, 3 Chloé Dubois");
  }
} else {
  console.error("usage: node scripts/db.mjs app|seed");
  process.exitCode = 2;
}
await client.end();
