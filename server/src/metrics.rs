//! Prometheus metrics, one registry per server instance (no global recorder, so tests
//! can run several servers in one process).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

/// The server's metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    connections: Gauge,
    stored: Counter,
    delivered: Counter,
    batch_size: Histogram,
    commit_seconds: Histogram,
    errors: Family<CodeLabel, Counter>,
    outbound_bytes: Gauge,
    write_failures: Family<ReasonLabel, Counter>,
    refused: Family<ReasonLabel, Counter>,
    pending: Gauge,
    log_position: Gauge,
    sequenced: Counter,
    bus_dropped: Counter,
    bus_rejected: Family<ReasonLabel, Counter>,
    bus_published: Family<ReasonLabel, Counter>,
    feed_rows: Family<SourceLabel, Counter>,
    bus_connected: Gauge,
    bus_nodes: Gauge,
    safety: Family<ReasonLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    #[must_use]
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("chat");
        let connections = Gauge::default();
        let stored = Counter::default();
        let delivered = Counter::default();
        let batch_size = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0]);
        let commit_seconds = Histogram::new([0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0]);
        let errors = Family::<CodeLabel, Counter>::default();
        registry.register("connections", "Open authenticated WebSocket connections", connections.clone());
        registry.register("messages_stored", "Messages committed to the database", stored.clone());
        registry.register("messages_delivered", "Message frames queued to recipient connections", delivered.clone());
        registry.register("batch_size", "Messages per group commit", batch_size.clone());
        registry.register("commit_seconds", "Time to commit one batch", commit_seconds.clone());
        registry.register("errors", "Error frames sent, by protocol error code", errors.clone());
        let outbound_bytes = Gauge::default();
        registry.register(
            "outbound_bytes",
            "Bytes of frames queued for clients and not yet written to their sockets",
            outbound_bytes.clone(),
        );
        let write_failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "write_failures",
            "Connections whose socket write failed or stalled, by reason",
            write_failures.clone(),
        );
        let refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "refused",
            "Connections refused before authentication, by reason (pending_full, per_ip, shutting_down)",
            refused.clone(),
        );
        let pending = Gauge::default();
        registry.register(
            "pending_connections",
            "TCP connections not yet authenticated (HTTP requests, WebSockets before hello)",
            pending.clone(),
        );
        let log_position = Gauge::default();
        registry.register(
            "log_position",
            "The message log position this node has delivered up to (compare across nodes)",
            log_position.clone(),
        );
        let sequenced = Counter::default();
        registry.register(
            "log_sequenced",
            "Messages this node moved into the message log (its own, other nodes' and the app's)",
            sequenced.clone(),
        );
        let bus_dropped = Counter::default();
        registry.register(
            "bus_dropped",
            "Bus events dropped because the bus queue was full (the bus was down)",
            bus_dropped.clone(),
        );
        let bus_rejected = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "bus_rejected",
            "Bus payloads (or carried log positions) this node refused to believe: reason=malformed or forged (not \
             sealed by a node of this deployment), unknown_key, stale, replayed, unreadable, position (a carried \
             position past the log's end), bounds (more remote nodes or users than this node keeps)",
            bus_rejected.clone(),
        );
        let bus_published = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "bus_published",
            "Messages this node published on the bus: reason=wakeup (the log moved: a batch that says so, \
             with the rows when they fit), reason=events (a batch of typing, read notices, presence, heartbeats)",
            bus_published.clone(),
        );
        let feed_rows = Family::<SourceLabel, Counter>::default();
        registry.register(
            "feed_rows",
            "Messages this node delivered, by where it got them: source=sequenced (its own sequencing round), \
             source=bus (carried by another node's wake-up, no read needed), source=log (read back from the log: a \
             wake-up too large to carry them, a gap, a poll), source=commit (another node's commit notice, before \
             the log numbered them; the log's copy then only brings their position)",
            feed_rows.clone(),
        );
        let bus_connected = Gauge::default();
        registry.register(
            "bus_connected",
            "1 while this node hears the bus, 0 while it is cut off (other nodes' presence is then held as it was)",
            bus_connected.clone(),
        );
        let bus_nodes = Gauge::default();
        registry.register("bus_nodes", "Other nodes this node hears on the bus", bus_nodes.clone());
        let safety = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "safety",
            "Safety events: reason=report (a message reported to staff), block, unblock, webhook_delivered and \
             webhook_failed (a report the webhook took, or did not take after every retry)",
            safety.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                safety,
                bus_published,
                feed_rows,
                bus_connected,
                bus_nodes,
                log_position,
                sequenced,
                bus_dropped,
                bus_rejected,
                registry,
                connections,
                stored,
                delivered,
                batch_size,
                commit_seconds,
                errors,
                outbound_bytes,
                write_failures,
                refused,
                pending,
            }),
        }
    }

    /// A connection was authenticated.
    pub(crate) fn connection_opened(&self) {
        self.inner.connections.inc();
    }

    /// An authenticated connection closed.
    pub(crate) fn connection_closed(&self) {
        self.inner.connections.dec();
    }

    /// The number of open authenticated connections.
    #[must_use]
    pub(crate) fn connections(&self) -> i64 {
        self.inner.connections.get()
    }

    /// A batch of `size` was committed in `seconds`, storing `stored` new rows.
    pub(crate) fn batch(&self, size: usize, stored: usize, seconds: f64) {
        self.inner.batch_size.observe(size as f64);
        self.inner.commit_seconds.observe(seconds);
        self.inner.stored.inc_by(stored as u64);
    }

    /// The feed delivered up to `position`.
    pub(crate) fn log_position(&self, position: u64) {
        self.inner.log_position.set(i64::try_from(position).unwrap_or(i64::MAX));
    }

    /// This node moved `n` messages into the log.
    pub(crate) fn sequenced(&self, n: usize) {
        self.inner.sequenced.inc_by(n as u64);
    }

    /// This node published on the bus.
    pub(crate) fn bus_published(&self, reason: &'static str) {
        self.inner.bus_published.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// The counter of logged messages the feed delivers from `source` (`sequenced`, `bus`,
    /// `log`): counted before each is queued, so a client that has it sees it counted.
    pub(crate) fn feed_rows(&self, source: &'static str) -> Counter {
        self.inner.feed_rows.get_or_create(&SourceLabel { source }).clone()
    }

    pub(crate) fn bus_state(&self, connected: bool, nodes: usize) {
        self.inner.bus_connected.set(i64::from(connected));
        self.inner.bus_nodes.set(i64::try_from(nodes).unwrap_or(i64::MAX));
    }

    /// A payload (or a carried position) from the bus was not believed.
    pub(crate) fn bus_rejected(&self, reason: &'static str) {
        self.inner.bus_rejected.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub(crate) fn bus_dropped(&self) {
        self.inner.bus_dropped.inc();
    }

    /// Frames were queued to `n` connections.
    pub(crate) fn delivered(&self, n: usize) {
        if n > 0 {
            self.inner.delivered.inc_by(n as u64);
        }
    }

    /// An error frame (or fatal close) with this code was sent.
    pub(crate) fn error(&self, code: chat_protocol::ErrorCode) {
        self.inner.errors.get_or_create(&CodeLabel { code: code.name() }).inc();
    }

    /// Bytes were added to (positive) or taken off (negative) the outbound queues.
    pub(crate) fn outbound_bytes(&self, delta: i64) {
        self.inner.outbound_bytes.inc_by(delta);
    }

    /// A socket write failed (`error`) or made no progress in time (`stalled`), or a frame
    /// was too large to write (`too_large`).
    pub(crate) fn write_failure(&self, reason: &'static str) {
        self.inner.write_failures.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// A connection was refused before authentication.
    pub(crate) fn refused(&self, reason: &'static str) {
        self.inner.refused.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// An unauthenticated connection opened (`1`) or ended or authenticated (`-1`).
    pub(crate) fn pending(&self, delta: i64) {
        self.inner.pending.inc_by(delta);
    }

    /// A safety event (see the metric's help).
    pub(crate) fn safety(&self, reason: &'static str) {
        self.inner.safety.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.inner.registry) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        out
    }
}
