//! Notices for users' connections that are not messages (typing, read receipts, edits,
//! blocks): one [`Hub::announce`] delivers a notice on this node and publishes it to the
//! others, whose bus listener applies it with [`Hub::here`], the same code.

use chat_protocol::{Cursor, ServerFrame, StoredMessage, UserRef};

use super::hub::Hub;
use super::notice::BusEvent;
use super::outbox::ConnId;

/// A notice for connections, wherever they are.
#[derive(Clone, Debug)]
pub(crate) enum Notice {
    /// `from` started or stopped typing to `to`.
    Typing {
        /// Who types.
        from: UserRef,
        /// To whom.
        to: UserRef,
        /// Started or stopped.
        on: bool,
    },
    /// `reader` read what `peer` sent up to `up_to`: both users' connections hear it (but
    /// `except`, the connection that marked it, which has its answer).
    Read {
        /// Who read.
        reader: UserRef,
        /// Whose messages.
        peer: UserRef,
        /// Up to where.
        up_to: Cursor,
        /// The connection that marked it (on its own node).
        except: Option<ConnId>,
    },
    /// A message was edited or deleted: every connection of both users (the editing one
    /// too) gets it as it is now.
    Changed {
        /// The message as it is now.
        message: StoredMessage,
        /// Deleted rather than edited.
        deleted: bool,
    },
    /// `blocker` blocked `blocked`: cached views of blocks are stale, and neither watches the
    /// other's presence any more.
    Blocked {
        /// Who blocked.
        blocker: UserRef,
        /// Whom.
        blocked: UserRef,
    },
    /// A block was lifted: cached views of blocks are stale.
    Unblocked,
}

impl Notice {
    /// The notice as the other nodes hear it (an edit by its message's id: each node reads
    /// it from the database).
    fn event(&self) -> BusEvent {
        match *self {
            Notice::Typing { from, to, on } => BusEvent::Typing { from, to, on },
            Notice::Read { reader, peer, up_to, .. } => BusEvent::Read { reader, peer, up_to },
            Notice::Changed { ref message, deleted } => BusEvent::Changed { id: message.id, deleted },
            Notice::Blocked { blocker, blocked } => BusEvent::Blocked { blocker, blocked },
            Notice::Unblocked => BusEvent::Blocks,
        }
    }
}

impl Hub {
    /// Delivers `notice` to this node's connections and publishes it to the other nodes.
    pub(crate) fn announce(&self, notice: Notice) {
        let event = notice.event();
        self.here(notice);
        self.publish(event);
    }

    /// What `notice` does on this node: for this node's own notices ([`Hub::announce`]) and
    /// the other nodes' (the bus's listener).
    pub(crate) fn here(&self, notice: Notice) {
        match notice {
            Notice::Typing { from, to, on } => {
                self.deliver(&ServerFrame::Typing { from, on }, &[(to, None)]);
            }
            Notice::Read { reader, peer, up_to, except } => {
                self.deliver(&ServerFrame::Read { reader, peer, up_to }, &[(peer, None), (reader, except)]);
            }
            Notice::Changed { message, deleted } => {
                let targets = [(message.to, None), (message.from, None)];
                self.deliver_changed(&message, deleted, &targets);
            }
            Notice::Blocked { blocker, blocked } => {
                self.blocks_changed();
                self.unwatch_between(blocker, blocked);
            }
            Notice::Unblocked => self.blocks_changed(),
        }
    }
}
