//! The registry of open connections: who is connected where, who watches whose presence,
//! and delivery of already-encoded frames to a user's connections.
//!
//! Delivery never waits: each connection has an outbound queue ([`Outbox`]) bounded in
//! bytes; a push that would pass the bound marks that connection a slow consumer and
//! closes it, so one client that stops reading cannot hold up anyone else or grow the
//! server's memory by more than its bound.
//! The hub knows nothing of the database; the writer calls it after a commit.
//!
//! Locks are sharded by user and never held across an await.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chat_protocol::{ErrorCode, ServerFrame, StoredMessage, UserRef};

use super::lock;
use super::outbox::{ConnId, Outbox, POSITION_FRAMES};
use crate::delivery::notice::{BusEvent, BusSender};
use crate::metrics::Metrics;

#[derive(Debug, Default)]
struct UserEntry {
    conns: Vec<Outbox>,
    watchers: Vec<Outbox>,
    /// Whether watchers were last told this user is online.
    announced_online: bool,
    /// Whether this node counts the user online (connected here, or within the grace period
    /// after the last connection here closed); the bus tells the other nodes when it changes.
    local_online: bool,
    /// Whether another node counts the user online (through the bus).
    remote_online: bool,
    /// Bumped on every change of `conns`, so a pending "went offline" notice can tell
    /// whether the user came back during the grace period.
    generation: u64,
}

impl UserEntry {
    fn is_unused(&self) -> bool {
        self.conns.is_empty()
            && self.watchers.is_empty()
            && !self.announced_online
            && !self.local_online
            && !self.remote_online
    }

    /// Tells the watchers when the user's presence, here or on any node, changed.
    fn refresh(&mut self, user: UserRef) {
        let online = self.local_online || self.remote_online;
        if online != self.announced_online {
            self.announced_online = online;
            notify(&self.watchers, &ServerFrame::Presence { user, online });
        }
    }
}

type Shard = Mutex<HashMap<UserRef, UserEntry>>;

/// The registry. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Debug)]
struct HubInner {
    shards: Box<[Shard]>,
    hasher: RandomState,
    next_id: AtomicU64,
    presence_grace: Duration,
    metrics: Metrics,
    /// Where this node's presence changes go to the other nodes (none on a single node).
    bus: Option<BusSender>,
    /// Moves whenever a block may have changed (here, or on another node): connections
    /// re-read a peer's blocks when it moved since they last did.
    blocks_epoch: AtomicU64,
}

impl Hub {
    /// The blocks' epoch: a connection's cached view of a peer's blocks is good while this
    /// has not moved.
    pub(crate) fn blocks_epoch(&self) -> u64 {
        self.inner.blocks_epoch.load(Ordering::Acquire)
    }

    /// A block changed (or may have: the bus was down): every cached view is stale.
    pub(crate) fn blocks_changed(&self) {
        self.inner.blocks_epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// An empty hub; `bus` carries this node's presence changes to the other nodes.
    #[must_use]
    pub(crate) fn new(presence_grace: Duration, metrics: Metrics, bus: Option<BusSender>) -> Self {
        let shards = (0..32).map(|_| Mutex::new(HashMap::new())).collect();
        Hub {
            inner: Arc::new(HubInner {
                shards,
                hasher: RandomState::new(),
                next_id: AtomicU64::new(1),
                presence_grace,
                metrics,
                bus,
                blocks_epoch: AtomicU64::new(0),
            }),
        }
    }

    /// Tells the other nodes (nothing on a single node).
    pub(crate) fn publish(&self, event: BusEvent) {
        if let Some(bus) = &self.inner.bus {
            bus.publish(event);
        }
    }

    fn publish_presence(&self, user: UserRef, online: bool) {
        if let Some(bus) = &self.inner.bus {
            bus.publish(if online { BusEvent::Online(vec![user]) } else { BusEvent::Offline(vec![user]) });
        }
    }

    /// Records whether another node counts `user` online; watchers here learn of a change.
    pub(crate) fn set_remote(&self, user: UserRef, online: bool) {
        let mut shard = lock(self.shard(user));
        if !online && !shard.contains_key(&user) {
            return;
        }
        let entry = shard.entry(user).or_default();
        entry.remote_online = online;
        entry.refresh(user);
        if entry.is_unused() {
            shard.remove(&user);
        }
    }

    /// The users this node counts online (for a node that asks on the bus).
    #[must_use]
    pub(crate) fn local_online(&self) -> Vec<UserRef> {
        let mut users = Vec::new();
        for shard in &self.inner.shards {
            users.extend(lock(shard).iter().filter(|(_, e)| e.local_online).map(|(u, _)| *u));
        }
        users
    }

    /// Queues a message the moment it committed on this node, before it has a log position,
    /// on every connection of its recipient and sender (but `except`, the connection that
    /// sent it, which has its ack) that takes messages without one: protocol 1 and 2 (which
    /// never see positions) and protocol 5 and later (whose position follows in a `Position`
    /// frame once the log has it, [`Hub::deliver_logged`]). Calls `got` with each connection
    /// it was queued on, so the log's delivery skips them. Protocol 3 and 4 connections wait
    /// for the log (their `MessageAt` carries the position).
    pub(crate) fn deliver_committed(
        &self,
        message: &StoredMessage,
        except: Option<ConnId>,
        mut got: impl FnMut(ConnId),
    ) -> usize {
        let mut bytes: Option<Bytes> = None;
        let mut delivered = 0;
        for (user, except) in targets(message, except) {
            let shard = lock(self.shard(user));
            let Some(entry) = shard.get(&user) else { continue };
            for conn in &entry.conns {
                if Some(conn.id) == except || !conn.takes_unpositioned() {
                    continue;
                }
                if bytes.is_none() {
                    match (ServerFrame::Message { message: message.clone() }).encode() {
                        Ok(b) => bytes = Some(Bytes::from(b)),
                        Err(e) => {
                            tracing::error!(error = %e, "a message to deliver could not be encoded");
                            return delivered;
                        }
                    }
                }
                if let Some(bytes) = &bytes {
                    got(conn.id);
                    if conn.push(bytes.clone()) {
                        delivered += 1;
                    }
                }
            }
        }
        self.inner.metrics.delivered(delivered);
        delivered
    }

    /// Queues a logged message on every connection of its recipient and sender but those in
    /// `have` (the connection that sent it, which had its ack, and those it reached at
    /// commit, [`Hub::deliver_committed`]): protocol 3 and later connections get it with its
    /// position, older ones as `Message`. Each form is encoded once. The connections in
    /// `have` that follow positions (protocol 5 and later) are handed to `owed`: they are
    /// owed a `Position` frame once this round is delivered.
    pub(crate) fn deliver_logged(
        &self,
        position: u64,
        message: &StoredMessage,
        have: &[ConnId],
        mut owed: impl FnMut(&Outbox),
    ) -> usize {
        let mut with_position: Option<Bytes> = None;
        let mut plain: Option<Bytes> = None;
        let mut delivered = 0;
        for (user, _) in targets(message, None) {
            let shard = lock(self.shard(user));
            let Some(entry) = shard.get(&user) else { continue };
            for conn in &entry.conns {
                if have.contains(&conn.id) {
                    if conn.version >= POSITION_FRAMES {
                        owed(conn);
                    }
                    continue;
                }
                let positions = conn.version >= 3;
                let slot = if positions { &mut with_position } else { &mut plain };
                if slot.is_none() {
                    let frame = if positions {
                        ServerFrame::MessageAt { message: message.clone(), position }
                    } else {
                        ServerFrame::Message { message: message.clone() }
                    };
                    match frame.encode() {
                        Ok(bytes) => *slot = Some(Bytes::from(bytes)),
                        Err(e) => {
                            tracing::error!(error = %e, "a message to deliver could not be encoded");
                            return delivered;
                        }
                    }
                }
                if let Some(bytes) = slot
                    && conn.push(bytes.clone())
                {
                    delivered += 1;
                }
            }
        }
        self.inner.metrics.delivered(delivered);
        delivered
    }

    /// A fresh connection id.
    #[must_use]
    pub(crate) fn next_id(&self) -> ConnId {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn shard(&self, user: UserRef) -> &Shard {
        let i = self.inner.hasher.hash_one(user) as usize % self.inner.shards.len();
        &self.inner.shards[i]
    }

    /// Registers a connection unless its user already holds `max_per_user`; its user's
    /// watchers learn the user is online.
    ///
    /// # Errors
    /// [`ErrorCode::TOO_MANY_CONNECTIONS`] when the user is at the cap.
    pub(crate) fn register(&self, outbox: &Outbox, max_per_user: usize) -> Result<(), ErrorCode> {
        let user = outbox.user;
        let mut shard = lock(self.shard(user));
        let entry = shard.entry(user).or_default();
        if entry.conns.len() >= max_per_user {
            if entry.is_unused() {
                shard.remove(&user);
            }
            return Err(ErrorCode::TOO_MANY_CONNECTIONS);
        }
        entry.conns.push(outbox.clone());
        entry.generation += 1;
        if !entry.local_online {
            entry.local_online = true;
            self.publish_presence(user, true);
        }
        entry.refresh(user);
        Ok(())
    }

    /// Removes a connection. If it was the user's last, watchers learn the user went
    /// offline after the grace period, unless the user reconnected meanwhile (a reload).
    pub(crate) fn unregister(&self, outbox: &Outbox) {
        let user = outbox.user;
        let generation = {
            let mut shard = lock(self.shard(user));
            let Some(entry) = shard.get_mut(&user) else {
                return;
            };
            entry.conns.retain(|c| c.id != outbox.id);
            entry.generation += 1;
            if !entry.conns.is_empty() {
                return;
            }
            entry.generation
        };
        let hub = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hub.inner.presence_grace).await;
            let mut shard = lock(hub.shard(user));
            let Some(entry) = shard.get_mut(&user) else {
                return;
            };
            if entry.generation == generation && entry.conns.is_empty() && entry.local_online {
                entry.local_online = false;
                hub.publish_presence(user, false);
                entry.refresh(user);
            }
            if entry.is_unused() {
                shard.remove(&user);
            }
        });
    }

    /// Replaces what `outbox` watches: stops watching `old`, starts watching `new`.
    /// Returns the users of `new` that are online now.
    pub(crate) fn set_watch(&self, outbox: &Outbox, old: &[UserRef], new: &[UserRef]) -> Vec<UserRef> {
        for &user in old {
            let mut shard = lock(self.shard(user));
            if let Some(entry) = shard.get_mut(&user) {
                entry.watchers.retain(|w| w.id != outbox.id);
                if entry.is_unused() {
                    shard.remove(&user);
                }
            }
        }
        let mut online = Vec::new();
        for &user in new {
            let mut shard = lock(self.shard(user));
            let entry = shard.entry(user).or_default();
            if !entry.watchers.iter().any(|w| w.id == outbox.id) {
                entry.watchers.push(outbox.clone());
            }
            if entry.announced_online {
                online.push(user);
            }
        }
        online
    }

    /// After a block between `a` and `b`: neither watches the other's presence any more
    /// (their connections' watch lists keep the names; removing them again is harmless).
    pub(crate) fn unwatch_between(&self, a: UserRef, b: UserRef) {
        for (watched, watcher) in [(a, b), (b, a)] {
            let mut shard = lock(self.shard(watched));
            if let Some(entry) = shard.get_mut(&watched) {
                entry.watchers.retain(|w| w.user != watcher);
                if entry.is_unused() {
                    shard.remove(&watched);
                }
            }
        }
    }

    /// Encodes `frame` once and queues it on every connection of each target user but the
    /// one excepted (`(user, Some(conn))`: the connection the frame answers already knows).
    /// Returns how many connections it was queued on.
    pub(crate) fn deliver(&self, frame: &ServerFrame, targets: &[(UserRef, Option<ConnId>)]) -> usize {
        self.deliver_from_version(frame, targets, 0)
    }

    /// Queues `Changed` (an edit or deletion) on the connections of `targets` that know the
    /// frame (protocol 4 and later: an older client would take it for a protocol error).
    pub(crate) fn deliver_changed(
        &self,
        message: &StoredMessage,
        deleted: bool,
        targets: &[(UserRef, Option<ConnId>)],
    ) -> usize {
        self.deliver_from_version(&ServerFrame::Changed { message: message.clone(), deleted }, targets, 4)
    }

    /// [`Hub::deliver`] to the connections speaking protocol `version` or later.
    fn deliver_from_version(&self, frame: &ServerFrame, targets: &[(UserRef, Option<ConnId>)], version: u16) -> usize {
        let bytes = match frame.encode() {
            Ok(bytes) => Bytes::from(bytes),
            Err(e) => {
                tracing::error!(error = %e, "a frame to deliver could not be encoded");
                return 0;
            }
        };
        let mut delivered = 0;
        for &(user, except) in targets {
            let shard = lock(self.shard(user));
            let Some(entry) = shard.get(&user) else { continue };
            for conn in &entry.conns {
                if conn.version >= version && Some(conn.id) != except && conn.push(bytes.clone()) {
                    delivered += 1;
                }
            }
        }
        self.inner.metrics.delivered(delivered);
        delivered
    }

    /// Tells every connection to close with `code` (used at shutdown).
    pub(crate) fn kill_all(&self, code: ErrorCode, message: &str) {
        for shard in &self.inner.shards {
            for entry in lock(shard).values() {
                for conn in &entry.conns {
                    conn.control.kill(code, message);
                }
            }
        }
    }
}

fn notify(watchers: &[Outbox], frame: &ServerFrame) {
    if watchers.is_empty() {
        return;
    }
    match frame.encode() {
        Ok(bytes) => {
            let bytes = Bytes::from(bytes);
            for w in watchers {
                w.push(bytes.clone());
            }
        }
        Err(e) => tracing::error!(error = %e, "presence frame could not be encoded"),
    }
}

/// Whom a message goes to: its recipient's connections and its sender's (but `except`); a
/// note to oneself once.
fn targets(message: &StoredMessage, except: Option<ConnId>) -> impl Iterator<Item = (UserRef, Option<ConnId>)> {
    let to_self = message.to == message.from;
    [(message.to, None), (message.from, except)].into_iter().skip(usize::from(to_self))
}
