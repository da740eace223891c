//! The native transport: tokio + tokio-tungstenite driving the sans-IO [`Session`].
//!
//! One task owns the session and the socket; the [`Client`] handle talks to it through a
//! channel, so every method is cheap and the handle can be cloned across tasks. Calls
//! return futures that resolve when the server answers (a send: once committed).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_protocol::{Conversation, Cursor, ErrorCode, MessageId, Millis, ServerFrame, StoredMessage, UserRef};
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::core::{Action, Event, Request, Session, Status, Timings, TokenPurpose};
use crate::url::websocket_url;

/// A token provider's future.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;
/// The app's token provider: called on every (re)connect and before the token expires.
pub type TokenProvider = Arc<dyn Fn() -> TokenFuture + Send + Sync>;

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientError {
    /// The protocol's stable error code.
    pub code: ErrorCode,
    /// An explanation.
    pub message: String,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code.name(), self.code.0, self.message)
    }
}

impl std::error::Error for ClientError {}

fn closed() -> ClientError {
    ClientError { code: ErrorCode::CLIENT_CLOSED, message: "the client was closed".into() }
}

enum Command {
    Send { to: UserRef, content: String, reply: oneshot::Sender<Result<StoredMessage, ClientError>> },
    Request { request: Request, reply: oneshot::Sender<Result<ServerFrame, ClientError>> },
    DropConnection,
    SkipTime(Millis),
    Close,
}

/// A handle to a running client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<Status>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Client {
    /// Starts a client for the server at `url` (`http://host:4000` or `ws://host:4000/ws`)
    /// and begins connecting. Events the app should see (messages, receipts, typing,
    /// presence, status) arrive on the returned receiver, which should be drained.
    ///
    /// # Errors
    /// A sentence if `url` is not usable.
    pub fn start(
        url: &str,
        get_token: TokenProvider,
        timings: Timings,
    ) -> Result<(Client, mpsc::UnboundedReceiver<Event>), &'static str> {
        let url = websocket_url(url)?;
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(Status::Idle);
        let mut seed = [0u8; 8];
        // A failure leaves the seed at zero, which only makes jitter and id bits predictable.
        let _ = getrandom::fill(&mut seed);
        let session = Session::new(timings, u64::from_le_bytes(seed));
        tokio::spawn(drive(url, get_token, session, command_rx, event_tx, status_tx));
        Ok((Client { commands, status }, event_rx))
    }

    /// The current status.
    #[must_use]
    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// Waits until the status is `wanted` (or the client is gone).
    pub async fn wait_for(&self, wanted: Status) -> Status {
        let mut rx = self.status.clone();
        let result = rx.wait_for(|s| *s == wanted).await.map(|s| *s);
        result.unwrap_or(Status::Closed)
    }

    /// Sends a message; resolves with the stored message once the server committed it.
    /// Queued while offline and resent after reconnects with the same id.
    ///
    /// # Errors
    /// A permanent refusal (validation, policy, unknown recipient, closed, unauthorized).
    pub async fn send(&self, to: UserRef, content: impl Into<String>) -> Result<StoredMessage, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.commands.send(Command::Send { to, content: content.into(), reply }).map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    async fn request(&self, request: Request) -> Result<ServerFrame, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.commands.send(Command::Request { request, reply }).map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// A page of the conversation with `peer`, newest first, and the cursor of the next page.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn history(
        &self,
        peer: UserRef,
        before: Option<Cursor>,
        limit: u16,
    ) -> Result<(Vec<StoredMessage>, Option<Cursor>), ClientError> {
        match self.request(Request::History { peer, before, limit }).await? {
            ServerFrame::History { messages, next, .. } => Ok((messages, next)),
            other => Err(unexpected(&other)),
        }
    }

    /// The conversation list, most recent first.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn conversations(&self) -> Result<Vec<Conversation>, ClientError> {
        match self.request(Request::Conversations).await? {
            ServerFrame::Conversations { conversations, .. } => Ok(conversations),
            other => Err(unexpected(&other)),
        }
    }

    /// Marks what `peer` sent up to `up_to` as read; returns how many messages changed.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn mark_read(&self, peer: UserRef, up_to: Cursor) -> Result<u32, ClientError> {
        match self.request(Request::MarkRead { peer, up_to }).await? {
            ServerFrame::MarkedRead { count, .. } => Ok(count),
            other => Err(unexpected(&other)),
        }
    }

    /// Tells `peer` this user is typing (or stopped).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn set_typing(&self, peer: UserRef, on: bool) -> Result<(), ClientError> {
        self.request(Request::Typing { peer, on }).await.map(|_| ())
    }

    /// Follows the presence of `users`; returns those online now.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn watch_presence(&self, users: Vec<UserRef>) -> Result<Vec<UserRef>, ClientError> {
        match self.request(Request::WatchPresence { users }).await? {
            ServerFrame::Watching { online, .. } => Ok(online),
            other => Err(unexpected(&other)),
        }
    }

    /// Blocks `user` (or lifts the block): neither can then message or type to the other.
    ///
    /// # Errors
    /// See [`ClientError`]; `not_allowed` where the school's policy does not let this role
    /// block that one.
    pub async fn block(&self, user: UserRef, blocked: bool) -> Result<(), ClientError> {
        self.request(Request::Block { user, blocked }).await.map(|_| ())
    }

    /// The users this user has blocked.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn blocks(&self) -> Result<Vec<UserRef>, ClientError> {
        match self.request(Request::Blocks).await? {
            ServerFrame::Blocks { users, .. } => Ok(users),
            other => Err(unexpected(&other)),
        }
    }

    /// Reports message `id` (one this user received) to the school's staff.
    ///
    /// # Errors
    /// See [`ClientError`]; `unknown_message` when no such message was sent to this user.
    pub async fn report(&self, id: MessageId, reason: impl Into<String>) -> Result<(), ClientError> {
        self.request(Request::Report { id, reason: reason.into() }).await.map(|_| ())
    }

    /// Replaces the text of message `id`, which this user sent, within the server's edit window.
    ///
    /// # Errors
    /// See [`ClientError`]; `not_allowed` past the window, `unknown_message` for a message
    /// this user did not send.
    pub async fn edit(&self, id: MessageId, content: impl Into<String>) -> Result<(), ClientError> {
        self.request(Request::Edit { id, content: content.into() }).await.map(|_| ())
    }

    /// Deletes (unsends) message `id`, which this user sent, within the server's edit window.
    ///
    /// # Errors
    /// As [`Client::edit`].
    pub async fn delete(&self, id: MessageId) -> Result<(), ClientError> {
        self.request(Request::Delete { id }).await.map(|_| ())
    }

    /// A supervisor reads `student`'s conversation list (read-only; audited by the server).
    ///
    /// # Errors
    /// See [`ClientError`]; `not_allowed` unless this user's token makes them a supervisor.
    pub async fn supervise_conversations(&self, student: UserRef) -> Result<Vec<Conversation>, ClientError> {
        match self.request(Request::SuperviseConversations { student }).await? {
            ServerFrame::Conversations { conversations, .. } => Ok(conversations),
            other => Err(unexpected(&other)),
        }
    }

    /// A supervisor reads the earlier texts of message `id` of `student`'s (audited).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn supervise_revisions(
        &self,
        student: UserRef,
        id: MessageId,
    ) -> Result<Vec<chat_protocol::Revision>, ClientError> {
        match self.request(Request::SuperviseRevisions { student, id }).await? {
            ServerFrame::Revisions { revisions, .. } => Ok(revisions),
            other => Err(unexpected(&other)),
        }
    }

    /// A supervisor reads a page of `student`'s conversation with `peer`, newest first.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn supervise_history(
        &self,
        student: UserRef,
        peer: UserRef,
        before: Option<Cursor>,
        limit: u16,
    ) -> Result<(Vec<StoredMessage>, Option<Cursor>), ClientError> {
        match self.request(Request::SuperviseHistory { student, peer, before, limit }).await? {
            ServerFrame::History { messages, next, .. } => Ok((messages, next)),
            other => Err(unexpected(&other)),
        }
    }

    /// Drops the socket as a network failure would (the client then reconnects by itself).
    pub fn drop_connection(&self) {
        let _ = self.commands.send(Command::DropConnection);
    }

    /// Moves this client's clock `ms` forward: whatever falls due by then (a token refresh,
    /// a typing expiry, a reconnect) happens now. For tests, which must not wait on the wall
    /// clock; the session core takes the time as an input, so this is all it needs.
    pub fn skip_time(&self, ms: Millis) {
        let _ = self.commands.send(Command::SkipTime(ms));
    }

    /// Closes the client: pending sends and requests fail with `client_closed`.
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }
}

fn unexpected(frame: &ServerFrame) -> ClientError {
    ClientError { code: ErrorCode::BAD_FRAME, message: format!("unexpected answer {frame:?}") }
}

type TokenResult = (TokenPurpose, Result<String, String>);
type Connecting = Pin<Box<dyn Future<Output = Result<Ws, String>> + Send>>;

#[derive(Default)]
struct Waiters {
    sends: BTreeMap<MessageId, oneshot::Sender<Result<StoredMessage, ClientError>>>,
    requests: BTreeMap<u32, oneshot::Sender<Result<ServerFrame, ClientError>>>,
}

async fn drive(
    url: String,
    get_token: TokenProvider,
    mut session: Session,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Event>,
    status: watch::Sender<Status>,
) {
    let mut ws: Option<Ws> = None;
    let mut connecting: Option<Connecting> = None;
    let mut tokens: FuturesUnordered<Pin<Box<dyn Future<Output = TokenResult> + Send>>> = FuturesUnordered::new();
    let mut waiters = Waiters::default();
    // The wall clock plus whatever `skip_time` added.
    let mut skipped: Millis = 0;
    let now = |skipped: Millis| now_ms() + skipped;
    session.connect(now(skipped));
    loop {
        // Outputs first: actions, frames, events.
        while let Some(action) = session.poll_action() {
            match action {
                Action::FetchToken(purpose) => {
                    let fetch = get_token();
                    tokens.push(Box::pin(async move { (purpose, fetch.await) }));
                }
                Action::Open => {
                    let url = url.clone();
                    connecting = Some(Box::pin(async move {
                        tokio_tungstenite::connect_async(url.as_str())
                            .await
                            .map(|(ws, _)| ws)
                            .map_err(|e| e.to_string())
                    }));
                }
                Action::Close(code) => {
                    connecting = None;
                    if let Some(mut socket) = ws.take() {
                        let frame = CloseFrame { code: code.into(), reason: "".into() };
                        let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(Some(frame))).await;
                    }
                }
            }
        }
        let mut broken = false;
        if let Some(socket) = ws.as_mut() {
            let mut wrote = false;
            while let Some(bytes) = session.poll_transmit() {
                if socket.feed(Message::Binary(bytes.into())).await.is_err() {
                    broken = true;
                    break;
                }
                wrote = true;
            }
            if wrote && !broken && socket.flush().await.is_err() {
                broken = true;
            }
        }
        if broken {
            ws = None;
            session.handle_close(now(skipped), None);
            continue;
        }
        while let Some(event) = session.poll_event() {
            route(event, &mut waiters, &events, &status);
        }

        let deadline = session.poll_timeout().map(|at| {
            let delta = u64::try_from((at - now(skipped)).max(0)).unwrap_or(0);
            tokio::time::Instant::now() + Duration::from_millis(delta)
        });
        tokio::select! {
            command = commands.recv() => match command {
                None => {
                    session.close(now(skipped));
                }
                Some(Command::Send { to, content, reply }) => match session.send(now(skipped), to, content) {
                    Ok(id) => {
                        waiters.sends.insert(id, reply);
                    }
                    Err(code) => {
                        let _ = reply.send(Err(ClientError { code, message: code.name().into() }));
                    }
                },
                Some(Command::Request { request, reply }) => match session.request(now(skipped), request) {
                    Ok(req) => {
                        waiters.requests.insert(req, reply);
                    }
                    Err(code) => {
                        let _ = reply.send(Err(ClientError { code, message: code.name().into() }));
                    }
                },
                Some(Command::DropConnection) => {
                    if ws.take().is_some() || connecting.take().is_some() {
                        session.handle_close(now(skipped), None);
                    }
                }
                Some(Command::SkipTime(ms)) => {
                    skipped += ms.max(0);
                    session.handle_timeout(now(skipped));
                }
                Some(Command::Close) => {
                    session.close(now(skipped));
                }
            },
            message = next_message(&mut ws) => match message {
                Some(Ok(Message::Binary(bytes))) => session.handle_frame(now(skipped), &bytes),
                Some(Ok(Message::Close(frame))) => {
                    ws = None;
                    session.handle_close(now(skipped), frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    ws = None;
                    session.handle_close(now(skipped), None);
                }
            },
            opened = async { match connecting.as_mut() { Some(c) => c.await, None => std::future::pending().await } } => {
                connecting = None;
                match opened {
                    Ok(socket) => {
                        ws = Some(socket);
                        session.handle_open(now(skipped));
                    }
                    Err(_) => session.handle_close(now(skipped), None),
                }
            },
            Some((purpose, result)) = tokens.next(), if !tokens.is_empty() => match result {
                Ok(token) => session.handle_token(now(skipped), purpose, token),
                Err(_) => session.handle_token_error(now(skipped), purpose),
            },
            () = async { match deadline { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } } => {
                session.handle_timeout(now(skipped));
            }
        }
        if session.status() == Status::Closed {
            while let Some(event) = session.poll_event() {
                route(event, &mut waiters, &events, &status);
            }
            if let Some(mut socket) = ws.take() {
                let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
            }
            break;
        }
    }
    for (_, waiter) in std::mem::take(&mut waiters.sends) {
        let _ = waiter.send(Err(closed()));
    }
    for (_, waiter) in std::mem::take(&mut waiters.requests) {
        let _ = waiter.send(Err(closed()));
    }
}

async fn next_message(ws: &mut Option<Ws>) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match ws.as_mut() {
        Some(socket) => socket.next().await,
        None => std::future::pending().await,
    }
}

fn route(event: Event, waiters: &mut Waiters, events: &mpsc::UnboundedSender<Event>, status: &watch::Sender<Status>) {
    match event {
        Event::Sent(message) => {
            if let Some(waiter) = waiters.sends.remove(&message.id) {
                let _ = waiter.send(Ok(message.clone()));
            }
            let _ = events.send(Event::Sent(message));
        }
        Event::SendFailed { id, code, message } => {
            if let Some(waiter) = waiters.sends.remove(&id) {
                let _ = waiter.send(Err(ClientError { code, message: message.clone() }));
            }
            let _ = events.send(Event::SendFailed { id, code, message });
        }
        Event::Response { req, frame } => {
            if let Some(waiter) = waiters.requests.remove(&req) {
                let _ = waiter.send(Ok(frame));
            }
        }
        Event::RequestFailed { req, code, message } => {
            if let Some(waiter) = waiters.requests.remove(&req) {
                let _ = waiter.send(Err(ClientError { code, message }));
            }
        }
        Event::Status(s) => {
            status.send_replace(s);
            let _ = events.send(Event::Status(s));
        }
        Event::Refused { code, reason } => {
            status.send_replace(Status::Refused);
            let _ = events.send(Event::Refused { code, reason });
        }
        other => {
            let _ = events.send(other);
        }
    }
}
