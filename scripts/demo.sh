#!/usr/bin/env bash
# The README's first command: a working chat in the browser with nothing but the Rust
# toolchain and Node installed (no PostgreSQL). Builds the browser package (pkg/dist) when
# it is missing or older than its sources, then runs `chat-server demo`: an embedded SQLite
# database (chat-demo.db here) with demo teachers and students, and a page at
# http://127.0.0.1:4000/ to chat in. Extra arguments go to `chat-server demo`
# (e.g. --port 4001). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f pkg/dist/chat_sdk_bg.wasm ] ||
  [ -n "$(find client-wasm/src protocol/src pkg/src Cargo.lock -newer pkg/dist/chat_sdk_bg.wasm -print -quit)" ]; then
  echo "==> building the browser package chat-sdk (pkg/dist)"
  bash pkg/build.sh
fi
echo "==> starting chat-server demo"
exec cargo run --quiet -p chat-server -- demo --sdk-dir pkg/dist "$@"
