//! What the nodes of one deployment tell each other, and the handles that queue it for the
//! bus: a leaf of `delivery` (the hub, the feed and the connections publish through it; the
//! bus's publisher and listener carry it), so nothing here knows the bus, the hub or the feed.

use chat_protocol::{Cursor, UserRef};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use crate::store::Logged;

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
    /// The message log moved (rows not carried: too many for one payload, or unknown).
    Log,
    /// The message log moved: these rows, as this node's sequencing round logged them.
    Logged(Vec<Logged>),
    /// A user lifted a block: cached views of blocks are stale.
    Blocks,
    /// A message was edited or deleted: each node reads it and tells its connections.
    Changed {
        /// The message.
        id: chat_protocol::MessageId,
        /// Deleted rather than edited.
        deleted: bool,
    },
    /// `blocker` blocked `blocked`: cached views of blocks are stale, and neither watches
    /// the other's presence any more.
    Blocked {
        /// Who blocked.
        blocker: UserRef,
        /// Whom.
        blocked: UserRef,
    },
    /// The sending node's writer just committed (and acked) these messages: each node
    /// delivers them at once to its connections that take messages before their log
    /// position; the log brings their positions after.
    Committed(Vec<chat_protocol::StoredMessage>),
}

impl BusEvent {
    /// Whether the event is what a message waits for on the other nodes (a commit, or the
    /// log moved): such events go out first, counted as wake-ups.
    pub(crate) fn wakes(&self) -> bool {
        matches!(self, BusEvent::Log | BusEvent::Logged(_) | BusEvent::Committed(_))
    }
}

/// Publishing events: cheap to clone, never blocks. Events beyond a full queue (the bus is
/// down and the queue filled) are dropped and counted: presence is re-sent on reconnect.
#[derive(Clone, Debug)]
pub(crate) struct BusSender {
    tx: mpsc::Sender<BusEvent>,
    metrics: Metrics,
}

impl BusSender {
    /// A sender into `tx` (the bus's publisher reads the other end), counting drops in `metrics`.
    pub(crate) fn new(tx: mpsc::Sender<BusEvent>, metrics: Metrics) -> BusSender {
        BusSender { tx, metrics }
    }

    /// The server's metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Queues an event for the other nodes.
    pub(crate) fn publish(&self, event: BusEvent) {
        if self.tx.try_send(event).is_err() {
            self.metrics.bus_dropped();
        }
    }
}

/// A running bus: what the feed needs to wake the other nodes.
#[derive(Clone, Debug)]
pub(crate) struct Bus {
    sender: BusSender,
    max_body: usize,
}

impl Bus {
    /// The feed's handle on `sender`, for payloads of at most `max_body` bytes.
    pub(crate) fn new(sender: BusSender, max_body: usize) -> Bus {
        Bus { sender, max_body }
    }

    /// Tells the other nodes the log moved, with `rows` (what this node's round logged,
    /// empty when unknown) when they fit one payload.
    pub(crate) fn log_moved(&self, rows: &[Logged]) {
        let size: usize = rows.iter().map(|(_, m)| m.encoded_len_bound() + 10).sum();
        if rows.is_empty() || size > self.max_body {
            self.sender.publish(BusEvent::Log);
        } else {
            self.sender.publish(BusEvent::Logged(rows.to_vec()));
        }
    }

    /// Tells the other nodes this node's writer committed `messages`, when they fit one
    /// payload (at light load they always do; a large batch waits for the log's wake-up).
    pub(crate) fn committed(&self, messages: &[chat_protocol::StoredMessage]) {
        // Each message's bound, and the payload's own framing (list lengths, the variant).
        let size: usize = messages.iter().map(|m| m.encoded_len_bound()).sum::<usize>() + 16;
        if !messages.is_empty() && size <= self.max_body {
            self.sender.publish(BusEvent::Committed(messages.to_vec()));
        }
    }
}

/// Why a payload from the bus was not believed (a metric label and a log line each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Rejected {
    /// Not in the sealed format at all.
    Malformed,
    /// Sealed under a key this node does not hold.
    UnknownKey,
    /// The key matched but the payload did not open: forged or altered.
    Forged,
    /// Sealed too far from this node's clock.
    Stale,
    /// A sequence number this node already heard from that node.
    Replayed,
    /// Opened, but its content is not a bus message (a node of another version?).
    Unreadable,
    /// A carried log position the log does not hold.
    Position,
    /// More remote nodes or users than this node keeps.
    Bounds,
}

impl Rejected {
    /// The metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Rejected::Malformed => "malformed",
            Rejected::UnknownKey => "unknown_key",
            Rejected::Forged => "forged",
            Rejected::Stale => "stale",
            Rejected::Replayed => "replayed",
            Rejected::Unreadable => "unreadable",
            Rejected::Position => "position",
            Rejected::Bounds => "bounds",
        }
    }

    /// What an operator should know, once.
    pub(crate) fn explain(self) -> &'static str {
        match self {
            Rejected::Malformed | Rejected::Forged => {
                "a bus payload that was not sealed by a node of this deployment was ignored: someone with database \
                 or NATS access is publishing on the bus's channel (or a node runs an older chat-server)"
            }
            Rejected::UnknownKey => {
                "a bus payload sealed under a key this node does not hold was ignored: do all nodes share \
                 CHAT_BUS_KEY (during a rotation every node must hold both keys)?"
            }
            Rejected::Stale => {
                "a bus payload sealed more than 30 s away from this node's clock was ignored: a replay, or the \
                 nodes' clocks disagree (are they synchronised with NTP?)"
            }
            Rejected::Replayed => "a bus payload heard before was ignored (a replay)",
            Rejected::Unreadable => {
                "a sealed bus payload this node cannot read was ignored (a node of another version?)"
            }
            Rejected::Position => {
                "a log position carried on the bus is past the end of the message log; it was ignored and the log read"
            }
            Rejected::Bounds => {
                "another node named more users (or there are more nodes) than this node keeps; the excess was \
                 ignored (their presence shows offline here)"
            }
        }
    }
}
