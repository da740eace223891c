#!/usr/bin/env node
// chat-server: runs the prebuilt binary for this machine (from the chat-server-<os>-<cpu>
// package npm installed beside this one), or CHAT_SERVER_BIN, with the same arguments,
// environment and working directory, passing signals through and exiting as it exits.
"use strict";

const { spawn } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const PLATFORM_PACKAGES = {
  "linux-x64": "chat-server-linux-x64",
  "linux-arm64": "chat-server-linux-arm64",
};

function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

function binary() {
  const override = process.env.CHAT_SERVER_BIN;
  if (override) {
    if (!fs.existsSync(override)) fail(`CHAT_SERVER_BIN is ${override}, which does not exist.`);
    return override;
  }
  const key = `${process.platform}-${process.arch}`;
  const pkg = PLATFORM_PACKAGES[key];
  if (!pkg) {
    fail(
      `there is no prebuilt chat-server for ${process.platform} on ${process.arch} (only Linux x64 and arm64): ` +
        "build it from source with Rust (https://rustup.rs): `cargo install --path server` in a checkout of the " +
        "chat-server repository, then set CHAT_SERVER_BIN to the binary (~/.cargo/bin/chat-server).",
    );
  }
  let file;
  try {
    // Beside this package (an install from the registry), or in the project running it (a
    // package linked from a checkout, whose platform package the project installs itself).
    file = require.resolve(`${pkg}/bin/chat-server`, { paths: [__dirname, process.cwd()] });
  } catch {
    fail(
      `the package ${pkg}, which holds chat-server for ${key}, is not installed: install again without ` +
        "--no-optional / --omit=optional (npm install --save-dev chat-server), or set CHAT_SERVER_BIN to a chat-server binary.",
    );
  }
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    // Some installers drop the executable bit.
    fs.chmodSync(file, 0o755);
  }
  return file;
}

const env = { ...process.env };
// `chat-server demo` serves the chat-sdk package shipped here unless told otherwise.
const sdk = path.join(__dirname, "..", "sdk");
if (!env.CHAT_DEMO_SDK_DIR && fs.existsSync(path.join(sdk, "chat_sdk_bg.wasm"))) env.CHAT_DEMO_SDK_DIR = sdk;

const child = spawn(binary(), process.argv.slice(2), { stdio: "inherit", env });
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("error", (error) => fail(`cannot run chat-server: ${error.message}`));
child.on("exit", (code, signal) => {
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else {
    process.exit(code ?? 1);
  }
});
