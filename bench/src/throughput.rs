//! `throughput`: pairs of users sending as fast as the server acks, for a fixed time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use chat_protocol::{ClientFrame, IdGenerator, ServerFrame, UserRef};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::env::{Env, next_frame, row_count};
use crate::stats::Receivers;

pub(crate) async fn throughput(env: Arc<Env>, pairs: u32, inflight: u32, seconds: u64) -> Result<serde_json::Value> {
    let before = row_count(&env).await?;
    let acked = Arc::new(AtomicU64::new(0));
    let receivers = Receivers::start(&env, pairs).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut senders = Vec::new();
    for i in 1..=pairs {
        let mut ws = env.connect(UserRef::teacher(i as i32)).await?;
        let env = env.clone();
        let acked = acked.clone();
        senders.push(tokio::spawn(async move {
            let mut ids = IdGenerator::new();
            let mut req = 0u32;
            let mut outstanding = 0u32;
            let mut send_one = |req: &mut u32| {
                *req += 1;
                let id = ids.next(env.unix_ms(), (u64::from(*req) ^ (u64::from(i) << 32) ^ env.salt).to_le_bytes());
                ClientFrame::Send {
                    req: *req,
                    id,
                    to: UserRef::student(i as i32),
                    content: format!("b:{}", env.micros()),
                }
            };
            for _ in 0..inflight {
                let frame = send_one(&mut req);
                ws.feed(Message::Binary(frame.encode()?.into())).await?;
                outstanding += 1;
            }
            ws.flush().await?;
            while outstanding > 0 {
                match next_frame(&mut ws).await? {
                    ServerFrame::Sent { .. } => {
                        acked.fetch_add(1, Ordering::Relaxed);
                        outstanding -= 1;
                        if Instant::now() < deadline {
                            let frame = send_one(&mut req);
                            ws.send(Message::Binary(frame.encode()?.into())).await?;
                            outstanding += 1;
                        }
                    }
                    ServerFrame::Error { code, message, .. } => bail!("send refused: {code} {message}"),
                    _ => {}
                }
            }
            anyhow::Ok(())
        }));
    }
    for s in senders {
        s.await??;
    }
    let send_elapsed = started.elapsed().as_secs_f64();
    let total = acked.load(Ordering::Relaxed);
    let delivered = receivers.finish(total).await;
    let stored = match (before, row_count(&env).await?) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    if let Some(stored) = stored
        && stored != total as i64
    {
        bail!("{total} acked but {stored} rows stored");
    }
    let counted = total.min(delivered);
    Ok(json!({
        "scenario": "throughput", "pairs": pairs, "inflight": inflight, "seconds": send_elapsed,
        "acked": total, "delivered": delivered, "stored": stored,
        "msgs_per_sec": counted as f64 / send_elapsed,
        "latency": receivers.latencies.summary().await,
    }))
}
