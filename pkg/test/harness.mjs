// Test harness for the browser tests: a real chat-server on a fresh PostgreSQL database,
// plus a small HTTP service the browser tests talk to:
//   GET  /config                      -> { "ws": "ws://127.0.0.1:PORT/ws", "http": "http://127.0.0.1:PORT" }
//   GET  /token?role=teacher&id=1     -> an HS256 chat token, minted here as a Next.js app would
//   POST /restart                     -> stops chat-server (SIGTERM) and starts it again on the same port
//   POST /stop, POST /start           -> the same in two steps (a longer outage)
//   POST /inject?from=teacher:1&to=student:1&n=300
//                                     -> writes n messages straight into the database, as another
//                                        server instance (or Prisma) would while a client is offline
//   GET  /consumer/...                -> the consumer test page and its node_modules (see consumer.mjs)
// It prints "HARNESS http://127.0.0.1:PORT" once ready and cleans up on SIGTERM/SIGINT.
//
// Env: CHAT_SERVER_BIN (path to the chat-server binary), TEST_DATABASE_URL (where it may
// create a database), CONSUMER_DIR (optional: directory served under /consumer/).
import { spawn, execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";

const bin = process.env.CHAT_SERVER_BIN;
const adminUrl = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const consumerDir = process.env.CONSUMER_DIR;
if (!bin) throw new Error("CHAT_SERVER_BIN is not set");

const secret = randomBytes(32).toString("hex");
const dbName = `chat_test_browser_${randomBytes(4).toString("hex")}`;
const dbUrl = new URL(adminUrl);
dbUrl.pathname = `/${dbName}`;

function psql(url, sql) {
  execFileSync("psql", [url, "-v", "ON_ERROR_STOP=1", "-qc", sql], { stdio: ["ignore", "ignore", "inherit"] });
}

psql(adminUrl, `CREATE DATABASE ${dbName}`);
psql(
  dbUrl.toString(),
  `CREATE TABLE "Teacher" (id SERIAL PRIMARY KEY, name TEXT NOT NULL);
   CREATE TABLE "Student" (id SERIAL PRIMARY KEY, name TEXT NOT NULL);
   INSERT INTO "Teacher" (name) VALUES ('T-Alice'), ('T-Bob'), ('T-Cleo');
   INSERT INTO "Student" (name) VALUES ('S-Carol'), ('S-Dan'), ('S-Eve'), ('S-Finn'), ('S-Gus'), ('S-Hana');`,
);

let server = null;
let port = 0;

function startServer() {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ["serve", "--apply-schema"], {
      env: {
        ...process.env,
        DATABASE_URL: dbUrl.toString(),
        CHAT_TOKEN_SECRET: secret,
        SOCKET_PORT: String(port),
        CHAT_ALLOWED_ORIGINS: "*",
        CHAT_RATE_PER_SECOND: "1000",
        CHAT_RATE_BURST: "1000",
        RUST_LOG: "info",
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      log += chunk;
      const m = log.match(/listening on ws:\/\/([0-9.]+):(\d+)\/ws/);
      if (m && !child.ready) {
        child.ready = true;
        port = Number(m[2]);
        resolve(child);
      }
    });
    child.on("exit", (code) => {
      if (!child.ready) reject(new Error(`chat-server exited (${code}):\n${log}`));
    });
    server = child;
  });
}

function stopServer() {
  return new Promise((resolve) => {
    if (!server || server.exitCode !== null) return resolve();
    server.once("exit", () => resolve());
    server.kill("SIGTERM");
  });
}

function mint(role, id, ttlSeconds) {
  const b64u = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const head = b64u({ alg: "HS256", typ: "JWT" });
  const body = b64u({ role, id, iat: now, exp: now + ttlSeconds });
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json", ".ts": "text/plain" };

await startServer();

const http = createServer(async (req, res) => {
  res.setHeader("Access-Control-Allow-Origin", "*");
  res.setHeader("Access-Control-Allow-Methods", "GET, POST");
  const url = new URL(req.url, "http://localhost");
  try {
    if (req.method === "OPTIONS") {
      res.writeHead(204).end();
    } else if (url.pathname === "/config") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ws: `ws://127.0.0.1:${port}/ws`, http: `http://127.0.0.1:${port}` }));
    } else if (url.pathname === "/token") {
      const role = url.searchParams.get("role");
      const id = Number(url.searchParams.get("id"));
      const ttl = Number(url.searchParams.get("ttl") ?? 3600);
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(mint(role, id, ttl));
    } else if (url.pathname === "/stop" && req.method === "POST") {
      await stopServer();
      res.writeHead(200, { "content-type": "text/plain" }).end("stopped");
    } else if (url.pathname === "/start" && req.method === "POST") {
      await startServer();
      res.writeHead(200, { "content-type": "text/plain" }).end("started");
    } else if (url.pathname === "/inject" && req.method === "POST") {
      const [fromRole, fromId] = url.searchParams.get("from").split(":");
      const [toRole, toId] = url.searchParams.get("to").split(":");
      const n = Number(url.searchParams.get("n"));
      const roles = new Set(["teacher", "student"]);
      if (!roles.has(fromRole) || !roles.has(toRole) || ![fromId, toId, n].every((v) => Number.isInteger(Number(v)))) {
        return res.writeHead(400).end("bad parameters");
      }
      psql(
        dbUrl.toString(),
        `INSERT INTO "Message" (id, "senderId", "senderRole", "recipientId", "recipientRole", content, "createdAt", "updatedAt")
         SELECT gen_random_uuid()::text, ${Number(fromId)}, '${fromRole}', ${Number(toId)}, '${toRole}', 'offline ' || g,
                (now() AT TIME ZONE 'UTC')::timestamp(3) + g * INTERVAL '1 millisecond',
                (now() AT TIME ZONE 'UTC')::timestamp(3) + g * INTERVAL '1 millisecond'
         FROM generate_series(1, ${n}) g`,
      );
      res.writeHead(200, { "content-type": "text/plain" }).end(String(n));
    } else if (url.pathname === "/restart" && req.method === "POST") {
      await stopServer();
      await startServer();
      res.writeHead(200, { "content-type": "text/plain" }).end("restarted");
    } else if (consumerDir && url.pathname.startsWith("/consumer/")) {
      const path = normalize(join(consumerDir, url.pathname.slice("/consumer/".length)));
      if (!path.startsWith(consumerDir)) return res.writeHead(403).end();
      const body = await readFile(path);
      res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream" }).end(body);
    } else {
      res.writeHead(404).end("not found");
    }
  } catch (e) {
    res.writeHead(500).end(String(e));
  }
});

http.listen(0, "127.0.0.1", () => {
  console.log(`HARNESS http://127.0.0.1:${http.address().port}`);
});

async function cleanup() {
  http.close();
  await stopServer();
  try {
    psql(adminUrl, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  } catch {
    // Left for scripts/test.sh to sweep.
  }
  process.exit(0);
}
process.on("SIGTERM", cleanup);
process.on("SIGINT", cleanup);
