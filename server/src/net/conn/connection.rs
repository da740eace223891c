//! An authenticated connection: what it knows, and how it answers. Its requests are handled
//! in `requests` (reading, rate limits, the everyday requests) and `safety` (the school's
//! rules, blocks, reports, edits, supervision), both on this type.

use std::collections::HashMap;

use chat_protocol::{ErrorCode, Millis, PageBudget, ServerFrame, UserRef};

use crate::delivery::outbox::Outbox;
use crate::net::state::AppState;
use crate::store::BlockState;

/// An authenticated connection's reader: answers requests through its outbox.
pub(super) struct Connection {
    pub(super) state: AppState,
    pub(super) me: UserRef,
    pub(super) outbox: Outbox,
    pub(super) token_expires_at: Millis,
    pub(super) watching: Vec<UserRef>,
    /// What this connection learnt of its peers: the blocks either way (good while the hub's
    /// blocks epoch has not moved) and whether the peer wrote first (once true, for good).
    pub(super) peers: HashMap<UserRef, PeerView>,
    /// Whose conversations this teacher may read as a supervisor (kept up to date by token
    /// refreshes).
    pub(super) supervision: crate::auth::Supervision,
    /// The protocol version the client speaks.
    pub(super) version: u16,
}

/// A connection's view of one peer, for the safety rules.
#[derive(Clone, Copy, Debug)]
pub(super) struct PeerView {
    pub(super) epoch: u64,
    pub(super) blocks: BlockState,
    pub(super) wrote_first: bool,
}

impl Connection {
    pub(super) fn reply(&self, frame: &ServerFrame) {
        self.outbox.push_frame(frame);
    }

    pub(super) fn error(&self, req: u32, code: ErrorCode, message: impl Into<String>) {
        self.state.metrics.error(code);
        self.reply(&ServerFrame::Error { req, code, message: message.into() });
    }

    pub(super) fn store_error(&self, req: u32, e: &crate::store::StoreError) {
        tracing::error!(error = %e, user = ?self.me, "a request failed in the database");
        if e.is_unavailable() {
            self.error(req, ErrorCode::UNAVAILABLE, "the database is unavailable; retry shortly");
        } else {
            self.error(req, ErrorCode::INTERNAL, "the server could not complete the request; retry");
        }
    }
}

/// Keeps the longest prefix of `items` that fits one page by bytes; returns whether any
/// were cut (then the page says there is more, from its last item on).
pub(super) fn pack<T>(items: &mut Vec<T>, size: impl Fn(&T) -> usize) -> bool {
    let mut budget = PageBudget::new();
    let keep = items.iter().take_while(|item| budget.admit(size(item))).count();
    let cut = keep < items.len();
    items.truncate(keep);
    cut
}
