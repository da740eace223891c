//! `latency`: a fixed send rate among many idle connections; delivery latency percentiles.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use chat_protocol::{ClientFrame, IdGenerator, ServerFrame, UserRef};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::env::{Env, hold_idle, keep_alive};
use crate::stats::Receivers;

pub(crate) async fn latency(
    env: Arc<Env>,
    rate: u32,
    pairs: u32,
    idle: u32,
    seconds: u64,
) -> Result<serde_json::Value> {
    let idle_conns = hold_idle(&env, idle).await?;
    let idle_task = keep_alive(idle_conns);
    let receivers = Receivers::start(&env, pairs).await?;
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for i in 1..=pairs {
        let ws = env.connect(UserRef::teacher(i as i32)).await?;
        let (sink, mut stream) = ws.split();
        let (acked, errors) = (acked.clone(), errors.clone());
        tokio::spawn(async move {
            while let Some(Ok(Message::Binary(b))) = stream.next().await {
                match ServerFrame::decode(&b) {
                    Ok(ServerFrame::Sent { .. }) => acked.fetch_add(1, Ordering::Relaxed),
                    Ok(ServerFrame::Error { .. }) => errors.fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
            }
        });
        senders.push(sink);
    }
    let total = u64::from(rate) * seconds;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let started = tokio::time::Instant::now();
    let mut ids = IdGenerator::new();
    for n in 0..total {
        tokio::time::sleep_until(started + interval * n as u32).await;
        let i = (n % u64::from(pairs)) as usize;
        let id = ids.next(env.unix_ms(), (n ^ env.salt).to_le_bytes());
        let frame = ClientFrame::Send {
            req: n as u32 + 1,
            id,
            to: UserRef::student(i as i32 + 1),
            content: format!("b:{}", env.micros()),
        };
        senders[i].send(Message::Binary(frame.encode()?.into())).await?;
    }
    let delivered = receivers.finish(total).await;
    // Acks travel on other connections than deliveries: wait for the last ones too.
    let until = Instant::now() + Duration::from_secs(10);
    while acked.load(Ordering::Relaxed) + errors.load(Ordering::Relaxed) < total && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    idle_task.abort();
    Ok(json!({
        "scenario": "latency", "rate": rate, "pairs": pairs, "idle": idle, "sent": total,
        "acked": acked.load(Ordering::Relaxed), "errors": errors.load(Ordering::Relaxed),
        "delivered": delivered, "latency": receivers.latencies.summary().await,
    }))
}
