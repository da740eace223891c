// What the Playwright tests of this package share: Debian's Chromium, headless, and a tiny
// runner printing `test NAME ... ok|FAILED` lines and a cargo-style `test result:` line
// (which scripts/test.sh adds to the suite's total).
import { chromium } from "playwright-core";

const CHROMIUM = {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions"],
};

export function launchChromium() {
  return chromium.launch(CHROMIUM);
}

/** A browser on a profile directory that outlives it: closing and launching again is a browser restart. */
export function launchPersistent(profileDir) {
  return chromium.launchPersistentContext(profileDir, CHROMIUM);
}

export function runner(prefix = "") {
  let passed = 0;
  let failed = 0;
  return {
    async test(name, body) {
      try {
        await body();
        passed += 1;
        console.log(`test ${prefix}${name} ... ok`);
      } catch (e) {
        failed += 1;
        console.log(`test ${prefix}${name} ... FAILED\n${e?.stack ?? e}`);
      }
    },
    /** Prints the result line; returns the process exit code. */
    finish() {
      console.log(`test result: ${failed ? "FAILED" : "ok"}. ${passed} passed; ${failed} failed`);
      return failed ? 1 : 0;
    },
  };
}
