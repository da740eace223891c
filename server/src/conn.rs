//! One WebSocket connection: the hello handshake, then a reader loop that answers
//! requests, and a writer ("pump") task that drains the connection's outbound queue.
//!
//! The reader never writes to the socket itself after the welcome: every frame goes
//! through the bounded [`Outbox`], so replies, deliveries and presence notices share one
//! ordered queue and one backpressure rule. The socket is generic over `Sink`/`Stream`
//! of axum messages, so the handshake and loop are the same for any transport.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use chat_protocol::{
    ClientFrame, Conversation, Cursor, ErrorCode, MAX_CLIENT_FRAME_BYTES, MAX_CONVERSATIONS_PAGE,
    MAX_SERVER_FRAME_BYTES, MIN_SUPPORTED_VERSION, Millis, PROTOCOL_VERSION, PageBudget, ServerFrame, StoredMessage,
    UserRef, is_supported_version,
};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use governor::clock::{Clock, DefaultClock};
use governor::{NotUntil, Quota};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::hub::{ConnControl, Outbox, QueueBytes};
use crate::now_ms;
use crate::state::{AppState, ConnectionSlot, PendingSlot};
use crate::store::NewMessage;
use crate::writer::WriteRequest;

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

/// How long the final frames of a closing connection may take to write.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection waits at shutdown for the writer to commit what it accepted.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
/// Frames written to the socket before one flush, when many are waiting.
const WRITE_BATCH: usize = 64;
/// The longest a connection over its request budget stops being read before its next
/// request is looked at.
const MAX_THROTTLE: Duration = Duration::from_secs(2);

/// Serves one upgraded WebSocket until it closes. `pending` is the connection's slot among
/// the unauthenticated ones; it is given up once the hello is accepted.
pub(crate) async fn serve(socket: WebSocket, state: AppState, pending: PendingSlot) {
    let (mut sink, mut stream) = socket.split();
    let session = match handshake(&mut stream, &state).await {
        Ok(session) => session,
        Err(Refusal::Quiet) => return,
        Err(Refusal::Fatal(code, message)) => {
            state.metrics.error(code);
            tracing::debug!(code = code.name(), %message, "connection refused at hello");
            close_with(&mut sink, code, &message).await;
            return;
        }
    };
    drop(pending);
    let Some(slot) = ConnectionSlot::take(&state) else {
        state.metrics.error(ErrorCode::SERVER_FULL);
        close_with(
            &mut sink,
            ErrorCode::SERVER_FULL,
            "the server holds its maximum number of connections; retry later",
        )
        .await;
        return;
    };

    let limits = &state.config.limits;
    let (outbox, rx, queue, control) =
        Outbox::new(state.hub.next_id(), session.user, limits.outbound_bytes, state.metrics.clone());
    // Registered before the welcome is written but the queue is only drained after it, so
    // the first frame a client sees is always the welcome.
    if let Err(code) = state.hub.register(&outbox, limits.max_connections_per_user) {
        state.metrics.error(code);
        let why = format!(
            "this user already has {} open connections (tabs, devices), the most allowed; close one",
            limits.max_connections_per_user
        );
        close_with(&mut sink, code, &why).await;
        return;
    }
    let welcome = ServerFrame::Welcome {
        user: session.user,
        name: session.name.to_string(),
        server_time: now_ms(),
        token_expires_at: session.expires_at,
        limits: limits.announced(),
    };
    if send_frame(&mut sink, &welcome).await.is_err() {
        state.hub.unregister(&outbox);
        return;
    }
    state.metrics.connection_opened();
    tracing::debug!(user = ?session.user, conn = outbox.id(), "connection authenticated");

    let pump = tokio::spawn(pump(sink, rx, queue, Arc::clone(&control), limits.write_stall_timeout));
    let mut conn = Connection {
        state: state.clone(),
        me: session.user,
        outbox,
        token_expires_at: session.expires_at,
        watching: Vec::new(),
    };
    conn.read_loop(&mut stream).await;
    conn.close(&control).await;
    if timeout(DRAIN_TIMEOUT + CLOSE_WRITE_TIMEOUT * 2, pump).await.is_err() {
        tracing::warn!(conn = conn.outbox.id(), "socket writer did not finish in time");
    }
    drop(slot);
}

/// The request budget of one user: `per_second` sustained, `burst` at once.
pub(crate) fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(per_second).max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

struct Session {
    user: UserRef,
    name: Arc<str>,
    expires_at: Millis,
}

enum Refusal {
    /// The client went away; nothing to say.
    Quiet,
    /// Tell the client why, then close.
    Fatal(ErrorCode, String),
}

async fn handshake(stream: &mut Stream, state: &AppState) -> Result<Session, Refusal> {
    let first = match timeout(state.config.limits.hello_timeout, stream.next()).await {
        Err(_) => {
            return Err(Refusal::Fatal(ErrorCode::HELLO_TIMEOUT, "no hello arrived in time".into()));
        }
        Ok(None | Some(Ok(Message::Close(_)))) => return Err(Refusal::Quiet),
        Ok(Some(Err(e))) => return Err(socket_error(&e)),
        Ok(Some(Ok(message))) => message,
    };
    let bytes = match first {
        Message::Binary(bytes) => bytes,
        Message::Text(_) => return Err(text_frame()),
        Message::Ping(_) | Message::Pong(_) => {
            return Err(Refusal::Fatal(ErrorCode::HELLO_REQUIRED, "the first frame must be a hello".into()));
        }
        Message::Close(_) => return Err(Refusal::Quiet),
    };
    let frame = ClientFrame::decode(&bytes).map_err(|e| Refusal::Fatal(e.code(), e.to_string()))?;
    let ClientFrame::Hello { version, token } = frame else {
        return Err(Refusal::Fatal(ErrorCode::HELLO_REQUIRED, "the first frame must be a hello".into()));
    };
    if !is_supported_version(version) {
        return Err(Refusal::Fatal(
            ErrorCode::UNSUPPORTED_VERSION,
            format!(
                "protocol version {version} is not supported; this server speaks {MIN_SUPPORTED_VERSION} to {PROTOCOL_VERSION}: update the chat-sdk package"
            ),
        ));
    }
    if token.len() > chat_protocol::MAX_TOKEN_BYTES {
        return Err(Refusal::Fatal(ErrorCode::TOKEN_TOO_LONG, "the token is too long".into()));
    }
    let verified = state.auth.verify(&token).map_err(|(code, why)| Refusal::Fatal(code, why.into()))?;
    match state.users.name(verified.user).await {
        Ok(Some(name)) => Ok(Session { user: verified.user, name, expires_at: verified.expires_at }),
        Ok(None) => Err(Refusal::Fatal(
            ErrorCode::UNKNOWN_USER,
            format!("no {} with id {} exists in users_view", verified.user.role.as_str(), verified.user.id),
        )),
        Err(e) => {
            tracing::error!(error = %e, "looking up a user at hello failed");
            Err(Refusal::Fatal(ErrorCode::INTERNAL, "the server could not check the user; retry".into()))
        }
    }
}

fn text_frame() -> Refusal {
    Refusal::Fatal(ErrorCode::BAD_FRAME, "text frames are not part of the protocol; send binary frames".into())
}

fn socket_error(e: &axum::Error) -> Refusal {
    let text = e.to_string();
    // tungstenite reports an over-long message as a capacity error; everything else means
    // the transport broke and there is nobody left to tell.
    if text.contains("Space limit exceeded") || text.contains("too long") || text.contains("Capacity") {
        Refusal::Fatal(ErrorCode::FRAME_TOO_LARGE, format!("frames are limited to {MAX_CLIENT_FRAME_BYTES} bytes"))
    } else {
        Refusal::Quiet
    }
}

struct Connection {
    state: AppState,
    me: UserRef,
    outbox: Outbox,
    token_expires_at: Millis,
    watching: Vec<UserRef>,
}

enum Next {
    Continue,
    Stop,
}

impl Connection {
    async fn read_loop(&mut self, stream: &mut Stream) {
        let idle = self.state.config.limits.idle_timeout;
        let mut idle_deadline = Instant::now() + idle;
        let state = self.state.clone();
        loop {
            let expiry = instant_at(self.token_expires_at);
            tokio::select! {
                biased;
                () = self.outbox.control().killed() => return,
                () = state.shutdown.cancelled() => return,
                () = sleep_until(idle_deadline) => {
                    self.fatal(ErrorCode::IDLE_TIMEOUT, "nothing was heard from the client for too long");
                    return;
                }
                () = sleep_until(expiry) => {
                    self.fatal(ErrorCode::TOKEN_EXPIRED, "the token expired; reconnect with a fresh token");
                    return;
                }
                message = stream.next() => {
                    // Only protocol frames show a live client: WebSocket pings are answered by
                    // the library and could keep a client that never reads alive forever.
                    if !matches!(message, Some(Ok(Message::Ping(_) | Message::Pong(_)))) {
                        idle_deadline = Instant::now() + idle;
                    }
                    let next = match message {
                        None | Some(Ok(Message::Close(_))) => Next::Stop,
                        Some(Err(e)) => {
                            if let Refusal::Fatal(code, why) = socket_error(&e) {
                                self.fatal(code, &why);
                            }
                            Next::Stop
                        }
                        Some(Ok(Message::Text(_))) => {
                            self.fatal(ErrorCode::BAD_FRAME, "text frames are not part of the protocol; send binary frames");
                            Next::Stop
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Next::Continue,
                        Some(Ok(Message::Binary(bytes))) => self.on_binary(&bytes).await,
                    };
                    if matches!(next, Next::Stop) {
                        return;
                    }
                }
            }
        }
    }

    fn fatal(&self, code: ErrorCode, message: &str) {
        self.state.metrics.error(code);
        self.outbox.control().kill(code, message);
    }

    fn reply(&self, frame: &ServerFrame) {
        self.outbox.push_frame(frame);
    }

    fn error(&self, req: u32, code: ErrorCode, message: impl Into<String>) {
        self.state.metrics.error(code);
        self.reply(&ServerFrame::Error { req, code, message: message.into() });
    }

    async fn on_binary(&mut self, bytes: &[u8]) -> Next {
        let frame = match ClientFrame::decode(bytes) {
            Ok(frame) => frame,
            Err(e) => {
                // Undecodable bytes mean the client and server disagree about the protocol;
                // nothing the client sends next can be trusted to line up.
                self.fatal(e.code(), &e.to_string());
                return Next::Stop;
            }
        };
        let Some(req) = frame.request_id() else {
            self.fatal(ErrorCode::ALREADY_AUTHENTICATED, "this connection already said hello");
            return Next::Stop;
        };
        if let Err(wait) = self.state.rates.check_key(&self.me) {
            return self.throttle(req, &wait).await;
        }
        if let Err(code) = frame.validate() {
            self.error(req, code, code.name());
            return Next::Continue;
        }
        match frame {
            ClientFrame::Hello { .. } => {}
            ClientFrame::Send { req, id, to, content } => {
                self.on_send(req, NewMessage { id, from: self.me, to, content }).await
            }
            ClientFrame::History { req, peer, before, limit } => self.on_history(req, peer, before, limit).await,
            ClientFrame::Conversations { req } => {
                // Protocol 1's unpaged list: the first page only.
                if let Some((conversations, _)) = self.conversations_page(req, None, MAX_CONVERSATIONS_PAGE).await {
                    self.reply(&ServerFrame::Conversations { req, conversations });
                }
            }
            ClientFrame::ConversationsPage { req, before, limit } => {
                if let Some((conversations, next)) = self.conversations_page(req, before, limit).await {
                    self.reply(&ServerFrame::ConversationsPage { req, conversations, next });
                }
            }
            ClientFrame::MarkRead { req, peer, up_to } => self.on_mark_read(req, peer, up_to).await,
            ClientFrame::Typing { req, peer, on } => {
                if self.check_peer(req, peer) {
                    let frame = ServerFrame::Typing { from: self.me, on };
                    if let Ok(bytes) = frame.encode() {
                        self.state.hub.send_to_user(peer, &Bytes::from(bytes), None);
                    }
                    self.reply(&ServerFrame::Done { req });
                }
            }
            ClientFrame::WatchPresence { req, users } => {
                if users.iter().all(|&u| self.check_peer(req, u)) {
                    let mut users = users;
                    users.sort_unstable();
                    users.dedup();
                    let online = self.state.hub.set_watch(&self.outbox, &self.watching, &users);
                    self.watching = users;
                    self.reply(&ServerFrame::Watching { req, online });
                }
            }
            ClientFrame::RefreshToken { req, token } => match self.state.auth.verify(&token) {
                Ok(v) if v.user == self.me => match self.state.users.still_exists(self.me).await {
                    Ok(true) => {
                        self.token_expires_at = v.expires_at;
                        self.reply(&ServerFrame::TokenRefreshed { req, expires_at: v.expires_at });
                    }
                    Ok(false) => {
                        // Removed from the app since the connection opened: it ends here.
                        self.fatal(ErrorCode::UNKNOWN_USER, "this user no longer exists in users_view");
                        return Next::Stop;
                    }
                    Err(e) => self.store_error(req, &e),
                },
                Ok(_) => self.error(req, ErrorCode::IDENTITY_CHANGED, "the new token names another user"),
                Err((code, why)) => self.error(req, code, why),
            },
            ClientFrame::Ping { req } => self.reply(&ServerFrame::Pong { req, server_time: now_ms() }),
            ClientFrame::Sync { req, after, limit } => match self.state.store.sync(self.me, after, limit + 1).await {
                Ok(mut messages) => {
                    let more = messages.len() > usize::from(limit);
                    messages.truncate(usize::from(limit));
                    let cut = pack(&mut messages, StoredMessage::encoded_len_bound);
                    self.reply(&ServerFrame::SyncPage { req, messages, more: more || cut });
                }
                Err(e) => self.store_error(req, &e),
            },
        }
        Next::Continue
    }

    fn store_error(&self, req: u32, e: &crate::store::StoreError) {
        tracing::error!(error = %e, user = ?self.me, "a request failed in the database");
        if e.is_unavailable() {
            self.error(req, ErrorCode::UNAVAILABLE, "the database is unavailable; retry shortly");
        } else {
            self.error(req, ErrorCode::INTERNAL, "the server could not complete the request; retry");
        }
    }

    /// Over the user's request budget: refuse this request and stop reading this connection
    /// until the budget allows the next one, so a flood turns into back-pressure on the
    /// client's socket instead of a flood of error frames (which would fill its queue).
    async fn throttle(&self, req: u32, wait: &NotUntil<<DefaultClock as Clock>::Instant>) -> Next {
        let wait = wait.wait_time_from(DefaultClock::default().now()).min(MAX_THROTTLE);
        self.error(
            req,
            ErrorCode::RATE_LIMITED,
            format!("too many requests from this user; retry in {} ms", wait.as_millis().max(1)),
        );
        tokio::select! {
            () = self.outbox.control().killed() => Next::Stop,
            () = self.state.shutdown.cancelled() => Next::Stop,
            () = sleep(wait) => Next::Continue,
        }
    }

    async fn conversations_page(
        &self,
        req: u32,
        before: Option<Cursor>,
        limit: u16,
    ) -> Option<(Vec<Conversation>, Option<Cursor>)> {
        match self.state.store.conversations(self.me, before, limit).await {
            Ok(mut conversations) => {
                let full = conversations.len() == usize::from(limit);
                let cut = pack(&mut conversations, Conversation::encoded_len_bound);
                let next = if full || cut { conversations.last().map(|c| c.last.cursor()) } else { None };
                Some((conversations, next))
            }
            Err(e) => {
                self.store_error(req, &e);
                None
            }
        }
    }

    /// Whether `me` may talk to `peer` at all (answers the request with an error if not).
    fn check_peer(&self, req: u32, peer: UserRef) -> bool {
        if peer == self.me {
            self.error(req, ErrorCode::SELF_MESSAGE, "a user cannot talk to themself");
            return false;
        }
        if !self.state.config.policy.allows(self.me.role, peer.role) {
            self.error(
                req,
                ErrorCode::NOT_ALLOWED,
                format!("a {} may not message a {}", self.me.role.as_str(), peer.role.as_str()),
            );
            return false;
        }
        true
    }

    async fn on_send(&mut self, req: u32, msg: NewMessage) {
        if !self.check_peer(req, msg.to) {
            return;
        }
        match self.state.users.name(msg.to).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                let to = msg.to;
                self.error(req, ErrorCode::UNKNOWN_RECIPIENT, format!("no {} with id {}", to.role.as_str(), to.id));
                return;
            }
            Err(e) => return self.store_error(req, &e),
        }
        if let Err(code) = self.state.writer.submit(WriteRequest { msg, req, reply: self.outbox.clone() }) {
            let why = if code == ErrorCode::OVERLOADED {
                "the server is busy; retry shortly"
            } else {
                "the server is shutting down; retry"
            };
            self.error(req, code, why);
        }
    }

    async fn on_history(&mut self, req: u32, peer: UserRef, before: Option<Cursor>, limit: u16) {
        if !self.check_peer(req, peer) {
            return;
        }
        match self.state.store.history(self.me, peer, before, limit).await {
            Ok(mut messages) => {
                let full = messages.len() == usize::from(limit);
                let cut = pack(&mut messages, StoredMessage::encoded_len_bound);
                let next = if full || cut { messages.last().map(StoredMessage::cursor) } else { None };
                self.reply(&ServerFrame::History { req, peer, messages, next });
            }
            Err(e) => self.store_error(req, &e),
        }
    }

    async fn on_mark_read(&mut self, req: u32, peer: UserRef, up_to: Cursor) {
        if !self.check_peer(req, peer) {
            return;
        }
        match self.state.store.mark_read(self.me, peer, up_to, now_ms()).await {
            Ok(count) => {
                self.reply(&ServerFrame::MarkedRead { req, count });
                if count > 0 {
                    let receipt = ServerFrame::Read { reader: self.me, peer, up_to };
                    if let Ok(bytes) = receipt.encode() {
                        let bytes = Bytes::from(bytes);
                        self.state.hub.send_to_user(peer, &bytes, None);
                        self.state.hub.send_to_user(self.me, &bytes, Some(self.outbox.id()));
                    }
                }
            }
            Err(e) => self.store_error(req, &e),
        }
    }

    /// Unregisters and tells the pump how to close.
    async fn close(&mut self, control: &Arc<ConnControl>) {
        let state = self.state.clone();
        state.hub.set_watch(&self.outbox, &self.watching, &[]);
        state.hub.unregister(&self.outbox);
        state.metrics.connection_closed();
        if !control.is_killed() && state.shutdown.is_cancelled() {
            // Shutting down: everything this connection sent was accepted before we stopped
            // reading; wait until the writer committed it so the acks go out before the close.
            if timeout(DRAIN_TIMEOUT, state.drained.cancelled()).await.is_err() {
                tracing::warn!("the writer did not drain in time");
            }
            control.kill(ErrorCode::SHUTTING_DOWN, "the server is shutting down; reconnect shortly");
        } else {
            // The client went away (or a reason was already given).
            control.kill(ErrorCode::CONNECTION_CLOSED, "closed");
        }
    }
}

/// Keeps the longest prefix of `items` that fits one page by bytes; returns whether any
/// were cut (then the page says there is more, from its last item on).
fn pack<T>(items: &mut Vec<T>, size: impl Fn(&T) -> usize) -> bool {
    let mut budget = PageBudget::new();
    let keep = items.iter().take_while(|item| budget.admit(size(item))).count();
    let cut = keep < items.len();
    items.truncate(keep);
    cut
}

fn instant_at(at: Millis) -> Instant {
    let delta = at.saturating_sub(now_ms()).max(0);
    Instant::now() + Duration::from_millis(u64::try_from(delta).unwrap_or(u64::MAX).min(u64::from(u32::MAX) * 1000))
}

/// Writes queued frames to the socket until the connection is told to close, then says
/// why and closes. A write that makes no progress for `stall` (the client stopped reading
/// and its TCP window is shut) closes the connection as a slow consumer.
async fn pump(
    mut sink: Sink,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    queue: Arc<QueueBytes>,
    control: Arc<ConnControl>,
    stall: Duration,
) {
    'outer: loop {
        let first = tokio::select! {
            biased;
            () = control.killed() => break,
            frame = rx.recv() => match frame {
                Some(frame) => frame,
                None => break,
            },
        };
        // Write everything already waiting, then flush once.
        let mut pending = vec![first];
        while pending.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(frame) => pending.push(frame),
                Err(_) => break,
            }
        }
        let bytes: usize = pending.iter().map(Bytes::len).sum();
        let count = pending.len();
        let write = async {
            for frame in pending {
                if frame.len() > MAX_SERVER_FRAME_BYTES {
                    // Pages are packed well below this; a frame this large is a bug, and
                    // writing it would fail the socket for good.
                    tracing::error!(len = frame.len(), "a frame over the protocol's limit was not sent");
                    continue;
                }
                sink.feed(Message::Binary(frame)).await?;
            }
            sink.flush().await
        };
        let result = tokio::select! {
            biased;
            () = control.killed() => break 'outer,
            result = timeout(stall, write) => result,
        };
        queue.release_many(bytes, count);
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                queue.metrics().write_failure("error");
                tracing::info!(error = %e, "writing to a client failed; closing its connection");
                control.kill(ErrorCode::CONNECTION_CLOSED, "the socket failed");
                return;
            }
            Err(_) => {
                queue.metrics().write_failure("stalled");
                tracing::info!(
                    queued = queue.queued(),
                    seconds = stall.as_secs_f64(),
                    "a client read nothing for too long; closing its connection"
                );
                control.kill(ErrorCode::SLOW_CONSUMER, "the client did not read its messages");
                return;
            }
        }
    }
    let (code, message) = control.reason().unwrap_or((ErrorCode::CONNECTION_CLOSED, "closed".into()));
    let finish = async {
        match code {
            ErrorCode::CONNECTION_CLOSED => {
                let _ignored_client_already_gone = sink.close().await;
            }
            ErrorCode::SHUTTING_DOWN => {
                // Flush the acks of everything committed during the drain, then "going away".
                while let Ok(frame) = rx.try_recv() {
                    if sink.feed(Message::Binary(frame)).await.is_err() {
                        return;
                    }
                }
                let fatal = ServerFrame::Fatal { code, message: message.clone() };
                if let Ok(bytes) = fatal.encode() {
                    let _ = sink.feed(Message::Binary(Bytes::from(bytes))).await;
                }
                let close = CloseFrame { code: 1001, reason: "server shutting down".into() };
                let _ = sink.send(Message::Close(Some(close))).await;
            }
            _ => close_with(&mut sink, code, &message).await,
        }
    };
    if timeout(CLOSE_WRITE_TIMEOUT, finish).await.is_err() {
        tracing::debug!("closing a connection timed out");
    }
}

async fn send_frame(sink: &mut Sink, frame: &ServerFrame) -> Result<(), axum::Error> {
    match frame.encode() {
        Ok(bytes) => sink.send(Message::Binary(Bytes::from(bytes))).await,
        Err(e) => {
            tracing::error!(error = %e, "a server frame could not be encoded");
            Ok(())
        }
    }
}

/// Sends a fatal frame naming `code`, then closes with close code `4000 + code`.
async fn close_with(sink: &mut Sink, code: ErrorCode, message: &str) {
    let work = async {
        let _ = send_frame(sink, &ServerFrame::Fatal { code, message: message.to_owned() }).await;
        // Close reasons are limited to 123 bytes; the code name always fits.
        let close = CloseFrame { code: code.close_code(), reason: code.name().into() };
        let _ = sink.send(Message::Close(Some(close))).await;
    };
    let _ = timeout(CLOSE_WRITE_TIMEOUT, work).await;
}
