//! The outbox: sends not yet acknowledged, in the order the app made them.

use alloc::string::String;
use alloc::vec::Vec;

use chat_protocol::{MessageId, RequestId, UserRef};

#[derive(Clone, Debug)]
pub(super) struct PendingSend {
    pub(super) id: MessageId,
    pub(super) to: UserRef,
    pub(super) content: String,
    /// The request id of the latest transmission, if sent on the current connection.
    pub(super) req: Option<RequestId>,
}

/// Sends wait here until the server acks them (or refuses them for good). Each keeps its
/// id across reconnects, so the server stores it once however often it is sent.
#[derive(Debug, Default)]
pub(super) struct Outbox(Vec<PendingSend>);

impl Outbox {
    pub(super) fn push(&mut self, id: MessageId, to: UserRef, content: String) {
        self.0.push(PendingSend { id, to, content, req: None });
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn contains(&self, id: MessageId) -> bool {
        self.0.iter().any(|p| p.id == id)
    }

    /// The next send not transmitted on the current connection.
    pub(super) fn next_unsent(&mut self) -> Option<&mut PendingSend> {
        self.0.iter_mut().find(|p| p.req.is_none())
    }

    /// Removes the send that transmission `req` carried, if it was `id`'s latest.
    pub(super) fn acked(&mut self, req: RequestId, id: MessageId) -> Option<PendingSend> {
        let index = self.0.iter().position(|p| p.id == id && p.req == Some(req))?;
        Some(self.0.remove(index))
    }

    /// The send that transmission `req` carried.
    pub(super) fn by_request(&mut self, req: RequestId) -> Option<&mut PendingSend> {
        self.0.iter_mut().find(|p| p.req == Some(req))
    }

    pub(super) fn remove_request(&mut self, req: RequestId) -> Option<PendingSend> {
        let index = self.0.iter().position(|p| p.req == Some(req))?;
        Some(self.0.remove(index))
    }

    /// The connection closed: everything goes again on the next one.
    pub(super) fn disconnected(&mut self) {
        for pending in &mut self.0 {
            pending.req = None;
        }
    }

    pub(super) fn take(&mut self) -> Vec<PendingSend> {
        core::mem::take(&mut self.0)
    }
}
