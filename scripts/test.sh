#!/usr/bin/env bash
# Runs every test of the project: the one command the README gives, and what CI runs.
#
# Needs: the Rust toolchain (rustup), Node 20+ with npm, Chromium and chromedriver
# (installed from Debian's chromium and chromium-driver when missing), psql, and a PostgreSQL server where
# the tests may create databases (TEST_DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/postgres), NATS at 127.0.0.1:4222 (started, or installed
# from Debian's nats-server, when it is not answering), and pgbouncer (installed when missing). wasm-bindgen-cli is installed on first use; the npm
# packages' part installs musl-tools, the arm64 cross compiler and qemu-user-static (apt) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

step() { printf '\n==> %s\n' "$*"; }

step "checking PostgreSQL at $TEST_DATABASE_URL"
if ! psql "$TEST_DATABASE_URL" -Atqc 'select 1' >/dev/null 2>&1; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "PostgreSQL is not answering; starting the local cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    for _ in $(seq 1 30); do psql "$TEST_DATABASE_URL" -Atqc 'select 1' >/dev/null 2>&1 && break; sleep 1; done
  fi
  psql "$TEST_DATABASE_URL" -Atqc 'select 1' >/dev/null || {
    echo "error: no PostgreSQL at $TEST_DATABASE_URL; start one or set TEST_DATABASE_URL" >&2
    exit 1
  }
fi
# Databases left behind by an interrupted earlier run.
for db in $(psql "$TEST_DATABASE_URL" -Atqc "select datname from pg_database where datname like 'chat_test_%'"); do
  psql "$TEST_DATABASE_URL" -qc "drop database if exists \"$db\" with (force)" >/dev/null
done

# NATS (the scale-out tests' second bus) at 127.0.0.1:4222: started, or installed from
# Debian's nats-server package and started, when nothing answers there. The NATS restart
# test also runs a nats-server of its own, so the binary must be here either way.
nats_up() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }
step "checking NATS at 127.0.0.1:4222 and the nats-server binary"
if ! command -v nats-server >/dev/null 2>&1; then
  echo "nats-server is not installed; installing it (apt)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq nats-server >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq nats-server >/dev/null; }
fi
if ! nats_up; then
  echo "starting nats-server on 127.0.0.1:4222"
  nohup nats-server -a 127.0.0.1 -p 4222 >/tmp/chat-test-nats.log 2>&1 &
  for _ in $(seq 1 50); do nats_up && break; sleep 0.2; done
  nats_up || { echo "error: NATS did not start (see /tmp/chat-test-nats.log)" >&2; exit 1; }
fi

# PgBouncer (the transaction-pooling test runs a pgbouncer of its own): installed from
# Debian when missing, and required, so the test cannot pass by skipping.
step "checking pgbouncer"
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  echo "pgbouncer is not installed; installing it (apt)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq pgbouncer >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq pgbouncer >/dev/null; }
fi
export CHAT_REQUIRE_PGBOUNCER=1

# Chromium and chromedriver (the browser half): installed from Debian when missing, as
# nats-server is above, so the README's test command works on a fresh machine.
step "checking Chromium and chromedriver"
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "Chromium or chromedriver is not installed; installing them (apt)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }
fi

LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
FAILED=()

# Runs one part of the suite, keeps its output for the summary, and records a failure
# instead of stopping: every part runs, and the closing line says what failed.
part() {
  local name="$1"
  shift
  step "$name"
  if ! "$@" 2>&1 | tee -a "$LOG"; then
    FAILED+=("$name")
  fi
}

protocol_no_std() {
  rustup target add wasm32-unknown-unknown thumbv7em-none-eabihf >/dev/null
  cargo build -p chat-protocol --target wasm32-unknown-unknown &&
    cargo build -p chat-protocol --target thumbv7em-none-eabihf
}

part "server layout: no import circles between server/src's modules" python3 scripts/module-cycles.py server/src
part "protocol builds without std: wasm32-unknown-unknown and thumbv7em-none-eabihf" protocol_no_std
part "unit and integration tests (real PostgreSQL, real sockets)" cargo test --workspace --all-targets --all-features --no-fail-fast
part "browser: the chat-sdk package, wasm-bindgen-test and Playwright in headless Chromium" bash scripts/browser-tests.sh
part "npm packages (npm/): chat-server installed with no cargo, x86-64 and arm64 under qemu" bash npm/test.sh
part "the Next.js example (examples/nextjs): next build, next start, chat-server, Playwright" bash examples/nextjs/tests/run.sh
# Last: the npm part has built the binaries whose sizes the docs quote.
part "docs: links, commands, flags, settings, paths and figures still true" \
  python3 scripts/check-docs.py "${CARGO_TARGET_DIR:-target}/debug/chat-server"

# One closing line for the whole suite, summed over every test binary above, and the parts
# that failed (a part can fail before any test runs: a build, a server that does not start).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\nsuite: %d passed, %d failed\n", p, f }' "$LOG"
if [ "${#FAILED[@]}" -gt 0 ]; then
  printf 'failed: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
