//! `idle`: many authenticated idle connections; the server's memory per connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use crate::env::{Env, hold_idle};
use crate::stats::rss_kib;

pub(crate) async fn idle(env: Arc<Env>, connections: u32, pid: u32) -> Result<serde_json::Value> {
    let before = rss_kib(pid)?;
    let started = Instant::now();
    let conns = hold_idle(&env, connections).await?;
    let opened = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid)?;
    let per_conn = (after.saturating_sub(before)) as f64 * 1024.0 / f64::from(connections);
    drop(conns);
    Ok(json!({
        "scenario": "idle", "connections": connections, "open_seconds": opened,
        "rss_before_kib": before, "rss_after_kib": after, "bytes_per_connection": per_conn,
    }))
}
