//! The session state machine, sans IO: no sockets, no clock, no randomness of its own.
//!
//! A transport (native tokio, or the browser's WebSocket) feeds it inputs — the app's
//! calls, a token, the socket opening, a frame, the socket closing, the time passing —
//! each with the current time, and then drains its outputs:
//! [`Session::poll_transmit`] (frames to write), [`Session::poll_action`] (open or close
//! the socket, fetch a token), [`Session::poll_event`] (what the app should learn) and
//! [`Session::poll_timeout`] (when to call [`Session::handle_timeout`] next).
//!
//! It owns the guarantees the SDK makes: a send stays in the outbox until the server acks
//! it and is sent again with the same id after every reconnect, in order; a message
//! delivered twice reaches the app once; requests time out cleanly; a refused token ends
//! in the terminal `Unauthorized` state instead of reconnecting forever; sends go out no
//! faster than the rate the server announced, and back off when it says `rate_limited`.

use alloc::string::String;
use alloc::vec::Vec;

use chat_protocol::{
    ClientFrame, Conversation, Cursor, ErrorCode, IdGenerator, Limits, MAX_CONVERSATIONS_PAGE, MAX_SYNC_PAGE,
    MessageId, Millis, PROTOCOL_VERSION, RequestId, ServerFrame, StoredMessage, UserRef,
};

/// Tunable timings, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// A request without an answer after this long fails with `request_timeout`.
    pub request_timeout: Millis,
    /// The first reconnect delay's upper bound; it doubles per failed attempt.
    pub backoff_base: Millis,
    /// The largest reconnect delay.
    pub backoff_cap: Millis,
    /// How long to wait for the socket to open and the welcome to arrive.
    pub connect_timeout: Millis,
    /// How far back before the last message seen a catch-up starts (clock skew, ties).
    pub sync_margin: Millis,
    /// Refresh the token this long before it expires.
    pub refresh_before_expiry: Millis,
    /// "Typing" is sent to a peer at most once per this interval while it stays on.
    pub typing_throttle: Millis,
    /// A peer's "typing" expires after this long without a refresh.
    pub typing_expiry: Millis,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            request_timeout: 10_000,
            backoff_base: 500,
            backoff_cap: 30_000,
            connect_timeout: 10_000,
            sync_margin: 5_000,
            refresh_before_expiry: 60_000,
            typing_throttle: 3_000,
            typing_expiry: 6_000,
        }
    }
}

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not started, or closed by the app.
    Idle,
    /// Getting a token, opening the socket, waiting for the welcome.
    Connecting,
    /// Authenticated; requests flow.
    Open,
    /// Disconnected; the next attempt is scheduled.
    Reconnecting,
    /// The server refused the credentials: terminal until the app calls `connect` again.
    Unauthorized,
    /// Closed by the app.
    Closed,
}

impl Status {
    /// The name used in events and in JavaScript.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Idle => "idle",
            Status::Connecting => "connecting",
            Status::Open => "open",
            Status::Reconnecting => "reconnecting",
            Status::Unauthorized => "unauthorized",
            Status::Closed => "closed",
        }
    }
}

/// Why a token is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    /// To open a connection.
    Connect,
    /// To replace the token of the open connection before it expires.
    Refresh,
}

/// Something the transport must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Ask the app's token provider; answer with [`Session::handle_token`] or
    /// [`Session::handle_token_error`].
    FetchToken(TokenPurpose),
    /// Open a WebSocket to the server; then call [`Session::handle_open`] (or
    /// [`Session::handle_close`] if it fails).
    Open,
    /// Close the socket (if open) with this WebSocket close code.
    Close(u16),
}

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A page of history with `peer`.
    History {
        /// The other user.
        peer: UserRef,
        /// Older than this.
        before: Option<Cursor>,
        /// Page size.
        limit: u16,
    },
    /// The conversation list.
    Conversations,
    /// Mark read up to a message.
    MarkRead {
        /// The other user.
        peer: UserRef,
        /// The newest message read.
        up_to: Cursor,
    },
    /// Typing on/off.
    Typing {
        /// Who is told.
        peer: UserRef,
        /// On or off.
        on: bool,
    },
    /// Replace the presence watch list.
    WatchPresence {
        /// The users.
        users: Vec<UserRef>,
    },
    /// A ping.
    Ping,
}

impl Request {
    fn into_frame(self, req: RequestId) -> ClientFrame {
        match self {
            Request::History { peer, before, limit } => ClientFrame::History { req, peer, before, limit },
            // The whole list, gathered page by page (see `on_conversations_page`).
            Request::Conversations => {
                ClientFrame::ConversationsPage { req, before: None, limit: MAX_CONVERSATIONS_PAGE }
            }
            Request::MarkRead { peer, up_to } => ClientFrame::MarkRead { req, peer, up_to },
            Request::Typing { peer, on } => ClientFrame::Typing { req, peer, on },
            Request::WatchPresence { users } => ClientFrame::WatchPresence { req, users },
            Request::Ping => ClientFrame::Ping { req },
        }
    }
}

/// What the app learns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The status changed.
    Status(Status),
    /// The server welcomed this user.
    Welcome {
        /// Who we are.
        user: UserRef,
        /// Our display name.
        name: String,
    },
    /// A message sent to or by this user. `live` is false for messages caught up after a
    /// disconnect. Each id is reported once.
    Message {
        /// The message.
        message: StoredMessage,
        /// Live (pushed as it happened) or caught up.
        live: bool,
    },
    /// A catch-up after a reconnect finished; `count` messages were new to this session.
    /// `conversations` is the fresh conversation list with unread counts (`None` if the
    /// server could not answer it).
    CaughtUp {
        /// How many caught-up messages were reported.
        count: u32,
        /// The conversation list after the catch-up.
        conversations: Option<Vec<Conversation>>,
    },
    /// A send was committed by the server.
    Sent(StoredMessage),
    /// A send failed permanently (it is removed from the outbox).
    SendFailed {
        /// The message id.
        id: MessageId,
        /// Why.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// A request was answered.
    Response {
        /// The request.
        req: RequestId,
        /// The answer frame.
        frame: ServerFrame,
    },
    /// A request failed.
    RequestFailed {
        /// The request.
        req: RequestId,
        /// Why.
        code: ErrorCode,
        /// An explanation.
        message: String,
    },
    /// A read receipt (see `ServerFrame::Read`).
    Read {
        /// Who read.
        reader: UserRef,
        /// Whose messages.
        peer: UserRef,
        /// Up to where.
        up_to: Cursor,
    },
    /// A typing notice.
    Typing {
        /// Who.
        from: UserRef,
        /// On or off.
        on: bool,
    },
    /// A presence change.
    Presence {
        /// Who.
        user: UserRef,
        /// Online or not.
        online: bool,
    },
    /// The server closed the connection with this code (for the app's logs and UI).
    Disconnected {
        /// The protocol error code, if the close carried one.
        code: Option<ErrorCode>,
    },
}

#[derive(Clone, Debug)]
struct PendingSend {
    id: MessageId,
    to: UserRef,
    content: String,
    /// The request id of the latest transmission, if sent on the current connection.
    req: Option<RequestId>,
}

#[derive(Clone, Debug)]
struct PendingRequest {
    frame: ClientFrame,
    deadline: Millis,
    sent: bool,
}

/// The server's request budget as the client spends it: a token bucket refilled at the
/// announced rate, in thousandths of a request so the arithmetic stays in integers.
#[derive(Clone, Copy, Debug, Default)]
struct Pacer {
    milli: i64,
    per_second: i64,
    burst: i64,
    at: Millis,
}

impl Pacer {
    fn new(limits: &Limits, now: Millis) -> Self {
        // Nine tenths of the announced rate: a margin for the clocks and the network, so a
        // paced client is never the one the server has to refuse.
        let per_second = (i64::from(limits.requests_per_second) * 9 / 10).max(1);
        let burst = i64::from(limits.request_burst.max(1));
        Pacer { milli: burst * 1000, per_second, burst, at: now }
    }

    fn refill(&mut self, now: Millis) {
        let elapsed = (now - self.at).max(0);
        self.milli = (self.milli + elapsed * self.per_second).min(self.burst * 1000);
        self.at = now;
    }

    /// Takes one request's worth if there is one.
    fn take(&mut self, now: Millis) -> bool {
        self.refill(now);
        let ok = self.milli >= 1000;
        if ok {
            self.milli -= 1000;
        }
        ok
    }

    /// Takes one request's worth even into debt (requests that cannot wait).
    fn spend(&mut self) {
        self.milli -= 1000;
    }

    /// When the next request's worth will be there.
    fn ready_at(&self) -> Millis {
        let per_second = self.per_second.max(1);
        self.at + ((1000 - self.milli).max(0) + per_second - 1) / per_second
    }

    /// The server refused: whatever we thought we had, we have nothing.
    fn empty(&mut self) {
        self.milli = self.milli.min(0);
    }
}

/// How many message ids are remembered to drop repeats (at least; up to twice as many).
const DEDUP_CAPACITY: usize = 10_000;

/// The ids of messages already reported, as a sorted vector.
///
/// Ids are mostly time-ordered (UUIDv7), so inserts land at the end and cost O(1); when
/// the vector holds twice the capacity, the lowest (oldest) half is dropped at once. A
/// plain sorted `Vec` keeps the browser bundle far smaller than a tree or hash map.
#[derive(Debug, Default)]
struct SeenIds(Vec<u128>);

impl SeenIds {
    /// Adds `id`; returns false if it was already there.
    fn insert(&mut self, id: MessageId) -> bool {
        let key = u128::from_be_bytes(id.0);
        let position = if self.0.last().is_none_or(|&last| last < key) {
            self.0.len()
        } else {
            match self.0.binary_search(&key) {
                Ok(_) => return false,
                Err(position) => position,
            }
        };
        self.0.insert(position, key);
        if self.0.len() >= 2 * DEDUP_CAPACITY {
            self.0.drain(..DEDUP_CAPACITY);
        }
        true
    }
}

/// Requests waiting for an answer. Few at a time, so a vector is enough.
#[derive(Debug, Default)]
struct Requests(Vec<(RequestId, PendingRequest)>);

impl Requests {
    fn insert(&mut self, req: RequestId, request: PendingRequest) {
        self.0.push((req, request));
    }

    fn remove(&mut self, req: &RequestId) -> Option<PendingRequest> {
        // `remove`, not `swap_remove`: the vector stays in request order.
        let index = self.0.iter().position(|(r, _)| r == req)?;
        Some(self.0.remove(index).1)
    }

    fn get_mut(&mut self, req: &RequestId) -> Option<&mut PendingRequest> {
        self.0.iter_mut().find(|(r, _)| r == req).map(|(_, p)| p)
    }

    fn iter(&self) -> impl Iterator<Item = (&RequestId, &PendingRequest)> {
        self.0.iter().map(|(r, p)| (r, p))
    }

    fn values(&self) -> impl Iterator<Item = &PendingRequest> {
        self.0.iter().map(|(_, p)| p)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut PendingRequest> {
        self.0.iter_mut().map(|(_, p)| p)
    }

    fn take(&mut self) -> Vec<(RequestId, PendingRequest)> {
        core::mem::take(&mut self.0)
    }
}

/// The session.
#[derive(Debug)]
pub struct Session {
    timings: Timings,
    status: Status,
    rng: u64,
    ids: IdGenerator,
    next_req: RequestId,

    token: Option<String>,
    refresh_at: Option<Millis>,
    refresh_req: Option<RequestId>,
    fetching_token: bool,

    /// Failed attempts since the last welcome.
    attempt: u32,
    reconnect_at: Option<Millis>,
    connect_deadline: Option<Millis>,
    /// The last close carried an auth failure; one more try with a fresh token is allowed.
    auth_retry_used: bool,

    user: Option<UserRef>,
    limits: Option<Limits>,
    heartbeat_at: Option<Millis>,
    ping_req: Option<RequestId>,
    /// Sends refused with a retryable code go out again at this time.
    retry_sends_at: Option<Millis>,
    /// Consecutive retryable refusals of sends, for the backoff.
    send_retries: u32,
    /// Spends the server's announced request budget.
    pacer: Pacer,
    /// Sends wait for the budget until this time.
    pace_at: Option<Millis>,
    /// Conversation lists being gathered page by page, by request.
    conversation_pages: Vec<(RequestId, Vec<Conversation>)>,
    /// A catch-up refused with a retryable code is asked again at this time, from here.
    resync_at: Option<(Millis, Cursor)>,
    /// The browser said it is offline: no reconnect attempt (and no token fetch) until it
    /// says it is back, but for a slow fallback in case that event never comes.
    offline: bool,

    outbox: Vec<PendingSend>,
    requests: Requests,
    seen: SeenIds,

    /// The newest `createdAt` this session has seen; a catch-up starts a margin before it.
    last_seen_at: Option<Millis>,
    sync_req: Option<RequestId>,
    sync_count: u32,
    /// The conversation list requested at the end of a catch-up.
    caught_up_req: Option<RequestId>,
    /// Peers told "typing", with when it was last sent.
    typing_out: Vec<(UserRef, Millis)>,
    /// Peers typing to us, with when that expires.
    typing_in: Vec<(UserRef, Millis)>,
    /// Whether a welcome has been received before (so the next one is a reconnect).
    was_open: bool,

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
            next_req: 0,
            token: None,
            refresh_at: None,
            refresh_req: None,
            fetching_token: false,
            attempt: 0,
            reconnect_at: None,
            connect_deadline: None,
            auth_retry_used: false,
            user: None,
            limits: None,
            heartbeat_at: None,
            ping_req: None,
            retry_sends_at: None,
            send_retries: 0,
            pacer: Pacer::default(),
            pace_at: None,
            conversation_pages: Vec::new(),
            resync_at: None,
            offline: false,
            outbox: Vec::new(),
            requests: Requests::default(),
            seen: SeenIds::default(),
            last_seen_at: None,
            sync_req: None,
            sync_count: 0,
            caught_up_req: None,
            typing_out: Vec::new(),
            typing_in: Vec::new(),
            was_open: false,
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

    fn random(&mut self) -> u64 {
        // xorshift64*: enough for jitter and the random bits of ids, seeded by the platform.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn set_status(&mut self, status: Status) {
        if self.status != status {
            self.status = status;
            self.events.push(Event::Status(status));
        }
    }

    fn transmit(&mut self, frame: &ClientFrame) {
        if !matches!(frame, ClientFrame::Send { .. } | ClientFrame::Hello { .. }) {
            // Requests are few and the app waits on them: they go at once, but count, so
            // the sends behind them wait their turn. (Spent as of the last refill: the next
            // refill adds the time since.)
            self.pacer.spend();
        }
        match frame.encode() {
            Ok(bytes) => self.transmits.push(bytes),
            // Validation ran before; a frame that cannot be encoded is a bug, not input.
            Err(_) => debug_assert!(false, "a validated frame failed to encode"),
        }
    }

    fn next_request_id(&mut self) -> RequestId {
        self.next_req = self.next_req.wrapping_add(1).max(1);
        self.next_req
    }

    // ----- the app's calls -----

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
        self.reconnect_at = None;
        self.connect_deadline = None;
        self.heartbeat_at = None;
        self.refresh_at = None;
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
        if matches!(self.status, Status::Closed) {
            return Err(ErrorCode::CLIENT_CLOSED);
        }
        if matches!(self.status, Status::Unauthorized) {
            return Err(ErrorCode::UNAUTHORIZED);
        }
        chat_protocol::validate_user(&to)?;
        chat_protocol::validate_content(&content)?;
        if Some(to) == self.user {
            return Err(ErrorCode::SELF_MESSAGE);
        }
        self.typing_out.retain(|(p, _)| *p != to);
        let random = self.random().to_le_bytes();
        let id = self.ids.next(u64::try_from(now.max(0)).unwrap_or(0), random);
        self.outbox.push(PendingSend { id, to, content, req: None });
        self.flush_sends(now);
        Ok(id)
    }

    /// Sends what waits in the outbox, in order, as far as the request budget allows; the
    /// rest goes when the budget refills (`pace_at`) or after a refusal's backoff.
    fn flush_sends(&mut self, now: Millis) {
        if self.status != Status::Open || self.retry_sends_at.is_some() {
            return;
        }
        self.pace_at = None;
        for i in 0..self.outbox.len() {
            if self.outbox[i].req.is_some() {
                continue;
            }
            if !self.pacer.take(now) {
                self.pace_at = Some(self.pacer.ready_at());
                return;
            }
            self.transmit_send(i);
        }
    }

    fn transmit_send(&mut self, index: usize) {
        let req = self.next_request_id();
        let Some(pending) = self.outbox.get_mut(index) else {
            return;
        };
        pending.req = Some(req);
        let frame = ClientFrame::Send { req, id: pending.id, to: pending.to, content: pending.content.clone() };
        self.transmit(&frame);
    }

    /// Starts a request; its answer arrives as [`Event::Response`] or
    /// [`Event::RequestFailed`] with the returned id. Made while not connected, it waits
    /// for the connection (its timeout running).
    ///
    /// # Errors
    /// The protocol's validation code, or `client_closed` / `unauthorized`.
    pub fn request(&mut self, now: Millis, request: Request) -> Result<RequestId, ErrorCode> {
        if matches!(self.status, Status::Closed) {
            return Err(ErrorCode::CLIENT_CLOSED);
        }
        if matches!(self.status, Status::Unauthorized) {
            return Err(ErrorCode::UNAUTHORIZED);
        }
        let req = self.next_request_id();
        if let Request::Typing { peer, on } = request
            && !self.typing_needs_sending(now, peer, on)
        {
            // Throttled, or nothing to clear: answered locally.
            chat_protocol::validate_user(&peer)?;
            self.events.push(Event::Response { req, frame: ServerFrame::Done { req } });
            return Ok(req);
        }
        let frame = request.into_frame(req);
        frame.validate()?;
        let sent = self.status == Status::Open;
        if sent {
            self.transmit(&frame);
        }
        self.requests.insert(req, PendingRequest { frame, deadline: now + self.timings.request_timeout, sent });
        Ok(req)
    }

    /// Whether a typing change must go to the server (and records it if so).
    fn typing_needs_sending(&mut self, now: Millis, peer: UserRef, on: bool) -> bool {
        let index = self.typing_out.iter().position(|(p, _)| *p == peer);
        match (on, index) {
            (true, Some(i)) if now < self.typing_out[i].1 + self.timings.typing_throttle => false,
            (true, Some(i)) => {
                self.typing_out[i].1 = now;
                true
            }
            (true, None) => {
                self.typing_out.push((peer, now));
                true
            }
            (false, Some(i)) => {
                self.typing_out.swap_remove(i);
                true
            }
            (false, None) => false,
        }
    }

    fn on_typing(&mut self, now: Millis, from: UserRef, on: bool) {
        let index = self.typing_in.iter().position(|(p, _)| *p == from);
        match (on, index) {
            (true, Some(i)) => self.typing_in[i].1 = now + self.timings.typing_expiry,
            (true, None) => {
                self.typing_in.push((from, now + self.timings.typing_expiry));
                self.events.push(Event::Typing { from, on: true });
            }
            (false, Some(i)) => {
                self.typing_in.swap_remove(i);
                self.events.push(Event::Typing { from, on: false });
            }
            (false, None) => {}
        }
    }

    fn clear_typing_in(&mut self, from: Option<UserRef>, now: Option<Millis>) {
        let mut i = 0;
        while i < self.typing_in.len() {
            let (peer, expires) = self.typing_in[i];
            if from.is_none_or(|f| f == peer) && now.is_none_or(|n| n >= expires) {
                self.typing_in.swap_remove(i);
                self.events.push(Event::Typing { from: peer, on: false });
            } else {
                i += 1;
            }
        }
    }

    // ----- the transport's inputs -----

    fn start_attempt(&mut self, now: Millis) {
        self.reconnect_at = None;
        self.connect_deadline = Some(now + self.timings.connect_timeout);
        self.set_status(Status::Connecting);
        if !self.fetching_token {
            self.fetching_token = true;
            self.actions.push(Action::FetchToken(TokenPurpose::Connect));
        }
    }

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
                let req = self.next_request_id();
                self.refresh_req = Some(req);
                let frame = ClientFrame::RefreshToken { req, token: token.clone() };
                self.token = Some(token);
                self.transmit(&frame);
                self.requests
                    .insert(req, PendingRequest { frame, deadline: now + self.timings.request_timeout, sent: true });
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
            TokenPurpose::Refresh => self.refresh_at = Some(now + self.timings.backoff_base.max(1_000)),
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
        if matches!(self.status, Status::Closed | Status::Unauthorized | Status::Idle) {
            return;
        }
        let error = code.and_then(ErrorCode::from_close_code);
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
            self.reconnect_at = None;
            self.fail_everything(error, "the server refused the credentials");
            self.set_status(Status::Unauthorized);
            return;
        }
        if matches!(error, Some(ErrorCode::UNSUPPORTED_VERSION)) {
            self.fail_everything(ErrorCode::UNSUPPORTED_VERSION, "this SDK's protocol is not supported by the server");
            self.set_status(Status::Closed);
            return;
        }
        self.schedule_reconnect(now);
    }

    fn on_disconnected(&mut self) {
        self.connect_deadline = None;
        self.heartbeat_at = None;
        self.refresh_at = None;
        self.retry_sends_at = None;
        self.pace_at = None;
        self.resync_at = None;
        self.ping_req = None;
        self.sync_req = None;
        self.caught_up_req = None;
        self.typing_out.clear();
        self.clear_typing_in(None, None);
        self.transmits.clear();
        for pending in &mut self.outbox {
            pending.req = None;
        }
        for request in self.requests.values_mut() {
            request.sent = false;
        }
        if let Some(req) = self.refresh_req.take() {
            self.requests.remove(&req);
        }
    }

    fn schedule_reconnect(&mut self, now: Millis) {
        // Capped exponential backoff with full jitter.
        let ceiling =
            self.timings.backoff_base.saturating_mul(1i64 << self.attempt.min(20)).min(self.timings.backoff_cap).max(1);
        let delay = i64::try_from(self.random() % u64::try_from(ceiling).unwrap_or(1)).unwrap_or(0);
        self.attempt = self.attempt.saturating_add(1);
        self.reconnect_at = Some(now + delay);
        self.set_status(Status::Reconnecting);
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
            self.actions.push(Action::Close(1000));
            self.handle_close(now, None);
        }
    }

    /// A binary frame arrived.
    pub fn handle_frame(&mut self, now: Millis, bytes: &[u8]) {
        let frame = match ServerFrame::decode(bytes) {
            Ok(frame) => frame,
            Err(_) => {
                // A server speaking something else: drop the connection and try again.
                self.actions.push(Action::Close(ErrorCode::BAD_FRAME.close_code()));
                self.handle_close(now, None);
                return;
            }
        };
        match frame {
            ServerFrame::Welcome { user, name, token_expires_at, limits, server_time } => {
                self.on_welcome(now, user, name, (server_time, token_expires_at), limits)
            }
            ServerFrame::Sent { req, id, created_at } => self.on_sent(req, id, created_at),
            ServerFrame::Error { req, code, message } => self.on_error(now, req, code, message),
            ServerFrame::Message { message } => {
                // The message a peer was typing has arrived: they stopped typing.
                if Some(message.to) == self.user {
                    self.clear_typing_in(Some(message.from), None);
                }
                self.report_message(message, true);
            }
            ServerFrame::Read { reader, peer, up_to } => self.events.push(Event::Read { reader, peer, up_to }),
            ServerFrame::Typing { from, on } => self.on_typing(now, from, on),
            ServerFrame::Presence { user, online } => self.events.push(Event::Presence { user, online }),
            ServerFrame::Fatal { .. } => {
                // The close that follows carries the same code; nothing to do until then.
            }
            ServerFrame::SyncPage { req, messages, more } if Some(req) == self.sync_req => {
                self.on_sync_page(now, messages, more);
            }
            ServerFrame::TokenRefreshed { req, expires_at } if Some(req) == self.refresh_req => {
                self.refresh_req = None;
                self.requests.remove(&req);
                self.set_token_expiry(now, expires_at);
            }
            ServerFrame::ConversationsPage { req, conversations, next } => {
                self.on_conversations_page(now, req, conversations, next);
            }
            ServerFrame::Pong { req, .. } if Some(req) == self.ping_req => {
                self.ping_req = None;
                self.requests.remove(&req);
            }
            other => {
                if let Some(req) = other.request_id()
                    && self.requests.remove(&req).is_some()
                {
                    self.events.push(Event::Response { req, frame: other });
                }
            }
        }
    }

    fn on_welcome(&mut self, now: Millis, user: UserRef, name: String, times: (Millis, Millis), limits: Limits) {
        let (server_time, token_expires_at) = times;
        if self.status != Status::Connecting {
            return;
        }
        // Everything stored from this session's first welcome on is the session's to see:
        // a catch-up after a disconnect starts there even if no message was seen yet.
        if self.last_seen_at.is_none() {
            self.last_seen_at = Some(server_time);
        }
        self.connect_deadline = None;
        self.attempt = 0;
        self.auth_retry_used = false;
        self.user = Some(user);
        self.limits = Some(limits);
        self.pacer = Pacer::new(&limits, now);
        self.send_retries = 0;
        self.set_token_expiry(now, token_expires_at);
        self.heartbeat_at = Some(now + self.heartbeat_interval());
        self.set_status(Status::Open);
        self.events.push(Event::Welcome { user, name });
        // Resend every unacknowledged message, in order, with its original id, paced to the
        // server's announced rate (a long outbox does not arrive as one burst).
        self.flush_sends(now);
        // Then the requests made while offline.
        let waiting: Vec<RequestId> = self.requests.iter().filter(|(_, r)| !r.sent).map(|(k, _)| *k).collect();
        for req in waiting {
            if let Some(request) = self.requests.get_mut(&req) {
                request.sent = true;
                let frame = request.frame.clone();
                self.transmit(&frame);
            }
        }
        // Catch up on what arrived while we were away.
        if self.was_open
            && let Some(at) = self.last_seen_at
        {
            self.sync_count = 0;
            self.request_sync(now, Cursor::from_time(at - self.timings.sync_margin));
        }
        self.was_open = true;
    }

    fn request_sync(&mut self, now: Millis, after: Cursor) {
        let req = self.next_request_id();
        self.sync_req = Some(req);
        let frame = ClientFrame::Sync { req, after, limit: MAX_SYNC_PAGE };
        self.transmit(&frame);
        self.requests.insert(req, PendingRequest { frame, deadline: now + self.timings.request_timeout, sent: true });
    }

    fn on_sync_page(&mut self, now: Millis, messages: Vec<StoredMessage>, more: bool) {
        if let Some(req) = self.sync_req.take() {
            self.requests.remove(&req);
        }
        let last = messages.last().map(StoredMessage::cursor);
        for message in messages {
            if self.report_message(message, false) {
                self.sync_count += 1;
            }
        }
        match last {
            Some(cursor) if more => self.request_sync(now, cursor),
            _ => {
                // Finish with fresh unread counts.
                let req = self.next_request_id();
                self.caught_up_req = Some(req);
                let frame = ClientFrame::ConversationsPage { req, before: None, limit: MAX_CONVERSATIONS_PAGE };
                self.transmit(&frame);
                self.requests
                    .insert(req, PendingRequest { frame, deadline: now + self.timings.request_timeout, sent: true });
            }
        }
    }

    /// One page of a conversation list: asks for the next with the same request id, or
    /// hands the whole list to whoever asked (the app, or the end of a catch-up).
    fn on_conversations_page(
        &mut self,
        now: Millis,
        req: RequestId,
        conversations: Vec<Conversation>,
        next: Option<Cursor>,
    ) {
        if self.requests.get_mut(&req).is_none() {
            return;
        }
        let index = self.conversation_pages.iter().position(|(r, _)| *r == req).unwrap_or_else(|| {
            self.conversation_pages.push((req, Vec::new()));
            self.conversation_pages.len() - 1
        });
        self.conversation_pages[index].1.extend(conversations);
        if let Some(before) = next {
            let frame = ClientFrame::ConversationsPage { req, before: Some(before), limit: MAX_CONVERSATIONS_PAGE };
            self.transmit(&frame);
            if let Some(request) = self.requests.get_mut(&req) {
                // A reconnect resends this page request; what was gathered is kept.
                request.frame = frame;
                request.deadline = now + self.timings.request_timeout;
            }
            return;
        }
        let (_, all) = self.conversation_pages.swap_remove(index);
        self.requests.remove(&req);
        if Some(req) == self.caught_up_req {
            self.caught_up_req = None;
            self.events.push(Event::CaughtUp { count: self.sync_count, conversations: Some(all) });
        } else {
            self.events.push(Event::Response { req, frame: ServerFrame::Conversations { req, conversations: all } });
        }
    }

    /// Drops what was gathered of a conversation list whose request failed.
    #[inline(never)]
    fn forget_pages(&mut self, req: RequestId) {
        self.conversation_pages.retain(|(r, _)| *r != req);
    }

    /// The delay before trying refused sends again: doubling from the base up to the cap,
    /// with jitter, so tabs refused together do not come back together.
    fn retry_delay(&mut self) -> Millis {
        let base = self.timings.backoff_base.max(250);
        let ceiling = base.saturating_mul(1i64 << self.send_retries.min(16)).min(self.timings.backoff_cap.max(base));
        self.send_retries = self.send_retries.saturating_add(1);
        let jitter = i64::try_from(self.random() % u64::try_from(ceiling / 2 + 1).unwrap_or(1)).unwrap_or(0);
        ceiling / 2 + jitter
    }

    fn set_token_expiry(&mut self, now: Millis, expires_at: Millis) {
        let lifetime = (expires_at - now).max(0);
        let lead = self.timings.refresh_before_expiry.min(lifetime / 5);
        self.refresh_at = Some(expires_at - lead);
    }

    fn heartbeat_interval(&self) -> Millis {
        let idle = self.limits.map_or(60_000, |l| Millis::from(l.idle_timeout_ms));
        (idle / 3).clamp(1_000, 30_000)
    }

    /// Reports a message unless it was reported before. Returns whether it was new.
    fn report_message(&mut self, message: StoredMessage, live: bool) -> bool {
        self.note_seen_time(message.created_at);
        // One of our own sends still waiting for its ack, already stored: a catch-up page can
        // bring it before the ack does. It is not a new message; its ack (which always follows:
        // the send went out on this connection, or goes again on the next) reports it.
        if self.outbox.iter().any(|p| p.id == message.id) {
            return false;
        }
        if !self.remember(message.id) {
            return false;
        }
        self.events.push(Event::Message { message, live });
        true
    }

    fn note_seen_time(&mut self, at: Millis) {
        self.last_seen_at = Some(self.last_seen_at.map_or(at, |t| t.max(at)));
    }

    fn remember(&mut self, id: MessageId) -> bool {
        self.seen.insert(id)
    }

    fn on_sent(&mut self, req: RequestId, id: MessageId, created_at: Millis) {
        let Some(index) = self.outbox.iter().position(|p| p.id == id && p.req == Some(req)) else {
            // An ack for a transmission we no longer track (a duplicate resend's ack).
            return;
        };
        let pending = self.outbox.remove(index);
        self.send_retries = 0;
        let Some(user) = self.user else { return };
        let message =
            StoredMessage { id, from: user, to: pending.to, content: pending.content, created_at, read: false };
        self.note_seen_time(created_at);
        // Our own message will not be reported again if a catch-up returns it.
        self.remember(id);
        self.events.push(Event::Sent(message));
    }

    fn on_error(&mut self, now: Millis, req: RequestId, code: ErrorCode, message: String) {
        if let Some(index) = self.outbox.iter().position(|p| p.req == Some(req)) {
            if code.is_retryable() {
                // Overloaded, unavailable, rate limited...: leave it queued; it goes out again
                // after a growing pause on this connection, or after the next reconnect.
                if let Some(p) = self.outbox.get_mut(index) {
                    p.req = None;
                }
                if code == ErrorCode::RATE_LIMITED {
                    self.pacer.empty();
                }
                if self.retry_sends_at.is_none() {
                    let delay = self.retry_delay();
                    self.retry_sends_at = Some(now + delay);
                }
                return;
            }
            let pending = self.outbox.remove(index);
            self.events.push(Event::SendFailed { id: pending.id, code, message });
            return;
        }
        if Some(req) == self.refresh_req {
            self.refresh_req = None;
            self.requests.remove(&req);
            return;
        }
        if Some(req) == self.sync_req {
            self.sync_req = None;
            if let Some(PendingRequest { frame: ClientFrame::Sync { after, .. }, .. }) = self.requests.remove(&req)
                && code.is_retryable()
            {
                // The catch-up must finish: ask again from the same place after a pause.
                let delay = self.retry_delay();
                self.resync_at = Some((now + delay, after));
            }
            return;
        }
        self.forget_pages(req);
        if Some(req) == self.caught_up_req {
            self.caught_up_req = None;
            self.requests.remove(&req);
            self.events.push(Event::CaughtUp { count: self.sync_count, conversations: None });
            return;
        }
        if self.requests.remove(&req).is_some() {
            self.events.push(Event::RequestFailed { req, code, message });
        }
    }

    fn fail_everything(&mut self, code: ErrorCode, why: &str) {
        for pending in core::mem::take(&mut self.outbox) {
            self.events.push(Event::SendFailed { id: pending.id, code, message: why.into() });
        }
        for (req, _) in self.requests.take() {
            self.events.push(Event::RequestFailed { req, code, message: why.into() });
        }
        self.conversation_pages.clear();
        self.refresh_req = None;
        self.ping_req = None;
        self.sync_req = None;
    }

    /// Time passed: fire whatever is due.
    pub fn handle_timeout(&mut self, now: Millis) {
        if let Some(at) = self.reconnect_at
            && now >= at
        {
            if self.offline {
                // Trying now would only fail (and fetch a token for nothing): wait for the
                // online event, checking again at the longest backoff.
                self.reconnect_at = Some(now + self.timings.backoff_cap);
            } else {
                self.start_attempt(now);
            }
        }
        if let Some(at) = self.connect_deadline
            && now >= at
        {
            // The socket never opened or the welcome never came.
            self.actions.push(Action::Close(1000));
            self.handle_close(now, None);
        }
        if let Some(at) = self.retry_sends_at
            && now >= at
        {
            self.retry_sends_at = None;
            self.flush_sends(now);
        }
        if let Some(at) = self.pace_at
            && now >= at
        {
            self.flush_sends(now);
        }
        if let Some((at, after)) = self.resync_at
            && now >= at
        {
            self.resync_at = None;
            if self.status == Status::Open {
                self.request_sync(now, after);
            }
        }
        let expired: Vec<RequestId> =
            self.requests.iter().filter(|(_, r)| now >= r.deadline).map(|(k, _)| *k).collect();
        for req in expired {
            self.requests.remove(&req);
            self.forget_pages(req);
            if Some(req) == self.caught_up_req {
                self.caught_up_req = None;
                self.events.push(Event::CaughtUp { count: self.sync_count, conversations: None });
                continue;
            }
            if Some(req) == self.ping_req || Some(req) == self.sync_req || Some(req) == self.refresh_req {
                // The connection stopped answering: drop it and reconnect.
                self.actions.push(Action::Close(1000));
                self.handle_close(now, None);
                return;
            }
            self.events.push(Event::RequestFailed {
                req,
                code: ErrorCode::REQUEST_TIMEOUT,
                message: "no answer in time".into(),
            });
        }
        if self.typing_in.iter().any(|(_, expires)| now >= *expires) {
            self.clear_typing_in(None, Some(now));
        }
        if self.status != Status::Open {
            return;
        }
        if let Some(at) = self.heartbeat_at
            && now >= at
        {
            self.heartbeat_at = Some(now + self.heartbeat_interval());
            if self.ping_req.is_none() {
                let req = self.next_request_id();
                self.ping_req = Some(req);
                let frame = ClientFrame::Ping { req };
                self.transmit(&frame);
                self.requests
                    .insert(req, PendingRequest { frame, deadline: now + self.timings.request_timeout, sent: true });
            }
        }
        if let Some(at) = self.refresh_at
            && now >= at
        {
            self.refresh_at = None;
            self.actions.push(Action::FetchToken(TokenPurpose::Refresh));
        }
    }

    /// When [`Session::handle_timeout`] should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        [
            self.reconnect_at,
            self.connect_deadline,
            self.retry_sends_at,
            self.pace_at,
            self.resync_at.map(|(at, _)| at),
            self.requests.values().map(|r| r.deadline).min(),
            self.typing_in.iter().map(|(_, expires)| *expires).min(),
            if self.status == Status::Open { self.heartbeat_at } else { None },
            if self.status == Status::Open { self.refresh_at } else { None },
        ]
        .into_iter()
        .flatten()
        .min()
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
}
