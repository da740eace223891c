//! The feed: follows the message log and delivers every logged message to this node's
//! connections, in log order, once.
//!
//! Every message passes here, whoever stored it: this node's writer, another node's, or the
//! app itself (Prisma or SQL). A message a writer committed has usually reached some
//! connections already, at commit ([`Feed::deliver_committed`] here, [`Feed::committed_elsewhere`]
//! for another node's commit notice): those are remembered, skipped here, and owed a
//! `Position` frame once the round is delivered. The writer commits and acks, then tells the
//! feed; the feed moves what committed into the log (`Store::sequence`), which returns those
//! messages with their positions, and queues them on the other connections of their
//! recipient and sender (but the connection that sent it, which has its ack).
//! Positions assigned elsewhere (another node's sequencer, or this one's own call returning
//! rows after a gap) are read from the log first, so a connection always receives
//! positions in increasing order, and a protocol 3 client's position is exact: every
//! message of its user up to it has been sent to it.
//!
//! The feed wakes on: a commit here, a bus wake-up (the log moved elsewhere), and a poll
//! (every `poll`, default 250 ms) that sequences rows the app inserted and reads anything a
//! lost wake-up left behind. A wake-up usually carries the rows its sender's round logged
//! ([`Feed::offer`]): they are delivered like this node's own, without reading the log back,
//! after any positions before them that have not arrived yet are read from it. A position
//! is never delivered twice (only positions after the delivered one are), whichever way it
//! came first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chat_protocol::{MessageId, StoredMessage};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::delivery::hub::Hub;
use crate::delivery::notice::Bus;
use crate::delivery::outbox::{ConnId, Outbox};
use crate::delivery::with_lock;
use crate::metrics::Metrics;
use crate::store::{Logged, Store, StoreError};

/// How many log rows one read takes.
const LOG_PAGE: u16 = 1_000;
/// Sends remembered until the feed delivers them (to skip their own connection). Past
/// this (the feed is far behind) the memory is dropped: the sending connection then gets
/// its own message too, and the SDK drops it (it knows the id from the ack).
const MAX_SENT_HERE: usize = 100_000;
/// Rows carried by wake-ups, waiting for the feed. Past this (the feed is stuck: the
/// database is down) they are dropped and the feed reads the log instead.
const MAX_OFFERED: usize = 10_000;

/// The handle the writer, the bus and the connections share. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct Feed {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The last position delivered to this node's connections.
    delivered: AtomicU64,
    wake: Notify,
    /// The writer committed since the last sequencing.
    committed: AtomicBool,
    /// The bus said the log moved elsewhere.
    moved: AtomicBool,
    /// Rows another node logged, carried by its wake-up, in the order they arrived.
    offered: Mutex<Vec<Logged>>,
    /// Messages committed (here, or on another node that said so on the bus) and not yet
    /// delivered from the log: the connections that have each already.
    have: Mutex<Have>,
    bus: OnceLock<Bus>,
}

/// What the feed knows of messages that reached connections before the log brought them.
#[derive(Debug, Default)]
struct Have {
    /// Committed, not yet delivered from the log: the connections that have each (for one
    /// committed here, the sending connection first).
    map: HashMap<MessageId, Vec<ConnId>>,
    /// The last [`RECENT`] messages the log delivered, oldest first, so a bus notice of a
    /// commit that comes after the log brought the message does not deliver it again.
    recent: std::collections::HashSet<MessageId>,
    order: std::collections::VecDeque<MessageId>,
}

/// How many messages delivered from the log [`Have`] remembers.
const RECENT: usize = 16_384;

impl Have {
    /// Past [`MAX_SENT_HERE`] (the feed is far behind, or stuck) the memory is dropped: the
    /// connections then get those messages twice, and the SDK drops the repeats by id.
    fn make_room(&mut self) {
        if self.map.len() > MAX_SENT_HERE {
            tracing::warn!("the feed is far behind the writer; connections will get messages twice");
            self.map.clear();
        }
    }

    /// The log delivers `id` now: who has it already (and it is remembered as delivered).
    fn delivering(&mut self, id: MessageId) -> Option<Vec<ConnId>> {
        if self.order.len() >= RECENT
            && let Some(old) = self.order.pop_front()
        {
            self.recent.remove(&old);
        }
        if self.recent.insert(id) {
            self.order.push_back(id);
        }
        self.map.remove(&id)
    }
}

impl Feed {
    /// The position delivered so far: a connection registered now gets every message after it.
    #[must_use]
    pub(crate) fn position(&self) -> u64 {
        self.inner.delivered.load(Ordering::Acquire)
    }

    /// The bus (or a reconnect) says the log moved elsewhere.
    pub(crate) fn wake(&self) {
        self.inner.moved.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// The bus brought rows another node logged (in log order): deliver them, with no read
    /// of the log unless positions before them are missing here.
    pub(crate) fn offer(&self, rows: Vec<Logged>) {
        let kept = with_lock(&self.inner.offered, |offered| {
            if offered.len() + rows.len() > MAX_OFFERED {
                offered.clear();
                return false;
            }
            offered.extend(rows);
            true
        });
        if kept {
            self.inner.wake.notify_one();
        } else {
            self.wake();
        }
    }

    /// The writer is about to store these messages (each with the connection that sent
    /// it): noted before the commit, because a round already running may log them as soon
    /// as they commit.
    ///
    /// Returns, for each, whether it is new here: a resend of a message still on its way
    /// (its id expected already) leaves the first send's entry alone, and must not be
    /// passed to [`Feed::not_stored`].
    pub(crate) fn expect(&self, sent: impl IntoIterator<Item = (MessageId, ConnId)>) -> Vec<bool> {
        with_lock(&self.inner.have, |have| {
            have.make_room();
            sent.into_iter()
                .map(|(id, conn)| match have.map.entry(id) {
                    std::collections::hash_map::Entry::Occupied(_) => false,
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(vec![conn]);
                        true
                    }
                })
                .collect()
        })
    }

    /// These expected messages (new ones, [`Feed::expect`]) were not stored now (refused,
    /// resent, failed).
    pub(crate) fn not_stored(&self, ids: impl IntoIterator<Item = MessageId>) {
        with_lock(&self.inner.have, |have| {
            for id in ids {
                have.map.remove(&id);
            }
        });
    }

    /// A message committed here (and expected): deliver it now to this node's connections
    /// that take messages before their position ([`Hub::deliver_committed`]), and remember
    /// them so the log's delivery skips them. A message the log delivered already (a round
    /// that ran since the commit) is not delivered again.
    ///
    /// Then the other nodes hear of them on the bus ([`BusEvent::Committed`], when they fit
    /// one payload) and do the same ([`Feed::committed_elsewhere`]).
    pub(crate) fn deliver_committed(&self, hub: &Hub, messages: Vec<StoredMessage>) {
        if let Some(bus) = self.inner.bus.get() {
            bus.committed(&messages);
        }
        with_lock(&self.inner.have, |have| {
            for message in &messages {
                if let Some(got) = have.map.get_mut(&message.id) {
                    let sender = got.first().copied();
                    hub.deliver_committed(message, sender, |conn| got.push(conn));
                }
            }
        });
    }

    /// Another node committed these messages (the bus said so): deliver each now to this
    /// node's connections that take messages before their position, unless the log has
    /// brought it already, and remember them so the log's delivery skips them.
    /// Returns how many of them reached a connection here.
    pub(crate) fn committed_elsewhere(&self, hub: &Hub, messages: &[StoredMessage]) -> u64 {
        with_lock(&self.inner.have, |have| {
            have.make_room();
            let mut delivered = 0;
            for message in messages {
                if have.recent.contains(&message.id) || have.map.contains_key(&message.id) {
                    continue;
                }
                let mut got = Vec::new();
                hub.deliver_committed(message, None, |conn| got.push(conn));
                if !got.is_empty() {
                    delivered += 1;
                    have.map.insert(message.id, got);
                }
            }
            delivered
        })
    }

    /// The writer committed messages: log and deliver them.
    pub(crate) fn committed(&self) {
        self.inner.committed.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// Sets the bus (once, at start).
    pub(crate) fn set_bus(&self, bus: Bus) {
        let _ = self.inner.bus.set(bus);
    }
}

/// Starts the feed from the log's current end. The returned receiver fires once the feed
/// has sequenced what was left in the inbox (rows the app inserted while no node ran: they
/// are history, which a reconnecting client gets in its catch-up) and taken the log's end:
/// accept connections after that. When `stop` is cancelled it makes one last round (so
/// what the writer acked while draining reaches this node's connections) and ends.
#[must_use]
pub(crate) fn spawn(
    feed: Feed,
    store: Store,
    hub: Hub,
    metrics: Metrics,
    poll: Duration,
    stop: CancellationToken,
) -> (JoinHandle<()>, oneshot::Receiver<()>) {
    let (ready, started) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut runner =
            Runner { feed, store, hub, metrics, delivered: 0, vacuum: Vacuum::default(), owed: HashMap::new() };
        if runner.start(&stop).await {
            let _ = ready.send(());
            runner.run(poll, stop).await;
        }
    });
    (task, started)
}

struct Runner {
    feed: Feed,
    store: Store,
    hub: Hub,
    metrics: Metrics,
    delivered: u64,
    vacuum: Vacuum,
    /// Connections that had messages of this round at commit: each is owed a `Position`.
    owed: HashMap<ConnId, Outbox>,
}

/// Rows sequenced here between vacuums of the inbox, and the least time between two.
const VACUUM_EVERY_ROWS: usize = 5_000;
const VACUUM_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// This node's share of keeping the inbox small: after every [`VACUUM_EVERY_ROWS`] rows
/// it sequenced (and at most once a [`VACUUM_AT_MOST_EVERY`]) it vacuums the inbox in the
/// background, whether or not autovacuum is on (it wakes once a minute by default, by
/// which time a busy deployment has left a million dead rows).
#[derive(Default)]
struct Vacuum {
    rows: usize,
    last: Option<tokio::time::Instant>,
    running: Arc<AtomicBool>,
    warned: Arc<AtomicBool>,
}

impl Vacuum {
    fn sequenced(&mut self, rows: usize, store: &Store) {
        self.rows += rows;
        let now = tokio::time::Instant::now();
        if self.rows < VACUUM_EVERY_ROWS
            || self.last.is_some_and(|at| now.duration_since(at) < VACUUM_AT_MOST_EVERY)
            || self.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.rows = 0;
        self.last = Some(now);
        let (store, running, warned) = (store.clone(), Arc::clone(&self.running), Arc::clone(&self.warned));
        tokio::spawn(async move {
            if let Err(e) = store.vacuum_inbox().await
                && !warned.swap(true, Ordering::AcqRel)
            {
                tracing::warn!(error = %e, "cannot vacuum chat_inbox (does this role own it?); relying on autovacuum");
            }
            running.store(false, Ordering::Release);
        });
    }
}

impl Runner {
    /// Sequences the inbox's leftovers, then starts at the log's end (what was logged before
    /// this node started is history, which clients read with catch-up and history
    /// requests). False when stopped first.
    async fn start(&mut self, stop: &CancellationToken) -> bool {
        loop {
            match self.start_position().await {
                Ok(head) => {
                    self.set_delivered(head);
                    return true;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the feed cannot read the message log; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return false,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    async fn start_position(&self) -> Result<u64, StoreError> {
        if self.store.sequences() {
            let bus = self.feed.inner.bus.get();
            loop {
                let rows = self.store.sequence(0, true, LOG_PAGE).await?;
                self.metrics.sequenced(rows.len());
                if !rows.is_empty()
                    && let Some(bus) = bus
                {
                    bus.log_moved(&[]);
                }
                if rows.len() < usize::from(LOG_PAGE) {
                    break;
                }
            }
        }
        self.store.log_head().await
    }

    async fn run(&mut self, poll: Duration, stop: CancellationToken) {
        let mut next_poll = tokio::time::Instant::now() + poll;
        loop {
            let polled = tokio::select! {
                biased;
                () = stop.cancelled() => {
                    self.round(true, false).await;
                    self.settle_positions();
                    return;
                }
                () = self.feed.inner.wake.notified() => false,
                () = tokio::time::sleep_until(next_poll) => true,
            };
            if polled {
                next_poll = tokio::time::Instant::now() + poll;
            }
            let ok = self.round(false, polled).await;
            self.settle_positions();
            if !ok {
                // The database failed: do not spin; the next wake or poll retries.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// One round: sequence (after a commit here, or on a poll), then read what was logged
    /// elsewhere. Returns false when the database failed.
    async fn round(&mut self, last: bool, polled: bool) -> bool {
        let local = self.feed.inner.committed.swap(false, Ordering::AcqRel) || last;
        let moved = self.feed.inner.moved.swap(false, Ordering::AcqRel);
        let offered = with_lock(&self.feed.inner.offered, std::mem::take);
        if !offered.is_empty() && !self.absorb(offered, "bus").await {
            return self.read_again_later();
        }
        if local || polled {
            let bus = self.feed.inner.bus.get();
            // After a commit here, wait for a sequencer running elsewhere rather than
            // leave our rows to it (which would cost a poll interval when it has started
            // before our commit); a poll only helps out.
            match self.store.sequence(self.delivered, local, LOG_PAGE).await {
                Ok(rows) => {
                    if !rows.is_empty() && self.store.sequences() {
                        self.metrics.sequenced(rows.len());
                        self.vacuum.sequenced(rows.len(), &self.store);
                        if let Some(bus) = bus {
                            bus.log_moved(&rows);
                        }
                    }
                    let full = rows.len() >= usize::from(LOG_PAGE);
                    if !self.absorb(rows, "sequenced").await {
                        return self.read_again_later();
                    }
                    if full {
                        if self.store.sequences() {
                            // More waits in the inbox (a bulk insert): another round.
                            self.feed.committed();
                        } else if !self.read_log().await {
                            // The log numbers rows itself ("sequence" reads it): read the rest.
                            return self.read_again_later();
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "sequencing the message log failed");
                    if local {
                        self.feed.inner.committed.store(true, Ordering::Release);
                    }
                    return false;
                }
            }
        }
        if (moved || polled) && !self.read_log().await {
            return self.read_again_later();
        }
        true
    }

    /// Reading the log failed: the next round reads it again. Returns false (the round failed).
    fn read_again_later(&self) -> bool {
        self.feed.inner.moved.store(true, Ordering::Release);
        false
    }

    /// Delivers `rows` (in log order; `source` says where they came from), first reading
    /// from the log any positions between what was delivered and them (assigned by another
    /// node's sequencer), and skipping what was delivered already.
    ///
    /// A position that came over the bus is a hint: when reading the log up to it still
    /// leaves a gap, the log's end is asked, and a position past it (a node's bug, or a
    /// payload that should never have opened) is refused, counted and logged, and the rest
    /// of those rows dropped for a read of the log. The delivered position never moves past
    /// what the log holds.
    async fn absorb(&mut self, rows: Vec<Logged>, source: &'static str) -> bool {
        let counted = self.metrics.feed_rows(source);
        for (position, message) in rows {
            // Never step over a position: read what is missing first (it may read this
            // row and more, which are then skipped here). Rows carried by wake-ups skip
            // positions whenever a wake-up was lost or another node's came later.
            if position > self.delivered + 1 && !self.read_log_until(position - 1).await {
                return false;
            }
            // The log's rows whose messages the app deleted are not read back, so a gap may
            // remain below a real position: the log's end tells.
            if position > self.delivered + 1 && source == "bus" {
                match self.store.log_head().await {
                    Ok(head) if head >= position => {}
                    Ok(head) => {
                        let why = crate::delivery::notice::Rejected::Position;
                        self.metrics.bus_rejected(why.as_str());
                        tracing::warn!(position, head, "{}", why.explain());
                        self.feed.wake();
                        return true;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reading the message log's end failed");
                        return false;
                    }
                }
            }
            if position > self.delivered {
                counted.inc();
                self.deliver(position, &message);
            }
        }
        true
    }

    /// Reads and delivers the log from the delivered position to its end.
    async fn read_log(&mut self) -> bool {
        self.read_log_until(u64::MAX).await
    }

    async fn read_log_until(&mut self, until: u64) -> bool {
        loop {
            match self.store.log_after(self.delivered, LOG_PAGE).await {
                Ok(rows) => {
                    let n = rows.len();
                    self.metrics.feed_rows("log").inc_by(n as u64);
                    for (position, message) in rows {
                        self.deliver(position, &message);
                    }
                    if n < usize::from(LOG_PAGE) || self.delivered >= until {
                        return true;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading the message log failed");
                    return false;
                }
            }
        }
    }

    fn deliver(&mut self, position: u64, message: &StoredMessage) {
        let have = with_lock(&self.feed.inner.have, |have| have.delivering(message.id)).unwrap_or_default();
        let owed = &mut self.owed;
        self.hub.deliver_logged(position, message, &have, |conn| {
            owed.entry(conn.id()).or_insert_with(|| conn.clone());
        });
        self.set_delivered(position);
    }

    /// Tells the connections that had this round's messages at commit how far the log has
    /// reached them: every message of theirs up to the delivered position has been sent.
    fn settle_positions(&mut self) {
        if self.owed.is_empty() {
            return;
        }
        let frame = chat_protocol::ServerFrame::Position { position: self.delivered };
        match frame.encode() {
            Ok(bytes) => {
                let bytes = bytes::Bytes::from(bytes);
                for (_, conn) in self.owed.drain() {
                    conn.push(bytes.clone());
                }
            }
            Err(e) => tracing::error!(error = %e, "a position frame could not be encoded"),
        }
    }

    fn set_delivered(&mut self, position: u64) {
        self.delivered = self.delivered.max(position);
        self.feed.inner.delivered.store(self.delivered, Ordering::Release);
        self.metrics.log_position(self.delivered);
    }
}
