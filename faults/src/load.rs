//! Real users through the real SDK (`chat-client`'s native transport): teacher/student pairs
//! sending at a steady rate, and the bookkeeping that decides "lost" and "duplicated".
//!
//! A message counts as acked when the sender's `send()` resolved (the server committed it).
//! It counts as delivered when the recipient's app saw it (live or caught up). At the end,
//! lost = acked but never delivered (or not in the database), duplicated = seen by the
//! recipient's app more than once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_client::core::{Event, Status, Timings};
use chat_client::native::{Client, TokenProvider};
use chat_protocol::{MessageId, UserRef};
use chat_server::auth::Auth;
use hdrhistogram::Histogram;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// The SDK's timings for the suite: the defaults, but reconnecting sooner (the suite
/// restarts servers many times and should not wait out a 30 s backoff cap).
pub fn timings() -> Timings {
    Timings { backoff_base: 200, backoff_cap: 2_000, ..Timings::default() }
}

pub fn provider(secret: &[u8], user: UserRef) -> TokenProvider {
    let auth = Auth::new(secret);
    Arc::new(move || {
        let now = chat_server::now_ms() / 1000;
        let token = auth.mint(user, now, now + 3600).map_err(|e| e.to_string());
        Box::pin(async move { token })
    })
}

#[derive(Default)]
struct Ledger {
    /// Acked ids, with their recipient and when the send was called.
    acked: HashMap<MessageId, (UserRef, Instant)>,
    /// Deliveries seen by each recipient's app, by id.
    delivered: HashMap<MessageId, u32>,
    /// When each id was first delivered.
    first_delivery: HashMap<MessageId, Instant>,
    /// Send start times by content tag, to time deliveries that arrive before the ack.
    started: HashMap<String, Instant>,
    failed: u64,
    /// Messages an attacker forged on the bus (their text starts `FORGED`) that reached an app.
    forged: u64,
}

/// Users, their clients and the ledger.
pub struct Load {
    pub clients: Vec<(UserRef, Client)>,
    ledger: Arc<Mutex<Ledger>>,
    changed: Arc<Notify>,
    stop: Arc<AtomicBool>,
    senders: JoinSet<()>,
    drains: JoinSet<()>,
    pub sent: Arc<AtomicU64>,
    ack_latency: Arc<Mutex<Histogram<u64>>>,
    delivery_latency: Arc<Mutex<Histogram<u64>>>,
}

/// What a run's ledger says.
#[derive(Debug, Clone, Copy)]
pub struct Tally {
    pub acked: u64,
    /// Acked messages that reached their recipient's app.
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub failed: u64,
    /// Forged messages (from the bus attacker) that reached an app: must stay 0.
    pub forged: u64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).unwrap_or_else(|_| Histogram::new(3).expect("a histogram"))
}

impl Load {
    /// Connects `pairs` teacher/student pairs (teacher i and student i) and waits until
    /// every client is open.
    pub async fn connect(url: &str, secret: &[u8], pairs: u32) -> anyhow::Result<Load> {
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let changed = Arc::new(Notify::new());
        let delivery_latency = Arc::new(Mutex::new(histogram()));
        let mut clients = Vec::new();
        let mut drains = JoinSet::new();
        for i in 1..=pairs {
            for user in [UserRef::teacher(i.try_into()?), UserRef::student(i.try_into()?)] {
                let (client, mut events) =
                    Client::start(url, provider(secret, user), timings()).map_err(|e| anyhow::anyhow!("{e}"))?;
                let ledger = Arc::clone(&ledger);
                let changed = Arc::clone(&changed);
                let latency = Arc::clone(&delivery_latency);
                drains.spawn(async move {
                    while let Some(event) = events.recv().await {
                        if let Event::Message { message, .. } = &event
                            && message.content.starts_with("FORGED")
                        {
                            ledger.lock().expect("ledger").forged += 1;
                        }
                        if let Event::Message { message, .. } = event
                            && message.to == user
                        {
                            let now = Instant::now();
                            let mut l = ledger.lock().expect("ledger");
                            *l.delivered.entry(message.id).or_default() += 1;
                            if let std::collections::hash_map::Entry::Vacant(e) = l.first_delivery.entry(message.id) {
                                e.insert(now);
                                if let Some(at) = l.started.get(&message.content) {
                                    let us = u64::try_from(now.duration_since(*at).as_micros()).unwrap_or(u64::MAX);
                                    let _ = latency.lock().expect("histogram").record(us.max(1));
                                }
                            }
                            drop(l);
                            changed.notify_waiters();
                        }
                    }
                });
                clients.push((user, client));
            }
        }
        for (_, c) in &clients {
            c.wait_for(Status::Open).await;
        }
        Ok(Load {
            clients,
            ledger,
            changed,
            stop: Arc::new(AtomicBool::new(false)),
            senders: JoinSet::new(),
            drains,
            sent: Arc::new(AtomicU64::new(0)),
            ack_latency: Arc::new(Mutex::new(histogram())),
            delivery_latency,
        })
    }

    /// Every teacher sends to its student (and every student back) at `per_user` messages a
    /// second, with up to `inflight` sends awaiting their ack, until [`Load::stop`].
    pub fn start_sending(&mut self, per_user: u32, inflight: usize, size: usize) {
        let period = Duration::from_secs_f64(1.0 / f64::from(per_user.max(1)));
        for (user, client) in self.clients.clone() {
            let peer = match user.role {
                chat_protocol::Role::Teacher => UserRef::student(user.id),
                chat_protocol::Role::Student => UserRef::teacher(user.id),
            };
            let ledger = Arc::clone(&self.ledger);
            let stop = Arc::clone(&self.stop);
            let sent = Arc::clone(&self.sent);
            let latency = Arc::clone(&self.ack_latency);
            let changed = Arc::clone(&self.changed);
            let pad = "·".repeat(size / 2);
            self.senders.spawn(async move {
                let slots = Arc::new(tokio::sync::Semaphore::new(inflight));
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut seq = 0u64;
                let mut pending = JoinSet::new();
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { break };
                    seq += 1;
                    let content = format!("{}:{}:{seq} {pad}", user.role.as_str(), user.id);
                    let started = Instant::now();
                    ledger.lock().expect("ledger").started.insert(content.clone(), started);
                    sent.fetch_add(1, Ordering::Relaxed);
                    let client = client.clone();
                    let ledger = Arc::clone(&ledger);
                    let latency = Arc::clone(&latency);
                    let changed = Arc::clone(&changed);
                    pending.spawn(async move {
                        let result = client.send(peer, content).await;
                        let mut l = ledger.lock().expect("ledger");
                        match result {
                            Ok(stored) => {
                                l.acked.insert(stored.id, (peer, started));
                                let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                                let _ = latency.lock().expect("histogram").record(us.max(1));
                            }
                            Err(_) => l.failed += 1,
                        }
                        drop(l);
                        changed.notify_waiters();
                        drop(slot);
                    });
                }
                // Every send made resolves: acked, or refused for good.
                while pending.join_next().await.is_some() {}
            });
        }
    }

    /// Stops sending and waits until every send made so far resolved.
    pub async fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        while self.senders.join_next().await.is_some() {}
    }

    /// Waits until every acked message has reached its recipient's app, or `limit` passed.
    pub async fn converge(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            if self.missing() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.missing() == 0;
            }
        }
    }

    fn missing(&self) -> usize {
        let l = self.ledger.lock().expect("ledger");
        l.acked.keys().filter(|id| !l.delivered.contains_key(id)).count()
    }

    pub fn acked_ids(&self) -> Vec<MessageId> {
        self.ledger.lock().expect("ledger").acked.keys().copied().collect()
    }

    pub fn tally(&self, stored_rows_of_acked: u64) -> Tally {
        let l = self.ledger.lock().expect("ledger");
        let acked = l.acked.len() as u64;
        let undelivered = l.acked.keys().filter(|id| !l.delivered.contains_key(id)).count() as u64;
        let unstored = acked.saturating_sub(stored_rows_of_acked);
        Tally {
            acked,
            delivered: l.acked.keys().filter(|id| l.delivered.contains_key(id)).count() as u64,
            lost: undelivered.max(unstored),
            duplicated: l.delivered.values().filter(|&&n| n > 1).count() as u64,
            failed: l.failed,
            forged: l.forged,
        }
    }

    /// Ack and delivery latency percentiles, in milliseconds: (p50, p99) each.
    pub fn latencies(&self) -> ((f64, f64), (f64, f64)) {
        let q = |h: &Histogram<u64>, p: f64| h.value_at_quantile(p) as f64 / 1000.0;
        let a = self.ack_latency.lock().expect("histogram");
        let d = self.delivery_latency.lock().expect("histogram");
        ((q(&a, 0.5), q(&a, 0.99)), (q(&d, 0.5), q(&d, 0.99)))
    }

    /// Whether every client is open again.
    pub async fn all_open(&self, limit: Duration) -> bool {
        let wait = async {
            for (_, c) in &self.clients {
                c.wait_for(Status::Open).await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    pub fn close(mut self) {
        for (_, c) in &self.clients {
            c.close();
        }
        self.drains.abort_all();
    }
}
