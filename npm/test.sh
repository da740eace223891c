#!/usr/bin/env bash
# Checks the npm packages as a JS team would use them, not as we build them: packs them
# (npm/build.sh), installs them into an empty directory with a PATH that has no cargo, and
# runs `npx chat-server --version`, `setup`, `serve` + `check` against a fresh PostgreSQL
# database, and `demo` with nothing else on disk, natively on x86-64; then installs them as
# an arm64 machine would (npm --cpu=arm64) and runs the arm64 binary under qemu-user
# (`--version`, `setup`, `serve` answering the x86-64 `check`).
#
# Needs: Node and npm, psql, a PostgreSQL server (TEST_DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/postgres); installs qemu-user-static (apt) if missing.
# Called by scripts/test.sh; `bash npm/test.sh --no-build` reuses npm/dist.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
ADMIN_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
[ "${1:-}" = "--no-build" ] || bash npm/build.sh x64 arm64
VERSION="$(node -p 'require("./pkg/package.json").version')"
DIST="$ROOT/npm/dist"

WORK="$(mktemp -d)"
DB="chat_npm_$RANDOM$RANDOM"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "error: $*" >&2; exit 1; }

# What a JS developer's shell has: node and npm, no Rust toolchain.
NODE_DIR="$(dirname "$(command -v node)")"
CLEAN_PATH="$NODE_DIR:/usr/local/bin:/usr/bin:/bin"
in_app() { (cd "$1" && shift && exec env PATH="$CLEAN_PATH" "$@"); }
in_app "$WORK" sh -c '! command -v cargo >/dev/null' || fail "cargo is on the clean PATH ($CLEAN_PATH)"

# An empty app that installs the packed packages the way the registry would serve them.
new_app() {
  local dir="$1"
  shift
  mkdir -p "$dir"
  cat > "$dir/package.json" <<JSON
{
  "private": true,
  "overrides": {
    "chat-server-linux-x64": "file:$DIST/chat-server-linux-x64-$VERSION.tgz",
    "chat-server-linux-arm64": "file:$DIST/chat-server-linux-arm64-$VERSION.tgz"
  }
}
JSON
  in_app "$dir" npm install --silent --no-audit --no-fund --save-dev "$@" "$DIST/chat-server-$VERSION.tgz"
}

free_port() { node -e 'const s = require("net").createServer().listen(0, () => { console.log(s.address().port); s.close(); })'; }

wait_for() { # file pattern
  for _ in $(seq 1 150); do grep -q "$2" "$1" && return 0; sleep 0.2; done
  cat "$1"
  fail "'$2' never appeared in $1"
}

echo "==> a fresh database with the app's Teacher and Student tables"
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB" >/dev/null
DATABASE_URL="$(node -e 'const u = new URL(process.argv[1]); u.pathname = "/" + process.argv[2]; console.log(u.href)' "$ADMIN_URL" "$DB")"
psql "$DATABASE_URL" -q >/dev/null <<'SQL'
CREATE TABLE "Teacher" (id SERIAL PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE "Student" (id SERIAL PRIMARY KEY, name TEXT NOT NULL);
INSERT INTO "Teacher" (name) VALUES ('Ms. Smith');
INSERT INTO "Student" (name) VALUES ('Sam');
SQL
export DATABASE_URL
export CHAT_TOKEN_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

echo "==> x86-64: npm install --save-dev chat-server into an empty app (no cargo on PATH)"
APP="$WORK/app"
new_app "$APP"
[ -d "$APP/node_modules/chat-server-linux-x64" ] || fail "npm did not pick chat-server-linux-x64"
[ ! -d "$APP/node_modules/chat-server-linux-arm64" ] || fail "npm installed the arm64 package on x86-64"
out="$(in_app "$APP" npx chat-server --version)"
echo "$out"
[[ "$out" == "chat-server $VERSION (protocol "*", commit "* ]] || fail "unexpected --version: $out"
in_app "$APP" npx chat-server --help | grep -q "npm run check:prisma" || fail "--help lists no guide scripts"

echo "==> npx chat-server setup, check-db"
in_app "$APP" npx chat-server setup
in_app "$APP" npx chat-server check-db | tee "$WORK/check-db.out"
grep -q "ready for chat-server serve" "$WORK/check-db.out" || fail "check-db did not find the database ready"

echo "==> npx chat-server serve, then check"
PORT="$(free_port)"
# The installed command itself, as this shell's direct child (npx, or a shell function, would
# sit between the signal and the launcher).
(cd "$APP" && exec env PATH="$CLEAN_PATH" SOCKET_PORT="$PORT" node_modules/.bin/chat-server serve) > "$WORK/serve.log" 2>&1 &
PIDS+=($!)
wait_for "$WORK/serve.log" "listening on"
in_app "$APP" env NEXT_PUBLIC_SOCKET_URL="http://127.0.0.1:$PORT" npx chat-server check | tee "$WORK/check.out"
grep -q ": ok (version $VERSION" "$WORK/check.out" || fail "check did not report a healthy server"
kill -TERM "${PIDS[-1]}"
wait "${PIDS[-1]}" || fail "serve did not stop cleanly on SIGTERM (through the npm launcher): $(tail -3 "$WORK/serve.log")"
grep -q "shut down" "$WORK/serve.log" || fail "serve did not shut down gracefully"
unset 'PIDS[-1]'

echo "==> npx chat-server demo (the page and the SDK come from the packages)"
(cd "$APP" && exec env PATH="$CLEAN_PATH" node_modules/.bin/chat-server demo --port 0 --database "$WORK/demo.db") > "$WORK/demo.log" 2>&1 &
PIDS+=($!)
wait_for "$WORK/demo.log" "demo ready: open"
DEMO_URL="$(grep -o 'demo ready: open http://[^ ]*' "$WORK/demo.log" | awk '{ print $4 }')"
node --input-type=module -e '
  const base = process.argv[1];
  const get = async (path) => { const r = await fetch(new URL(path, base)); if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`); return r; };
  if (!(await (await get("/")).text()).includes("chat-sdk")) throw new Error("the page does not import chat-sdk");
  const wasm = await get("/sdk/chat_sdk_bg.wasm");
  if (wasm.headers.get("content-type") !== "application/wasm") throw new Error("the SDK is not served");
  console.log(`demo at ${base}: page and SDK from the package: ok`);
' "$DEMO_URL"
kill -TERM "${PIDS[-1]}"
wait "${PIDS[-1]}" || true
unset 'PIDS[-1]'

echo "==> arm64: npm install --cpu=arm64 picks the arm64 package"
ARM="$WORK/arm"
new_app "$ARM" --cpu=arm64 --os=linux
[ -d "$ARM/node_modules/chat-server-linux-arm64" ] || fail "npm --cpu=arm64 did not pick chat-server-linux-arm64"
ARM_BIN="$ARM/node_modules/chat-server-linux-arm64/bin/chat-server"
file "$ARM_BIN" | grep -q "ARM aarch64" || fail "not an arm64 binary: $(file "$ARM_BIN")"
command -v qemu-aarch64-static >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
}
echo "==> the arm64 binary under qemu: --version, setup, serve answering check"
out="$(qemu-aarch64-static "$ARM_BIN" --version)"
echo "$out"
[[ "$out" == "chat-server $VERSION (protocol "* ]] || fail "unexpected arm64 --version: $out"
(cd "$ARM" && env PATH="$CLEAN_PATH" qemu-aarch64-static "$ARM_BIN" setup)
PORT="$(free_port)"
(cd "$ARM" && exec env PATH="$CLEAN_PATH" SOCKET_PORT="$PORT" qemu-aarch64-static "$ARM_BIN" serve) > "$WORK/arm-serve.log" 2>&1 &
PIDS+=($!)
wait_for "$WORK/arm-serve.log" "listening on"
in_app "$APP" env NEXT_PUBLIC_SOCKET_URL="http://127.0.0.1:$PORT" npx chat-server check | grep -q ": ok (version $VERSION" ||
  fail "the arm64 server did not answer check"
echo "npm packages: x86-64 (--version, setup, check-db, serve, check, demo) and arm64 under qemu (--version, setup, serve): ok"
