//! The public vocabulary of the session: its settings, its states, what it asks the
//! transport to do, what the app asks of it, and what it tells the app.

use alloc::string::String;
use alloc::vec::Vec;

use chat_protocol::{
    ClientFrame, Conversation, Cursor, ErrorCode, MAX_CONVERSATIONS_PAGE, MessageId, Millis, RequestId, ServerFrame,
    StoredMessage, UserRef,
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
            refresh_before_expiry: 60_000,
            typing_throttle: 3_000,
            typing_expiry: 6_000,
        }
    }
}

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not started: `connect` has not been called yet.
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
    /// The server refuses this page for good (its origin is not allowed): terminal until the
    /// app calls `connect` again. Last so the numbers of the others stay as they were.
    Refused,
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
            Status::Refused => "refused",
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
    /// Block a user, or lift the block (a teacher's block is a mute).
    Block {
        /// Who.
        user: UserRef,
        /// Block or lift.
        blocked: bool,
    },
    /// Whom this user has blocked.
    Blocks,
    /// Report a message this user received to the school's staff.
    Report {
        /// The message.
        id: MessageId,
        /// Why.
        reason: String,
    },
    /// Replace the text of a message this user sent (within the server's edit window).
    Edit {
        /// The message.
        id: MessageId,
        /// The new text.
        content: String,
    },
    /// Delete (unsend) a message this user sent (within the server's edit window).
    Delete {
        /// The message.
        id: MessageId,
    },
    /// A supervisor reads a student's conversation list (every page, gathered). Read-only;
    /// the server records the read in its audit log.
    SuperviseConversations {
        /// The student.
        student: UserRef,
    },
    /// A supervisor reads the earlier texts of a message of a student's (edits, deletion).
    SuperviseRevisions {
        /// The student.
        student: UserRef,
        /// The message.
        id: MessageId,
    },
    /// A supervisor reads a page of a student's conversation with `peer`, newest first.
    SuperviseHistory {
        /// The student.
        student: UserRef,
        /// The other user.
        peer: UserRef,
        /// Older than this.
        before: Option<Cursor>,
        /// Page size.
        limit: u16,
    },
}

impl Request {
    /// The frame that asks it. A conversation list is gathered page by page (see
    /// `Session::on_conversations_page`); this is its first page.
    // Not inlined into `Session::request`: LLVM's choice there costs the browser bundle 234 B
    // gzip (BENCHMARKS.md, "Browser bundle").
    #[inline(never)]
    pub(super) fn into_frame(self, req: RequestId) -> ClientFrame {
        match self {
            Request::History { peer, before, limit } => ClientFrame::History { req, peer, before, limit },
            Request::Conversations => {
                ClientFrame::ConversationsPage { req, before: None, limit: MAX_CONVERSATIONS_PAGE }
            }
            Request::MarkRead { peer, up_to } => ClientFrame::MarkRead { req, peer, up_to },
            Request::Typing { peer, on } => ClientFrame::Typing { req, peer, on },
            Request::WatchPresence { users } => ClientFrame::WatchPresence { req, users },
            Request::Ping => ClientFrame::Ping { req },
            Request::Block { user, blocked } => ClientFrame::Block { req, user, blocked },
            Request::Blocks => ClientFrame::Blocks { req },
            Request::Report { id, reason } => ClientFrame::Report { req, id, reason },
            Request::Edit { id, content } => ClientFrame::Edit { req, id, content },
            Request::Delete { id } => ClientFrame::Delete { req, id },
            Request::SuperviseRevisions { student, id } => ClientFrame::SuperviseRevisions { req, student, id },
            Request::SuperviseConversations { student } => {
                ClientFrame::SuperviseConversations { req, student, before: None, limit: MAX_CONVERSATIONS_PAGE }
            }
            Request::SuperviseHistory { student, peer, before, limit } => {
                ClientFrame::SuperviseHistory { req, student, peer, before, limit }
            }
        }
    }
}

/// What the app learns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The status changed.
    Status(Status),
    /// The server refused this page for good: the status is now [`Status::Refused`] (this
    /// event stands for that status change, with the server's reason).
    Refused {
        /// Why, as a code (`origin_not_allowed`).
        code: ErrorCode,
        /// The server's sentence, e.g. which origin and which setting.
        reason: String,
    },
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
        /// Sent to this user during the school's quiet hours: show it, but do not notify.
        quiet: bool,
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
    /// A message was edited or deleted by its sender: the message as it is now (its text
    /// empty once deleted).
    Changed {
        /// The message.
        message: StoredMessage,
        /// Deleted rather than edited.
        deleted: bool,
    },
    /// The server closed the connection with this code (for the app's logs and UI).
    Disconnected {
        /// The protocol error code, if the close carried one.
        code: Option<ErrorCode>,
    },
}
