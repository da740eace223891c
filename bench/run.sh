#!/usr/bin/env bash
# Runs the benchmark suite: every scenario against chat-server and against the Socket.IO
# baseline (the original guide's design), in the same run on the same machine, each on a
# freshly started server. Prints a table with the ratios and writes bench/results/latest.json.
#
#   bash bench/run.sh            # the full suite (a few minutes)
#   bash bench/run.sh --smoke    # seconds-long, small sizes: keeps the harness working (CI)
#   bash bench/run.sh --nodes    # only one node against two (full sizes), into bench/results/nodes.*
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
ADMIN_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB="chat_bench_run"
DB_URL="${ADMIN_URL%/*}/$DB"
SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# The cluster key the two-node runs share (CHAT_BUS_KEY).
BUS_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
OUR_PORT=4210
BASE_PORT=4211
PEER_PORT=4212

NAME=latest
ONLY_NODES=0
if [ "${1:-}" = "--nodes" ]; then NAME=nodes; ONLY_NODES=1; fi
# REPS: how many times each throughput and latency scenario runs (ours and the baseline's
# interleaved, each on a fresh server): the tables give the median and the range.
if [ "${1:-}" = "--smoke" ]; then
  NAME=smoke; SECONDS_RUN=2; PAIRS=10; RATE=200; IDLE=200; IDLE_MAX=500; STORM=200; MISSED=400; REPS=1
else
  SECONDS_RUN=10; PAIRS=50; RATE=1000; IDLE=10000; IDLE_MAX=19000; STORM=5000; MISSED=10000; REPS="${REPS:-5}"
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
PEER_PID=""
stop_peer() {
  if [ -n "$PEER_PID" ]; then kill "$PEER_PID" 2>/dev/null || true; wait "$PEER_PID" 2>/dev/null || true; PEER_PID=""; fi
}
trap 'stop_server; stop_peer; rm -f "$RESULTS"' EXIT

# PINNED=1: the server on core 0 and the load generator on core 1 (PostgreSQL unpinned), to
# show how much of a latency tail is the two contending for the same cores.
SERVER_CPU=""; LOAD_CPU=""; PINNED=0
pin() { PINNED=$1; if [ "$1" = 1 ]; then SERVER_CPU="taskset -c 0"; LOAD_CPU="taskset -c 1"; else SERVER_CPU=""; LOAD_CPU=""; fi; }
# start_node PORT [BUS]: a chat-server on PORT (with CHAT_BUS=BUS when given); sets NODE_PID.
start_node() {
  DATABASE_URL="$DB_URL" CHAT_TOKEN_SECRET="$SECRET" SOCKET_PORT=$1 CHAT_BUS="${2:-}" CHAT_BUS_KEY="$BUS_KEY" CHAT_MAX_CONNECTIONS=30000 \
    CHAT_MAX_PENDING=30000 CHAT_MAX_PENDING_PER_IP=30000 \
    CHAT_RATE_PER_SECOND=1000000 CHAT_RATE_BURST=1000000 CHAT_IDLE_TIMEOUT=300 RUST_LOG=warn \
    $SERVER_CPU "$SERVER_BIN" serve >/dev/null 2>&1 &
  NODE_PID=$!
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return; sleep 0.2; done
  echo "error: chat-server did not start on port $1" >&2; exit 1
}
start_ours() { start_node $OUR_PORT; SERVER_PID=$NODE_PID; }
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

single_node_suite() {
  for _ in $(seq 1 "$REPS"); do
    ours throughput --pairs $PAIRS --inflight 8 --seconds $SECONDS_RUN
    baseline throughput --pairs $PAIRS --inflight 8 --seconds $SECONDS_RUN
  done
  # The baseline's saturation rate, as just measured (the median of its runs): both systems at that fixed rate.
  SATURATION="$(node -e 'const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
    const xs = rows.filter((r) => r.system === "socketio" && r.result.scenario === "throughput").map((r) => r.result.msgs_per_sec).sort((a, b) => a - b);
    console.log(Math.max(1, Math.round(xs[(xs.length - 1) >> 1])))' "$RESULTS")"
  for _ in $(seq 1 "$REPS"); do
    ours latency --rate "$SATURATION" --pairs 100 --idle 0 --seconds $SECONDS_RUN
    baseline latency --rate "$SATURATION" --pairs 100 --idle 0 --seconds $SECONDS_RUN
  done
  for _ in $(seq 1 "$REPS"); do
    ours latency --rate $RATE --pairs 100 --idle $IDLE --seconds $SECONDS_RUN
    baseline latency --rate $RATE --pairs 100 --idle $IDLE --seconds $SECONDS_RUN
  done
  pin 1
  for _ in $(seq 1 "$REPS"); do
    ours latency --rate $RATE --pairs 100 --idle $IDLE --seconds $SECONDS_RUN
    baseline latency --rate $RATE --pairs 100 --idle $IDLE --seconds $SECONDS_RUN
  done
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
}
[ "$ONLY_NODES" = 1 ] || single_node_suite

# One node against two on the same database and the same cores (scale-out): the pairs are
# split, teachers on node A and students on node B, so every message crosses nodes; idle
# connections are spread over both. Each setting runs REPS times, interleaved, for the spread.
# `published` counts what the nodes put on the bus meanwhile (wake-ups: the sequencer's
# one sealed payload after a sequencing round; events: batches of typing, read notices, presence, heartbeats).
bus_published() { # reason -> the sum over both nodes
  local total=0 n
  for port in $OUR_PORT $PEER_PORT; do
    n="$(curl -sf "http://127.0.0.1:$port/metrics" | awk -v r="$1" '$1 == "chat_bus_published_total{reason=\""r"\"}" { print $2 }')"
    total=$((total + ${n:-0}))
  done
  echo "$total"
}
nodes() { # 1|postgres|nats scenario args...
  local setting=$1; shift
  if [ "$setting" = 1 ]; then
    start_ours
    echo "==> chat-server, one node: $*" >&2
    printf '{"system":"chat-server","set":"nodes","nodes":1,"result":%s}\n' "$(DATABASE_URL="$DB_URL" \
      CHAT_TOKEN_SECRET="$SECRET" "$TARGET_DIR/release/chat-bench" --url "ws://127.0.0.1:$OUR_PORT/ws" "$@" 2>/dev/null)" >> "$RESULTS"
    stop_server
    return
  fi
  local bus=$setting
  [ "$bus" = nats ] && bus="nats://127.0.0.1:4222"
  start_node $OUR_PORT "$bus"; SERVER_PID=$NODE_PID
  start_node $PEER_PORT "$bus"; PEER_PID=$NODE_PID
  echo "==> chat-server, two nodes, bus $setting: $*" >&2
  local w0 e0 out
  w0="$(bus_published wakeup)"; e0="$(bus_published events)"
  out="$(DATABASE_URL="$DB_URL" CHAT_TOKEN_SECRET="$SECRET" "$TARGET_DIR/release/chat-bench" \
    --url "ws://127.0.0.1:$OUR_PORT/ws" --peer-url "ws://127.0.0.1:$PEER_PORT/ws" "$@" 2>/dev/null)"
  printf '{"system":"chat-server","set":"nodes","nodes":2,"bus":"%s","published":{"wakeups":%s,"events":%s},"result":%s}\n' \
    "$setting" "$(( $(bus_published wakeup) - w0 ))" "$(( $(bus_published events) - e0 ))" "$out" >> "$RESULTS"
  stop_server; stop_peer
}
nats_up() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }
BUSES="postgres"
if nats_up; then BUSES="postgres nats"; else echo "note: no NATS at 127.0.0.1:4222: two-node runs use the PostgreSQL bus only" >&2; fi
for _ in $(seq 1 $REPS); do
  for setting in 1 $BUSES; do nodes "$setting" throughput --pairs $PAIRS --inflight 8 --seconds $SECONDS_RUN; done
done
for _ in $(seq 1 $REPS); do
  for setting in 1 $BUSES; do nodes "$setting" latency --rate $RATE --pairs 100 --idle $IDLE --seconds $SECONDS_RUN; done
done

mkdir -p bench/results
node bench/report.mjs "$RESULTS" "$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r)" | tee "bench/results/$NAME.md"
cp "$RESULTS" "bench/results/$NAME.jsonl"
