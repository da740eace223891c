#!/usr/bin/env bash
# Builds the chat-sdk npm package into pkg/dist, reproducibly:
#   cargo (wasm32, profile wasm-release) -> wasm-bindgen --target bundler (glue only) -> wasm-opt -Oz --gufa -Oz (npm binaryen)
# and reports what a browser downloads (wasm + minified JS, gzip). Fails past SIZE_LIMIT bytes.
# Everything in dist/ is build output; the hand-written TypeScript (the entry and chat-sdk/react)
# lives in src/ and is compiled by tsc.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd .. && pwd)"
# The bundle's hard limit: the measured size plus a small margin (BENCHMARKS.md, "Browser
# bundle", has the history). Lower it when the bundle shrinks.
SIZE_LIMIT="${SIZE_LIMIT:-23000}"
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
# The wasm is built with a nightly toolchain when the machine has one (these machines do):
# it rebuilds the standard library for this build (-Zbuild-std) with panics that abort at
# once (-Cpanic=immediate-abort: no panic messages, no formatting code for them) and at
# opt-level "z", which is then the smaller one: 4.5 KB gzip less than stable's best
# (BENCHMARKS.md, "Browser bundle"). Without a nightly (CHAT_WASM_TOOLCHAIN=stable forces
# it) stable builds it, larger, and the stable limit applies.
TOOLCHAIN="${CHAT_WASM_TOOLCHAIN:-nightly}"
if [ "$TOOLCHAIN" != stable ] && ! { rustup run "$TOOLCHAIN" rustc -V >/dev/null 2>&1 \
    && rustup component add rust-src --toolchain "$TOOLCHAIN" >/dev/null 2>&1 \
    && rustup target add wasm32-unknown-unknown --toolchain "$TOOLCHAIN" >/dev/null 2>&1; }; then
  echo "warning: no usable $TOOLCHAIN toolchain (with rust-src and wasm32); building on stable, larger" >&2
  TOOLCHAIN=stable
fi
if [ "$TOOLCHAIN" = stable ]; then
  SIZE_LIMIT="${SIZE_LIMIT_STABLE:-27400}"
  echo "==> cargo build (stable, wasm32-unknown-unknown, wasm-release)"
  cargo build --manifest-path "$ROOT/Cargo.toml" -p chat-client --target wasm32-unknown-unknown --profile wasm-release
  WASM="$TARGET_DIR/wasm32-unknown-unknown/wasm-release/chat_client.wasm"
else
  echo "==> cargo +$TOOLCHAIN build -Zbuild-std (wasm32-unknown-unknown, wasm-release, panic=immediate-abort, opt-level z)"
  # -Zlocation-detail=none and -Zfmt-debug=none: no source paths, no `Debug` formatting code (the
  # wasm formats nothing with `{:?}`; only the native build's errors do): 250 B less. Without
  # reference types (on by default since Rust 1.82): the wasm holds no JS value, and without
  # them wasm-bindgen adds no externref table nor the glue that fills it: 136 B less.
  CARGO_PROFILE_WASM_RELEASE_OPT_LEVEL=z \
    RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none -Ctarget-feature=-reference-types" \
    cargo +"$TOOLCHAIN" build --manifest-path "$ROOT/Cargo.toml" -p chat-client --target wasm32-unknown-unknown \
    --profile wasm-release --target-dir "$TARGET_DIR/wasm-nightly" -Z build-std=std,panic_abort
  WASM="$TARGET_DIR/wasm-nightly/wasm32-unknown-unknown/wasm-release/chat_client.wasm"
fi

rm -rf dist
mkdir -p dist
echo "==> wasm-bindgen --target bundler (the glue only; src/index.ts loads the module)"
# The bundler target's glue without its one-line entry (which imports the .wasm as an ES module,
# something only some bundlers do): index.ts fetches, compiles and instantiates the module with the
# glue as its imports, which is 230 B gzip less than the web target's loader.
"$BINDGEN" --target bundler --remove-name-section --remove-producers-section --out-dir dist --out-name chat_sdk "$WASM"
mv dist/chat_sdk_bg.js dist/chat_sdk.js
echo 'export function __wbg_set_wasm(exports: WebAssembly.Exports): void;' >> dist/chat_sdk.d.ts
echo "==> wasm-opt -Oz (binaryen from npm; Debian's breaks the externref table)"
# -Oz, then GUFA (whole-program type facts: constants and dead paths it proves), then -Oz again:
# 90 B less than -Oz alone; the target_features section is for toolchains, not browsers (60 B).
node_modules/.bin/wasm-opt -Oz --gufa -Oz --strip-debug --strip-producers --strip-target-features --enable-bulk-memory --enable-reference-types --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals dist/chat_sdk_bg.wasm -o dist/chat_sdk_bg.wasm
echo "==> tsc (src/*.ts -> dist/*.js without comments, and dist/*.d.ts with their docs)"
node_modules/.bin/tsc -p tsconfig.json
node_modules/.bin/tsc -p tsconfig.json --declaration --emitDeclarationOnly --removeComments false

# What a browser downloads: two responses, each gzip -9: the wasm as built, and the JS as the
# app's bundler ships it: the entry point and everything it imports in one minified chunk
# (esbuild here, as Next.js's bundler would; chat-sdk/react is not counted: an app without React
# does not load it). This is how socket.io-client's 14.8 KB is counted (minified + gzip). The
# package ships the JS unminified, readable in the app's devtools.
wasm=$(wc -c < dist/chat_sdk_bg.wasm)
wasm_gz=$(gzip -9 < dist/chat_sdk_bg.wasm | wc -c)
js_gz=$(node_modules/.bin/esbuild --bundle --minify --format=esm --log-level=warning dist/index.js | gzip -9 | wc -c)
gz=$((wasm_gz + js_gz))
echo "chat-sdk ($TOOLCHAIN): wasm ${wasm} B raw, ${wasm_gz} B gzip -9; JS ${js_gz} B minified + gzip -9; together ${gz} B (limit ${SIZE_LIMIT} B)"
if [ "$gz" -gt "$SIZE_LIMIT" ]; then
  echo "error: the package grew past ${SIZE_LIMIT} B gzip" >&2
  exit 1
fi
