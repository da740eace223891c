//! The server under test as a real process: started, killed with SIGKILL, stopped with
//! SIGTERM, its memory read from `/proc`, its log kept for the panic check.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// One `chat-server serve` process, restartable on the same port and database.
pub struct Server {
    bin: PathBuf,
    env: Vec<(String, String)>,
    pub port: u16,
    log: PathBuf,
    child: Option<Child>,
    pub starts: u32,
}

impl Server {
    pub fn new(bin: PathBuf, port: u16, log: PathBuf, env: Vec<(String, String)>) -> Server {
        Server { bin, env, port, log, child: None, starts: 0 }
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the process and waits until `/healthz` answers.
    pub async fn start(&mut self, extra_args: &[&str]) -> Result<()> {
        let log = OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve")
            .args(extra_args)
            .env("SOCKET_PORT", self.port.to_string())
            .env("CHAT_HOST", "127.0.0.1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        self.starts += 1;
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = http.get(format!("{}/healthz", self.http_url())).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("the server exited at start ({status}); see {}", self.log.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("the server did not answer /healthz within 60 s; see {}", self.log.display())
    }

    /// `kill -9`: no shutdown, no flush, nothing.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM, then waits for the exit; returns how long the shutdown took.
    pub fn terminate(&mut self) -> Result<Duration> {
        let Some(mut child) = self.child.take() else { return Ok(Duration::ZERO) };
        let started = Instant::now();
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        child.wait()?;
        Ok(started.elapsed())
    }

    /// Whether the process is still running (it did not crash).
    pub fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
    }

    /// Panics the server logged, over every run so far.
    pub fn panics_logged(&self) -> usize {
        std::fs::read_to_string(&self.log).map_or(0, |log| log.matches("panicked").count())
    }

    /// `/readyz`'s status code, or 0 when the server does not answer.
    pub async fn ready_status(&self) -> u16 {
        match reqwest::get(format!("{}/readyz", self.http_url())).await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// A metric, summed over its labels.
    pub async fn metric(&self, name: &str) -> f64 {
        let Ok(r) = reqwest::get(format!("{}/metrics", self.http_url())).await else { return 0.0 };
        let text = r.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| {
                l.starts_with(name) && (name.ends_with(['{', ',']) || l[name.len()..].starts_with([' ', '{', ',', '}']))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .fold(0.0, |a, b| a + b)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port nobody listens on now.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
