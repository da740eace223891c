//! The bus between the nodes of one deployment (`CHAT_BUS`): PostgreSQL LISTEN/NOTIFY on
//! the app's own database, or NATS.
//!
//! The bus is never the record of a message: messages are in the database, and every
//! node's feed ([`crate::delivery::feed`]) follows the message log in order. The bus carries
//! (a) a wake-up when the log moved, so other nodes deliver at once instead of at their
//! next poll; it carries the round's logged rows too when they are few enough to fit one
//! payload, which saves the other nodes reading them back; and (b) what is not stored:
//! typing, read receipts (their rows are stored, the live notice is not), presence and the
//! nodes' heartbeats.
//!
//! **The bus is a trust boundary.** Anyone who can log in to the database can LISTEN and
//! NOTIFY on any channel, and anyone who reaches an open NATS server can publish and
//! subscribe. So every payload is sealed under the deployment's cluster key
//! ([`seal`]: encrypted and authenticated, with the sender's sequence number and time), and
//! a payload that does not open, is stale or was heard before is counted and ignored.
//! Nothing a node hears is trusted further than that: a carried log position is a hint
//! the feed checks against the log, and what a node keeps of the others (their users,
//! the nodes themselves) is bounded.
//!
//! Nothing here has to be reliable for messages to be: a lost wake-up costs at most one
//! poll interval (or, when a later wake-up arrives first, one read of the log: the feed
//! never steps over a position), and after the bus reconnects a node re-reads the log and
//! asks every node for its online users again. A node that stops beating (killed, cut off)
//! is forgotten after the node timeout and its users go offline everywhere.
//!
//! Events are batched: whatever is queued when the publisher is free goes out as one
//! NOTIFY (PostgreSQL takes a database-wide lock per notifying commit) or one NATS message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::delivery::feed::Feed;
use crate::delivery::hub::Hub;
pub(crate) use crate::delivery::notice::{Bus, BusEvent, BusSender};
use crate::delivery::with_lock;
use crate::metrics::Metrics;
use crate::store::{PgDb, Store};

mod listen;
mod nats;
mod publish;
mod remote;
pub(crate) mod seal;
use listen::{Inbound, Listener};
pub use nats::NatsAuth;
use publish::{Sealer, Transport, publish_loop};
use remote::Remote;
pub use seal::BusKeys;
use seal::Replay;

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
    /// A NATS server (`nats://host:4222` or `tls://host:4222`).
    Nats {
        /// The server's URL, without credentials.
        url: String,
        /// How this node proves who it is to NATS, and its TLS settings.
        auth: NatsAuth,
    },
}

/// The bus settings of `serve`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusConfig {
    /// Which bus.
    pub kind: BusKind,
    /// The cluster keys every payload is sealed and opened with (`CHAT_BUS_KEY`).
    pub keys: BusKeys,
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

    /// Reads `CHAT_BUS`'s value: `postgres` (or `pg`), or a `nats://` or `tls://` URL (which
    /// may carry `user:password@` or `token@`; `auth` holds the other NATS settings).
    ///
    /// # Errors
    /// Any other value, with what to write instead.
    pub fn parse(value: &str, listen_url: Option<String>, keys: BusKeys, auth: NatsAuth) -> Result<BusConfig, String> {
        let kind = match value.trim() {
            "postgres" | "postgresql" | "pg" => BusKind::Postgres { listen_url },
            v if v.starts_with("nats://") || v.starts_with("tls://") => {
                let (url, auth) = auth.with_url(v)?;
                BusKind::Nats { url, auth }
            }
            other => {
                return Err(format!(
                    "CHAT_BUS={other:?} is not a bus: use `postgres` (LISTEN/NOTIFY on DATABASE_URL) or a NATS URL \
                     such as nats://127.0.0.1:4222, or leave it unset for a single node"
                ));
            }
        };
        Ok(BusConfig { kind, keys, beat: Self::DEFAULT_BEAT, node_timeout: Self::DEFAULT_NODE_TIMEOUT })
    }

    /// `postgres` or `nats`, for logs and `/healthz`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self.kind {
            BusKind::Postgres { .. } => "postgres",
            BusKind::Nats { .. } => "nats",
        }
    }

    /// The most body bytes one payload carries: PostgreSQL's NOTIFY takes 8,000 bytes of
    /// text (base64 takes 4 for 3, sealing adds [`seal::OVERHEAD`]); NATS takes 1 MB by
    /// default.
    fn max_body(&self) -> usize {
        match self.kind {
            BusKind::Postgres { .. } => MAX_NOTIFY_BODY,
            BusKind::Nats { .. } => MAX_NATS_BODY,
        }
    }
}

/// The body of one NOTIFY at most: sealed and in base64 it stays under 8,000 bytes.
const MAX_NOTIFY_BODY: usize = 5_000;
/// The body of one NATS message at most.
const MAX_NATS_BODY: usize = 256 * 1024;
const _: () = assert!((MAX_NOTIFY_BODY + seal::OVERHEAD).div_ceil(3) * 4 < 8_000);

/// Whether this node hears the bus, and what is wrong when it does not: `/readyz` says it.
#[derive(Clone, Debug, Default)]
pub(crate) struct BusHealth {
    inner: Arc<HealthInner>,
}

#[derive(Debug, Default)]
struct HealthInner {
    up: AtomicBool,
    problem: Mutex<Option<String>>,
}

impl BusHealth {
    /// Whether the bus is connected.
    pub(crate) fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Acquire)
    }

    /// What is wrong, if something is.
    pub(crate) fn problem(&self) -> Option<String> {
        with_lock(&self.inner.problem, |p| p.clone())
    }

    /// Connected (true) or cut off (false); returns whether that changed.
    fn set_up(&self, up: bool) -> bool {
        let was = self.inner.up.swap(up, Ordering::AcqRel);
        if up {
            with_lock(&self.inner.problem, |p| *p = None);
        }
        was != up
    }

    /// Records what is wrong (logged once per distinct problem).
    fn set_problem(&self, problem: String) {
        let new = with_lock(&self.inner.problem, |p| {
            let new = p.as_deref() != Some(problem.as_str());
            *p = Some(problem.clone());
            new
        });
        if new {
            tracing::error!("{problem}");
        }
    }
}

/// The queue of events waiting for the bus.
const QUEUE: usize = 65_536;
/// How long a leaving node waits for the bus to take its last notices.
const LEAVE_BOUND: Duration = Duration::from_secs(2);
/// How many users one `Online` answer names (a few bytes each).
pub(super) const USERS_PER_EVENT: usize = 500;
/// How long the start waits for NATS to answer before serving anyway (`/readyz` then says
/// the bus is down until it answers).
const NATS_START_WAIT: Duration = Duration::from_secs(5);

/// A bus being set up: its sender exists before the hub (which publishes presence through
/// it); [`PendingBus::start`] connects once the hub and the feed exist.
#[derive(Debug)]
pub(crate) struct PendingBus {
    config: BusConfig,
    node: NodeId,
    sender: BusSender,
    rx: mpsc::Receiver<BusEvent>,
    health: BusHealth,
}

/// The channel (PostgreSQL) or subject (NATS) this deployment's traffic uses. Nodes of one
/// deployment share a database and schema; another schema or database is another
/// deployment and must not hear this one (the name is also sealed into every payload).
fn channel_name(kind: &BusKind, database: &str, schema: &str) -> String {
    match kind {
        // LISTEN/NOTIFY are per database already; channel names are identifiers (63 bytes
        // at most).
        BusKind::Postgres { .. } => format!("chat_bus.{schema}").chars().take(63).collect(),
        BusKind::Nats { .. } => {
            let token = |s: &str| {
                s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect::<String>()
            };
            format!("chat.{}.{}.bus", token(database), token(schema))
        }
    }
}

/// How long the start waits to hear its own probe notification.
const PROBE_WAIT: Duration = Duration::from_secs(10);

/// Checks that the listening connection hears a notification sent through the pool: a
/// transaction-pooling PgBouncer between (without CHAT_BUS_DATABASE_URL) takes LISTEN and
/// then hands the connection to whoever comes next, and the node would never hear the others.
async fn hears_itself(listener: &mut PgListener, pool: &PgDb) -> Result<(), String> {
    let probe = format!("chat_probe_{:016x}", rand::random::<u64>());
    let deaf = |why: String| {
        format!(
            "CHAT_BUS=postgres: the listening connection does not hear notifications ({why}). Is a \
             transaction-pooling PgBouncer between this node and PostgreSQL? Set CHAT_BUS_DATABASE_URL to a direct \
             URL of the same database, or use CHAT_BUS=nats://..."
        )
    };
    listener.listen(&probe).await.map_err(|e| deaf(e.to_string()))?;
    sqlx::query("SELECT pg_notify($1, 'probe')")
        .bind(&probe)
        .execute(pool)
        .await
        // (Through such a pooler the notification may even come back on the pool's own
        // connection, which then fails the statement.)
        .map_err(|e| deaf(format!("its probe could not be sent: {e}")))?;
    let heard = tokio::time::timeout(PROBE_WAIT, async {
        loop {
            match listener.recv().await {
                Ok(n) if n.channel() == probe => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await;
    match heard {
        Ok(Ok(())) => listener.unlisten(&probe).await.map_err(|e| deaf(e.to_string())),
        Ok(Err(e)) => Err(deaf(e)),
        Err(_) => Err(deaf(format!("its own probe did not arrive within {} s", PROBE_WAIT.as_secs()))),
    }
}

impl PendingBus {
    /// A bus for this process, not yet connected.
    #[must_use]
    pub(crate) fn new(config: BusConfig, metrics: Metrics) -> PendingBus {
        let (tx, rx) = mpsc::channel(QUEUE);
        PendingBus {
            config,
            node: rand::random(),
            sender: BusSender::new(tx, metrics),
            rx,
            health: BusHealth::default(),
        }
    }

    /// The sender the hub publishes presence through.
    #[must_use]
    pub(crate) fn sender(&self) -> BusSender {
        self.sender.clone()
    }

    /// Whether the bus is up, for `/readyz`.
    #[must_use]
    pub(crate) fn health(&self) -> BusHealth {
        self.health.clone()
    }

    /// Connects (listening before anything is published, so no wake-up is missed between)
    /// and starts the publisher, the listener and the heartbeat. A NATS server that does not
    /// answer (or refuses this node's credentials) does not hold the start: the node serves,
    /// delivers by polling the log, and `/readyz` says the bus is down until it connects.
    ///
    /// # Errors
    /// The PostgreSQL bus cannot listen: a message that says which and how to fix it.
    pub(crate) async fn start(
        self,
        store: Store,
        hub: Hub,
        feed: Feed,
        stop: CancellationToken,
    ) -> Result<(Bus, JoinHandle<()>), String> {
        let pool: PgDb = store.postgres().cloned().ok_or("CHAT_BUS needs PostgreSQL: SQLite serves a single node")?;
        let (database, schema): (String, String) =
            sqlx::query_as("SELECT current_database()::text, current_schema()::text")
                .fetch_one(&pool)
                .await
                .map_err(|e| format!("the bus could not read the database's name: {e}"))?;
        let channel = channel_name(&self.config.kind, &database, &schema);
        let (link_tx, link_rx) = mpsc::unbounded_channel::<bool>();
        let health = self.health.clone();
        let (transport, inbound) = match &self.config.kind {
            BusKind::Postgres { listen_url } => {
                let mut listener = match listen_url {
                    Some(url) => PgListener::connect(url).await,
                    None => PgListener::connect_with(pool.pool()).await,
                }
                .map_err(|e| {
                    format!(
                        "CHAT_BUS=postgres: the listening connection failed ({e}); behind PgBouncer in transaction \
                         mode set CHAT_BUS_DATABASE_URL to a direct URL"
                    )
                })?;
                // The probe first: the connection's last statement is then the LISTEN that
                // matters (what an operator sees in pg_stat_activity).
                hears_itself(&mut listener, &pool).await?;
                listener.listen(&channel).await.map_err(|e| format!("CHAT_BUS=postgres: LISTEN failed: {e}"))?;
                health.set_up(true);
                (Transport::Postgres(pool), Inbound::Postgres(listener))
            }
            BusKind::Nats { url, auth } => {
                let (client, subscriber) = nats::connect(url, auth, &channel, link_tx.clone(), health.clone()).await?;
                if let Ok(Ok(())) = tokio::time::timeout(NATS_START_WAIT, client.flush()).await {
                    health.set_up(true);
                } else {
                    tracing::warn!(
                        url,
                        "NATS has not answered yet; serving anyway (messages still flow: the feed polls the log), \
                         /readyz says the bus is down until it does"
                    );
                }
                (Transport::Nats(client), Inbound::Nats(subscriber))
            }
        };
        let bus = Bus::new(self.sender.clone(), self.config.max_body());
        let remote = Arc::new(Mutex::new(Remote::default()));
        let node = self.node;
        let leaving = CancellationToken::new();
        let keys = self.config.keys.clone();
        let publisher = tokio::spawn(publish_loop(
            self.rx,
            transport,
            channel.clone(),
            Sealer { keys: keys.clone(), node, seq: 0 },
            self.config.max_body(),
            self.sender.metrics().clone(),
            leaving.clone(),
        ));
        // Ask who is online elsewhere, and say who is online here (nobody yet at start).
        self.sender.publish(BusEvent::Hello);
        let listener = tokio::spawn(
            Listener {
                channel,
                keys,
                node,
                replay: Replay::default(),
                hub: hub.clone(),
                feed,
                sender: self.sender.clone(),
                remote: Arc::clone(&remote),
                store,
                health: health.clone(),
                metrics: self.sender.metrics().clone(),
                warned: std::collections::HashMap::new(),
            }
            .run(inbound, link_rx),
        );
        let metrics = self.sender.metrics().clone();
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
                let up = health.is_up();
                let (gone, nodes) = with_lock(&remote, |r| {
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
        tracing::info!(
            bus = self.config.name(),
            node = format!("{node:016x}"),
            key = self.config.keys.ids().first().map_or("", String::as_str),
            "joined the bus"
        );
        Ok((bus, task))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use chat_protocol::UserRef;

    use super::publish::bodies;
    use super::*;

    #[test]
    fn bodies_stay_under_the_limit_keep_every_event_and_put_wake_ups_in_their_own_count() {
        let users: Vec<UserRef> = (0..5_000).map(UserRef::student).collect();
        let mut events: Vec<BusEvent> = users.chunks(USERS_PER_EVENT).map(|c| BusEvent::Online(c.to_vec())).collect();
        events.push(BusEvent::Log);
        let packed = bodies(events.clone(), MAX_NOTIFY_BODY);
        assert!(packed.len() > 1);
        let mut back = Vec::new();
        for (p, wakes) in &packed {
            assert!(p.len() <= MAX_NOTIFY_BODY, "{}", p.len());
            let e: Vec<BusEvent> = postcard::from_bytes(p).unwrap();
            assert_eq!(*wakes, e.contains(&BusEvent::Log));
            back.extend(e);
        }
        assert_eq!(back, events);
    }

    #[test]
    fn logged_rows_too_large_for_one_payload_go_as_a_bare_wake_up() {
        let message = chat_protocol::StoredMessage {
            id: chat_protocol::MessageId::new_v4([1; 16]),
            from: UserRef::teacher(1),
            to: UserRef::student(2),
            content: "x".repeat(4_000),
            created_at: 1_700_000_000_000,
            read: false,
        };
        let rows = vec![(1, message.clone()), (2, message)];
        let packed = bodies(vec![BusEvent::Logged(rows.clone())], MAX_NOTIFY_BODY);
        let e: Vec<BusEvent> = postcard::from_bytes(&packed[0].0).unwrap();
        assert_eq!(e, vec![BusEvent::Log]);
        let packed = bodies(vec![BusEvent::Logged(rows.clone())], MAX_NATS_BODY);
        let e: Vec<BusEvent> = postcard::from_bytes(&packed[0].0).unwrap();
        assert_eq!(e, vec![BusEvent::Logged(rows)]);
    }
}
