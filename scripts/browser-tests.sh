#!/usr/bin/env bash
# The browser half of the suite: builds the chat-sdk package, type-checks its declarations,
# installs the packed package into a plain page, starts a real chat-server (through
# pkg/test/harness.mjs), then runs the wasm-bindgen-test browser tests and the Playwright
# consumer test in headless Chromium, and the Playwright test of `chat-server demo`'s page.
# Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
TOOLS="${CHAT_TOOLS_DIR:-$HOME/.cache/chat-tools}"

echo "==> chat-sdk package"
bash pkg/build.sh
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
export PATH="$TOOLS/wasm-bindgen-$WASM_BINDGEN_VERSION/bin:$PATH"

echo "==> unit tests of the package's TypeScript (node:test)"
node --test pkg/test/unit.mjs

echo "==> TypeScript declarations (tsc --strict)"
(cd pkg && node_modules/.bin/tsc -p test/tsconfig.json)

echo "==> installing the packed chat-sdk into a consumer page"
CONSUMER="$(mktemp -d)"
HARNESS_PID=""
cleanup() {
  if [ -n "$HARNESS_PID" ]; then kill "$HARNESS_PID" 2>/dev/null || true; wait "$HARNESS_PID" 2>/dev/null || true; fi
  rm -rf "$CONSUMER"
}
trap cleanup EXIT
cp pkg/test/consumer/index.html "$CONSUMER/"
(cd pkg && npm pack --silent --pack-destination "$CONSUMER" >/dev/null)
(cd "$CONSUMER" && echo '{ "private": true }' > package.json && npm install --silent --no-audit --no-fund ./chat-sdk-*.tgz)

echo "==> starting chat-server behind the test harness"
cargo build -p chat-server
HARNESS_OUT="$CONSUMER/harness.out"
CHAT_SERVER_BIN="$TARGET_DIR/debug/chat-server" CONSUMER_DIR="$CONSUMER" node pkg/test/harness.mjs > "$HARNESS_OUT" &
HARNESS_PID=$!
for _ in $(seq 1 100); do grep -q '^HARNESS ' "$HARNESS_OUT" && break; sleep 0.2; done
HARNESS="$(awk '/^HARNESS / { print $2 }' "$HARNESS_OUT")"
[ -n "$HARNESS" ] || { echo "error: the test harness did not start" >&2; exit 1; }

echo "==> wasm-bindgen-test in headless Chromium (the exported core)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p chat-client --target wasm32-unknown-unknown --test web

echo "==> Playwright consumer test"
node pkg/test/consumer.mjs "$HARNESS"

echo "==> Playwright demo test (chat-server demo, its page, two users)"
CHAT_SERVER_BIN="$TARGET_DIR/debug/chat-server" CHAT_DEMO_SDK_DIR="$ROOT/pkg/dist" node pkg/test/demo.mjs
