//! The validation rules both ends run, ids and roles in text form, and close codes.

#![allow(clippy::unwrap_used)]

use chat_protocol::{
    ClientFrame, Cursor, ErrorCode, MAX_CONTENT_BYTES, MAX_HISTORY_PAGE, MAX_SYNC_PAGE, MAX_TOKEN_BYTES,
    MAX_WATCH_LIST, MessageId, Role, UserRef, validate_content,
};
use proptest::prelude::*;

const ID: MessageId = MessageId::new_v4([7; 16]);

fn send(content: &str) -> ClientFrame {
    ClientFrame::Send { req: 1, id: ID, to: UserRef::student(1), content: content.into() }
}

#[test]
fn empty_and_whitespace_only_content_is_refused() {
    for content in ["", " ", "\n\t  \r\n", "\u{3000}"] {
        assert_eq!(send(content).validate(), Err(ErrorCode::CONTENT_EMPTY), "{content:?}");
    }
    assert_eq!(send(" hi ").validate(), Ok(()));
}

#[test]
fn content_is_limited_in_bytes_not_characters() {
    assert_eq!(validate_content(&"a".repeat(MAX_CONTENT_BYTES)), Ok(()));
    assert_eq!(validate_content(&"a".repeat(MAX_CONTENT_BYTES + 1)), Err(ErrorCode::CONTENT_TOO_LONG));
    // 3-byte characters: one more than fits.
    let n = MAX_CONTENT_BYTES / 3 + 1;
    assert_eq!(validate_content(&"€".repeat(n)), Err(ErrorCode::CONTENT_TOO_LONG));
}

#[test]
fn nul_cannot_be_stored_so_it_is_refused() {
    assert_eq!(send("a\0b").validate(), Err(ErrorCode::CONTENT_INVALID));
}

#[test]
fn content_made_only_of_invisible_characters_is_empty() {
    for content in ["\u{200b}", " \u{200b}\u{200d} ", "\u{feff}", "\u{2060}\u{ad}", "\u{3164}", "\u{e0020}"] {
        assert_eq!(send(content).validate(), Err(ErrorCode::CONTENT_EMPTY), "{content:?}");
    }
    // Invisible characters inside real text are fine (emoji sequences use joiners).
    assert_eq!(send("👩\u{200d}🏫 hello\u{200b}").validate(), Ok(()));
}

#[test]
fn bidi_overrides_and_terminal_escapes_are_refused() {
    for content in [
        "invoice\u{202e}fdp.exe",
        "a\u{202d}b",
        "a\u{2066}b\u{2069}",
        "\u{1b}[31mred",
        "bell\u{7}",
        "c1\u{9b}31m",
        "del\u{7f}",
    ] {
        assert_eq!(send(content).validate(), Err(ErrorCode::CONTENT_INVALID), "{content:?}");
    }
    // Tabs, new lines, right-to-left scripts and emoji are ordinary text.
    for content in ["line 1\r\nline 2\tend", "שלום עולם", "مرحبا بالعالم", "héllo 👋🏽"] {
        assert_eq!(send(content).validate(), Ok(()), "{content:?}");
    }
}

#[test]
fn nil_ids_and_non_positive_user_ids_are_refused() {
    let frame = ClientFrame::Send { req: 1, id: MessageId::NIL, to: UserRef::student(1), content: "x".into() };
    assert_eq!(frame.validate(), Err(ErrorCode::BAD_MESSAGE_ID));
    for id in [0, -1, i32::MIN] {
        let frame = ClientFrame::Send { req: 1, id: ID, to: UserRef::teacher(id), content: "x".into() };
        assert_eq!(frame.validate(), Err(ErrorCode::BAD_USER_ID));
    }
    let frame = ClientFrame::MarkRead { req: 1, peer: UserRef::teacher(2), up_to: Cursor::from_time(5) };
    assert_eq!(frame.validate(), Err(ErrorCode::BAD_MESSAGE_ID));
}

#[test]
fn page_sizes_out_of_range_are_refused() {
    let history = |limit| ClientFrame::History { req: 1, peer: UserRef::student(3), before: None, limit };
    assert_eq!(history(0).validate(), Err(ErrorCode::BAD_LIMIT));
    assert_eq!(history(MAX_HISTORY_PAGE + 1).validate(), Err(ErrorCode::BAD_LIMIT));
    assert_eq!(history(1).validate(), Ok(()));
    assert_eq!(history(MAX_HISTORY_PAGE).validate(), Ok(()));
    let sync = |limit| ClientFrame::Sync { req: 1, after: Cursor::from_time(0), limit };
    assert_eq!(sync(0).validate(), Err(ErrorCode::BAD_LIMIT));
    assert_eq!(sync(MAX_SYNC_PAGE + 1).validate(), Err(ErrorCode::BAD_LIMIT));
    assert_eq!(sync(MAX_SYNC_PAGE).validate(), Ok(()));
}

#[test]
fn watch_lists_and_tokens_have_their_own_limits() {
    let users = vec![UserRef::student(1); MAX_WATCH_LIST + 1];
    assert_eq!(ClientFrame::WatchPresence { req: 1, users }.validate(), Err(ErrorCode::WATCH_LIST_TOO_LONG));
    let users = vec![UserRef::student(1), UserRef::teacher(0)];
    assert_eq!(ClientFrame::WatchPresence { req: 1, users }.validate(), Err(ErrorCode::BAD_USER_ID));
    let token = "x".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(ClientFrame::Hello { version: 1, token: token.clone() }.validate(), Err(ErrorCode::TOKEN_TOO_LONG));
    assert_eq!(ClientFrame::RefreshToken { req: 1, token }.validate(), Err(ErrorCode::TOKEN_TOO_LONG));
}

#[test]
fn every_validation_failure_has_a_distinct_code() {
    let codes = [
        ErrorCode::CONTENT_EMPTY,
        ErrorCode::CONTENT_TOO_LONG,
        ErrorCode::CONTENT_INVALID,
        ErrorCode::INVALID_UTF8,
        ErrorCode::BAD_MESSAGE_ID,
        ErrorCode::BAD_USER_ID,
        ErrorCode::BAD_LIMIT,
        ErrorCode::WATCH_LIST_TOO_LONG,
        ErrorCode::TOKEN_TOO_LONG,
    ];
    let unique: std::collections::BTreeSet<_> = codes.iter().collect();
    assert_eq!(unique.len(), codes.len());
    let names: std::collections::BTreeSet<_> = ErrorCode::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(names.len(), ErrorCode::ALL.len(), "names are unique too");
}

#[test]
fn close_codes_carry_error_codes_in_the_private_range() {
    for &code in ErrorCode::ALL {
        let close = code.close_code();
        assert!((4000..5000).contains(&close));
        assert_eq!(ErrorCode::from_close_code(close), Some(code));
    }
    assert_eq!(ErrorCode::from_close_code(1000), None);
    assert_eq!(ErrorCode::from_close_code(1001), None);
    assert!(ErrorCode::TOKEN_EXPIRED.is_auth_failure());
    assert!(!ErrorCode::TOKEN_EXPIRED.is_retryable());
    assert!(ErrorCode::INTERNAL.is_retryable());
    assert_eq!(ErrorCode(999).name(), "unknown");
}

#[test]
fn roles_use_the_database_spelling() {
    assert_eq!(Role::Teacher.as_str(), "teacher");
    assert_eq!(Role::Student.as_str(), "student");
    assert_eq!(Role::parse("teacher"), Some(Role::Teacher));
    assert_eq!(Role::parse("Teacher"), None);
    assert_eq!(Role::parse(""), None);
}

#[test]
fn message_ids_print_like_prisma_uuids() {
    let id =
        MessageId([0x67, 0xe5, 0x50, 0x44, 0x10, 0xb1, 0x42, 0x6f, 0x92, 0x47, 0xbb, 0x68, 0x0e, 0x5f, 0xe0, 0xc8]);
    assert_eq!(id.hyphenated().as_str(), "67e55044-10b1-426f-9247-bb680e5fe0c8");
    assert_eq!(MessageId::parse("67E55044-10B1-426F-9247-BB680E5FE0C8"), Some(id));
    for bad in [
        "",
        "67e5504410b1426f9247bb680e5fe0c8",
        "67e55044-10b1-426f-9247-bb680e5fe0c",
        "67e55044-10b1-426f-9247-bb680e5fe0c8a",
        "67e55044x10b1-426f-9247-bb680e5fe0c8",
        "67e5504-410b1-426f-9247-bb680e5fe0c8",
        "g7e55044-10b1-426f-9247-bb680e5fe0c8",
        "67e55044-10b1-426f-9247-bb680e5fe0-8",
    ] {
        assert_eq!(MessageId::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn v4_ids_have_version_and_variant_bits() {
    let id = MessageId::new_v4([0xff; 16]);
    let text = id.hyphenated();
    assert_eq!(&text.as_str()[14..15], "4");
    assert_eq!(&text.as_str()[19..20], "b");
    let id = MessageId::new_v4([0; 16]);
    assert!(!id.is_nil());
}

proptest! {
    #[test]
    fn hyphenated_ids_parse_back(bytes in any::<[u8; 16]>()) {
        let id = MessageId(bytes);
        prop_assert_eq!(MessageId::parse(id.hyphenated().as_str()), Some(id));
    }

    #[test]
    fn arbitrary_text_never_panics_the_id_parser(s in ".{0,40}") {
        let _ = MessageId::parse(&s);
    }

    #[test]
    fn cursors_order_by_time_then_id(a in any::<(i64, [u8; 16])>(), b in any::<(i64, [u8; 16])>()) {
        let ca = Cursor { at: a.0, id: MessageId(a.1) };
        let cb = Cursor { at: b.0, id: MessageId(b.1) };
        prop_assert_eq!(ca.cmp(&cb), a.cmp(&b));
        prop_assert!(Cursor::from_time(a.0) <= ca);
    }
}

#[test]
fn generated_ids_sort_in_creation_order_even_within_a_millisecond_or_backwards_clocks() {
    let mut g = chat_protocol::IdGenerator::new();
    let mut previous = MessageId::NIL;
    let clock = [5u64, 5, 5, 6, 6, 4, 4, 7];
    for (i, now) in clock.into_iter().enumerate() {
        // Random bytes that would sort backwards if they decided the order.
        let id = g.next(now, [255 - i as u8; 8]);
        assert!(id > previous, "id {i} sorts after the one before");
        assert_eq!(&id.hyphenated().as_str()[14..15], "7", "version 7");
        previous = id;
    }
    // 5000 ids in the same millisecond still increase.
    for _ in 0..5000 {
        let id = g.next(7, [0; 8]);
        assert!(id > previous);
        previous = id;
    }
}

#[test]
fn v7_ids_carry_their_millisecond_in_the_first_six_bytes() {
    let id = MessageId::new_v7(0x0123_4567_89ab, 0x0abc, [0xff; 8]);
    assert_eq!(id.hyphenated().as_str(), "01234567-89ab-7abc-bfff-ffffffffffff");
}

#[test]
fn a_report_needs_a_reason_within_its_limit_and_a_real_message_id() {
    let report = |id: MessageId, reason: &str| ClientFrame::Report { req: 1, id, reason: reason.into() };
    assert_eq!(report(ID, "It was unkind").validate(), Ok(()));
    assert_eq!(report(ID, " \n ").validate(), Err(ErrorCode::CONTENT_EMPTY));
    assert_eq!(
        report(ID, &"x".repeat(chat_protocol::MAX_REASON_BYTES + 1)).validate(),
        Err(ErrorCode::CONTENT_TOO_LONG)
    );
    assert_eq!(report(MessageId([0; 16]), "why").validate(), Err(ErrorCode::BAD_MESSAGE_ID));
    let block = |user| ClientFrame::Block { req: 1, user, blocked: true };
    assert_eq!(block(UserRef::student(3)).validate(), Ok(()));
    assert_eq!(block(UserRef::student(0)).validate(), Err(ErrorCode::BAD_USER_ID));
}
