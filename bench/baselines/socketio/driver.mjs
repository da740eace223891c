// Runs chat-bench's scenarios against the Socket.IO baseline, printing the same JSON.
// usage: node driver.mjs <throughput|latency|idle|storm> [--pairs N] [--inflight N] [--seconds N]
//        [--rate N] [--idle N] [--connections N] [--server-pid PID] [--url http://127.0.0.1:4001]
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";
import pg from "pg";

const [scenario, ...rest] = process.argv.slice(2);
const opt = {};
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, "")] = rest[i + 1];
const url = opt.url ?? "http://127.0.0.1:4001";
const num = (k, d) => Number(opt[k] ?? d);
let nextIp = 0;

function connect(role, id) {
  return new Promise((resolve, reject) => {
    // Like chat-bench: spread over source addresses only when asked (binding first is slow).
    const ips = Number(opt["source-ips"] ?? 1);
    const extra = ips > 1 ? { localAddress: `127.0.0.${1 + (nextIp++ % ips)}` } : {};
    const s = io(url, { transports: ["websocket"], reconnection: false, forceNew: true, ...extra });
    s.on("connect", () => {
      s.emit("join", { role, id });
      // The guide's server has no join ack; a round trip makes sure the room is joined.
      s.emit("sendMessage", null, () => {});
      setTimeout(() => resolve(s), 5);
    });
    s.on("connect_error", reject);
  });
}

class Hist {
  constructor() { this.v = []; }
  record(us) { this.v.push(us); }
  summary() {
    const v = Float64Array.from(this.v).sort();
    const q = (p) => (v.length ? v[Math.min(v.length - 1, Math.floor(p * v.length))] / 1000 : 0);
    return { p50_ms: q(0.5), p95_ms: q(0.95), p99_ms: q(0.99), max_ms: v.length ? v[v.length - 1] / 1000 : 0, count: v.length };
  }
}
const micros = () => Math.round(performance.now() * 1000);

async function rowCount() {
  if (!process.env.DATABASE_URL) return null;
  const c = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await c.connect();
  const r = await c.query(`SELECT count(*)::int AS n FROM "Message" WHERE content LIKE 'b:%'`);
  await c.end();
  return r.rows[0].n;
}

function receiver(sock, counter, hist) {
  sock.on("newMessage", (m) => {
    if (m.content.startsWith("b:")) hist.record(micros() - Number(m.content.slice(2)));
    counter.n += 1;
  });
}

async function drain(counter, total) {
  const until = Date.now() + 10000;
  while (counter.n < total && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
}

async function throughput() {
  const pairs = num("pairs", 50), inflight = num("inflight", 8), seconds = num("seconds", 10);
  const before = await rowCount();
  const received = { n: 0 }, hist = new Hist();
  const students = [], teachers = [];
  for (let i = 1; i <= pairs; i++) { const s = await connect("student", i); receiver(s, received, hist); students.push(s); }
  for (let i = 1; i <= pairs; i++) teachers.push(await connect("teacher", i));
  let acked = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(teachers.map((t, idx) => new Promise((resolve) => {
    let outstanding = 0;
    const sendOne = () => {
      outstanding += 1;
      t.emit("sendMessage", { recipientRole: "student", recipientId: idx + 1, content: `b:${micros()}` }, (res) => {
        outstanding -= 1;
        if (res && !res.error) acked += 1;
        if (performance.now() < deadline) sendOne();
        else if (outstanding === 0) resolve();
      });
    };
    for (let k = 0; k < inflight; k++) sendOne();
  })));
  const elapsed = (performance.now() - start) / 1000;
  await drain(received, acked);
  const after = await rowCount();
  const stored = before === null ? null : after - before;
  if (stored !== null && stored !== acked) throw new Error(`${acked} acked but ${stored} stored`);
  [...students, ...teachers].forEach((s) => s.close());
  return { scenario: "throughput", pairs, inflight, seconds: elapsed, acked, delivered: received.n, stored,
    msgs_per_sec: Math.min(acked, received.n) / elapsed, latency: hist.summary() };
}

async function holdIdle(n) {
  const conns = [];
  for (let i = 0; i < n; i += 200) {
    const batch = [];
    for (let k = i; k < Math.min(n, i + 200); k++) {
      batch.push(connect(k % 2 ? "teacher" : "student", (Math.floor(k / 2) % 1000) + 1));
    }
    conns.push(...(await Promise.all(batch)));
  }
  return conns;
}

async function latency() {
  const rate = num("rate", 1000), pairs = num("pairs", 100), idle = num("idle", 10000), seconds = num("seconds", 10);
  const idleConns = await holdIdle(idle);
  const received = { n: 0 }, hist = new Hist();
  const students = [], teachers = [];
  for (let i = 1; i <= pairs; i++) { const s = await connect("student", i); receiver(s, received, hist); students.push(s); }
  for (let i = 1; i <= pairs; i++) teachers.push(await connect("teacher", i));
  const total = rate * seconds;
  let acked = 0;
  const start = performance.now();
  for (let n = 0; n < total; n++) {
    const due = start + (n * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const i = n % pairs;
    teachers[i].emit("sendMessage", { recipientRole: "student", recipientId: i + 1, content: `b:${micros()}` }, (res) => {
      if (res && !res.error) acked += 1;
    });
  }
  await drain(received, total);
  [...students, ...teachers, ...idleConns].forEach((s) => s.close());
  return { scenario: "latency", rate, pairs, idle, sent: total, acked, delivered: received.n, latency: hist.summary() };
}

function rssKib(pid) {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  return Number(line.split(/\s+/)[1]);
}

async function idle() {
  const n = num("connections", 10000), pid = num("server-pid", 0);
  const before = rssKib(pid);
  const start = performance.now();
  const conns = await holdIdle(n);
  const opened = (performance.now() - start) / 1000;
  await new Promise((r) => setTimeout(r, 2000));
  const after = rssKib(pid);
  conns.forEach((s) => s.close());
  return { scenario: "idle", connections: n, open_seconds: opened, rss_before_kib: before, rss_after_kib: after,
    bytes_per_connection: ((after - before) * 1024) / n };
}

// The storm without catch-up: the guide's design has none (a client sees what it missed only
// when its page reloads the conversation through the app), so only re-joining is timed.
async function storm() {
  const n = num("connections", 5000), concurrency = num("concurrency", 512);
  const users = Array.from({ length: n }, (_, k) => (k % Math.min(n, 1000)) + 1);
  const first = await holdIdle(0);
  for (let i = 0; i < n; i += 256) first.push(...(await Promise.all(users.slice(i, i + 256).map((id) => connect("student", id)))));
  first.forEach((s) => s.close());
  await new Promise((r) => setTimeout(r, 200));
  const start = performance.now();
  const again = [];
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, async () => {
    while (next < n) again.push(await connect("student", users[next++]));
  }));
  const seconds = (performance.now() - start) / 1000;
  again.forEach((s) => s.close());
  return { scenario: "storm", connections: n, reconnect_seconds: seconds, caught_up_seconds: null };
}

const run = { throughput, latency, idle, storm }[scenario];
if (!run) throw new Error(`unknown scenario ${scenario}`);
const result = await run();
console.log(JSON.stringify(result));
process.exit(0);
