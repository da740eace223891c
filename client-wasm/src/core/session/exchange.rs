//! Sends and their acks, refusals and retries; the requests the session makes itself
//! (catch-up pages, the conversation list that ends a catch-up, pages of any list).

use alloc::string::String;
use alloc::vec::Vec;

use chat_protocol::{
    ClientFrame, Conversation, Cursor, ErrorCode, MAX_CONVERSATIONS_PAGE, MAX_SYNC_PAGE, MessageId, Millis, RequestId,
    ServerFrame, StoredMessage,
};

use super::super::requests::Purpose;
use super::super::timers::Timer;
use super::super::timers::doubled;
use super::super::vocabulary::{Event, Status};
use super::{Session, transmit};

impl Session {
    /// Sends what waits in the outbox, in order, as far as the request budget allows; the
    /// rest goes when the budget refills ([`Timer::Pace`]) or after a refusal's backoff.
    pub(super) fn flush_sends(&mut self, now: Millis) {
        if self.status != Status::Open || self.timers.is_set(Timer::RetrySends) {
            return;
        }
        self.timers.stop(Timer::Pace);
        loop {
            let Some(pending) = self.outbox.next_unsent() else { return };
            if !self.pacer.take(now) {
                self.timers.set(Timer::Pace, self.pacer.ready_at());
                return;
            }
            let req = self.requests.next_id();
            pending.req = Some(req);
            let frame = ClientFrame::Send { req, id: pending.id, to: pending.to, content: pending.content.clone() };
            self.transmit(&frame);
        }
    }

    pub(super) fn on_sent(&mut self, req: RequestId, id: MessageId, created_at: Millis) {
        // Otherwise an ack for a transmission we no longer track (a duplicate resend's ack).
        let Some(pending) = self.outbox.acked(req, id) else { return };
        self.retries = 0;
        let Some(user) = self.user else { return };
        let message =
            StoredMessage { id, from: user, to: pending.to, content: pending.content, created_at, read: false };
        // Our own message will not be reported again if a catch-up returns it.
        self.seen.insert(id);
        self.events.push(Event::Sent(message));
    }

    pub(super) fn on_error(&mut self, now: Millis, req: RequestId, code: ErrorCode, message: String) {
        if let Some(pending) = self.outbox.by_request(req) {
            if code.is_retryable() {
                // Overloaded, unavailable, rate limited...: leave it queued; it goes out again
                // after a growing pause on this connection, or after the next reconnect.
                pending.req = None;
                if code == ErrorCode::RATE_LIMITED {
                    self.pacer.empty();
                }
                if !self.timers.is_set(Timer::RetrySends) {
                    let delay = self.retry_delay();
                    self.timers.set(Timer::RetrySends, now + delay);
                }
            } else if let Some(pending) = self.outbox.remove_request(req) {
                self.events.push(Event::SendFailed { id: pending.id, code, message });
            }
            return;
        }
        let Some(request) = self.requests.remove(req) else { return };
        match request.purpose {
            Purpose::App => self.events.push(Event::RequestFailed { req, code, message }),
            Purpose::Sync => {
                if let ClientFrame::CatchUp { after, .. } = request.frame
                    && code.is_retryable()
                {
                    // The catch-up must finish: ask again from the same place after a pause.
                    let delay = self.retry_delay();
                    self.resync_from = Some(after);
                    self.timers.set(Timer::Resync, now + delay);
                }
            }
            Purpose::CaughtUp => self.events.push(Event::CaughtUp { count: self.sync_count, conversations: None }),
            Purpose::Ping | Purpose::Refresh => {}
        }
    }

    /// The delay before trying a refused send or catch-up again: doubling from the base up
    /// to the cap, with jitter, so tabs refused together do not come back together.
    pub(super) fn retry_delay(&mut self) -> Millis {
        let base = self.timings.backoff_base.max(250);
        let ceiling = doubled(base, self.retries.min(16), self.timings.backoff_cap.max(base));
        self.retries = self.retries.saturating_add(1);
        let jitter = i64::try_from(self.random() % u64::try_from(ceiling / 2 + 1).unwrap_or(1)).unwrap_or(0);
        ceiling / 2 + jitter
    }

    // ----- requests the session makes itself -----

    /// Sends a request of the session's own on the open connection and tracks it.
    pub(super) fn start_internal(
        &mut self,
        now: Millis,
        purpose: Purpose,
        frame: impl FnOnce(RequestId) -> ClientFrame,
    ) {
        let req = self.requests.next_id();
        let frame = frame(req);
        self.transmit(&frame);
        self.requests.insert(req, purpose, frame, now + self.timings.request_timeout, true);
    }

    pub(super) fn request_sync(&mut self, now: Millis, after: u64) {
        self.start_internal(now, Purpose::Sync, |req| ClientFrame::CatchUp { req, after, limit: MAX_SYNC_PAGE });
    }

    /// A page of the catch-up: everything of this user logged after the position asked
    /// for, up to `last`.
    pub(super) fn on_catch_up_page(&mut self, now: Millis, messages: Vec<StoredMessage>, last: u64, more: bool) {
        for message in messages {
            if self.report_message(message, false) {
                self.sync_count += 1;
            }
        }
        self.position = Some(self.position.map_or(last, |p| p.max(last)));
        if more {
            self.request_sync(now, last);
            return;
        }
        // Caught up to the log's end as the server read it; live messages that came
        // meanwhile were delivered in log order after it, so the position may move to them.
        self.catching_up = false;
        let live = std::mem::take(&mut self.live_during_catch_up);
        self.position = self.position.map(|p| p.max(live));
        // Finish with fresh unread counts.
        self.start_internal(now, Purpose::CaughtUp, |req| ClientFrame::ConversationsPage {
            req,
            before: None,
            limit: MAX_CONVERSATIONS_PAGE,
        });
    }

    /// One page of a conversation list: asks for the next with the same request id, or
    /// hands the whole list to whoever asked (the app, or the end of a catch-up).
    pub(super) fn on_conversations_page(
        &mut self,
        now: Millis,
        req: RequestId,
        mut conversations: Vec<Conversation>,
        next: Option<Cursor>,
    ) {
        let deadline = now + self.timings.request_timeout;
        let Some(request) = self.requests.get_mut(req) else { return };
        // `append` (a copy), not `extend` (an iterator instance): smaller in the browser bundle.
        request.gathered.append(&mut conversations);
        if let Some(before) = next {
            // A reconnect resends this page request; what was gathered is kept.
            request.frame = match request.frame {
                ClientFrame::SuperviseConversations { student, .. } => ClientFrame::SuperviseConversations {
                    req,
                    student,
                    before: Some(before),
                    limit: MAX_CONVERSATIONS_PAGE,
                },
                _ => ClientFrame::ConversationsPage { req, before: Some(before), limit: MAX_CONVERSATIONS_PAGE },
            };
            request.deadline = deadline;
            transmit(&mut self.pacer, &mut self.transmits, &request.frame);
            return;
        }
        let Some(request) = self.requests.remove(req) else { return };
        let all = request.gathered;
        if request.purpose == Purpose::CaughtUp {
            self.events.push(Event::CaughtUp { count: self.sync_count, conversations: Some(all) });
        } else {
            self.events.push(Event::Response { req, frame: ServerFrame::Conversations { req, conversations: all } });
        }
    }
}
