//! The frames: [`ClientFrame`] (client -> server) and [`ServerFrame`] (server -> client).
//!
//! Append-only: postcard encodes a variant by its index and a struct by its field order,
//! so new variants go at the end of an enum and existing fields never change. Changing
//! the shape of an existing frame needs a new [`crate::PROTOCOL_VERSION`].

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ids::{Cursor, MessageId, Millis, RequestId, UserRef};
use crate::limits::Limits;

/// A frame sent by a client.
///
/// The first frame of every connection is [`ClientFrame::Hello`]. No frame names its
/// sender: the server takes the sender from the token the connection authenticated with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// Opens the session: the protocol version spoken and the auth token (an HS256 JWT
    /// minted by the host app). Answered by `Welcome`, or by `Fatal` and a close.
    Hello {
        /// [`crate::PROTOCOL_VERSION`] of the client.
        version: u16,
        /// The token.
        token: String,
    },
    /// Sends a message. Answered by `Sent` once the message is committed, or `Error`.
    /// Sending the same id again returns the original `Sent` and stores nothing.
    Send {
        /// Request id.
        req: RequestId,
        /// The message id, chosen by the client (a random UUID), reused on every retry.
        id: MessageId,
        /// The recipient.
        to: UserRef,
        /// The text.
        content: String,
    },
    /// Asks for a page of the conversation with `peer`, newest first. Answered by `History`.
    History {
        /// Request id.
        req: RequestId,
        /// The other user of the conversation.
        peer: UserRef,
        /// Only messages strictly older than this position; `None` for the newest page.
        before: Option<Cursor>,
        /// Page size, 1..=[`crate::MAX_HISTORY_PAGE`].
        limit: u16,
    },
    /// Asks for the conversation list. Answered by `Conversations`.
    Conversations {
        /// Request id.
        req: RequestId,
    },
    /// Marks the messages `peer` sent to this user up to and including `up_to` as read.
    /// Answered by `MarkedRead`; `peer` and this user's other connections get `Read`.
    MarkRead {
        /// Request id.
        req: RequestId,
        /// The other user of the conversation.
        peer: UserRef,
        /// The position of the newest message read.
        up_to: Cursor,
    },
    /// Tells `peer` this user started or stopped typing. Never stored. Answered by `Done`.
    Typing {
        /// Request id.
        req: RequestId,
        /// Who is told.
        peer: UserRef,
        /// Typing or not.
        on: bool,
    },
    /// Replaces the set of users whose presence this connection follows. Answered by
    /// `Watching` with who of them is online now; changes follow as `Presence`.
    WatchPresence {
        /// Request id.
        req: RequestId,
        /// The users to follow, at most [`crate::MAX_WATCH_LIST`].
        users: Vec<UserRef>,
    },
    /// Replaces the connection's token before it expires. Answered by `TokenRefreshed`.
    RefreshToken {
        /// Request id.
        req: RequestId,
        /// The new token; it must name the same user.
        token: String,
    },
    /// Application-level ping. Answered by `Pong`.
    Ping {
        /// Request id.
        req: RequestId,
    },
    /// Asks for the messages sent to or by this user after `after`, oldest first, across
    /// all conversations: how a client catches up after being offline. Answered by
    /// `SyncPage`; ask again from the last message's cursor while `more` is true.
    Sync {
        /// Request id.
        req: RequestId,
        /// Only messages strictly after this position.
        after: Cursor,
        /// Page size, 1..=[`crate::MAX_SYNC_PAGE`].
        limit: u16,
    },
    /// Asks for a page of the conversation list, most recent activity first. Answered by
    /// `ConversationsPage`; ask again with its `next` until it is `None`. (Since protocol 2;
    /// `Conversations` is answered with the first page only.)
    ConversationsPage {
        /// Request id.
        req: RequestId,
        /// Only conversations whose last message is strictly older than this position;
        /// `None` for the most recent.
        before: Option<Cursor>,
        /// Page size, 1..=[`crate::MAX_CONVERSATIONS_PAGE`].
        limit: u16,
    },
    /// Asks for the messages sent to or by this user after log position `after`, in log
    /// order: how a protocol 3 client catches up. Positions are the order in which the
    /// database's message log took messages (commit order), not their `createdAt`, so no
    /// message can later appear before a position already passed, whichever node or app
    /// wrote it. Answered by `CatchUpPage`; ask again from its `last` while `more` is true.
    /// (Since protocol 3.)
    CatchUp {
        /// Request id.
        req: RequestId,
        /// Only messages strictly after this log position.
        after: u64,
        /// Page size, 1..=[`crate::MAX_SYNC_PAGE`].
        limit: u16,
    },
    /// Blocks `user` (or lifts the block): neither can then message or type to the other,
    /// each told `blocked` when trying. What the school's policy lets a role block is the
    /// server's to say (refused with `not_allowed`). A teacher's block is what the SDK calls
    /// a mute. Answered by `Done`. (Since protocol 4.)
    Block {
        /// Request id.
        req: RequestId,
        /// Who.
        user: UserRef,
        /// Block (true) or lift the block (false).
        blocked: bool,
    },
    /// Asks whom this user has blocked. Answered by `Blocks`. (Since protocol 4.)
    Blocks {
        /// Request id.
        req: RequestId,
    },
    /// Reports a message this user received, with a reason, to the school's staff. Answered
    /// by `Done` once the report is stored. (Since protocol 4.)
    Report {
        /// Request id.
        req: RequestId,
        /// The message.
        id: MessageId,
        /// Why, in the reporter's words, 1..=[`crate::MAX_REASON_BYTES`] bytes.
        reason: String,
    },
    /// A supervisor (a teacher whose token says so) asks for a page of a student's
    /// conversation list, read-only. Answered like `ConversationsPage`; the read is written
    /// to the audit log. Anyone else is refused with `not_allowed`. (Since protocol 4.)
    SuperviseConversations {
        /// Request id.
        req: RequestId,
        /// The student.
        student: UserRef,
        /// Only conversations whose last message is strictly older than this; `None` for
        /// the most recent.
        before: Option<Cursor>,
        /// Page size, 1..=[`crate::MAX_CONVERSATIONS_PAGE`].
        limit: u16,
    },
    /// A supervisor asks for a page of a student's conversation with `peer`, newest first,
    /// read-only. Answered by `History`; the read is written to the audit log. (Since
    /// protocol 4.)
    SuperviseHistory {
        /// Request id.
        req: RequestId,
        /// The student.
        student: UserRef,
        /// The other user of the conversation.
        peer: UserRef,
        /// Only messages strictly older than this; `None` for the newest page.
        before: Option<Cursor>,
        /// Page size, 1..=[`crate::MAX_HISTORY_PAGE`].
        limit: u16,
    },
    /// Replaces the text of a message this user sent, within the server's edit window.
    /// Answered by `Done`; every connection of both users gets `Changed`. The earlier text
    /// is kept for supervisors and exports. (Since protocol 4.)
    Edit {
        /// Request id.
        req: RequestId,
        /// The message.
        id: MessageId,
        /// The new text.
        content: String,
    },
    /// Deletes (unsends) a message this user sent, within the server's edit window: its text
    /// becomes empty for both users. Answered by `Done`; both users' connections get `Changed`.
    /// The text is kept for supervisors and exports. (Since protocol 4.)
    Delete {
        /// Request id.
        req: RequestId,
        /// The message.
        id: MessageId,
    },
    /// A supervisor asks for the earlier texts of message `id` in a student's conversations
    /// (each edit and deletion, with the text before it). Answered by `Revisions`; the read is
    /// written to the audit log. (Since protocol 4.)
    SuperviseRevisions {
        /// Request id.
        req: RequestId,
        /// The student.
        student: UserRef,
        /// The message (sent or received by the student).
        id: MessageId,
    },
}

/// A message as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// The id the sender chose.
    pub id: MessageId,
    /// The sender.
    pub from: UserRef,
    /// The recipient.
    pub to: UserRef,
    /// The text.
    pub content: String,
    /// When the server stored it (`createdAt`).
    pub created_at: Millis,
    /// Whether the recipient has read it (`isRead`).
    pub read: bool,
}

/// Bytes a stored message takes on the wire besides its content, at most: id 16, two users
/// (role 1 + id varint 5 each), `createdAt` varint 10, `read` 1, content length varint 3.
const MESSAGE_OVERHEAD: usize = 16 + 2 * 6 + 10 + 1 + 3;

impl StoredMessage {
    /// An upper bound of this message's encoded size, for packing pages by bytes.
    #[must_use]
    pub fn encoded_len_bound(&self) -> usize {
        self.content.len() + MESSAGE_OVERHEAD
    }

    /// The message's position in the total order of messages.
    #[must_use]
    pub fn cursor(&self) -> Cursor {
        Cursor { at: self.created_at, id: self.id }
    }

    /// The other user of the conversation, seen from `me`.
    #[must_use]
    pub fn peer_of(&self, me: UserRef) -> UserRef {
        if self.from == me { self.to } else { self.from }
    }
}

/// One entry of the conversation list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The other user.
    pub peer: UserRef,
    /// The other user's display name (`users_view.name`).
    pub peer_name: String,
    /// The newest message either way.
    pub last: StoredMessage,
    /// How many messages from `peer` this user has not read.
    pub unread: u32,
}

impl Conversation {
    /// An upper bound of this entry's encoded size, for packing pages by bytes: the last
    /// message, the peer (6), the name and its length (3), the unread count (5).
    #[must_use]
    pub fn encoded_len_bound(&self) -> usize {
        self.last.encoded_len_bound() + self.peer_name.len() + 6 + 3 + 5
    }
}

/// A frame sent by the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerFrame {
    /// The hello was accepted.
    Welcome {
        /// Who this connection is, from the token.
        user: UserRef,
        /// The user's display name.
        name: String,
        /// The server's clock, for the client to estimate skew.
        server_time: Millis,
        /// When the token expires; refresh before then or the connection is closed.
        token_expires_at: Millis,
        /// The limits in force on this server.
        limits: Limits,
    },
    /// A send was committed (or had been committed before, for a resend).
    Sent {
        /// The request answered.
        req: RequestId,
        /// The stored message's id.
        id: MessageId,
        /// The stored `createdAt`.
        created_at: Millis,
    },
    /// A request failed; the connection stays open.
    Error {
        /// The request answered.
        req: RequestId,
        /// What went wrong.
        code: ErrorCode,
        /// A short human-readable explanation (never database text).
        message: String,
    },
    /// A message arrived live: sent to this user, or by this user from another connection.
    /// Protocol 1 and 2 clients get every live message this way; protocol 5 clients get
    /// messages this way the moment they are committed, before the log numbers them (a
    /// later `Position` covers them), and as `MessageAt` when the log brings them first.
    Message {
        /// The stored message.
        message: StoredMessage,
    },
    /// A page of a conversation, newest first.
    History {
        /// The request answered.
        req: RequestId,
        /// The other user of the conversation.
        peer: UserRef,
        /// The messages, newest first.
        messages: Vec<StoredMessage>,
        /// The cursor for the next (older) page; `None` when this was the oldest.
        next: Option<Cursor>,
    },
    /// The conversation list, most recent activity first.
    Conversations {
        /// The request answered.
        req: RequestId,
        /// The conversations.
        conversations: Vec<Conversation>,
    },
    /// A read receipt: `reader` read the messages `peer` sent them, up to `up_to`.
    /// Sent to `peer` and to the reader's other connections.
    Read {
        /// Who read.
        reader: UserRef,
        /// Whose messages were read.
        peer: UserRef,
        /// The newest message read.
        up_to: Cursor,
    },
    /// `from` started or stopped typing to this user.
    Typing {
        /// Who is typing.
        from: UserRef,
        /// Typing or not.
        on: bool,
    },
    /// A watched user came online or went offline.
    Presence {
        /// The user.
        user: UserRef,
        /// Online (at least one open connection) or not.
        online: bool,
    },
    /// The answer to `Ping`.
    Pong {
        /// The request answered.
        req: RequestId,
        /// The server's clock.
        server_time: Millis,
    },
    /// The server is closing the connection for this reason.
    Fatal {
        /// Why.
        code: ErrorCode,
        /// A short human-readable explanation.
        message: String,
    },
    /// A request without a result succeeded (e.g. `Typing`).
    Done {
        /// The request answered.
        req: RequestId,
    },
    /// The answer to `WatchPresence`: which of the watched users are online now.
    Watching {
        /// The request answered.
        req: RequestId,
        /// The watched users that are online.
        online: Vec<UserRef>,
    },
    /// The answer to `RefreshToken`.
    TokenRefreshed {
        /// The request answered.
        req: RequestId,
        /// When the new token expires.
        expires_at: Millis,
    },
    /// The answer to `MarkRead`.
    MarkedRead {
        /// The request answered.
        req: RequestId,
        /// How many messages changed from unread to read.
        count: u32,
    },
    /// The answer to `Sync`: missed messages, oldest first.
    SyncPage {
        /// The request answered.
        req: RequestId,
        /// The messages, oldest first.
        messages: Vec<StoredMessage>,
        /// Whether more messages follow the last one.
        more: bool,
    },
    /// The answer to `ConversationsPage`.
    ConversationsPage {
        /// The request answered.
        req: RequestId,
        /// The conversations, most recent activity first.
        conversations: Vec<Conversation>,
        /// The cursor for the next page (the last conversation's last message); `None`
        /// when this was the last page.
        next: Option<Cursor>,
    },
    /// A live message with its log position (protocol 3 clients get this instead of
    /// `Message`). A connection receives messages in log order, so every message of the
    /// user at or before `position` has been sent to it (live or, before it connected, by
    /// the catch-up it asks for).
    MessageAt {
        /// The message.
        message: StoredMessage,
        /// Its position in the message log.
        position: u64,
    },
    /// The answer to `CatchUp`: messages in log order.
    CatchUpPage {
        /// The request answered.
        req: RequestId,
        /// The messages, in log order.
        messages: Vec<StoredMessage>,
        /// The log position of the last message of the page (`after` when it is empty):
        /// where the next page, or the next catch-up, starts.
        last: u64,
        /// Whether more messages follow.
        more: bool,
    },
    /// Sent right after `Welcome` to protocol 3 clients: the log position live delivery
    /// starts from for this connection; a client with no earlier position catches up from
    /// here after a reconnect. From protocol 5 it also comes later, after live `Message`s
    /// sent before the log numbered them: every message of the user at or before `position`
    /// has now been sent to this connection (live, or by the catch-up it asks for).
    Position {
        /// The log position.
        position: u64,
    },
    /// The answer to `Blocks`: the users this user has blocked. (Since protocol 4.)
    Blocks {
        /// The request answered.
        req: RequestId,
        /// The blocked users.
        users: Vec<UserRef>,
    },
    /// A message was edited or deleted by its sender: the message as it is now (its text
    /// empty once deleted). Sent to every connection of both users (the editing one too).
    /// (Since protocol 4.)
    Changed {
        /// The message, with its new text.
        message: StoredMessage,
        /// Deleted (its text is gone for both users) rather than edited.
        deleted: bool,
    },
    /// The school's quiet hours for this (student) user, as `[start, end)` intervals in
    /// milliseconds since the epoch, from two days back to a week ahead: messages to the
    /// user created within one are delivered as always, and marked so the app does not
    /// notify. Sent after the welcome and after each token refresh. (Since protocol 4.)
    QuietHours {
        /// The intervals, in order.
        windows: Vec<(Millis, Millis)>,
    },
    /// The answer to `SuperviseRevisions`: each change, oldest first. (Since protocol 4.)
    Revisions {
        /// The request answered.
        req: RequestId,
        /// The changes.
        revisions: Vec<Revision>,
    },
}

/// One edit or deletion of a message: when, which, and the text it replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// When the sender changed it.
    pub at: Millis,
    /// Deleted (true) or edited.
    pub deleted: bool,
    /// The text before this change.
    pub before: String,
}

impl ServerFrame {
    /// The request this frame answers, if it answers one.
    #[must_use]
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            ServerFrame::Sent { req, .. }
            | ServerFrame::Error { req, .. }
            | ServerFrame::History { req, .. }
            | ServerFrame::Conversations { req, .. }
            | ServerFrame::Pong { req, .. }
            | ServerFrame::Done { req }
            | ServerFrame::Watching { req, .. }
            | ServerFrame::TokenRefreshed { req, .. }
            | ServerFrame::MarkedRead { req, .. }
            | ServerFrame::SyncPage { req, .. }
            | ServerFrame::ConversationsPage { req, .. }
            | ServerFrame::CatchUpPage { req, .. }
            | ServerFrame::Blocks { req, .. }
            | ServerFrame::Revisions { req, .. } => Some(*req),
            ServerFrame::Welcome { .. }
            | ServerFrame::Message { .. }
            | ServerFrame::Read { .. }
            | ServerFrame::Typing { .. }
            | ServerFrame::Presence { .. }
            | ServerFrame::Fatal { .. }
            | ServerFrame::MessageAt { .. }
            | ServerFrame::Position { .. }
            | ServerFrame::Changed { .. }
            | ServerFrame::QuietHours { .. } => None,
        }
    }
}

impl ClientFrame {
    /// The request id the answer to this frame will carry (`None` for `Hello`).
    #[must_use]
    pub fn request_id(&self) -> Option<RequestId> {
        match self {
            ClientFrame::Hello { .. } => None,
            ClientFrame::Send { req, .. }
            | ClientFrame::History { req, .. }
            | ClientFrame::Conversations { req }
            | ClientFrame::MarkRead { req, .. }
            | ClientFrame::Typing { req, .. }
            | ClientFrame::WatchPresence { req, .. }
            | ClientFrame::RefreshToken { req, .. }
            | ClientFrame::Ping { req }
            | ClientFrame::Sync { req, .. }
            | ClientFrame::ConversationsPage { req, .. }
            | ClientFrame::CatchUp { req, .. }
            | ClientFrame::Block { req, .. }
            | ClientFrame::Blocks { req }
            | ClientFrame::Report { req, .. }
            | ClientFrame::SuperviseConversations { req, .. }
            | ClientFrame::SuperviseHistory { req, .. }
            | ClientFrame::Edit { req, .. }
            | ClientFrame::Delete { req, .. }
            | ClientFrame::SuperviseRevisions { req, .. } => Some(*req),
        }
    }
}
