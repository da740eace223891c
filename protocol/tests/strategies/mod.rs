//! Proptest strategies producing every frame of the protocol.
#![allow(dead_code, unreachable_pub)]

use chat_protocol::{
    ClientFrame, Conversation, Cursor, ErrorCode, Limits, MessageId, Role, ServerFrame, StoredMessage, UserRef,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

pub fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Teacher), Just(Role::Student)]
}

pub fn user() -> impl Strategy<Value = UserRef> {
    (role(), any::<i32>()).prop_map(|(role, id)| UserRef { role, id })
}

pub fn message_id() -> impl Strategy<Value = MessageId> {
    any::<[u8; 16]>().prop_map(MessageId)
}

pub fn cursor() -> impl Strategy<Value = Cursor> {
    (any::<i64>(), message_id()).prop_map(|(at, id)| Cursor { at, id })
}

pub fn text() -> impl Strategy<Value = String> {
    ".{0,40}"
}

pub fn stored() -> impl Strategy<Value = StoredMessage> {
    (message_id(), user(), user(), text(), any::<i64>(), any::<bool>())
        .prop_map(|(id, from, to, content, created_at, read)| StoredMessage { id, from, to, content, created_at, read })
}

pub fn limits() -> impl Strategy<Value = Limits> {
    (any::<u32>(), any::<u32>(), any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
        |(a, b, c, d, e, f, g)| Limits {
            max_frame_bytes: a,
            max_content_bytes: b,
            max_history_page: c,
            max_watch_list: d,
            requests_per_second: e,
            request_burst: f,
            idle_timeout_ms: g,
        },
    )
}

pub fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (any::<u16>(), text()).prop_map(|(version, token)| ClientFrame::Hello { version, token }),
        (any::<u32>(), message_id(), user(), text())
            .prop_map(|(req, id, to, content)| { ClientFrame::Send { req, id, to, content } }),
        (any::<u32>(), user(), option::of(cursor()), any::<u16>())
            .prop_map(|(req, peer, before, limit)| ClientFrame::History { req, peer, before, limit }),
        any::<u32>().prop_map(|req| ClientFrame::Conversations { req }),
        (any::<u32>(), user(), cursor()).prop_map(|(req, peer, up_to)| ClientFrame::MarkRead { req, peer, up_to }),
        (any::<u32>(), user(), any::<bool>()).prop_map(|(req, peer, on)| ClientFrame::Typing { req, peer, on }),
        (any::<u32>(), vec(user(), 0..8)).prop_map(|(req, users)| ClientFrame::WatchPresence { req, users }),
        (any::<u32>(), text()).prop_map(|(req, token)| ClientFrame::RefreshToken { req, token }),
        any::<u32>().prop_map(|req| ClientFrame::Ping { req }),
        (any::<u32>(), cursor(), any::<u16>()).prop_map(|(req, after, limit)| ClientFrame::Sync { req, after, limit }),
        (any::<u32>(), option::of(cursor()), any::<u16>())
            .prop_map(|(req, before, limit)| ClientFrame::ConversationsPage { req, before, limit }),
        (any::<u32>(), any::<u64>(), any::<u16>()).prop_map(|(req, after, limit)| ClientFrame::CatchUp {
            req,
            after,
            limit
        }),
        (any::<u32>(), user(), any::<bool>()).prop_map(|(req, user, blocked)| ClientFrame::Block {
            req,
            user,
            blocked
        }),
        any::<u32>().prop_map(|req| ClientFrame::Blocks { req }),
        (any::<u32>(), message_id(), text()).prop_map(|(req, id, reason)| ClientFrame::Report { req, id, reason }),
        (any::<u32>(), user(), option::of(cursor()), any::<u16>()).prop_map(|(req, student, before, limit)| {
            ClientFrame::SuperviseConversations { req, student, before, limit }
        }),
        (any::<u32>(), user(), user(), option::of(cursor()), any::<u16>()).prop_map(
            |(req, student, peer, before, limit)| ClientFrame::SuperviseHistory { req, student, peer, before, limit }
        ),
        (any::<u32>(), message_id(), text()).prop_map(|(req, id, content)| ClientFrame::Edit { req, id, content }),
        (any::<u32>(), message_id()).prop_map(|(req, id)| ClientFrame::Delete { req, id }),
        (any::<u32>(), user(), message_id()).prop_map(|(req, student, id)| ClientFrame::SuperviseRevisions {
            req,
            student,
            id
        }),
    ]
}

pub fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        (user(), text(), any::<i64>(), any::<i64>(), limits()).prop_map(
            |(user, name, server_time, token_expires_at, limits)| ServerFrame::Welcome {
                user,
                name,
                server_time,
                token_expires_at,
                limits
            }
        ),
        (any::<u32>(), message_id(), any::<i64>())
            .prop_map(|(req, id, created_at)| { ServerFrame::Sent { req, id, created_at } }),
        (any::<u32>(), any::<u16>(), text()).prop_map(|(req, code, message)| ServerFrame::Error {
            req,
            code: ErrorCode(code),
            message
        }),
        stored().prop_map(|message| ServerFrame::Message { message }),
        (any::<u32>(), user(), vec(stored(), 0..4), option::of(cursor()))
            .prop_map(|(req, peer, messages, next)| ServerFrame::History { req, peer, messages, next }),
        (any::<u32>(), vec((user(), text(), stored(), any::<u32>()), 0..4)).prop_map(|(req, items)| {
            ServerFrame::Conversations {
                req,
                conversations: items
                    .into_iter()
                    .map(|(peer, peer_name, last, unread)| Conversation { peer, peer_name, last, unread })
                    .collect(),
            }
        }),
        (user(), user(), cursor()).prop_map(|(reader, peer, up_to)| ServerFrame::Read { reader, peer, up_to }),
        (user(), any::<bool>()).prop_map(|(from, on)| ServerFrame::Typing { from, on }),
        (user(), any::<bool>()).prop_map(|(user, online)| ServerFrame::Presence { user, online }),
        (any::<u32>(), any::<i64>()).prop_map(|(req, server_time)| ServerFrame::Pong { req, server_time }),
        (any::<u16>(), text()).prop_map(|(code, message)| ServerFrame::Fatal { code: ErrorCode(code), message }),
        any::<u32>().prop_map(|req| ServerFrame::Done { req }),
        (any::<u32>(), vec(user(), 0..8)).prop_map(|(req, online)| ServerFrame::Watching { req, online }),
        (any::<u32>(), any::<i64>()).prop_map(|(req, expires_at)| ServerFrame::TokenRefreshed { req, expires_at }),
        (any::<u32>(), any::<u32>()).prop_map(|(req, count)| ServerFrame::MarkedRead { req, count }),
        (any::<u32>(), vec(stored(), 0..4), any::<bool>())
            .prop_map(|(req, messages, more)| { ServerFrame::SyncPage { req, messages, more } }),
        (any::<u32>(), vec((user(), text(), stored(), any::<u32>()), 0..4), option::of(cursor())).prop_map(
            |(req, items, next)| ServerFrame::ConversationsPage {
                req,
                conversations: items
                    .into_iter()
                    .map(|(peer, peer_name, last, unread)| Conversation { peer, peer_name, last, unread })
                    .collect(),
                next,
            }
        ),
        (stored(), any::<u64>()).prop_map(|(message, position)| ServerFrame::MessageAt { message, position }),
        (any::<u32>(), vec(stored(), 0..4), any::<u64>(), any::<bool>())
            .prop_map(|(req, messages, last, more)| ServerFrame::CatchUpPage { req, messages, last, more }),
        any::<u64>().prop_map(|position| ServerFrame::Position { position }),
        (any::<u32>(), vec(user(), 0..8)).prop_map(|(req, users)| ServerFrame::Blocks { req, users }),
        (stored(), any::<bool>()).prop_map(|(message, deleted)| ServerFrame::Changed { message, deleted }),
        vec((any::<i64>(), any::<i64>()), 0..4).prop_map(|windows| ServerFrame::QuietHours { windows }),
        (any::<u32>(), vec((any::<i64>(), any::<bool>(), text()), 0..4)).prop_map(|(req, items)| {
            ServerFrame::Revisions {
                req,
                revisions: items
                    .into_iter()
                    .map(|(at, deleted, before)| chat_protocol::Revision { at, deleted, before })
                    .collect(),
            }
        }),
    ]
}
