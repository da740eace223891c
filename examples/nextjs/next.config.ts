import type { NextConfig } from "next";
import { fileURLToPath } from "node:url";

const nextConfig: NextConfig = {
  // chat-sdk is installed from ../../pkg (a file: dependency, symlinked): let Turbopack see
  // the repository root so it can follow the link.
  turbopack: { root: fileURLToPath(new URL("../..", import.meta.url)) },
};

export default nextConfig;
