// Runs the chat-server binary with the given arguments, from this directory (so it reads
// this app's .env and .env.local, as the guide's npm scripts did). Where the binary is:
// $CHAT_SERVER_BIN, else `chat-server` on the PATH, else this repository's
// target/release or target/debug build.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const app = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repo = resolve(app, "../..");

function findBinary() {
  if (process.env.CHAT_SERVER_BIN) return process.env.CHAT_SERVER_BIN;
  if (spawnSync("chat-server", ["--version"], { stdio: "ignore" }).status === 0) return "chat-server";
  for (const profile of ["release", "debug"]) {
    const candidate = join(process.env.CARGO_TARGET_DIR ?? join(repo, "target"), profile, "chat-server");
    if (existsSync(candidate)) return candidate;
  }
  console.error(
    "error: chat-server is not built. Build it with `cargo build --release -p chat-server` at the repository root,\n" +
      "or set CHAT_SERVER_BIN to the binary.",
  );
  process.exit(2);
}

const child = spawn(findBinary(), process.argv.slice(2), { cwd: app, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
