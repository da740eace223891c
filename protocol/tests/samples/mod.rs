//! One fixed sample of every frame, used by the golden vectors.
#![allow(dead_code, unreachable_pub)]

use chat_protocol::{
    ClientFrame, Conversation, Cursor, ErrorCode, Limits, MessageId, ServerFrame, StoredMessage, UserRef,
};

pub const ID: MessageId =
    MessageId([0x67, 0xe5, 0x50, 0x44, 0x10, 0xb1, 0x42, 0x6f, 0x92, 0x47, 0xbb, 0x68, 0x0e, 0x5f, 0xe0, 0xc8]);
pub const T1: UserRef = UserRef::teacher(1);
pub const S1: UserRef = UserRef::student(1);
pub const AT: i64 = 1_764_000_000_123;
pub const CURSOR: Cursor = Cursor { at: AT, id: ID };

pub fn stored() -> StoredMessage {
    StoredMessage { id: ID, from: T1, to: S1, content: "Hi".into(), created_at: AT, read: false }
}

pub fn client_samples() -> Vec<(&'static str, ClientFrame)> {
    vec![
        ("hello", ClientFrame::Hello { version: 1, token: "t.k.n".into() }),
        ("send", ClientFrame::Send { req: 7, id: ID, to: S1, content: "Hi".into() }),
        ("history", ClientFrame::History { req: 8, peer: S1, before: Some(CURSOR), limit: 50 }),
        ("history_newest", ClientFrame::History { req: 9, peer: T1, before: None, limit: 100 }),
        ("conversations", ClientFrame::Conversations { req: 10 }),
        ("mark_read", ClientFrame::MarkRead { req: 11, peer: T1, up_to: CURSOR }),
        ("typing", ClientFrame::Typing { req: 12, peer: S1, on: true }),
        ("watch_presence", ClientFrame::WatchPresence { req: 13, users: vec![T1, S1] }),
        ("refresh_token", ClientFrame::RefreshToken { req: 14, token: "new".into() }),
        ("ping", ClientFrame::Ping { req: 300 }),
        ("sync", ClientFrame::Sync { req: 15, after: Cursor::from_time(AT), limit: 200 }),
        ("conversations_page", ClientFrame::ConversationsPage { req: 16, before: Some(CURSOR), limit: 50 }),
        ("catch_up", ClientFrame::CatchUp { req: 17, after: 300, limit: 200 }),
        ("block", ClientFrame::Block { req: 18, user: S1, blocked: true }),
        ("blocks", ClientFrame::Blocks { req: 19 }),
        ("report", ClientFrame::Report { req: 20, id: ID, reason: "Rude".into() }),
        (
            "supervise_conversations",
            ClientFrame::SuperviseConversations { req: 21, student: S1, before: None, limit: 50 },
        ),
        (
            "supervise_history",
            ClientFrame::SuperviseHistory { req: 22, student: S1, peer: T1, before: None, limit: 50 },
        ),
        ("edit", ClientFrame::Edit { req: 23, id: ID, content: "Hi!".into() }),
        ("delete", ClientFrame::Delete { req: 24, id: ID }),
        ("supervise_revisions", ClientFrame::SuperviseRevisions { req: 25, student: S1, id: ID }),
    ]
}

pub fn server_samples() -> Vec<(&'static str, ServerFrame)> {
    vec![
        (
            "welcome",
            ServerFrame::Welcome {
                user: T1,
                name: "Ann".into(),
                server_time: AT,
                token_expires_at: AT + 3_600_000,
                limits: Limits::protocol(20, 40, 60_000),
            },
        ),
        ("sent", ServerFrame::Sent { req: 7, id: ID, created_at: AT }),
        ("error", ServerFrame::Error { req: 7, code: ErrorCode::CONTENT_EMPTY, message: "empty".into() }),
        ("message", ServerFrame::Message { message: stored() }),
        ("history", ServerFrame::History { req: 8, peer: S1, messages: vec![stored()], next: Some(CURSOR) }),
        (
            "conversations",
            ServerFrame::Conversations {
                req: 10,
                conversations: vec![Conversation { peer: S1, peer_name: "Bo".into(), last: stored(), unread: 3 }],
            },
        ),
        ("read", ServerFrame::Read { reader: S1, peer: T1, up_to: CURSOR }),
        ("typing", ServerFrame::Typing { from: S1, on: false }),
        ("presence", ServerFrame::Presence { user: S1, online: true }),
        ("pong", ServerFrame::Pong { req: 300, server_time: AT }),
        ("fatal", ServerFrame::Fatal { code: ErrorCode::TOKEN_EXPIRED, message: "expired".into() }),
        ("done", ServerFrame::Done { req: 12 }),
        ("watching", ServerFrame::Watching { req: 13, online: vec![S1] }),
        ("token_refreshed", ServerFrame::TokenRefreshed { req: 14, expires_at: AT }),
        ("marked_read", ServerFrame::MarkedRead { req: 11, count: 2 }),
        ("sync_page", ServerFrame::SyncPage { req: 15, messages: vec![stored()], more: true }),
        (
            "conversations_page",
            ServerFrame::ConversationsPage {
                req: 16,
                conversations: vec![Conversation { peer: S1, peer_name: "Bo".into(), last: stored(), unread: 3 }],
                next: Some(CURSOR),
            },
        ),
        ("message_at", ServerFrame::MessageAt { message: stored(), position: 300 }),
        ("catch_up_page", ServerFrame::CatchUpPage { req: 17, messages: vec![stored()], last: 300, more: false }),
        ("position", ServerFrame::Position { position: 1 }),
        ("blocks", ServerFrame::Blocks { req: 19, users: vec![S1] }),
        ("changed", ServerFrame::Changed { message: stored(), deleted: false }),
        ("quiet_hours", ServerFrame::QuietHours { windows: vec![(AT, AT + 1)] }),
        (
            "revisions",
            ServerFrame::Revisions {
                req: 25,
                revisions: vec![chat_protocol::Revision { at: AT, deleted: true, before: "Hi".into() }],
            },
        ),
    ]
}
