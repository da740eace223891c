#!/usr/bin/env bash
# The fault suite: real users (the SDK's native client) send through a real chat-server
# process while it is killed with SIGKILL, its PostgreSQL is restarted, stalled by a lock and
# cut off, its SQLite disk fills up, and misbehaving clients flood, fuzz and stall it. Every
# scenario ends by counting: every acked message stored once and delivered once, or it fails.
#
#   bash tests/faults/run.sh           # the full run (about 15 minutes; figures for RELIABILITY.md)
#   bash tests/faults/run.sh --smoke   # seconds per scenario (CI)
#   bash tests/faults/run.sh --only kill9,abuse
#
# Needs: the Rust toolchain, a PostgreSQL where it may create databases (TEST_DATABASE_URL,
# default postgres://postgres@127.0.0.1:5432/postgres). Restarting PostgreSQL (pg_ctlcluster)
# and the full-disk scenario (mount -t tmpfs) need root; without it they are skipped, saying so.
# The JSON figures of the run go to target/faults/report.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

pg_up() { psql "$TEST_DATABASE_URL" -Atqc 'select 1' >/dev/null 2>&1; }
start_pg() {
  if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
}
start_pg
pg_up || { echo "error: no PostgreSQL at $TEST_DATABASE_URL; start one or set TEST_DATABASE_URL" >&2; exit 1; }
# Whatever happens in the suite, PostgreSQL is left running for whatever comes next.
trap start_pg EXIT

echo "==> building chat-server and chat-faults (release)"
cargo build --release -p chat-server -p chat-faults

PG_CONTROL=""
if [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null 2>&1 \
   && psql "$TEST_DATABASE_URL" -Atqc "select inet_server_addr() is null or host(inet_server_addr()) in ('127.0.0.1', '::1')" 2>/dev/null | grep -q t; then
  PG_CONTROL="pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main"
else
  echo "note: not root or PostgreSQL is not local: the pg-restart scenario is skipped"
fi

mkdir -p target/faults
echo "==> fault suite $*"
"$TARGET_DIR/release/chat-faults" --server-bin "$TARGET_DIR/release/chat-server" --pg-control "$PG_CONTROL" \
  --work-dir target/faults "$@" | tee target/faults/report.jsonl
