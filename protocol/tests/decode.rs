//! Decoding hostile input: oversized, truncated, lying lengths, bad UTF-8, trailing bytes.

#![allow(clippy::unwrap_used)]

mod samples;

use chat_protocol::{
    ClientFrame, DecodeError, ErrorCode, MAX_CLIENT_FRAME_BYTES, MAX_CONTENT_BYTES, MAX_SERVER_FRAME_BYTES, MessageId,
    ServerFrame, StoredMessage,
};

#[test]
fn input_over_the_limit_is_refused_before_parsing() {
    let bytes = vec![0u8; MAX_CLIENT_FRAME_BYTES + 1];
    assert_eq!(
        ClientFrame::decode(&bytes),
        Err(DecodeError::TooLarge { len: MAX_CLIENT_FRAME_BYTES + 1, max: MAX_CLIENT_FRAME_BYTES })
    );
    assert_eq!(DecodeError::TooLarge { len: 0, max: 0 }.code(), ErrorCode::FRAME_TOO_LARGE);
}

#[test]
fn a_string_claiming_four_gigabytes_is_an_error_not_an_allocation() {
    // Hello { version: 1, token: <length 0xFFFF_FFFF> } followed by three bytes.
    let bytes = [0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, b'a', b'b', b'c'];
    assert_eq!(ClientFrame::decode(&bytes), Err(DecodeError::Truncated));
    // The same for a sequence: SyncPage { req: 1, messages: <0xFFFF_FFFF elements> }.
    let bytes = [0x0f, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    assert!(ServerFrame::decode(&bytes).is_err());
}

#[test]
fn a_length_varint_overflowing_usize_is_malformed() {
    let bytes = [0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert_eq!(ClientFrame::decode(&bytes), Err(DecodeError::Malformed));
}

#[test]
fn invalid_utf8_in_content_has_its_own_code() {
    // Send { req: 1, id, to: student 1, content: [0xff, 0xfe] }
    let mut bytes = vec![0x01, 0x01];
    bytes.extend_from_slice(&samples::ID.0);
    bytes.extend_from_slice(&[0x01, 0x02, 0x02, 0xff, 0xfe]);
    let err = ClientFrame::decode(&bytes).expect_err("not UTF-8");
    assert_eq!(err, DecodeError::InvalidUtf8);
    assert_eq!(err.code(), ErrorCode::INVALID_UTF8);
}

#[test]
fn unknown_variants_bad_bools_and_empty_input_are_rejected() {
    assert_eq!(ClientFrame::decode(&[]), Err(DecodeError::Truncated));
    assert_eq!(ClientFrame::decode(&[0x7f]), Err(DecodeError::Malformed));
    // Typing { req: 1, peer: student 1, on: 2 } - a bool must be 0 or 1.
    assert_eq!(ClientFrame::decode(&[0x05, 0x01, 0x01, 0x02, 0x02]), Err(DecodeError::Malformed));
    // A role outside {teacher, student}.
    assert_eq!(ClientFrame::decode(&[0x05, 0x01, 0x02, 0x02, 0x01]), Err(DecodeError::Malformed));
}

#[test]
fn trailing_bytes_after_a_frame_are_rejected() {
    let mut bytes = ClientFrame::Ping { req: 1 }.encode().expect("encodes");
    bytes.push(0);
    assert_eq!(ClientFrame::decode(&bytes), Err(DecodeError::TrailingBytes));
    assert_eq!(DecodeError::TrailingBytes.code(), ErrorCode::BAD_FRAME);
}

#[test]
fn the_largest_valid_send_fits_in_a_client_frame() {
    let frame = ClientFrame::Send {
        req: u32::MAX,
        id: MessageId([0xff; 16]),
        to: chat_protocol::UserRef::student(i32::MAX),
        content: "é".repeat(MAX_CONTENT_BYTES / 2),
    };
    assert_eq!(frame.validate(), Ok(()));
    let bytes = frame.encode().expect("fits");
    assert!(bytes.len() <= MAX_CLIENT_FRAME_BYTES);
    assert_eq!(ClientFrame::decode(&bytes), Ok(frame));
}

/// The largest message a server can hold in a page: the longest content, the widest ids.
fn widest_message() -> StoredMessage {
    StoredMessage {
        id: MessageId([0xff; 16]),
        from: chat_protocol::UserRef::teacher(i32::MAX),
        to: chat_protocol::UserRef::student(i32::MIN),
        content: "\u{10ffff}".repeat(MAX_CONTENT_BYTES / 4),
        created_at: i64::MIN,
        read: true,
    }
}

#[test]
fn the_size_bounds_used_for_packing_pages_are_upper_bounds() {
    let message = widest_message();
    let encoded = postcard::to_allocvec(&message).expect("encodes");
    assert!(encoded.len() <= message.encoded_len_bound(), "{} > {}", encoded.len(), message.encoded_len_bound());
    let conversation = chat_protocol::Conversation {
        peer: chat_protocol::UserRef::teacher(i32::MIN),
        peer_name: "é".repeat(chat_protocol::MAX_NAME_BYTES / 2),
        last: message,
        unread: u32::MAX,
    };
    let encoded = postcard::to_allocvec(&conversation).expect("encodes");
    assert!(encoded.len() <= conversation.encoded_len_bound());
}

#[test]
fn pages_packed_by_the_budget_fit_in_a_server_frame_whatever_their_items() {
    // The worst case of each paged frame: items of the largest size, as many as the
    // budget admits at the largest page size the protocol allows.
    let pack = |count: usize, len: usize| {
        let mut budget = chat_protocol::PageBudget::new();
        (0..count).take_while(|_| budget.admit(len)).count()
    };
    let message = widest_message();
    let n = pack(usize::from(chat_protocol::MAX_SYNC_PAGE), message.encoded_len_bound());
    assert!(n >= 1 && n < usize::from(chat_protocol::MAX_SYNC_PAGE), "the budget cut the page: {n}");
    let sync = ServerFrame::SyncPage { req: u32::MAX, messages: vec![message.clone(); n], more: true };
    assert!(sync.encode().expect("fits").len() <= chat_protocol::MAX_PAGE_BYTES + 64);
    let next = Some(chat_protocol::Cursor { at: i64::MIN, id: MessageId([0xff; 16]) });
    let n = pack(usize::from(chat_protocol::MAX_HISTORY_PAGE), message.encoded_len_bound());
    let history = ServerFrame::History {
        req: u32::MAX,
        peer: chat_protocol::UserRef::student(i32::MIN),
        messages: vec![message.clone(); n],
        next,
    };
    assert!(history.encode().expect("fits").len() <= MAX_SERVER_FRAME_BYTES);
    let conversation = chat_protocol::Conversation {
        peer: chat_protocol::UserRef::teacher(i32::MIN),
        peer_name: "é".repeat(chat_protocol::MAX_NAME_BYTES / 2),
        last: message,
        unread: u32::MAX,
    };
    let n = pack(usize::from(chat_protocol::MAX_CONVERSATIONS_PAGE), conversation.encoded_len_bound());
    let page = ServerFrame::ConversationsPage { req: u32::MAX, conversations: vec![conversation; n], next };
    assert!(page.encode().expect("fits").len() <= MAX_SERVER_FRAME_BYTES);
}

#[test]
fn one_item_over_the_budget_still_makes_a_page() {
    let mut budget = chat_protocol::PageBudget::new();
    assert!(budget.admit(chat_protocol::MAX_PAGE_BYTES * 2), "the first item is always admitted");
    assert!(!budget.admit(1));
}

#[test]
fn encoding_a_frame_over_the_limit_fails_and_leaves_the_buffer_alone() {
    let frame = ClientFrame::Hello { version: 1, token: "x".repeat(MAX_CLIENT_FRAME_BYTES) };
    let mut buf = vec![1, 2, 3];
    let err = frame.encode_into(&mut buf).expect_err("too large");
    assert!(matches!(err, chat_protocol::EncodeError::TooLarge { max: MAX_CLIENT_FRAME_BYTES, .. }));
    assert_eq!(buf, [1, 2, 3]);
}

/// The largest frame of every kind a server can build, each within the frame limit (and so
/// within the server's socket write limit, which is set above it). The `match` makes a new
/// variant fail to compile here until its largest form is added.
#[test]
fn every_kind_of_server_frame_at_its_largest_fits_a_frame() {
    use chat_protocol::{
        Conversation, Cursor, ErrorCode, Limits, MAX_BLOCKS, MAX_CONVERSATIONS_PAGE, MAX_HISTORY_PAGE, MAX_NAME_BYTES,
        MAX_SYNC_PAGE, MAX_WATCH_LIST, PageBudget, UserRef,
    };
    let message = widest_message();
    let name = "é".repeat(MAX_NAME_BYTES / 2);
    let widest = Cursor { at: i64::MIN, id: MessageId([0xff; 16]) };
    let cursor = Some(widest);
    let user = UserRef::teacher(i32::MIN);
    let conversation = Conversation { peer: user, peer_name: name.clone(), last: message.clone(), unread: u32::MAX };
    let pack = |max: u16, len: usize| {
        let mut budget = PageBudget::new();
        (0..usize::from(max)).take_while(|_| budget.admit(len)).count()
    };
    let messages = |max: u16| vec![message.clone(); pack(max, message.encoded_len_bound())];
    let conversations = vec![conversation.clone(); pack(MAX_CONVERSATIONS_PAGE, conversation.encoded_len_bound())];
    // Server-written explanations are short sentences; 1 KiB is far above any of them.
    let text = "x".repeat(1024);
    let largest = |kind: &ServerFrame| -> ServerFrame {
        match kind {
            ServerFrame::Welcome { .. } => ServerFrame::Welcome {
                user,
                name: name.clone(),
                server_time: i64::MIN,
                token_expires_at: i64::MIN,
                limits: Limits::protocol(u32::MAX, u32::MAX, u32::MAX),
            },
            ServerFrame::Sent { .. } => {
                ServerFrame::Sent { req: u32::MAX, id: MessageId([0xff; 16]), created_at: i64::MIN }
            }
            ServerFrame::Error { .. } => {
                ServerFrame::Error { req: u32::MAX, code: ErrorCode(u16::MAX), message: text.clone() }
            }
            ServerFrame::Message { .. } => ServerFrame::Message { message: message.clone() },
            ServerFrame::History { .. } => {
                ServerFrame::History { req: u32::MAX, peer: user, messages: messages(MAX_HISTORY_PAGE), next: cursor }
            }
            ServerFrame::Conversations { .. } => {
                ServerFrame::Conversations { req: u32::MAX, conversations: conversations.clone() }
            }
            ServerFrame::Read { .. } => ServerFrame::Read { reader: user, peer: user, up_to: widest },
            ServerFrame::Typing { .. } => ServerFrame::Typing { from: user, on: true },
            ServerFrame::Presence { .. } => ServerFrame::Presence { user, online: true },
            ServerFrame::Pong { .. } => ServerFrame::Pong { req: u32::MAX, server_time: i64::MIN },
            ServerFrame::Fatal { .. } => ServerFrame::Fatal { code: ErrorCode(u16::MAX), message: text.clone() },
            ServerFrame::Done { .. } => ServerFrame::Done { req: u32::MAX },
            ServerFrame::Watching { .. } => ServerFrame::Watching { req: u32::MAX, online: vec![user; MAX_WATCH_LIST] },
            ServerFrame::TokenRefreshed { .. } => ServerFrame::TokenRefreshed { req: u32::MAX, expires_at: i64::MIN },
            ServerFrame::MarkedRead { .. } => ServerFrame::MarkedRead { req: u32::MAX, count: u32::MAX },
            ServerFrame::SyncPage { .. } => {
                ServerFrame::SyncPage { req: u32::MAX, messages: messages(MAX_SYNC_PAGE), more: true }
            }
            ServerFrame::ConversationsPage { .. } => {
                ServerFrame::ConversationsPage { req: u32::MAX, conversations: conversations.clone(), next: cursor }
            }
            ServerFrame::MessageAt { .. } => ServerFrame::MessageAt { message: message.clone(), position: u64::MAX },
            ServerFrame::CatchUpPage { .. } => ServerFrame::CatchUpPage {
                req: u32::MAX,
                messages: messages(MAX_SYNC_PAGE),
                last: u64::MAX,
                more: true,
            },
            ServerFrame::Position { .. } => ServerFrame::Position { position: u64::MAX },
            ServerFrame::Blocks { .. } => ServerFrame::Blocks { req: u32::MAX, users: vec![user; MAX_BLOCKS] },
            ServerFrame::Changed { .. } => ServerFrame::Changed { message: message.clone(), deleted: true },
            ServerFrame::QuietHours { .. } => ServerFrame::QuietHours { windows: vec![(i64::MIN, i64::MIN); 16] },
            // The server sends at most MAX_REVISIONS of one message, each text within the content limit.
            ServerFrame::Revisions { .. } => ServerFrame::Revisions {
                req: u32::MAX,
                revisions: vec![
                    chat_protocol::Revision { at: i64::MIN, deleted: true, before: message.content.clone() };
                    chat_protocol::MAX_REVISIONS
                ],
            },
        }
    };
    let kinds = samples::server_samples();
    assert_eq!(kinds.len(), 24, "one sample of every kind");
    for (name, kind) in kinds {
        let frame = largest(&kind);
        assert_eq!(std::mem::discriminant(&frame), std::mem::discriminant(&kind), "{name}");
        let len = frame.encode().unwrap_or_else(|e| panic!("{name}: {e}")).len();
        assert!(len <= MAX_SERVER_FRAME_BYTES, "{name}: {len} bytes");
        assert!(len <= chat_protocol::MAX_PAGE_BYTES + 2 * chat_protocol::MAX_CONTENT_BYTES, "{name}: {len} bytes");
    }
}
