#!/usr/bin/env bash
# A/B of one-node latency at light load: an earlier build (OLD_BIN), this checkout's release
# build and the Socket.IO baseline, RUNS interleaved runs each (default 5), 1,000 msg/s over
# 100 pairs while IDLE authenticated idle connections are held (default 10,000), 10 s a run,
# each on a freshly started server and its own database. Prints one JSON line per run, then
# the median and range of p50 and p99 per build.
#   OLD_BIN=/tmp/chat-server-before bash bench/ab/delivery.sh > ab.jsonl
# (OLD_PROTOCOL: the newest protocol OLD_BIN speaks, 4 by default.)
# Without OLD_BIN only this build and the baseline run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ADMIN="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BENCH="$TARGET/release/chat-bench"
RUNS="${RUNS:-5}"; IDLE="${IDLE:-10000}"; RATE="${RATE:-1000}"; SECS="${SECS:-10}"
(cd "$ROOT" && cargo build --release -q -p chat-server -p chat-bench)
(cd "$ROOT/bench/baselines/socketio" && npm ci --silent --no-audit --no-fund)
declare -A BIN=([new]="$TARGET/release/chat-server")
# The protocol each build is spoken to in: the newest it accepts (OLD_PROTOCOL for OLD_BIN).
declare -A PROTO=([new]="$(grep -oP 'PROTOCOL_VERSION: u16 = \K[0-9]+' "$ROOT/protocol/src/lib.rs")")
BUILDS="new"
if [ -n "${OLD_BIN:-}" ]; then BIN[old]="$OLD_BIN"; PROTO[old]="${OLD_PROTOCOL:-4}"; BUILDS="old new"; fi
SYSTEMS="$BUILDS base"
# NO_BASELINE=1: only the builds (an A/B of two of ours).
[ "${NO_BASELINE:-0}" = 1 ] && SYSTEMS="$BUILDS"
for b in $SYSTEMS; do
  ab_database "ab_$b" "${BIN[${b/base/new}]}"
done
OUT="$(mktemp)"; PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -f "$OUT"' EXIT
for i in $(seq 1 "$RUNS"); do
  for b in $SYSTEMS; do
    url="${ADMIN%/*}/ab_$b"
    if [ "$b" = base ]; then
      DATABASE_URL="$url" SOCKET_PORT=4321 node "$ROOT/bench/baselines/socketio/server.js" >/dev/null 2>&1 & PID=$!
      sleep 1
      res="$(DATABASE_URL="$url" node "$ROOT/bench/baselines/socketio/driver.mjs" latency --rate "$RATE" --pairs 100 --idle "$IDLE" --seconds "$SECS" --url http://127.0.0.1:4321)"
    else
      DATABASE_URL="$url" CHAT_TOKEN_SECRET="$SECRET" SOCKET_PORT=4320 CHAT_MAX_CONNECTIONS=30000 CHAT_MAX_PENDING=30000 \
        CHAT_MAX_PENDING_PER_IP=30000 CHAT_RATE_PER_SECOND=1000000 CHAT_RATE_BURST=1000000 CHAT_IDLE_TIMEOUT=300 RUST_LOG=warn \
        "${BIN[$b]}" serve >/dev/null 2>&1 & PID=$!
      for _ in $(seq 1 50); do curl -sf http://127.0.0.1:4320/healthz >/dev/null && break; sleep 0.2; done
      res="$(DATABASE_URL="$url" CHAT_TOKEN_SECRET="$SECRET" "$BENCH" --protocol "${PROTO[$b]}" --url ws://127.0.0.1:4320/ws latency --rate "$RATE" --pairs 100 --idle "$IDLE" --seconds "$SECS" 2>/dev/null)"
    fi
    kill $PID; wait $PID 2>/dev/null || true; PID=""
    echo "{\"build\":\"$b\",\"run\":$i,\"result\":$res}" | tee -a "$OUT"
  done
done
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
for (const b of [...new Set(rows.map((r) => r.build))]) {
  const rs = rows.filter((r) => r.build === b).map((r) => r.result);
  const show = (k) => { const xs = rs.map((r) => r.latency[k]); return `${med(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`; };
  console.error(`${b}: runs ${rs.length}, p50 ${show("p50_ms")} ms, p99 ${show("p99_ms")} ms, delivered ${rs.map((r) => r.delivered + "/" + r.sent).join(" ")}`);
}' "$OUT"
