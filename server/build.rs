//! Records the git commit the binary is built from, for `chat-server --version` and
//! `/healthz`: `CHAT_BUILD_COMMIT` if set (a packager's override), else `git rev-parse`,
//! else "unknown" (a build outside a checkout).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CHAT_BUILD_COMMIT");
    // A new commit moves HEAD (a branch switch) or the branch's ref (a commit on it).
    for path in ["../.git/HEAD", "../.git/refs/heads", "../.git/packed-refs"] {
        println!("cargo:rerun-if-changed={path}");
    }
    let commit = std::env::var("CHAT_BUILD_COMMIT").ok().filter(|c| !c.trim().is_empty()).or_else(|| {
        let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
    println!("cargo:rustc-env=CHAT_BUILD_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
}
