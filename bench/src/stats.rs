//! Shared statistics: latency histograms, receivers that count and time deliveries, RSS.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chat_protocol::{ServerFrame, UserRef};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::Mutex;

use crate::env::{Env, Ws, next_frame};

pub(crate) struct Latencies(Mutex<Histogram<u64>>);

impl Latencies {
    pub(crate) fn new() -> Result<Self> {
        Ok(Latencies(Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?)))
    }
    pub(crate) async fn record(&self, micros: u64) {
        let _ = self.0.lock().await.record(micros.max(1));
    }
    pub(crate) async fn summary(&self) -> serde_json::Value {
        let h = self.0.lock().await;
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        json!({ "p50_ms": ms(0.5), "p95_ms": ms(0.95), "p99_ms": ms(0.99), "max_ms": h.max() as f64 / 1000.0, "count": h.len() })
    }
}

/// Reads a student's connection until `stop`, counting messages and recording latency.
pub(crate) fn spawn_receiver(
    env: Arc<Env>,
    mut ws: Ws,
    received: Arc<AtomicU64>,
    latencies: Arc<Latencies>,
    stop: Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.notified() => return,
                frame = next_frame(&mut ws) => match frame {
                    Ok(ServerFrame::Message { message } | ServerFrame::MessageAt { message, .. }) => {
                        if let Some(sent) = message.content.strip_prefix("b:").and_then(|t| t.parse::<u64>().ok()) {
                            latencies.record(env.micros().saturating_sub(sent)).await;
                        }
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                },
            }
        }
    })
}

/// Students 1..=pairs, each connection counting its messages and recording their latency.
pub(crate) struct Receivers {
    pub(crate) received: Arc<AtomicU64>,
    pub(crate) latencies: Arc<Latencies>,
    pub(crate) stop: Arc<tokio::sync::Notify>,
}

impl Receivers {
    pub(crate) async fn start(env: &Arc<Env>, pairs: u32) -> Result<Receivers> {
        let r = Receivers {
            received: Arc::new(AtomicU64::new(0)),
            latencies: Arc::new(Latencies::new()?),
            stop: Arc::new(tokio::sync::Notify::new()),
        };
        for i in 1..=pairs {
            let ws = env.connect_recipient(UserRef::student(i as i32)).await?;
            spawn_receiver(env.clone(), ws, r.received.clone(), r.latencies.clone(), r.stop.clone());
        }
        Ok(r)
    }

    /// Waits (at most 10 s) until `total` messages arrived, then stops the receivers.
    pub(crate) async fn finish(&self, total: u64) -> u64 {
        let until = Instant::now() + Duration::from_secs(10);
        while self.received.load(Ordering::Relaxed) < total && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop.notify_waiters();
        self.received.load(Ordering::Relaxed)
    }
}

pub(crate) fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
}
