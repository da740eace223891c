//! Requests waiting for an answer, each with the purpose it was made for: the app's own,
//! or one the session makes for itself (a ping, a catch-up page, a token refresh, the
//! conversation list that ends a catch-up).

use alloc::vec::Vec;

use chat_protocol::{ClientFrame, Conversation, Millis, RequestId};

use super::timers::earliest;

/// Who made a request, and so who hears its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// The app: answered with `Event::Response` or `Event::RequestFailed`.
    App,
    /// The heartbeat: no answer in time means the connection is dead.
    Ping,
    /// A page of the catch-up after a reconnect.
    Sync,
    /// The conversation list that ends a catch-up (`Event::CaughtUp`).
    CaughtUp,
    /// Replacing the connection's token.
    Refresh,
}

impl Purpose {
    /// Whether the request belongs to one connection: dropped when it closes (the session
    /// starts it again on the next one if it is still wanted). The app's requests wait
    /// for the next connection instead.
    pub(super) const fn per_connection(self) -> bool {
        !matches!(self, Purpose::App)
    }
}

#[derive(Clone, Debug)]
pub(super) struct PendingRequest {
    /// What to send again after a reconnect (for a paged list: its next page).
    pub(super) frame: ClientFrame,
    pub(super) deadline: Millis,
    /// Sent on the current connection.
    pub(super) sent: bool,
    pub(super) purpose: Purpose,
    /// A conversation list's pages gathered so far.
    pub(super) gathered: Vec<Conversation>,
}

/// The requests in flight, in the order they were made. Few at a time, so a vector is enough.
#[derive(Debug, Default)]
pub(super) struct Requests {
    list: Vec<(RequestId, PendingRequest)>,
    last_id: RequestId,
}

impl Requests {
    /// A fresh request id (never 0).
    pub(super) fn next_id(&mut self) -> RequestId {
        self.last_id = self.last_id.wrapping_add(1).max(1);
        self.last_id
    }

    pub(super) fn insert(
        &mut self,
        req: RequestId,
        purpose: Purpose,
        frame: ClientFrame,
        deadline: Millis,
        sent: bool,
    ) {
        self.list.push((req, PendingRequest { frame, deadline, sent, purpose, gathered: Vec::new() }));
    }

    pub(super) fn remove(&mut self, req: RequestId) -> Option<PendingRequest> {
        // `remove`, not `swap_remove`: the vector stays in request order.
        let index = self.list.iter().position(|(r, _)| *r == req)?;
        Some(self.list.remove(index).1)
    }

    pub(super) fn get_mut(&mut self, req: RequestId) -> Option<&mut PendingRequest> {
        self.list.iter_mut().find(|(r, _)| *r == req).map(|(_, p)| p)
    }

    /// What `req` was made for, if it is still waiting.
    pub(super) fn purpose(&self, req: RequestId) -> Option<Purpose> {
        self.list.iter().find(|(r, _)| *r == req).map(|(_, p)| p.purpose)
    }

    /// Whether a request with this purpose is waiting.
    pub(super) fn has(&self, purpose: Purpose) -> bool {
        self.list.iter().any(|(_, p)| p.purpose == purpose)
    }

    /// The connection closed: its own requests are dropped, the app's wait to be sent again.
    pub(super) fn disconnected(&mut self) {
        // Plain loops over `remove` rather than `retain`: one less generic instance in the
        // browser bundle.
        let mut i = 0;
        while i < self.list.len() {
            if self.list[i].1.purpose.per_connection() {
                self.list.remove(i);
            } else {
                self.list[i].1.sent = false;
                i += 1;
            }
        }
    }

    /// The requests not sent on the current connection, each marked as sent now.
    pub(super) fn unsent(&mut self) -> impl Iterator<Item = &ClientFrame> {
        self.list.iter_mut().filter(|(_, r)| !r.sent).map(|(_, r)| {
            r.sent = true;
            &r.frame
        })
    }

    /// Removes and returns the first request whose deadline has passed.
    pub(super) fn pop_expired(&mut self, now: Millis) -> Option<(RequestId, Purpose)> {
        let index = self.list.iter().position(|(_, p)| now >= p.deadline)?;
        let (req, p) = self.list.remove(index);
        Some((req, p.purpose))
    }

    pub(super) fn next_deadline(&self) -> Option<Millis> {
        let mut next = None;
        for (_, p) in &self.list {
            next = earliest(next, Some(p.deadline));
        }
        next
    }

    /// Removes everything.
    pub(super) fn take(&mut self) -> Vec<(RequestId, PendingRequest)> {
        core::mem::take(&mut self.list)
    }
}
