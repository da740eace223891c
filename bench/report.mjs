// Turns bench/run.sh's JSON lines into the comparison table (markdown).
import { readFileSync } from "node:fs";

const [file, machine] = process.argv.slice(2);
const rows = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const get = (system, scenario) => rows.find((r) => r.system === system && r.result.scenario === scenario && !r.pinned && !r.set)?.result;
const all = (system, scenario, pick = () => true) =>
  rows.filter((r) => r.system === system && r.result.scenario === scenario && !r.set && pick(r.result, r.pinned)).map((r) => r.result);
const f = (v, d = 1) => (v === undefined || v === null || Number.isNaN(v) ? "-" : Number(v).toLocaleString("en-US", { maximumFractionDigits: d }));
const ratio = (a, b) => (a && b ? `${f(a / b, 1)}x` : "-");
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs, d) => (xs.length > 1 ? ` (${f(Math.min(...xs), d)}-${f(Math.max(...xs), d)})` : "");
// The median of a field over runs, with the range when there are several.
const med = (rs, pick, d) => (rs.length ? f(median(rs.map(pick)), d) + spread(rs.map(pick), d) : "-");

const out = [];
out.push(`Machine: ${machine}; server, PostgreSQL and load generators share it. ${new Date().toISOString().slice(0, 10)}.`);
out.push("");
// `bench/run.sh --nodes` has only the one-node-against-two runs: no single-node table.
const single = rows.some((r) => !r.set);
if (single) {
  const n = all("chat-server", "throughput").length;
  out.push(`Each throughput and latency row: the median of ${n} run${n === 1 ? "" : "s"} (ours and the baseline's interleaved, each on a fresh server), the range in brackets.`);
  out.push("");
  out.push("| scenario | metric | chat-server | Socket.IO baseline | ratio |");
  out.push("|---|---|---|---|---|");
}
const t = [all("chat-server", "throughput"), all("socketio", "throughput")];
if (t[0].length && t[1].length) {
  const tp = (rs) => median(rs.map((r) => r.msgs_per_sec));
  out.push(`| throughput (${t[0][0].pairs} pairs, ${t[0][0].inflight} in flight each) | persisted+delivered msgs/s | ${med(t[0], (r) => r.msgs_per_sec, 0)} | ${med(t[1], (r) => r.msgs_per_sec, 0)} | ${ratio(tp(t[0]), tp(t[1]))} |`);
  out.push(`| | send->deliver p50 / p99 ms | ${med(t[0], (r) => r.latency.p50_ms, 2)} / ${med(t[0], (r) => r.latency.p99_ms, 2)} | ${med(t[1], (r) => r.latency.p50_ms, 2)} / ${med(t[1], (r) => r.latency.p99_ms, 2)} | |`);
  const honest = (rs) => rs.every((r) => r.acked === r.stored && r.stored === r.delivered) ? "equal in every run" : "NOT EQUAL in some run";
  out.push(`| | acked = rows stored = delivered | ${honest(t[0])} | ${honest(t[1])} | |`);
}
const latencyRow = (pick, label) => {
  const l = [all("chat-server", "latency", pick), all("socketio", "latency", pick)];
  if (!l[0].length || !l[1].length) return;
  const p50 = (rs) => median(rs.map((r) => r.latency.p50_ms));
  out.push(`| ${label(l[0][0])} | send->deliver p50 ms | ${med(l[0], (r) => r.latency.p50_ms, 2)} | ${med(l[1], (r) => r.latency.p50_ms, 2)} | ${f(Number((p50(l[0]) / p50(l[1])).toPrecision(2)), 4)}x |`);
  out.push(`| | p95 ms | ${med(l[0], (r) => r.latency.p95_ms, 2)} | ${med(l[1], (r) => r.latency.p95_ms, 2)} | |`);
  out.push(`| | p99 ms | ${med(l[0], (r) => r.latency.p99_ms, 2)} | ${med(l[1], (r) => r.latency.p99_ms, 2)} | |`);
  const whole = (rs) => (rs.every((r) => r.delivered === r.sent && (r.acked ?? r.sent) === r.sent) ? `all, in ${rs.length} runs` : "NOT ALL in some run");
  out.push(`| | acked and delivered of sent | ${whole(l[0])} | ${whole(l[1])} | |`);
};
latencyRow((r) => r.idle === 0, (r) => `latency at the baseline's saturation rate, ${f(r.rate, 0)} msg/s`);
latencyRow((r, pinned) => r.idle > 0 && !pinned, (r) => `latency at ${f(r.rate, 0)} msg/s, ${f(r.idle, 0)} idle connections`);
latencyRow((r, pinned) => r.idle > 0 && pinned, () => `the same, server on core 0, load generator on core 1`);
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

// One node against two (scale-out), each setting run several times: median and range.
const sets = rows.filter((r) => r.set === "nodes");
if (sets.length) {
  const settings = [...new Set(sets.map((r) => (r.nodes === 1 ? "one node" : `two nodes, bus ${r.bus}`)))];
  const of = (setting, scenario) =>
    sets.filter((r) => r.result.scenario === scenario && (r.nodes === 1 ? "one node" : `two nodes, bus ${r.bus}`) === setting);
  out.push("");
  out.push(`One node against two on the same database and cores; in two-node runs every message crosses nodes (senders on A, recipients on B). Median of ${of("one node", "throughput").length} runs, range in brackets.`);
  out.push("");
  out.push("| setting | throughput msgs/s | vs one node | bus wake-ups/s | bus event batches/s | msgs per wake-up | p99 ms at " + f(of("one node", "latency")[0]?.result.rate ?? 0, 0) + " msg/s | p50 ms |");
  out.push("|---|---|---|---|---|---|---|---|");
  const base = median(of("one node", "throughput").map((r) => r.result.msgs_per_sec));
  for (const setting of settings) {
    const t = of(setting, "throughput");
    const l = of(setting, "latency");
    const tput = t.map((r) => r.result.msgs_per_sec);
    const perSec = (key) => t.filter((r) => r.published).map((r) => r.published[key] / r.result.seconds);
    const wake = perSec("wakeups");
    const ev = perSec("events");
    const perWake = t.filter((r) => r.published?.wakeups).map((r) => r.result.acked / r.published.wakeups);
    const p99 = l.map((r) => r.result.latency.p99_ms);
    const p50 = l.map((r) => r.result.latency.p50_ms);
    out.push(`| ${setting} | ${tput.length ? f(median(tput), 0) + spread(tput, 0) : "-"} | ${tput.length && setting !== "one node" ? `${f((100 * median(tput)) / base, 1)}%` : ""} | ${wake.length ? f(median(wake), 0) : "-"} | ${ev.length ? f(median(ev), 0) : "-"} | ${perWake.length ? f(median(perWake), 0) : "-"} | ${p99.length ? f(median(p99), 2) + spread(p99, 2) : "-"} | ${p50.length ? f(median(p50), 2) : "-"} |`);
  }
  const lost = sets.filter((r) => r.result.acked !== undefined && r.result.delivered < r.result.acked);
  out.push("");
  out.push(`Every two-node run: acked = delivered${lost.length ? `, EXCEPT ${lost.length} run(s)` : ""}; throughput runs also check rows stored = acked.`);
}
console.log(out.join("\n"));
