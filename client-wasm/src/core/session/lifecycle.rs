//! A connection's life: attempts with backoff, the welcome (resends, catch-up), the end.

use alloc::string::String;

use chat_protocol::{ErrorCode, Limits, Millis, UserRef};

use super::super::pacer::Pacer;
use super::super::requests::Purpose;
use super::super::timers::Timer;
use super::super::timers::doubled;
use super::super::vocabulary::{Action, Event, Status, TokenPurpose};
use super::{Session, transmit};

impl Session {
    pub(super) fn start_attempt(&mut self, now: Millis) {
        self.timers.stop(Timer::Reconnect);
        self.timers.set(Timer::Connect, now + self.timings.connect_timeout);
        self.set_status(Status::Connecting);
        if !self.fetching_token {
            self.fetching_token = true;
            self.actions.push(Action::FetchToken(TokenPurpose::Connect));
        }
    }

    /// Closes the socket from this side and handles it as a close.
    pub(super) fn drop_connection(&mut self, now: Millis) {
        self.actions.push(Action::Close(1000));
        self.handle_close(now, None);
    }

    pub(super) fn on_disconnected(&mut self) {
        self.timers.stop_connection();
        self.resync_from = None;
        self.requests.disconnected();
        self.outbox.disconnected();
        self.typing.disconnected();
        self.stop_typing_in(None, None);
        self.transmits.clear();
    }

    pub(super) fn schedule_reconnect(&mut self, now: Millis) {
        // Capped exponential backoff with full jitter.
        let ceiling = doubled(self.timings.backoff_base, self.attempt.min(20), self.timings.backoff_cap).max(1);
        let delay = i64::try_from(self.random() % u64::try_from(ceiling).unwrap_or(1)).unwrap_or(0);
        self.attempt = self.attempt.saturating_add(1);
        self.timers.set(Timer::Reconnect, now + delay);
        self.set_status(Status::Reconnecting);
    }

    pub(super) fn on_welcome(
        &mut self,
        now: Millis,
        user: UserRef,
        name: String,
        times: (Millis, Millis),
        limits: Limits,
    ) {
        let (_server_time, token_expires_at) = times;
        if self.status != Status::Connecting {
            return;
        }
        // Everything logged from this session's first welcome on is the session's to see:
        // the `Position` frame that follows the welcome says where that starts.
        self.timers.stop(Timer::Connect);
        self.attempt = 0;
        self.auth_retry_used = false;
        self.user = Some(user);
        self.awaiting_start = true;
        self.limits = Some(limits);
        self.pacer = Pacer::new(&limits, now);
        self.retries = 0;
        self.set_token_expiry(now, token_expires_at);
        self.timers.set(Timer::Heartbeat, now + self.heartbeat_interval());
        self.set_status(Status::Open);
        self.events.push(Event::Welcome { user, name });
        // Resend every unacknowledged message, in order, with its original id, paced to the
        // server's announced rate (a long outbox does not arrive as one burst).
        self.flush_sends(now);
        // Then the requests made while offline.
        for frame in self.requests.unsent() {
            transmit(&mut self.pacer, &mut self.transmits, frame);
        }
        // Catch up on what arrived while we were away.
        if self.was_open
            && let Some(after) = self.position
        {
            self.sync_count = 0;
            self.catching_up = true;
            self.live_during_catch_up = 0;
            self.request_sync(now, after);
        }
        self.was_open = true;
    }

    pub(super) fn set_token_expiry(&mut self, now: Millis, expires_at: Millis) {
        let lifetime = (expires_at - now).max(0);
        let lead = self.timings.refresh_before_expiry.min(lifetime / 5);
        self.timers.set(Timer::Refresh, expires_at - lead);
    }

    pub(super) fn heartbeat_interval(&self) -> Millis {
        let idle = self.limits.map_or(60_000, |l| Millis::from(l.idle_timeout_ms));
        (idle / 3).clamp(1_000, 30_000)
    }

    pub(super) fn fail_everything(&mut self, code: ErrorCode, why: &str) {
        // By reference, the lists dropped whole after: no by-value iterator (and its drop) per list.
        for pending in &self.outbox.take() {
            self.events.push(Event::SendFailed { id: pending.id, code, message: why.into() });
        }
        for (req, request) in &self.requests.take() {
            if request.purpose == Purpose::App {
                self.events.push(Event::RequestFailed { req: *req, code, message: why.into() });
            }
        }
    }
}
