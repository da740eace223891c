#!/usr/bin/env bash
# A/B of cross-node latency on the PostgreSQL bus: an earlier build (OLD_BIN) against this
# checkout's release build, five interleaved runs each, every message crossing nodes (1,000 msg/s, 100
# pairs, 2,000 idle connections, 10 s). Each build gets a database set up by its own `setup`.
# Usage: OLD_BIN=/tmp/old-target/release/chat-server bash bench/ab/bus-seal.sh > ab.jsonl
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ADMIN="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BENCH="${CARGO_TARGET_DIR:-$ROOT/target}/release/chat-bench"
# OLD_BIN: a chat-server built from an earlier commit (git worktree add /tmp/old <commit>; CARGO_TARGET_DIR=/tmp/old-target cargo build --release -p chat-server).
declare -A BIN=([old]="${OLD_BIN:?set OLD_BIN to the earlier build}" [new]="${CARGO_TARGET_DIR:-$ROOT/target}/release/chat-server")
for b in old new; do
  ab_database "ab_$b" "${BIN[$b]}"
done
start() { # build port
  DATABASE_URL="${ADMIN%/*}/ab_$1" CHAT_TOKEN_SECRET="$SECRET" CHAT_BUS=postgres CHAT_BUS_KEY="$KEY" SOCKET_PORT=$2 \
    CHAT_MAX_CONNECTIONS=30000 CHAT_MAX_PENDING=30000 CHAT_MAX_PENDING_PER_IP=30000 CHAT_RATE_PER_SECOND=1000000 \
    CHAT_RATE_BURST=1000000 RUST_LOG=warn "${BIN[$1]}" serve >/dev/null 2>&1 &
  echo $!
}
for i in 1 2 3 4 5; do
  for b in old new; do
    a=$(start $b 4310); p=$(start $b 4311)
    for port in 4310 4311; do for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done; done
    out="$(DATABASE_URL="${ADMIN%/*}/ab_$b" CHAT_TOKEN_SECRET="$SECRET" $BENCH --url ws://127.0.0.1:4310/ws --peer-url ws://127.0.0.1:4311/ws latency --rate 1000 --pairs 100 --idle 2000 --seconds 10 2>/dev/null)"
    echo "{\"build\":\"$b\",\"run\":$i,\"result\":$out}"
    kill $a $p; wait $a $p 2>/dev/null || true
  done
done
