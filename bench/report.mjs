// Turns bench/run.sh's JSON lines into the comparison table (markdown).
import { readFileSync } from "node:fs";

const [file, machine] = process.argv.slice(2);
const rows = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const get = (system, scenario) => rows.find((r) => r.system === system && r.result.scenario === scenario && !r.pinned)?.result;
const f = (v, d = 1) => (v === undefined || v === null || Number.isNaN(v) ? "-" : Number(v).toLocaleString("en-US", { maximumFractionDigits: d }));
const ratio = (a, b) => (a && b ? `${f(a / b, 1)}x` : "-");

const out = [];
out.push(`Machine: ${machine}; server, PostgreSQL and load generators share it. ${new Date().toISOString().slice(0, 10)}.`);
out.push("");
out.push("| scenario | metric | chat-server | Socket.IO baseline | ratio |");
out.push("|---|---|---|---|---|");
const t = [get("chat-server", "throughput"), get("socketio", "throughput")];
if (t[0] && t[1]) {
  out.push(`| throughput (${t[0].pairs} pairs, ${t[0].inflight} in flight each) | persisted+delivered msgs/s | ${f(t[0].msgs_per_sec, 0)} | ${f(t[1].msgs_per_sec, 0)} | ${ratio(t[0].msgs_per_sec, t[1].msgs_per_sec)} |`);
  out.push(`| | send->deliver p50 / p99 / max ms | ${f(t[0].latency.p50_ms, 2)} / ${f(t[0].latency.p99_ms, 2)} / ${f(t[0].latency.max_ms, 1)} | ${f(t[1].latency.p50_ms, 2)} / ${f(t[1].latency.p99_ms, 2)} / ${f(t[1].latency.max_ms, 1)} | |`);
  out.push(`| | acked = rows stored = delivered | ${t[0].acked} = ${t[0].stored} = ${t[0].delivered} | ${t[1].acked} = ${t[1].stored} = ${t[1].delivered} | |`);
}
const latencyRow = (pick, label) => {
  const find = (system) => rows.find((r) => r.system === system && r.result.scenario === "latency" && pick(r.result, r.pinned))?.result;
  const l = [find("chat-server"), find("socketio")];
  if (!l[0] || !l[1]) return;
  out.push(`| ${label(l[0])} | send->deliver p50 / p95 / p99 ms | ${f(l[0].latency.p50_ms, 2)} / ${f(l[0].latency.p95_ms, 2)} / ${f(l[0].latency.p99_ms, 2)} | ${f(l[1].latency.p50_ms, 2)} / ${f(l[1].latency.p95_ms, 2)} / ${f(l[1].latency.p99_ms, 2)} | |`);
  const counts = (r) => `${r.acked ?? "-"} / ${r.delivered} / ${r.sent}`;
  out.push(`| | acked / delivered / sent | ${counts(l[0])} | ${counts(l[1])} | |`);
};
latencyRow((r) => r.idle === 0, (r) => `latency at the baseline's saturation rate, ${f(r.rate, 0)} msg/s`);
latencyRow((r, pinned) => r.idle > 0 && !pinned, (r) => `latency at ${f(r.rate, 0)} msg/s, ${f(r.idle, 0)} idle connections`);
latencyRow((r, pinned) => r.idle > 0 && pinned, (r) => `the same, server on core 0, load generator on core 1`);
const i = [get("chat-server", "idle"), get("socketio", "idle")];
if (i[0] && i[1]) {
  out.push(`| ${i[0].connections} idle authenticated connections | server RSS per connection | ${f(i[0].bytes_per_connection / 1024, 1)} KiB | ${f(i[1].bytes_per_connection / 1024, 1)} KiB | ${ratio(i[1].bytes_per_connection, i[0].bytes_per_connection)} less |`);
}
const st = [get("chat-server", "storm"), get("socketio", "storm")];
if (st[0]) {
  const base = st[1] ? `${f(st[1].reconnect_seconds, 2)} s` : "-";
  out.push(`| reconnect storm, ${f(st[0].connections, 0)} clients | all re-authenticated after | ${f(st[0].reconnect_seconds, 2)} s | ${base} | |`);
  out.push(`| | all caught up on ${f(st[0].missed, 0)} missed messages after | ${f(st[0].caught_up_seconds, 2)} s | no catch-up in that design | |`);
  out.push(`| | delivered in catch-up / lost / duplicated | ${st[0].delivered_in_catch_up} / ${st[0].lost} / ${st[0].duplicated} | - | |`);
}
console.log(out.join("\n"));
