//! An attacker on the bus: a database login that LISTENs on the nodes' channel and NOTIFYs
//! what it likes there — the forged rows of the original finding (positions next to the
//! real ones and far past them), random blobs shaped like sealed payloads, and every real
//! payload it overheard, replayed and altered. Counts what it sent; the scenario checks that
//! none of it was believed (no forged message reaches an app, the node counts refusals) and
//! that nothing real was lost or repeated meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

/// The attacker's running task and its counts.
pub struct BusAttacker {
    stop: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<()>,
    /// Payloads published.
    pub sent: Arc<AtomicU64>,
    /// Real payloads overheard.
    pub overheard: Arc<AtomicU64>,
}

impl BusAttacker {
    /// Starts attacking the deployment on `db_url` (channel `chat_bus.public`); `users`: the
    /// ids forged messages name.
    pub async fn start(db_url: &str, users: i32) -> anyhow::Result<BusAttacker> {
        let pool = sqlx::PgPool::connect(db_url).await?;
        let mut listener = sqlx::postgres::PgListener::connect(db_url).await?;
        listener.listen("chat_bus.public").await?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let (sent, overheard) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (sent_count, heard_count) = (Arc::clone(&sent), Arc::clone(&overheard));
        let task = tokio::spawn(async move {
            let mut heard: Vec<String> = Vec::new();
            let mut round: u64 = 0;
            let notify = |payload: String| {
                let pool = pool.clone();
                async move { sqlx::query("SELECT pg_notify('chat_bus.public', $1)").bind(payload).execute(&pool).await }
            };
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    n = listener.recv() => {
                        if let Ok(n) = n && heard.len() < 1_000 {
                            heard.push(n.payload().to_owned());
                            heard_count.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                    () = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
                round += 1;
                let user = i32::try_from(round % u64::try_from(users.max(1)).unwrap_or(1)).unwrap_or(0) + 1;
                let head: i64 = sqlx::query_scalar("SELECT coalesce(max(pos), 0) FROM chat_log")
                    .fetch_one(&pool)
                    .await
                    .unwrap_or(0);
                let id = format!("0190f3c2-7d4e-7a1b-8c3d-{:012x}", round);
                let now = chat_server::now_ms();
                let mut payloads = vec![
                    format!(
                        r#"4242:[[{},"{id}","teacher",{user},"student",{user},"FORGED next",{now},false]]"#,
                        head + 1
                    ),
                    format!(
                        r#"4242:[[1000000000000,"{id}","teacher",{user},"student",{user},"FORGED far",{now},false]]"#
                    ),
                    {
                        let mut blob = vec![1u8];
                        blob.extend((0..200).map(|_| rand::random::<u8>()));
                        base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, &blob)
                    },
                ];
                if !heard.is_empty() {
                    let i = usize::try_from(round).unwrap_or(0) % heard.len();
                    payloads.push(heard[i].clone());
                    let mut bent = heard[i].clone().into_bytes();
                    if let Some(last) = bent.last_mut() {
                        *last = if *last == b'A' { b'B' } else { b'A' };
                    }
                    payloads.push(String::from_utf8(bent).unwrap_or_default());
                }
                for payload in payloads {
                    if notify(payload).await.is_ok() {
                        sent_count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        Ok(BusAttacker { stop, task, sent, overheard })
    }

    /// Stops attacking.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
