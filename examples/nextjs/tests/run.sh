#!/usr/bin/env bash
# The example app end to end, from an empty database, the way its README goes: the guide's
# npm scripts (db:app, db:seed, setup:chat, check:prisma, generate), `next build`, then
# `npm run socket` (a real chat-server) and `next start`, and the Playwright suite
# (tests/e2e.mjs) in headless Chromium. Called by scripts/test.sh; also `npm run test:e2e`.
set -euo pipefail
cd "$(dirname "$0")/.."
APP="$PWD"
ROOT="$(cd ../.. && pwd)"
ADMIN_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export NEXT_TELEMETRY_DISABLED=1

# The app runs chat-server from its npm package (devDependency `chat-server`, linked from
# npm/ in this repository), as an app installing it from the registry would: build that
# package's x86-64 binary (a no-op when it is up to date), unless CHAT_SERVER_BIN names one.
[ -f "$ROOT/pkg/dist/chat_sdk_bg.wasm" ] || bash "$ROOT/pkg/build.sh"
[ -n "${CHAT_SERVER_BIN:-}" ] || bash "$ROOT/npm/build.sh" x64
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then npm ci --no-audit --no-fund; fi

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
CHAT_PORT="$(free_port)"
APP_PORT="$(free_port)"
DB="chat_test_next_$(date +%s)_$$"
WORK="$(mktemp -d)"
PIDS=()
# Each server runs in its own process group (setsid), so stopping it stops npm's children too.
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

psql "$ADMIN_URL" -qc "CREATE DATABASE $DB" >/dev/null
DATABASE_URL="$(node -e 'const u=new URL(process.argv[1]);u.pathname="/"+process.argv[2];console.log(u.toString())' "$ADMIN_URL" "$DB")"
export DATABASE_URL
export CHAT_TOKEN_SECRET="$(node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))')"
export SESSION_SECRET="$(node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))')"
export CHAT_TOKEN_AUDIENCE=chat-server CHAT_TOKEN_ISSUER=school-app
export CHAT_SUPERVISORS=1
export SOCKET_PORT="$CHAT_PORT"
export NEXT_PUBLIC_SOCKET_URL="http://127.0.0.1:$CHAT_PORT"
export CHAT_ALLOWED_ORIGINS="http://127.0.0.1:$APP_PORT"

echo "==> the app's tables, seed, and the guide's chat setup (database $DB)"
npm run --silent db:app
npm run --silent db:seed
npm run --silent setup:chat
npm run --silent check:prisma
echo "==> prisma generate, next build"
PRISMA_SCHEMA_ENGINE_BINARY=/bin/false npm run --silent generate >/dev/null
npm run --silent build > "$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }

echo "==> npm run socket (chat-server on :$CHAT_PORT) and next start (:$APP_PORT)"
setsid npm run --silent socket > "$WORK/socket.log" 2>&1 &
PIDS+=($!)
setsid npx next start -H 127.0.0.1 -p "$APP_PORT" > "$WORK/next.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 60); do npm run --silent check:socket >/dev/null 2>&1 && break; sleep 0.5; done
npm run --silent check:socket || { echo "--- chat-server log"; cat "$WORK/socket.log"; exit 1; }
for _ in $(seq 1 60); do node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "http://127.0.0.1:$APP_PORT/" && break; sleep 0.5; done

echo "==> Playwright: two browser contexts through next start and chat-server"
status=0
node ${E2E_SCRIPT:-tests/e2e.mjs} "http://127.0.0.1:$APP_PORT" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- chat-server log"; tail -40 "$WORK/socket.log"
  echo "--- next log"; tail -40 "$WORK/next.log"
fi
exit "$status"
