//! [`Session`]: the app's calls, the transport's inputs (`handle_*`) and outputs (`poll_*`).
//! A connection's life is in `lifecycle`, sends and the session's own requests in `exchange`.

mod exchange;
mod lifecycle;

use alloc::string::String;
use alloc::vec::Vec;

use chat_protocol::{
    ClientFrame, ErrorCode, IdGenerator, Limits, MessageId, Millis, PROTOCOL_VERSION, RequestId, ServerFrame,
    StoredMessage, UserRef,
};

use super::dedup::SeenIds;
use super::outbox::Outbox;
use super::pacer::Pacer;
use super::requests::{Purpose, Requests};
use super::timers::{Timer, Timers, earliest};
use super::typing::Typing;
use super::vocabulary::{Action, Event, Request, Status, Timings, TokenPurpose};

/// The session.
#[derive(Debug)]
pub struct Session {
    timings: Timings,
    status: Status,
    rng: u64,
    ids: IdGenerator,
    timers: Timers,

    token: Option<String>,
    fetching_token: bool,
    /// Failed attempts since the last welcome.
    attempt: u32,
    /// The last close carried an auth failure; one more try with a fresh token is allowed.
    auth_retry_used: bool,
    /// The browser said it is offline: no reconnect attempt (and no token fetch) until it
    /// says it is back, but for a slow fallback in case that event never comes.
    offline: bool,
    /// Whether a welcome has been received before (so the next one is a reconnect).
    was_open: bool,

    user: Option<UserRef>,
    limits: Option<Limits>,
    /// Spends the server's announced request budget.
    pacer: Pacer,
    /// Consecutive retryable refusals (of sends, or of a catch-up page), for the backoff.
    retries: u32,

    outbox: Outbox,
    requests: Requests,
    seen: SeenIds,
    typing: Typing,

    /// The message log position this session has every message of its user up to (the
    /// server's at the first welcome, then live messages and catch-up pages move it): a
    /// catch-up after a disconnect asks for what follows it.
    position: Option<u64>,
    /// A catch-up is running: live messages do not move `position` until it ends (what
    /// lies between would be lost if the connection dropped now).
    catching_up: bool,
    /// The newest live position seen during the running catch-up.
    live_during_catch_up: u64,
    /// Welcomed, and the `Position` that follows the welcome (where live delivery starts)
    /// has not come yet.
    awaiting_start: bool,
    /// Messages new to this session in the running catch-up.
    sync_count: u32,
    /// Where a refused catch-up starts again when [`Timer::Resync`] fires.
    resync_from: Option<u64>,
    /// The server's explanation in the fatal frame before a close, for the app.
    fatal: Option<(ErrorCode, String)>,
    /// The school's quiet hours for this user, `[start, end)` (students only).
    quiet: Vec<(Millis, Millis)>,

    transmits: Vec<Vec<u8>>,
    actions: Vec<Action>,
    events: Vec<Event>,
}

impl Session {
    /// A session that has not connected yet. `seed` feeds the id and jitter generator;
    /// pass 8 random bytes from the platform.
    #[must_use]
    pub fn new(timings: Timings, seed: u64) -> Self {
        Session {
            timings,
            status: Status::Idle,
            rng: seed | 1,
            ids: IdGenerator::new(),
            timers: Timers::default(),
            token: None,
            fetching_token: false,
            attempt: 0,
            auth_retry_used: false,
            offline: false,
            was_open: false,
            user: None,
            limits: None,
            pacer: Pacer::default(),
            retries: 0,
            outbox: Outbox::default(),
            requests: Requests::default(),
            seen: SeenIds::default(),
            typing: Typing::default(),
            position: None,
            catching_up: false,
            live_during_catch_up: 0,
            awaiting_start: false,
            sync_count: 0,
            resync_from: None,
            fatal: None,
            quiet: Vec::new(),
            transmits: Vec::new(),
            actions: Vec::new(),
            events: Vec::new(),
        }
    }

    /// The current status.
    #[must_use]
    pub fn status(&self) -> Status {
        self.status
    }

    /// Who the server says we are, once welcomed.
    #[must_use]
    pub fn user(&self) -> Option<UserRef> {
        self.user
    }

    /// Sends waiting for their ack.
    #[must_use]
    pub fn pending_sends(&self) -> usize {
        self.outbox.len()
    }

    // ----- the app's calls -----

    /// Continues where another session of this user left off (a browser tab taking over the
    /// connection from one that closed): the first welcome then catches up on everything
    /// logged after `position` (that session's [`Session::position`]), as after a reconnect,
    /// instead of starting at the welcome. Call it before `connect`.
    pub fn resume_from(&mut self, position: u64) {
        self.position = Some(self.position.map_or(position, |p| p.max(position)));
        self.was_open = true;
    }

    /// The message log position this session has every message up to (`None` before the
    /// first welcome): what another session resumes from.
    #[must_use]
    pub fn position(&self) -> Option<u64> {
        self.position
    }

    /// Starts connecting (also after `Unauthorized` or `Closed`).
    pub fn connect(&mut self, now: Millis) {
        if matches!(self.status, Status::Connecting | Status::Open) {
            return;
        }
        self.attempt = 0;
        self.auth_retry_used = false;
        self.start_attempt(now);
    }

    /// Closes for good: pending sends and requests fail with `client_closed`.
    pub fn close(&mut self, _now: Millis) {
        if matches!(self.status, Status::Open | Status::Connecting) {
            self.actions.push(Action::Close(1000));
        }
        self.timers.stop_all();
        self.fail_everything(ErrorCode::CLIENT_CLOSED, "the client was closed");
        self.set_status(Status::Closed);
    }

    /// Queues a message. It is sent now if the connection is open, or as soon as it is;
    /// it stays queued across reconnects until the server acks it ([`Event::Sent`]) or
    /// refuses it for good ([`Event::SendFailed`]).
    ///
    /// # Errors
    /// The protocol's validation code (empty content, too long, bad recipient), or
    /// `client_closed` / `unauthorized` when the session cannot send any more.
    pub fn send(&mut self, now: Millis, to: UserRef, content: String) -> Result<MessageId, ErrorCode> {
        let id = self.new_message_id(now);
        self.send_with_id(now, id, to, content)
    }

    /// A fresh message id (time-ordered), for a send the app wants to name before it is made:
    /// to store it durably first, then [`Session::send_with_id`].
    pub fn new_message_id(&mut self, now: Millis) -> MessageId {
        let random = self.random().to_le_bytes();
        self.ids.next(u64::try_from(now.max(0)).unwrap_or(0), random)
    }

    /// Queues a message under an id chosen before: a new one from [`Session::new_message_id`],
    /// or one restored from durable storage after a reload (the server stores each id once, so
    /// a message already stored is acked, not stored twice). Queuing an id that is already in
    /// the outbox changes nothing. Otherwise as [`Session::send`].
    ///
    /// # Errors
    /// As [`Session::send`], and `bad_message_id` for the nil id.
    pub fn send_with_id(
        &mut self,
        now: Millis,
        id: MessageId,
        to: UserRef,
        content: String,
    ) -> Result<MessageId, ErrorCode> {
        self.check_usable()?;
        chat_protocol::validate_message_id(&id)?;
        chat_protocol::validate_user(&to)?;
        chat_protocol::validate_content(&content)?;
        if Some(to) == self.user {
            return Err(ErrorCode::SELF_MESSAGE);
        }
        if self.outbox.contains(id) {
            return Ok(id);
        }
        self.typing.sent_to(to);
        self.outbox.push(id, to, content);
        self.flush_sends(now);
        Ok(id)
    }

    /// Starts a request; its answer arrives as [`Event::Response`] or
    /// [`Event::RequestFailed`] with the returned id. Made while not connected, it waits
    /// for the connection (its timeout running).
    ///
    /// # Errors
    /// The protocol's validation code, or `client_closed` / `unauthorized`.
    pub fn request(&mut self, now: Millis, request: Request) -> Result<RequestId, ErrorCode> {
        self.request_frame(now, |req| Ok(request.into_frame(req)))
    }

    /// [`Session::request`] for a frame the caller builds around the request id it is given
    /// (the browser core builds its frames from the package's arguments this way, without a
    /// [`Request`] in between: 0.2 KB less of the bundle), or refuses with an error code. The
    /// frame must be one of an app's requests (what [`Request::into_frame`] makes).
    pub(crate) fn request_frame(
        &mut self,
        now: Millis,
        frame: impl FnOnce(RequestId) -> Result<ClientFrame, ErrorCode>,
    ) -> Result<RequestId, ErrorCode> {
        self.check_usable()?;
        let req = self.requests.next_id();
        let frame = frame(req)?;
        if let ClientFrame::Typing { peer, on, .. } = frame
            && !self.typing.needs_sending(now, peer, on, self.timings.typing_throttle)
        {
            // Throttled, or nothing to clear: answered locally.
            chat_protocol::validate_user(&peer)?;
            self.events.push(Event::Response { req, frame: ServerFrame::Done { req } });
            return Ok(req);
        }
        frame.validate()?;
        let sent = self.status == Status::Open;
        if sent {
            self.transmit(&frame);
        }
        self.requests.insert(req, Purpose::App, frame, now + self.timings.request_timeout, sent);
        Ok(req)
    }

    fn check_usable(&self) -> Result<(), ErrorCode> {
        match self.status {
            Status::Closed => Err(ErrorCode::CLIENT_CLOSED),
            Status::Unauthorized => Err(ErrorCode::UNAUTHORIZED),
            Status::Refused => Err(ErrorCode::ORIGIN_NOT_ALLOWED),
            _ => Ok(()),
        }
    }

    // ----- the transport's inputs -----

    /// The token provider answered.
    pub fn handle_token(&mut self, now: Millis, purpose: TokenPurpose, token: String) {
        match purpose {
            TokenPurpose::Connect => {
                self.fetching_token = false;
                if self.status != Status::Connecting {
                    return;
                }
                self.token = Some(token);
                self.actions.push(Action::Open);
            }
            TokenPurpose::Refresh => {
                if self.status != Status::Open {
                    return;
                }
                self.token = Some(token.clone());
                self.start_internal(now, Purpose::Refresh, |req| ClientFrame::RefreshToken { req, token });
            }
        }
    }

    /// The token provider failed (network error, signed out...). For a connect, retried
    /// with backoff; for a refresh, tried again shortly.
    pub fn handle_token_error(&mut self, now: Millis, purpose: TokenPurpose) {
        match purpose {
            TokenPurpose::Connect => {
                self.fetching_token = false;
                if self.status == Status::Connecting {
                    self.schedule_reconnect(now);
                }
            }
            TokenPurpose::Refresh => self.timers.set(Timer::Refresh, now + self.timings.backoff_base.max(1_000)),
        }
    }

    /// The socket opened: say hello.
    pub fn handle_open(&mut self, _now: Millis) {
        if self.status != Status::Connecting {
            return;
        }
        let token = self.token.clone().unwrap_or_default();
        self.transmit(&ClientFrame::Hello { version: PROTOCOL_VERSION, token });
    }

    /// The socket closed (or failed to open). `code` is the WebSocket close code, if any.
    pub fn handle_close(&mut self, now: Millis, code: Option<u16>) {
        if matches!(self.status, Status::Closed | Status::Unauthorized | Status::Refused | Status::Idle) {
            return;
        }
        let error = code.and_then(ErrorCode::from_close_code);
        // The server's own words for a final refusal (which version to upgrade, which claim
        // of the token is wrong), else ours.
        let said = self.fatal.take().filter(|(c, _)| Some(*c) == error).map(|(_, m)| m);
        if error == Some(ErrorCode::ORIGIN_NOT_ALLOWED) {
            // A browser page the server will never take (CHAT_ALLOWED_ORIGINS): retrying cannot
            // help, and "reconnecting" forever would hide a setting to change. One event says
            // it, with the reason (no `Disconnected` first: it would show the status reasonless).
            // The server always says which origin and which setting; its code name otherwise.
            let reason = said.unwrap_or_else(|| ErrorCode::ORIGIN_NOT_ALLOWED.name().into());
            self.on_disconnected();
            self.timers.stop(Timer::Reconnect);
            self.fail_everything(ErrorCode::ORIGIN_NOT_ALLOWED, &reason);
            self.status = Status::Refused;
            self.events.push(Event::Refused { code: ErrorCode::ORIGIN_NOT_ALLOWED, reason });
            return;
        }
        self.events.push(Event::Disconnected { code: error });
        self.on_disconnected();
        if let Some(error) = error
            && error.is_auth_failure()
        {
            // An expired token may just be stale: one immediate retry with a fresh token.
            // Anything else, or a second refusal, is final.
            if error == ErrorCode::TOKEN_EXPIRED && !self.auth_retry_used {
                self.auth_retry_used = true;
                self.start_attempt(now);
                return;
            }
            self.timers.stop(Timer::Reconnect);
            self.fail_everything(error, said.as_deref().unwrap_or("the server refused the credentials"));
            self.set_status(Status::Unauthorized);
            return;
        }
        if matches!(error, Some(ErrorCode::UNSUPPORTED_VERSION)) {
            let why = said.as_deref().unwrap_or("this SDK's protocol is not supported by the server");
            self.fail_everything(ErrorCode::UNSUPPORTED_VERSION, why);
            self.set_status(Status::Closed);
            return;
        }
        self.schedule_reconnect(now);
    }

    /// The browser went back online: skip the remaining backoff.
    pub fn handle_online(&mut self, now: Millis) {
        self.offline = false;
        if self.status == Status::Reconnecting {
            self.attempt = 0;
            self.start_attempt(now);
        }
    }

    /// The browser went offline: the socket will not deliver anything now, so drop it and show
    /// `reconnecting` at once instead of waiting for the heartbeat to notice. Sends stay queued;
    /// [`Session::handle_online`] reconnects without waiting for the backoff.
    pub fn handle_offline(&mut self, now: Millis) {
        self.offline = true;
        if matches!(self.status, Status::Open | Status::Connecting) {
            self.drop_connection(now);
        }
    }

    /// A binary frame arrived.
    pub fn handle_frame(&mut self, now: Millis, bytes: &[u8]) {
        let Ok(frame) = ServerFrame::decode(bytes) else {
            // A server speaking something else: drop the connection and try again.
            self.actions.push(Action::Close(ErrorCode::BAD_FRAME.close_code()));
            self.handle_close(now, None);
            return;
        };
        match frame {
            ServerFrame::Welcome { user, name, token_expires_at, limits, server_time } => {
                self.on_welcome(now, user, name, (server_time, token_expires_at), limits);
            }
            ServerFrame::Sent { req, id, created_at } => self.on_sent(req, id, created_at),
            ServerFrame::Error { req, code, message } => self.on_error(now, req, code, message),
            ServerFrame::Message { message } => self.on_live_message(message, None),
            ServerFrame::MessageAt { message, position } => self.on_live_message(message, Some(position)),
            ServerFrame::Position { position } => self.on_position(position),
            ServerFrame::CatchUpPage { req, messages, last, more } if self.is_waiting(req, Purpose::Sync) => {
                self.requests.remove(req);
                self.on_catch_up_page(now, messages, last, more);
            }
            ServerFrame::Read { reader, peer, up_to } => self.events.push(Event::Read { reader, peer, up_to }),
            ServerFrame::Typing { from, on } => {
                if let Some(on) = self.typing.notice(from, on, now + self.timings.typing_expiry) {
                    self.events.push(Event::Typing { from, on });
                }
            }
            ServerFrame::Presence { user, online } => self.events.push(Event::Presence { user, online }),
            ServerFrame::Changed { message, deleted } => self.events.push(Event::Changed { message, deleted }),
            ServerFrame::QuietHours { windows } => self.quiet = windows,
            ServerFrame::Fatal { code, message } => {
                // The close that follows carries the same code; its explanation is kept for
                // the app's errors if the close is final.
                self.fatal = Some((code, message));
            }
            ServerFrame::ConversationsPage { req, conversations, next } => {
                self.on_conversations_page(now, req, conversations, next);
            }
            ServerFrame::TokenRefreshed { req, expires_at } if self.is_waiting(req, Purpose::Refresh) => {
                self.requests.remove(req);
                self.set_token_expiry(now, expires_at);
            }
            ServerFrame::Pong { req, .. } if self.is_waiting(req, Purpose::Ping) => {
                self.requests.remove(req);
            }
            other => {
                // The answer to one of the app's requests; anything else answers a request
                // that is gone (timed out, or of an earlier connection).
                if let Some(req) = other.request_id()
                    && self.is_waiting(req, Purpose::App)
                {
                    self.requests.remove(req);
                    self.events.push(Event::Response { req, frame: other });
                }
            }
        }
    }

    fn is_waiting(&self, req: RequestId, purpose: Purpose) -> bool {
        self.requests.purpose(req) == Some(purpose)
    }

    /// Time passed: fire whatever is due.
    pub fn handle_timeout(&mut self, now: Millis) {
        if self.timers.fire(Timer::Reconnect, now) {
            if self.offline {
                // Trying now would only fail (and fetch a token for nothing): wait for the
                // online event, checking again at the longest backoff.
                self.timers.set(Timer::Reconnect, now + self.timings.backoff_cap);
            } else {
                self.start_attempt(now);
            }
        }
        if self.timers.fire(Timer::Connect, now) {
            // The socket never opened or the welcome never came.
            self.drop_connection(now);
        }
        if self.timers.fire(Timer::RetrySends, now) | self.timers.fire(Timer::Pace, now) {
            self.flush_sends(now);
        }
        if self.timers.fire(Timer::Resync, now)
            && let Some(after) = self.resync_from.take()
            && self.status == Status::Open
        {
            self.request_sync(now, after);
        }
        let mut dead = false;
        while let Some((req, purpose)) = self.requests.pop_expired(now) {
            match purpose {
                Purpose::App => self.events.push(Event::RequestFailed {
                    req,
                    code: ErrorCode::REQUEST_TIMEOUT,
                    message: "no answer in time".into(),
                }),
                Purpose::CaughtUp => self.events.push(Event::CaughtUp { count: self.sync_count, conversations: None }),
                // The connection stopped answering: drop it and reconnect.
                Purpose::Ping | Purpose::Sync | Purpose::Refresh => dead = true,
            }
        }
        if dead {
            self.drop_connection(now);
            return;
        }
        self.stop_typing_in(None, Some(now));
        if self.status != Status::Open {
            return;
        }
        if self.timers.fire(Timer::Heartbeat, now) {
            self.timers.set(Timer::Heartbeat, now + self.heartbeat_interval());
            if !self.requests.has(Purpose::Ping) {
                self.start_internal(now, Purpose::Ping, |req| ClientFrame::Ping { req });
            }
        }
        if self.timers.fire(Timer::Refresh, now) {
            self.actions.push(Action::FetchToken(TokenPurpose::Refresh));
        }
    }

    // ----- the outputs -----

    /// When [`Session::handle_timeout`] should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        let next = earliest(self.timers.next(self.status == Status::Open), self.requests.next_deadline());
        earliest(next, self.typing.next_expiry())
    }

    /// The next frame to write to the socket.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        // Queues stay short (a page of events at most), so removing at the front is cheap,
        // and plain vectors keep the browser bundle smaller than `VecDeque`.
        (!self.transmits.is_empty()).then(|| self.transmits.remove(0))
    }

    /// The next thing the transport must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        (!self.actions.is_empty()).then(|| self.actions.remove(0))
    }

    /// The next event for the app.
    pub fn poll_event(&mut self) -> Option<Event> {
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }

    // ----- what the app hears -----

    /// A message pushed live, with its log position (protocol 3 servers always give one).
    fn on_live_message(&mut self, message: StoredMessage, position: Option<u64>) {
        // The message a peer was typing has arrived: they stopped typing.
        if Some(message.to) == self.user {
            self.stop_typing_in(Some(message.from), None);
        }
        if let Some(p) = position {
            // Positions are exact: every message of ours up to our position has reached us.
            // One at or below it is a repeat, sent by a node that is behind the one we left.
            if self.position.is_some_and(|q| p <= q) {
                return;
            }
            if self.catching_up {
                self.live_during_catch_up = self.live_during_catch_up.max(p);
            } else {
                self.position = Some(self.position.map_or(p, |q| q.max(p)));
            }
        }
        self.report_message(message, true);
    }

    /// A `Position` frame. The first after a welcome says where this connection's live
    /// delivery starts: it is the session's position only when it has none (a session with one
    /// catches up from it). Later ones (protocol 5) say every message of ours up to it has been
    /// sent to us: messages that came live before the log numbered them.
    fn on_position(&mut self, position: u64) {
        if std::mem::take(&mut self.awaiting_start) {
            if self.position.is_none() {
                self.position = Some(position);
            }
        } else if self.catching_up {
            self.live_during_catch_up = self.live_during_catch_up.max(position);
        } else {
            self.position = Some(self.position.map_or(position, |q| q.max(position)));
        }
    }

    /// Reports a message unless it was reported before. Returns whether it was new.
    pub(super) fn report_message(&mut self, message: StoredMessage, live: bool) -> bool {
        // One of our own sends still waiting for its ack, already stored: a catch-up page can
        // bring it before the ack does. It is not a new message; its ack (which always follows:
        // the send went out on this connection, or goes again on the next) reports it.
        if self.outbox.contains(message.id) || !self.seen.insert(message.id) {
            return false;
        }
        let quiet = self.user == Some(message.to)
            && self.quiet.iter().any(|&(start, end)| message.created_at >= start && message.created_at < end);
        self.events.push(Event::Message { message, live, quiet });
        true
    }

    pub(super) fn stop_typing_in(&mut self, from: Option<UserRef>, now: Option<Millis>) {
        self.typing.stop_inbound(from, now, &mut self.events);
    }

    pub(super) fn set_status(&mut self, status: Status) {
        if self.status != status {
            self.status = status;
            self.events.push(Event::Status(status));
        }
    }

    pub(super) fn transmit(&mut self, frame: &ClientFrame) {
        transmit(&mut self.pacer, &mut self.transmits, frame);
    }

    pub(super) fn random(&mut self) -> u64 {
        // xorshift64*: enough for jitter and the random bits of ids, seeded by the platform.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Encodes `frame` for the socket. (A function of the two fields it needs, so a frame can
/// be sent while the request that holds it is borrowed.)
pub(super) fn transmit(pacer: &mut Pacer, transmits: &mut Vec<Vec<u8>>, frame: &ClientFrame) {
    if !matches!(frame, ClientFrame::Send { .. } | ClientFrame::Hello { .. }) {
        // Requests are few and the app waits on them: they go at once, but count, so the
        // sends behind them wait their turn. (Spent as of the last refill: the next refill
        // adds the time since.)
        pacer.spend();
    }
    match frame.encode() {
        Ok(bytes) => transmits.push(bytes),
        // Validation ran before; a frame that cannot be encoded is a bug, not input.
        Err(_) => debug_assert!(false, "a validated frame failed to encode"),
    }
}
