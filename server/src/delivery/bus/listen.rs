//! The receiving half: every payload heard on the channel is opened with the cluster key,
//! checked for freshness and replay, and only then read and applied; what it says of other
//! nodes is kept bounded. A node cut off from the bus says so (`BusHealth`) and catches up
//! when it is back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt as _;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use super::remote::Remote;
use super::seal::{BusKeys, Rejected, Replay};
use super::{BusEvent, BusHealth, BusSender, NodeId, USERS_PER_EVENT};
use crate::delivery::announce::Notice;
use crate::delivery::feed::Feed;
use crate::delivery::hub::Hub;
use crate::delivery::with_lock;
use crate::metrics::Metrics;
use crate::store::Store;

pub(super) enum Inbound {
    Postgres(PgListener),
    Nats(async_nats::Subscriber),
}

/// Most remote users this node keeps (their presence) from all other nodes together, and
/// most other nodes: past either, what a node says is ignored and counted (`bounds`).
const MAX_REMOTE_USERS: usize = 500_000;
const MAX_REMOTE_NODES: usize = 256;

/// The receiving half: opens what it hears, believes what opens.
pub(super) struct Listener {
    pub(super) channel: String,
    pub(super) keys: BusKeys,
    pub(super) node: NodeId,
    pub(super) replay: Replay,
    pub(super) hub: Hub,
    pub(super) feed: Feed,
    pub(super) sender: BusSender,
    pub(super) remote: Arc<Mutex<Remote>>,
    pub(super) store: Store,
    pub(super) health: BusHealth,
    pub(super) metrics: Metrics,
    /// When each reason for a refusal was last logged (at most one line a minute each).
    pub(super) warned: HashMap<&'static str, Instant>,
}

impl Listener {
    pub(super) async fn run(mut self, mut inbound: Inbound, mut link: mpsc::UnboundedReceiver<bool>) {
        loop {
            let payload: Vec<u8> = match &mut inbound {
                Inbound::Postgres(listener) => match listener.try_recv().await {
                    Ok(Some(n)) => {
                        // The first notification after a loss (our own heartbeat comes
                        // back within a beat) says the listening connection is back.
                        self.back();
                        match base64::engine::general_purpose::STANDARD_NO_PAD.decode(n.payload()) {
                            Ok(bytes) => bytes,
                            Err(_) => {
                                self.refuse(Rejected::Malformed);
                                continue;
                            }
                        }
                    }
                    Ok(None) => {
                        // The connection was lost; sqlx reconnects on the next call.
                        self.lost("the PostgreSQL bus's listening connection was lost; reconnecting");
                        continue;
                    }
                    Err(e) => {
                        self.lost(&format!("the PostgreSQL bus is down ({e}); retrying"));
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                },
                Inbound::Nats(subscriber) => {
                    tokio::select! {
                        m = subscriber.next() => match m {
                            Some(m) => m.payload.to_vec(),
                            None => return,
                        },
                        up = link.recv() => {
                            match up {
                                None => return,
                                Some(true) => self.back(),
                                Some(false) => self.lost("the NATS bus disconnected; reconnecting"),
                            }
                            continue;
                        }
                    }
                }
            };
            self.hear(&payload);
        }
    }

    /// Back on the bus after an outage: whatever was said meanwhile is gone, so catch up as
    /// a new node would (re-read the log, ask every node for its users), and give every node
    /// a full timeout to be heard again.
    fn back(&self) {
        if self.health.set_up(true) {
            tracing::warn!("back on the bus; re-reading the log and presence");
            with_lock(&self.remote, |r| r.refresh(Instant::now()));
            self.feed.wake();
            // A block made elsewhere meanwhile was not heard.
            self.hub.blocks_changed();
            self.sender.publish(BusEvent::Hello);
        }
    }

    fn lost(&self, why: &str) {
        if self.health.set_up(false) {
            tracing::warn!("cut off from the bus; messages still flow (the feed polls the log)");
        }
        self.health.set_problem(why.to_owned());
    }

    /// Counts a payload that was not believed, and says why (once a minute per reason).
    fn refuse(&mut self, why: Rejected) {
        self.metrics.bus_rejected(why.as_str());
        let now = Instant::now();
        let due = self.warned.get(why.as_str()).is_none_or(|at| now.duration_since(*at) >= Duration::from_secs(60));
        if due {
            self.warned.insert(why.as_str(), now);
            tracing::warn!(reason = why.as_str(), "{}", why.explain());
        }
    }

    fn hear(&mut self, payload: &[u8]) {
        let (header, body) = match self.keys.open(&self.channel, payload) {
            Ok(opened) => opened,
            Err(why) => return self.refuse(why),
        };
        if header.node == self.node {
            // Our own, come back (a PostgreSQL listener hears its own NOTIFYs).
            return;
        }
        if let Err(why) = self.replay.check(header, crate::now_ms()) {
            return self.refuse(why);
        }
        let Ok(events) = postcard::from_bytes::<Vec<BusEvent>>(&body) else {
            return self.refuse(Rejected::Unreadable);
        };
        let from = header.node;
        let known = with_lock(&self.remote, |r| {
            if r.len() >= MAX_REMOTE_NODES && !r.knows(from) { None } else { Some(r.heard(from, Instant::now())) }
        });
        match known {
            None => return self.refuse(Rejected::Bounds),
            // A node we did not know (it started, or we missed its hello): ask everyone.
            Some(true) => self.sender.publish(BusEvent::Hello),
            Some(false) => {}
        }
        for event in events {
            self.apply(event, from);
        }
    }

    fn apply(&mut self, event: BusEvent, from: NodeId) {
        match event {
            BusEvent::Online(users) | BusEvent::Offline(users) if users.is_empty() => {}
            BusEvent::Online(users) => {
                let changed = with_lock(&self.remote, |r| r.set(from, &users, true, MAX_REMOTE_USERS));
                let Some(changed) = changed else { return self.refuse(Rejected::Bounds) };
                for (user, online) in changed {
                    self.hub.set_remote(user, online);
                }
            }
            BusEvent::Offline(users) => {
                let changed = with_lock(&self.remote, |r| r.set(from, &users, false, MAX_REMOTE_USERS));
                for (user, online) in changed.unwrap_or_default() {
                    self.hub.set_remote(user, online);
                }
            }
            BusEvent::Hello => {
                let users = self.hub.local_online();
                for chunk in users.chunks(USERS_PER_EVENT) {
                    self.sender.publish(BusEvent::Online(chunk.to_vec()));
                }
            }
            BusEvent::Beat => {}
            BusEvent::Typing { from, to, on } => self.hub.here(Notice::Typing { from, to, on }),
            BusEvent::Read { reader, peer, up_to } => {
                self.hub.here(Notice::Read { reader, peer, up_to, except: None });
            }
            BusEvent::Log => self.feed.wake(),
            BusEvent::Logged(rows) => self.feed.offer(rows),
            BusEvent::Committed(messages) => {
                // Validated as a client's send is: a node's bug must not reach a browser.
                let valid = |m: &chat_protocol::StoredMessage| {
                    chat_protocol::validate_message_id(&m.id).is_ok()
                        && chat_protocol::validate_user(&m.from).is_ok()
                        && chat_protocol::validate_user(&m.to).is_ok()
                        && chat_protocol::validate_content(&m.content).is_ok()
                };
                if messages.iter().all(valid) {
                    let delivered = self.feed.committed_elsewhere(&self.hub, &messages);
                    self.metrics.feed_rows("commit").inc_by(delivered);
                } else {
                    self.refuse(Rejected::Unreadable);
                }
            }
            BusEvent::Blocks => self.hub.here(Notice::Unblocked),
            BusEvent::Blocked { blocker, blocked } => self.hub.here(Notice::Blocked { blocker, blocked }),
            BusEvent::Changed { id, deleted } => {
                let (hub, store) = (self.hub.clone(), self.store.clone());
                tokio::spawn(async move {
                    match store.message_by_id(id).await {
                        Ok(Some(message)) => hub.here(Notice::Changed { message, deleted }),
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "an edited message could not be read for delivery"),
                    }
                });
            }
        }
    }
}
