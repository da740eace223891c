//! The registry of open connections: who is connected where, who watches whose presence,
//! and delivery of already-encoded frames to a user's connections.
//!
//! Delivery never waits: each connection has a bounded outbound queue ([`Outbox`]); a
//! push onto a full queue marks that connection a slow consumer and closes it, so one
//! client that stops reading cannot hold up anyone else or grow the server's memory.
//! The hub knows nothing of the database; the writer calls it after a commit.
//!
//! Locks are sharded by user and never held across an await.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use chat_protocol::{ErrorCode, ServerFrame, UserRef};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// A connection's id, unique within one server process.
pub type ConnId = u64;

/// Why and how a connection is being closed; shared by its tasks and the hub.
#[derive(Debug, Default)]
pub struct ConnControl {
    kill: CancellationToken,
    reason: Mutex<Option<(ErrorCode, String)>>,
}

impl ConnControl {
    /// Resolves once the connection has been told to close.
    pub async fn killed(&self) {
        self.kill.cancelled().await;
    }

    /// Whether the connection has been told to close.
    #[must_use]
    pub fn is_killed(&self) -> bool {
        self.kill.is_cancelled()
    }

    /// The first reason given for closing, if any.
    #[must_use]
    pub fn reason(&self) -> Option<(ErrorCode, String)> {
        lock(&self.reason).clone()
    }

    /// Tells the connection to close with `code`. The first reason wins.
    pub fn kill(&self, code: ErrorCode, message: impl Into<String>) {
        {
            let mut reason = lock(&self.reason);
            if reason.is_none() {
                *reason = Some((code, message.into()));
            }
        }
        self.kill.cancel();
    }
}

/// The sending half of one connection's bounded outbound queue.
#[derive(Clone, Debug)]
pub struct Outbox {
    id: ConnId,
    user: UserRef,
    tx: mpsc::Sender<Bytes>,
    control: Arc<ConnControl>,
}

impl Outbox {
    /// An outbox for connection `id` of `user`; the receiver goes to the socket writer.
    #[must_use]
    pub fn new(id: ConnId, user: UserRef, capacity: usize) -> (Outbox, mpsc::Receiver<Bytes>, Arc<ConnControl>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let control = Arc::new(ConnControl::default());
        (Outbox { id, user, tx, control: Arc::clone(&control) }, rx, control)
    }

    /// The connection's id.
    #[must_use]
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The connection's user.
    #[must_use]
    pub fn user(&self) -> UserRef {
        self.user
    }

    /// The connection's control block.
    #[must_use]
    pub fn control(&self) -> &ConnControl {
        &self.control
    }

    /// Queues an encoded frame. Returns whether it was queued. A full queue closes the
    /// connection as a slow consumer; a closed one means the connection is gone.
    pub fn push(&self, frame: Bytes) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.control.kill(ErrorCode::SLOW_CONSUMER, "the client did not read its messages fast enough");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Encodes and queues a frame.
    pub fn push_frame(&self, frame: &ServerFrame) -> bool {
        match frame.encode() {
            Ok(bytes) => self.push(Bytes::from(bytes)),
            Err(e) => {
                tracing::error!(error = %e, "a server frame could not be encoded");
                false
            }
        }
    }
}

#[derive(Debug, Default)]
struct UserEntry {
    conns: Vec<Outbox>,
    watchers: Vec<Outbox>,
    /// Whether watchers were last told this user is online.
    announced_online: bool,
    /// Bumped on every change of `conns`, so a pending "went offline" notice can tell
    /// whether the user came back during the grace period.
    generation: u64,
}

impl UserEntry {
    fn is_unused(&self) -> bool {
        self.conns.is_empty() && self.watchers.is_empty() && !self.announced_online
    }
}

type Shard = Mutex<HashMap<UserRef, UserEntry>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the maps half-updated in a
    // way that matters more than losing the whole server, so keep going.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The registry. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Debug)]
struct HubInner {
    shards: Box<[Shard]>,
    hasher: RandomState,
    next_id: AtomicU64,
    presence_grace: Duration,
    metrics: Metrics,
}

impl Hub {
    /// An empty hub.
    #[must_use]
    pub fn new(presence_grace: Duration, metrics: Metrics) -> Self {
        let shards = (0..32).map(|_| Mutex::new(HashMap::new())).collect();
        Hub {
            inner: Arc::new(HubInner {
                shards,
                hasher: RandomState::new(),
                next_id: AtomicU64::new(1),
                presence_grace,
                metrics,
            }),
        }
    }

    /// A fresh connection id.
    #[must_use]
    pub fn next_id(&self) -> ConnId {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn shard(&self, user: UserRef) -> &Shard {
        let i = self.inner.hasher.hash_one(user) as usize % self.inner.shards.len();
        &self.inner.shards[i]
    }

    /// Registers a connection; its user's watchers learn the user is online.
    pub fn register(&self, outbox: &Outbox) {
        let user = outbox.user;
        let mut shard = lock(self.shard(user));
        let entry = shard.entry(user).or_default();
        entry.conns.push(outbox.clone());
        entry.generation += 1;
        if !entry.announced_online {
            entry.announced_online = true;
            notify(&entry.watchers, &ServerFrame::Presence { user, online: true });
        }
    }

    /// Removes a connection. If it was the user's last, watchers learn the user went
    /// offline after the grace period, unless the user reconnected meanwhile (a reload).
    pub fn unregister(&self, outbox: &Outbox) {
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
            if entry.generation == generation && entry.conns.is_empty() && entry.announced_online {
                entry.announced_online = false;
                notify(&entry.watchers, &ServerFrame::Presence { user, online: false });
            }
            if entry.is_unused() {
                shard.remove(&user);
            }
        });
    }

    /// Whether `user` counts as online (a connection is open, or closed within the grace).
    #[must_use]
    pub fn is_online(&self, user: UserRef) -> bool {
        lock(self.shard(user)).get(&user).is_some_and(|e| e.announced_online)
    }

    /// Replaces what `outbox` watches: stops watching `old`, starts watching `new`.
    /// Returns the users of `new` that are online now.
    pub fn set_watch(&self, outbox: &Outbox, old: &[UserRef], new: &[UserRef]) -> Vec<UserRef> {
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

    /// Queues `frame` on every connection of `user` except `except`. Returns how many
    /// connections it was queued on.
    pub fn send_to_user(&self, user: UserRef, frame: &Bytes, except: Option<ConnId>) -> usize {
        let shard = lock(self.shard(user));
        let Some(entry) = shard.get(&user) else {
            return 0;
        };
        let mut delivered = 0;
        for conn in &entry.conns {
            if Some(conn.id) != except && conn.push(frame.clone()) {
                delivered += 1;
            }
        }
        drop(shard);
        self.inner.metrics.delivered(delivered);
        delivered
    }

    /// Tells every connection to close with `code` (used at shutdown).
    pub fn kill_all(&self, code: ErrorCode, message: &str) {
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
