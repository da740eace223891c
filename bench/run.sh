#!/usr/bin/env bash
# Runs the benchmark suite: every scenario against chat-server and against the Socket.IO
# baseline (the original guide's design), in the same run on the same machine, each on a
# freshly started server. Prints a table with the ratios and writes bench/results/latest.json.
#
#   bash bench/run.sh            # the full suite (a few minutes)
#   bash bench/run.sh --smoke    # seconds-long, small sizes: keeps the harness working (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
ADMIN_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB="chat_bench_run"
DB_URL="${ADMIN_URL%/*}/$DB"
SECRET="bench-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
OUR_PORT=4210
BASE_PORT=4211

NAME=latest
if [ "${1:-}" = "--smoke" ]; then
  NAME=smoke; SECONDS_RUN=2; PAIRS=10; RATE=200; IDLE=200; IDLE_MAX=500; STORM=200; MISSED=400
else
  SECONDS_RUN=10; PAIRS=50; RATE=1000; IDLE=10000; IDLE_MAX=19000; STORM=5000; MISSED=10000
fi

cargo build --release -p chat-server -p chat-bench
# The server under test: this checkout's release build, or another binary (e.g. the npm
# package's, npm/chat-server-linux-x64/bin/chat-server) named by CHAT_SERVER_BIN.
SERVER_BIN="${CHAT_SERVER_BIN:-$TARGET_DIR/release/chat-server}"
(cd bench/baselines/socketio && npm ci --silent --no-audit --no-fund)

psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
psql "$DB_URL" -q >/dev/null <<'SQL'
CREATE TABLE "Teacher" (id SERIAL PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE "Student" (id SERIAL PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO "Teacher" (name) SELECT 'T-' || n FROM generate_series(1, 1000) n;
INSERT INTO "Student" (name) SELECT 'S-' || n FROM generate_series(1, 1000) n;
SQL
DATABASE_URL="$DB_URL" "$SERVER_BIN" setup >/dev/null

RESULTS="$(mktemp)"
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; fi
}
trap 'stop_server; rm -f "$RESULTS"' EXIT

# PINNED=1: the server on core 0 and the load generator on core 1 (PostgreSQL unpinned), to
# show how much of a latency tail is the two contending for the same cores.
SERVER_CPU=""; LOAD_CPU=""; PINNED=0
pin() { PINNED=$1; if [ "$1" = 1 ]; then SERVER_CPU="taskset -c 0"; LOAD_CPU="taskset -c 1"; else SERVER_CPU=""; LOAD_CPU=""; fi; }
start_ours() {
  DATABASE_URL="$DB_URL" CHAT_TOKEN_SECRET="$SECRET" SOCKET_PORT=$OUR_PORT CHAT_MAX_CONNECTIONS=30000 \
    CHAT_MAX_PENDING=30000 CHAT_MAX_PENDING_PER_IP=30000 \
    CHAT_RATE_PER_SECOND=1000000 CHAT_RATE_BURST=1000000 CHAT_IDLE_TIMEOUT=300 RUST_LOG=warn \
    $SERVER_CPU "$SERVER_BIN" serve >/dev/null 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$OUR_PORT/healthz" >/dev/null && return; sleep 0.2; done
  echo "error: chat-server did not start" >&2; exit 1
}
start_baseline() {
  DATABASE_URL="$DB_URL" SOCKET_PORT=$BASE_PORT $SERVER_CPU node bench/baselines/socketio/server.js >/dev/null 2>&1 &
  SERVER_PID=$!
  sleep 1
}
ours() { # scenario args...
  start_ours
  echo "==> chat-server: $*" >&2
  printf '{"system":"chat-server","pinned":%s,"result":%s}\n' "$PINNED" "$(DATABASE_URL="$DB_URL" CHAT_TOKEN_SECRET="$SECRET" \
    $LOAD_CPU "$TARGET_DIR/release/chat-bench" --url "ws://127.0.0.1:$OUR_PORT/ws" "$@" 2>/dev/null)" >> "$RESULTS"
  stop_server
}
baseline() {
  start_baseline
  echo "==> socket.io baseline: $*" >&2
  printf '{"system":"socketio","pinned":%s,"result":%s}\n' "$PINNED" "$(DATABASE_URL="$DB_URL" $LOAD_CPU node bench/baselines/socketio/driver.mjs "$@" --url "http://127.0.0.1:$BASE_PORT")" >> "$RESULTS"
  stop_server
}

ours throughput --pairs $PAIRS --inflight 8 --seconds $SECONDS_RUN
baseline throughput --pairs $PAIRS --inflight 8 --seconds $SECONDS_RUN
# The baseline's saturation rate, as just measured: both systems at that fixed rate.
SATURATION="$(node -e 'const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  console.log(Math.max(1, Math.round(rows.find((r) => r.system === "socketio" && r.result.scenario === "throughput").result.msgs_per_sec)))' "$RESULTS")"
ours latency --rate "$SATURATION" --pairs 100 --idle 0 --seconds $SECONDS_RUN
baseline latency --rate "$SATURATION" --pairs 100 --idle 0 --seconds $SECONDS_RUN
ours latency --rate $RATE --pairs 100 --idle $IDLE --seconds $SECONDS_RUN
baseline latency --rate $RATE --pairs 100 --idle $IDLE --seconds $SECONDS_RUN
pin 1
ours latency --rate $RATE --pairs 100 --idle $IDLE --seconds $SECONDS_RUN
baseline latency --rate $RATE --pairs 100 --idle $IDLE --seconds $SECONDS_RUN
pin 0
start_ours; OURS_PID=$SERVER_PID
echo "==> chat-server: idle $IDLE_MAX" >&2
printf '{"system":"chat-server","result":%s}\n' "$(CHAT_TOKEN_SECRET="$SECRET" "$TARGET_DIR/release/chat-bench" \
  --url "ws://127.0.0.1:$OUR_PORT/ws" idle --connections $IDLE_MAX --server-pid $OURS_PID 2>/dev/null)" >> "$RESULTS"
stop_server
start_baseline; BASE_PID=$SERVER_PID
echo "==> socket.io baseline: idle $IDLE_MAX" >&2
printf '{"system":"socketio","result":%s}\n' "$(node bench/baselines/socketio/driver.mjs idle --connections $IDLE_MAX \
  --server-pid $BASE_PID --url "http://127.0.0.1:$BASE_PORT")" >> "$RESULTS"
stop_server
ours storm --connections $STORM --missed $MISSED
baseline storm --connections $STORM

mkdir -p bench/results
node bench/report.mjs "$RESULTS" "$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r)" | tee "bench/results/$NAME.md"
cp "$RESULTS" "bench/results/$NAME.jsonl"
