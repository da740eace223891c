#!/usr/bin/env bash
# Builds the npm packages of chat-server into npm/dist/*.tgz:
#   chat-server              the `chat-server` command (bin/chat-server.js), and the chat-sdk
#                            files `chat-server demo` serves (sdk/, from pkg/dist)
#   chat-server-linux-x64    the binary for Linux x86-64, static (musl), stripped
#   chat-server-linux-arm64  the same for Linux arm64
# All three carry the version of chat-sdk (pkg/package.json) and of the Rust workspace; the
# build stops if any differs.
#
# Usage: bash npm/build.sh [x64|arm64]...   (default: both)
# Installs what a fresh Debian machine lacks: the musl targets (rustup), musl-tools and the
# arm64 cross compiler (apt).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
ARCHES=("$@")
[ "${#ARCHES[@]}" -gt 0 ] || ARCHES=(x64 arm64)

echo "==> versions"
VERSION="$(node -p 'require("./pkg/package.json").version')"
CARGO_VERSION="$(awk -F'"' '/^\[workspace.package\]/ { f = 1 } f && /^version/ { print $2; exit }' Cargo.toml)"
node - "$VERSION" "$CARGO_VERSION" <<'JS'
const [version, cargo] = process.argv.slice(2);
const problems = [];
if (cargo !== version) problems.push(`Cargo.toml's workspace version is ${cargo}, chat-sdk's ${version}`);
for (const dir of ["chat-server", "chat-server-linux-x64", "chat-server-linux-arm64"]) {
  const pkg = require(`./npm/${dir}/package.json`);
  if (pkg.version !== version) problems.push(`npm/${dir} is version ${pkg.version}, chat-sdk ${version}`);
  for (const [name, wanted] of Object.entries(pkg.optionalDependencies ?? {})) {
    if (wanted !== version) problems.push(`npm/${dir} wants ${name}@${wanted}, not ${version}`);
  }
}
if (problems.length) {
  console.error(`error: the packages must all carry one version:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log(`chat-server, its platform packages and chat-sdk: ${version}`);
JS

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  echo "==> apt-get install $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

for arch in "${ARCHES[@]}"; do
  case "$arch" in
    x64)
      triple=x86_64-unknown-linux-musl
      need musl-gcc || apt_install musl-tools
      export CC_x86_64_unknown_linux_musl=musl-gcc
      ;;
    arm64)
      triple=aarch64-unknown-linux-musl
      need aarch64-linux-gnu-gcc || apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross
      # The C parts (ring, SQLite) compile with the cross gcc; Rust links with its own musl.
      # Its glibc headers would turn SQLite's large-file calls into open64/stat64..., which
      # musl does not have: on a 64-bit target plain open/stat are already 64-bit.
      export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
      export LIBSQLITE3_FLAGS="-DSQLITE_DISABLE_LFS"
      export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
      ;;
    *)
      echo "error: unknown platform '$arch' (x64 or arm64)" >&2
      exit 2
      ;;
  esac
  rustup target add "$triple" >/dev/null 2>&1
  echo "==> cargo build -p chat-server --profile dist --target $triple"
  cargo build -p chat-server --profile dist --target "$triple"
  install -D -m 0755 "$TARGET_DIR/$triple/dist/chat-server" "npm/chat-server-linux-$arch/bin/chat-server"
done

echo "==> the chat-sdk files for \`chat-server demo\`"
[ -f pkg/dist/chat_sdk_bg.wasm ] || bash pkg/build.sh
rm -rf npm/chat-server/sdk
mkdir -p npm/chat-server/sdk
cp pkg/dist/* npm/chat-server/sdk/

echo "==> npm pack"
rm -rf npm/dist
mkdir -p npm/dist
for dir in chat-server "${ARCHES[@]/#/chat-server-linux-}"; do
  (cd "npm/$dir" && npm pack --silent --pack-destination ../dist >/dev/null)
done
for arch in "${ARCHES[@]}"; do
  bytes=$(wc -c < "npm/chat-server-linux-$arch/bin/chat-server")
  packed=$(wc -c < "npm/dist/chat-server-linux-$arch-$VERSION.tgz")
  echo "chat-server-linux-$arch: binary $bytes B, package $packed B (npm/dist/chat-server-linux-$arch-$VERSION.tgz)"
done
echo "chat-server: package $(wc -c < "npm/dist/chat-server-$VERSION.tgz") B (npm/dist/chat-server-$VERSION.tgz)"
