#!/usr/bin/env bash
# Builds the chat-sdk npm package into pkg/dist, reproducibly:
#   cargo (wasm32, profile wasm-release) -> wasm-bindgen --target web -> wasm-opt -Oz (npm binaryen)
# and reports the gzip size of wasm + JS glue. Fails if it exceeds SIZE_LIMIT bytes.
# Everything in dist/ is build output; the hand-written TypeScript (the entry and chat-sdk/react)
# lives in src/ and is compiled by tsc.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd .. && pwd)"
# The bundle's hard limit: the measured size plus a small margin (BENCHMARKS.md, "Browser
# bundle", has the history). Lower it when the bundle shrinks.
SIZE_LIMIT="${SIZE_LIMIT:-48896}"
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")"
TOOLS="${CHAT_TOOLS_DIR:-$HOME/.cache/chat-tools}"
BINDGEN="$TOOLS/wasm-bindgen-$WASM_BINDGEN_VERSION/bin/wasm-bindgen"

if [ ! -x "$BINDGEN" ]; then
  echo "==> installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (once) into $TOOLS"
  # No --locked: one of its locked dependency versions is no longer on crates.io.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$TOOLS/wasm-bindgen-$WASM_BINDGEN_VERSION"
fi
if [ ! -x node_modules/.bin/wasm-opt ]; then
  npm ci --no-audit --no-fund
fi
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
echo "==> cargo build (wasm32-unknown-unknown, wasm-release)"
cargo build --manifest-path "$ROOT/Cargo.toml" -p chat-client --target wasm32-unknown-unknown --profile wasm-release

rm -rf dist
mkdir -p dist
echo "==> wasm-bindgen --target web"
"$BINDGEN" --target web --remove-name-section --remove-producers-section --out-dir dist --out-name chat_sdk "$TARGET_DIR/wasm32-unknown-unknown/wasm-release/chat_client.wasm"
echo "==> wasm-opt -Oz (binaryen from npm; Debian's breaks the externref table)"
node_modules/.bin/wasm-opt -Oz --strip-debug --strip-producers --enable-bulk-memory --enable-reference-types --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals dist/chat_sdk_bg.wasm -o dist/chat_sdk_bg.wasm
echo "==> tsc (src/*.ts -> dist/*.js without comments, and dist/*.d.ts with their docs)"
node_modules/.bin/tsc -p tsconfig.json
node_modules/.bin/tsc -p tsconfig.json --declaration --emitDeclarationOnly --removeComments false

wasm=$(wc -c < dist/chat_sdk_bg.wasm)
gz=$(cat dist/chat_sdk_bg.wasm dist/chat_sdk.js dist/index.js dist/outbox.js dist/tabs.js | gzip -9 | wc -c)
echo "chat-sdk: wasm ${wasm} B raw; wasm + JS glue ${gz} B gzip -9 (limit ${SIZE_LIMIT} B)"
if [ "$gz" -gt "$SIZE_LIMIT" ]; then
  echo "error: the package grew past ${SIZE_LIMIT} B gzip" >&2
  exit 1
fi
