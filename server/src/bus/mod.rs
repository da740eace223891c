//! The bus between the nodes of one deployment (`CHAT_BUS`): PostgreSQL LISTEN/NOTIFY on
//! the app's own database, or NATS.
//!
//! The bus is never the record of a message: messages are in the database, and every
//! node's feed ([`crate::feed`]) follows the message log in order. The bus carries
//! (a) a wake-up when the log moved, so other nodes deliver at once instead of at their
//! next poll; it carries the round's logged rows too when they are few enough (PostgreSQL:
//! the NOTIFY's 8,000 bytes; NATS: [`wake::MAX_CARRIED`]), which saves the other nodes reading
//! them back; and (b) what is not stored: typing, read receipts (their rows are stored,
//! the live notice is not), presence and the nodes' heartbeats.
//!
//! Nothing here has to be reliable for messages to be: a lost wake-up costs at most one
//! poll interval (or, when a later wake-up arrives first, one read of the log: the feed
//! never steps over a position), and after the bus reconnects a node re-reads the log and
//! asks every node for its online users again. A node that stops beating (killed, cut off)
//! is forgotten after the node timeout and its users go offline everywhere.
//!
//! Events are batched: whatever is queued when the publisher is free goes out as one
//! NOTIFY (PostgreSQL takes a database-wide lock per notifying commit) or one NATS message.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chat_protocol::{Cursor, ServerFrame, UserRef};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::feed::Feed;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::{Logged, PgStore, Store};

mod remote;
mod wake;
use remote::Remote;
use wake::{MAX_CARRIED, read_wake_up, wake_up};

/// A node's id: random per process, so a restarted node is a new node.
pub(crate) type NodeId = u64;

/// Where the bus runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusKind {
    /// LISTEN/NOTIFY on the app's PostgreSQL; the listening connection uses `listen_url`
    /// when set (a PgBouncer in transaction mode cannot carry LISTEN), else the pool's.
    Postgres {
        /// A direct URL for the listening connection.
        listen_url: Option<String>,
    },
    /// A NATS server (`nats://host:4222`).
    Nats {
        /// The server's URL.
        url: String,
    },
}

/// The bus settings of `serve`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusConfig {
    /// Which bus.
    pub kind: BusKind,
    /// How often a node says it is alive.
    pub beat: Duration,
    /// After how long without a heartbeat a node counts as gone (its users go offline).
    pub node_timeout: Duration,
}

impl BusConfig {
    /// Heartbeats every 2 s; a node silent for 6 s is gone, so a killed node's users show
    /// offline within 8 s.
    pub const DEFAULT_BEAT: Duration = Duration::from_secs(2);
    /// See [`BusConfig::DEFAULT_BEAT`].
    pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(6);

    /// Reads `CHAT_BUS`'s value: `postgres` (or `pg`), or a `nats://` URL.
    ///
    /// # Errors
    /// Any other value, with what to write instead.
    pub fn parse(value: &str, listen_url: Option<String>) -> Result<BusConfig, String> {
        let kind = match value.trim() {
            "postgres" | "postgresql" | "pg" => BusKind::Postgres { listen_url },
            v if v.starts_with("nats://") || v.starts_with("tls://") => BusKind::Nats { url: v.to_owned() },
            other => {
                return Err(format!(
                    "CHAT_BUS={other:?} is not a bus: use `postgres` (LISTEN/NOTIFY on DATABASE_URL) or a NATS URL \
                     such as nats://127.0.0.1:4222, or leave it unset for a single node"
                ));
            }
        };
        Ok(BusConfig { kind, beat: Self::DEFAULT_BEAT, node_timeout: Self::DEFAULT_NODE_TIMEOUT })
    }

    /// `postgres` or `nats`, for logs and `/healthz`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self.kind {
            BusKind::Postgres { .. } => "postgres",
            BusKind::Nats { .. } => "nats",
        }
    }
}

/// What nodes tell each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum BusEvent {
    /// These users are online on the sending node.
    Online(Vec<UserRef>),
    /// These users are no longer online on the sending node.
    Offline(Vec<UserRef>),
    /// The sending node (re)joined: every node answers with its online users.
    Hello,
    /// The sending node is alive.
    Beat,
    /// `from` started or stopped typing to `to`.
    Typing {
        /// Who types.
        from: UserRef,
        /// To whom.
        to: UserRef,
        /// Started or stopped.
        on: bool,
    },
    /// `reader` read what `peer` sent up to `up_to`.
    Read {
        /// Who read.
        reader: UserRef,
        /// Whose messages.
        peer: UserRef,
        /// Up to where.
        up_to: Cursor,
    },
    /// The message log moved (NATS; on PostgreSQL the sequencer's NOTIFY says it).
    Log,
    /// The message log moved: these rows (NATS; queued like [`BusEvent::Log`] and sent
    /// on the log subject, never in an envelope).
    Logged(Vec<Logged>),
    /// A user blocked someone or lifted a block: cached views of blocks are stale.
    Blocks,
    /// A message was edited or deleted: each node reads it and tells its connections.
    Changed {
        /// The message.
        id: chat_protocol::MessageId,
        /// Deleted rather than edited.
        deleted: bool,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    node: NodeId,
    events: Vec<BusEvent>,
}

/// Publishing events: cheap to clone, never blocks. Events beyond a full queue (the bus is
/// down and the queue filled) are dropped and counted: presence is re-sent on reconnect.
#[derive(Clone, Debug)]
pub(crate) struct BusSender {
    tx: mpsc::Sender<BusEvent>,
    metrics: Metrics,
}

impl BusSender {
    /// Queues an event for the other nodes.
    pub(crate) fn publish(&self, event: BusEvent) {
        if self.tx.try_send(event).is_err() {
            self.metrics.bus_dropped();
        }
    }
}

/// The queue of events waiting for the bus.
const QUEUE: usize = 65_536;
/// The largest payload of one NOTIFY or NATS message: PostgreSQL's limit is 8,000 bytes,
/// base64 takes 4 for 3.
const MAX_PAYLOAD: usize = 5_000;
/// How long a leaving node waits for the bus to take its last notices.
const LEAVE_BOUND: Duration = Duration::from_secs(2);
/// How many users one `Online` answer names (a few bytes each).
const USERS_PER_EVENT: usize = 500;

/// A bus being set up: its sender exists before the hub (which publishes presence through
/// it); [`PendingBus::start`] connects once the hub and the feed exist.
#[derive(Debug)]
pub(crate) struct PendingBus {
    config: BusConfig,
    node: NodeId,
    sender: BusSender,
    rx: mpsc::Receiver<BusEvent>,
}

/// The names this deployment's traffic uses: PostgreSQL channels, NATS subjects. Nodes of
/// one deployment share a database and schema; another schema or database is another
/// deployment and must not hear this one.
#[derive(Clone, Debug)]
struct Names {
    log: String,
    events: String,
}

impl Names {
    fn new(kind: &BusKind, database: &str, schema: &str) -> Names {
        match kind {
            BusKind::Postgres { .. } => {
                // LISTEN/NOTIFY are per database already; channel names are identifiers
                // (63 bytes at most).
                let cut = |s: String| s.chars().take(63).collect::<String>();
                Names { log: cut(format!("chat_log.{schema}")), events: cut(format!("chat_events.{schema}")) }
            }
            BusKind::Nats { .. } => {
                let token = |s: &str| {
                    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect::<String>()
                };
                let base = format!("chat.{}.{}", token(database), token(schema));
                Names { log: format!("{base}.log"), events: format!("{base}.events") }
            }
        }
    }
}

/// How the node reaches the bus.
#[derive(Clone, Debug)]
enum Transport {
    Postgres(PgPool),
    Nats(async_nats::Client),
}

impl Transport {
    async fn publish(&self, subject: &str, payload: Vec<u8>) -> Result<(), String> {
        match self {
            Transport::Postgres(pool) => {
                let text = base64::engine::general_purpose::STANDARD_NO_PAD.encode(payload);
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(subject)
                    .bind(text)
                    .execute(pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            Transport::Nats(client) => {
                client.publish(subject.to_owned(), payload.into()).await.map_err(|e| e.to_string())
            }
        }
    }
}

/// A running bus: what the feed needs to wake the other nodes.
#[derive(Clone, Debug)]
pub(crate) struct Bus {
    node: NodeId,
    /// Set when the sequencer's own NOTIFY wakes the other nodes (PostgreSQL).
    notify_channel: Option<String>,
    sender: BusSender,
}

impl Bus {
    /// The channel and payload the sequencer notifies on (PostgreSQL bus), if any.
    #[must_use]
    pub(crate) fn sequencer_notify(&self) -> Option<(&str, String)> {
        self.notify_channel.as_deref().map(|c| (c, self.node.to_string()))
    }

    /// Tells the other nodes the log moved, with `rows` (what this node's round logged,
    /// empty when unknown) when they fit (NATS; PostgreSQL's sequencer notifies itself).
    pub(crate) fn log_moved(&self, rows: &[Logged]) {
        if self.notify_channel.is_some() {
            return;
        }
        let size: usize = rows.iter().map(|(_, m)| m.encoded_len_bound() + 10).sum();
        if rows.is_empty() || size > MAX_CARRIED {
            self.sender.publish(BusEvent::Log);
        } else {
            self.sender.publish(BusEvent::Logged(rows.to_vec()));
        }
    }
}

impl PendingBus {
    /// A bus for this process, not yet connected.
    #[must_use]
    pub(crate) fn new(config: BusConfig, metrics: Metrics) -> PendingBus {
        let (tx, rx) = mpsc::channel(QUEUE);
        PendingBus { config, node: rand::random(), sender: BusSender { tx, metrics }, rx }
    }

    /// The sender the hub publishes presence through.
    #[must_use]
    pub(crate) fn sender(&self) -> BusSender {
        self.sender.clone()
    }

    /// Connects (listening before anything is published, so no wake-up is missed between)
    /// and starts the publisher, the listener and the heartbeat.
    ///
    /// # Errors
    /// The bus cannot be reached: a message that says which and how to fix it.
    pub(crate) async fn start(
        self,
        pool: PgPool,
        hub: Hub,
        feed: Feed,
        stop: CancellationToken,
    ) -> Result<(Bus, JoinHandle<()>), String> {
        let (database, schema): (String, String) =
            sqlx::query_as("SELECT current_database()::text, current_schema()::text")
                .fetch_one(&pool)
                .await
                .map_err(|e| format!("the bus could not read the database's name: {e}"))?;
        let names = Names::new(&self.config.kind, &database, &schema);
        // What the listener reads: an edited message, to tell this node's connections.
        let store = Store::Postgres(PgStore::new(pool.clone()));
        let (link_tx, link_rx) = mpsc::unbounded_channel::<bool>();
        let (transport, inbound) = match &self.config.kind {
            BusKind::Postgres { listen_url } => {
                let mut listener = match listen_url {
                    Some(url) => PgListener::connect(url).await,
                    None => PgListener::connect_with(&pool).await,
                }
                .map_err(|e| {
                    format!(
                        "CHAT_BUS=postgres: the listening connection failed ({e}); behind PgBouncer in transaction \
                         mode set CHAT_BUS_DATABASE_URL to a direct URL"
                    )
                })?;
                listener
                    .listen_all([names.log.as_str(), names.events.as_str()])
                    .await
                    .map_err(|e| format!("CHAT_BUS=postgres: LISTEN failed: {e}"))?;
                (Transport::Postgres(pool), Inbound::Postgres(listener))
            }
            BusKind::Nats { url } => {
                let tx = link_tx.clone();
                let client = async_nats::ConnectOptions::new()
                    .name("chat-server")
                    .retry_on_initial_connect()
                    .connection_timeout(Duration::from_secs(5))
                    .event_callback(move |event| {
                        let tx = tx.clone();
                        async move {
                            match event {
                                async_nats::Event::Connected => {
                                    let _ = tx.send(true);
                                }
                                async_nats::Event::Disconnected => {
                                    tracing::warn!("the NATS bus disconnected");
                                    let _ = tx.send(false);
                                }
                                other => tracing::debug!(event = %other, "NATS"),
                            }
                        }
                    })
                    .connect(url.as_str())
                    .await
                    .map_err(|e| format!("CHAT_BUS={url}: cannot connect to NATS ({e}); is nats-server running?"))?;
                let log = client
                    .subscribe(names.log.clone())
                    .await
                    .map_err(|e| format!("CHAT_BUS={url}: subscribing failed: {e}"))?;
                let events = client
                    .subscribe(names.events.clone())
                    .await
                    .map_err(|e| format!("CHAT_BUS={url}: subscribing failed: {e}"))?;
                client.flush().await.map_err(|e| format!("CHAT_BUS={url}: {e}"))?;
                (Transport::Nats(client), Inbound::Nats { log, events })
            }
        };
        let notify_channel = matches!(self.config.kind, BusKind::Postgres { .. }).then(|| names.log.clone());
        let bus = Bus { node: self.node, notify_channel, sender: self.sender.clone() };
        let remote = Arc::new(std::sync::Mutex::new(Remote::default()));
        let node = self.node;
        let leaving = CancellationToken::new();
        let publisher = tokio::spawn(publish_loop(
            self.rx,
            transport,
            names.clone(),
            node,
            self.sender.metrics.clone(),
            leaving.clone(),
        ));
        // Ask who is online elsewhere, and say who is online here (nobody yet at start).
        self.sender.publish(BusEvent::Hello);
        let connected = Arc::new(AtomicBool::new(true));
        let listener = tokio::spawn(listen_loop(
            inbound,
            link_rx,
            names,
            node,
            hub.clone(),
            feed,
            self.sender.clone(),
            Arc::clone(&remote),
            store,
            Arc::clone(&connected),
        ));
        let metrics = self.sender.metrics.clone();
        let beat = self.config.beat;
        let timeout = self.config.node_timeout;
        let sender = self.sender.clone();
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(beat);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = every.tick() => {}
                }
                sender.publish(BusEvent::Beat);
                // Cut off from the bus, we hear nobody: their silence is ours, so their
                // users stay as they were until we are back (then each gets a full timeout).
                let up = connected.load(Ordering::Acquire);
                let (gone, nodes) = crate::hub::with_lock(&remote, |r| {
                    let gone = if up { r.forget_silent(timeout, Instant::now()) } else { Vec::new() };
                    (gone, r.len())
                });
                metrics.bus_state(up, nodes);
                for user in gone {
                    hub.set_remote(user, false);
                }
            }
            // Leaving: the others learn at once that this node's users are gone from it
            // (instead of after the node timeout). Best effort.
            let users = hub.local_online();
            for chunk in users.chunks(USERS_PER_EVENT) {
                sender.publish(BusEvent::Offline(chunk.to_vec()));
            }
            // The publisher sends what is queued (these included), then ends; bounded, as a
            // bus that stopped answering must not hold the shutdown.
            leaving.cancel();
            if tokio::time::timeout(LEAVE_BOUND, publisher).await.is_err() {
                tracing::warn!("the bus did not take the leaving notices in time; the others time this node out");
            }
            listener.abort();
        });
        tracing::info!(bus = self.config.name(), node = format!("{node:016x}"), "joined the bus");
        Ok((bus, task))
    }
}

enum Inbound {
    Postgres(PgListener),
    Nats { log: async_nats::Subscriber, events: async_nats::Subscriber },
}

/// Publishes queued events in batches until `leaving`; then publishes what is still queued
/// and ends.
async fn publish_loop(
    mut rx: mpsc::Receiver<BusEvent>,
    transport: Transport,
    names: Names,
    node: NodeId,
    metrics: Metrics,
    leaving: CancellationToken,
) {
    let mut queued = Vec::with_capacity(256);
    loop {
        let received = tokio::select! {
            n = rx.recv_many(&mut queued, 256) => n,
            () = leaving.cancelled(), if !rx.is_closed() => {
                // Take no more; what is buffered is still received, then recv_many says 0.
                rx.close();
                continue;
            }
        };
        if received == 0 {
            return;
        }
        if let Some(payload) = wake_up(node, &mut queued) {
            match transport.publish(&names.log, payload).await {
                Ok(()) => metrics.bus_published("wakeup"),
                Err(e) => tracing::warn!(error = %e, "the bus refused a wake-up"),
            }
        }
        for payload in envelopes(node, std::mem::take(&mut queued)) {
            match transport.publish(&names.events, payload).await {
                Ok(()) => metrics.bus_published("events"),
                Err(e) => {
                    tracing::warn!(error = %e, "the bus refused events; they are lost (presence is re-sent on reconnect)");
                }
            }
        }
    }
}

/// Packs events into envelopes of at most [`MAX_PAYLOAD`] encoded bytes.
fn envelopes(node: NodeId, events: Vec<BusEvent>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut current = Envelope { node, events: Vec::new() };
    for event in events {
        current.events.push(event);
        let size = postcard::to_allocvec(&current).map_or(usize::MAX, |b| b.len());
        if size > MAX_PAYLOAD && current.events.len() > 1 {
            let last = current.events.pop();
            out.extend(postcard::to_allocvec(&current).ok());
            current.events = last.into_iter().collect();
        }
    }
    if !current.events.is_empty() {
        out.extend(postcard::to_allocvec(&current).ok());
    }
    out
}

#[allow(clippy::too_many_arguments)]
async fn listen_loop(
    mut inbound: Inbound,
    mut link: mpsc::UnboundedReceiver<bool>,
    names: Names,
    node: NodeId,
    hub: Hub,
    feed: Feed,
    sender: BusSender,
    remote: Arc<std::sync::Mutex<Remote>>,
    store: Store,
    connected: Arc<AtomicBool>,
) {
    // Back on the bus after an outage: whatever was said meanwhile is gone, so catch up as a
    // new node would (re-read the log, ask every node for its users), and give every node a
    // full timeout to be heard again.
    let back = || {
        if !connected.swap(true, Ordering::AcqRel) {
            tracing::warn!("back on the bus; re-reading the log and presence");
            crate::hub::with_lock(&remote, |r| r.refresh(Instant::now()));
            feed.wake();
            // A block made elsewhere meanwhile was not heard.
            hub.blocks_changed();
            sender.publish(BusEvent::Hello);
        }
    };
    let lost = || {
        if connected.swap(false, Ordering::AcqRel) {
            tracing::warn!("cut off from the bus; messages still flow (the feed polls the log)");
        }
    };
    loop {
        let (subject, payload): (String, Vec<u8>) = match &mut inbound {
            Inbound::Postgres(listener) => match listener.try_recv().await {
                Ok(Some(n)) => {
                    // The first notification after a loss (our own heartbeat comes back
                    // within a beat) says the listening connection is back.
                    back();
                    (n.channel().to_owned(), n.payload().as_bytes().to_vec())
                }
                Ok(None) => {
                    // The connection was lost; sqlx reconnects on the next call.
                    lost();
                    continue;
                }
                Err(e) => {
                    lost();
                    tracing::warn!(error = %e, "the PostgreSQL bus is down; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            },
            Inbound::Nats { log, events } => {
                tokio::select! {
                    m = log.next() => match m {
                        Some(m) => (m.subject.to_string(), m.payload.to_vec()),
                        None => return,
                    },
                    m = events.next() => match m {
                        Some(m) => (m.subject.to_string(), m.payload.to_vec()),
                        None => return,
                    },
                    up = link.recv() => {
                        match up {
                            None => return,
                            Some(true) => back(),
                            Some(false) => lost(),
                        }
                        continue;
                    }
                }
            }
        };
        if subject == names.log {
            // A wake-up; our own are skipped (we delivered those already).
            match read_wake_up(&payload, matches!(inbound, Inbound::Postgres(_))) {
                (Some(from), _) if from == node => {}
                (_, Some(rows)) if !rows.is_empty() => feed.offer(rows),
                _ => feed.wake(),
            }
            continue;
        }
        let bytes = match &inbound {
            Inbound::Postgres(_) => match base64::engine::general_purpose::STANDARD_NO_PAD.decode(&payload) {
                Ok(b) => b,
                Err(_) => continue,
            },
            Inbound::Nats { .. } => payload,
        };
        let Ok(envelope) = postcard::from_bytes::<Envelope>(&bytes) else {
            tracing::warn!("an unreadable bus message was ignored (a node of another version?)");
            continue;
        };
        if envelope.node == node {
            continue;
        }
        let from = envelope.node;
        if crate::hub::with_lock(&remote, |r| r.heard(from, Instant::now())) {
            // A node we did not know (it started, or we missed its hello): ask everyone.
            sender.publish(BusEvent::Hello);
        }
        for event in envelope.events {
            apply(event, from, &hub, &feed, &sender, &remote, &store);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn apply(
    event: BusEvent,
    from: NodeId,
    hub: &Hub,
    feed: &Feed,
    sender: &BusSender,
    remote: &std::sync::Mutex<Remote>,
    store: &Store,
) {
    match event {
        BusEvent::Online(users) | BusEvent::Offline(users) if users.is_empty() => {}
        BusEvent::Online(users) => {
            for (user, online) in crate::hub::with_lock(remote, |r| r.set(from, &users, true)) {
                hub.set_remote(user, online);
            }
        }
        BusEvent::Offline(users) => {
            for (user, online) in crate::hub::with_lock(remote, |r| r.set(from, &users, false)) {
                hub.set_remote(user, online);
            }
        }
        BusEvent::Hello => {
            let users = hub.local_online();
            for chunk in users.chunks(USERS_PER_EVENT) {
                sender.publish(BusEvent::Online(chunk.to_vec()));
            }
        }
        BusEvent::Beat => {}
        BusEvent::Typing { from, to, on } => {
            hub.deliver(&ServerFrame::Typing { from, on }, &[(to, None)]);
        }
        BusEvent::Read { reader, peer, up_to } => {
            hub.deliver(&ServerFrame::Read { reader, peer, up_to }, &[(peer, None), (reader, None)]);
        }
        BusEvent::Log => feed.wake(),
        BusEvent::Logged(rows) => feed.offer(rows),
        BusEvent::Blocks => hub.blocks_changed(),
        BusEvent::Changed { id, deleted } => {
            let (hub, store) = (hub.clone(), store.clone());
            tokio::spawn(async move {
                match store.message_by_id(id).await {
                    Ok(Some(message)) => {
                        let targets = [(message.to, None), (message.from, None)];
                        hub.deliver(&ServerFrame::Changed { message, deleted }, &targets);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "an edited message could not be read for delivery"),
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn envelopes_stay_under_the_payload_limit_and_keep_every_event() {
        let users: Vec<UserRef> = (0..5_000).map(UserRef::student).collect();
        let events: Vec<BusEvent> = users.chunks(USERS_PER_EVENT).map(|c| BusEvent::Online(c.to_vec())).collect();
        let packed = envelopes(7, events.clone());
        assert!(packed.len() > 1);
        let mut back = Vec::new();
        for p in &packed {
            assert!(p.len() <= MAX_PAYLOAD, "{}", p.len());
            let e: Envelope = postcard::from_bytes(p).unwrap();
            assert_eq!(e.node, 7);
            back.extend(e.events);
        }
        assert_eq!(back, events);
        // base64 of the largest payload fits PostgreSQL's 8,000-byte NOTIFY limit.
        assert!(MAX_PAYLOAD.div_ceil(3) * 4 < 8_000);
    }
}
