//! Golden byte vectors: the exact encoding of every frame is pinned here.
//!
//! Postcard encodes enum variants by index and struct fields by position, so reordering a
//! variant or a field silently changes the wire format. If a test here fails, you changed
//! the encoding of an existing frame: append instead, or bump `PROTOCOL_VERSION`.

#![allow(clippy::unwrap_used)]

mod samples;

use std::collections::BTreeSet;

use chat_protocol::{ClientFrame, ErrorCode, Role, ServerFrame};

const CLIENT_GOLDEN: &[(&str, &str)] = &[
    ("hello", "000105742e6b2e6e"),
    ("send", "010767e5504410b1426f9247bb680e5fe0c80102024869"),
    ("history", "0208010201f6a1bfe9d66667e5504410b1426f9247bb680e5fe0c832"),
    ("history_newest", "020900020064"),
    ("conversations", "030a"),
    ("mark_read", "040b0002f6a1bfe9d66667e5504410b1426f9247bb680e5fe0c8"),
    ("typing", "050c010201"),
    ("watch_presence", "060d0200020102"),
    ("refresh_token", "070e036e6577"),
    ("ping", "08ac02"),
    ("sync", "090ff6a1bfe9d66600000000000000000000000000000000c801"),
    ("conversations_page", "0a1001f6a1bfe9d66667e5504410b1426f9247bb680e5fe0c832"),
    ("catch_up", "0b11ac02c801"),
    ("block", "0c12010201"),
    ("blocks", "0d13"),
    ("report", "0e1467e5504410b1426f9247bb680e5fe0c80452756465"),
    ("supervise_conversations", "0f1501020032"),
    ("supervise_history", "1016010200020032"),
    ("edit", "111767e5504410b1426f9247bb680e5fe0c803486921"),
    ("delete", "121867e5504410b1426f9247bb680e5fe0c8"),
    ("supervise_revisions", "1319010267e5504410b1426f9247bb680e5fe0c8"),
];

const SERVER_GOLDEN: &[(&str, &str)] = &[
    ("welcome", "00000203416e6ef6a1bfe9d666f6dbf6ecd6668080028080016480021428e0d403"),
    ("sent", "010767e5504410b1426f9247bb680e5fe0c8f6a1bfe9d666"),
    ("error", "02071405656d707479"),
    ("message", "0367e5504410b1426f9247bb680e5fe0c800020102024869f6a1bfe9d66600"),
    (
        "history",
        "040801020167e5504410b1426f9247bb680e5fe0c800020102024869f6a1bfe9d6660001f6a1bfe9d66667e5504410b1426f9247bb680e5fe0c8",
    ),
    ("conversations", "050a01010202426f67e5504410b1426f9247bb680e5fe0c800020102024869f6a1bfe9d6660003"),
    ("read", "0601020002f6a1bfe9d66667e5504410b1426f9247bb680e5fe0c8"),
    ("typing", "07010200"),
    ("presence", "08010201"),
    ("pong", "09ac02f6a1bfe9d666"),
    ("fatal", "0a0b0765787069726564"),
    ("done", "0b0c"),
    ("watching", "0c0d010102"),
    ("token_refreshed", "0d0ef6a1bfe9d666"),
    ("marked_read", "0e0b02"),
    ("sync_page", "0f0f0167e5504410b1426f9247bb680e5fe0c800020102024869f6a1bfe9d6660001"),
    (
        "conversations_page",
        "101001010202426f67e5504410b1426f9247bb680e5fe0c800020102024869f6a1bfe9d666000301f6a1bfe9d66667e5504410b1426f9247bb680e5fe0c8",
    ),
    ("message_at", "1167e5504410b1426f9247bb680e5fe0c800020102024869f6a1bfe9d66600ac02"),
    ("catch_up_page", "12110167e5504410b1426f9247bb680e5fe0c800020102024869f6a1bfe9d66600ac0200"),
    ("position", "1301"),
    ("blocks", "1413010102"),
    ("changed", "1567e5504410b1426f9247bb680e5fe0c800020102024869f6a1bfe9d6660000"),
    ("quiet_hours", "1601f6a1bfe9d666f8a1bfe9d666"),
    ("revisions", "171901f6a1bfe9d66601024869"),
];

fn golden(table: &[(&str, &str)], name: &str) -> Vec<u8> {
    let (_, hex) = table.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no golden vector for {name}"));
    hex::decode(hex).expect("golden vectors are hex")
}

#[test]
fn client_frames_encode_to_their_golden_bytes() {
    for (name, frame) in samples::client_samples() {
        let expected = golden(CLIENT_GOLDEN, name);
        assert_eq!(hex::encode(frame.encode().expect("encodes")), hex::encode(&expected), "{name}");
        assert_eq!(ClientFrame::decode(&expected), Ok(frame), "{name}");
    }
}

#[test]
fn server_frames_encode_to_their_golden_bytes() {
    for (name, frame) in samples::server_samples() {
        let expected = golden(SERVER_GOLDEN, name);
        assert_eq!(hex::encode(frame.encode().expect("encodes")), hex::encode(&expected), "{name}");
        assert_eq!(ServerFrame::decode(&expected), Ok(frame), "{name}");
    }
}

/// The first byte of a frame is its variant index; the samples must cover every variant,
/// so a variant added without a golden vector fails here.
#[test]
fn golden_vectors_cover_every_variant() {
    let client: BTreeSet<u8> = samples::client_samples().iter().map(|(_, f)| f.encode().expect("encodes")[0]).collect();
    assert_eq!(client, (0..=19).collect());
    // Variant 20 does not exist.
    assert!(ClientFrame::decode(&[20, 0]).is_err());

    let server: BTreeSet<u8> = samples::server_samples().iter().map(|(_, f)| f.encode().expect("encodes")[0]).collect();
    assert_eq!(server, (0..=23).collect());
    assert!(ServerFrame::decode(&[24, 0]).is_err());
}

#[test]
fn roles_and_error_codes_keep_their_wire_values() {
    assert_eq!(postcard::to_allocvec(&Role::Teacher).expect("encodes"), [0]);
    assert_eq!(postcard::to_allocvec(&Role::Student).expect("encodes"), [1]);
    // Error codes are plain varints; their numbers are part of the public contract.
    let pinned = [
        (ErrorCode::BAD_FRAME, 1),
        (ErrorCode::FRAME_TOO_LARGE, 2),
        (ErrorCode::INVALID_UTF8, 3),
        (ErrorCode::UNSUPPORTED_VERSION, 4),
        (ErrorCode::HELLO_REQUIRED, 5),
        (ErrorCode::HELLO_TIMEOUT, 6),
        (ErrorCode::ALREADY_AUTHENTICATED, 7),
        (ErrorCode::UNAUTHORIZED, 10),
        (ErrorCode::TOKEN_EXPIRED, 11),
        (ErrorCode::UNKNOWN_USER, 12),
        (ErrorCode::IDENTITY_CHANGED, 13),
        (ErrorCode::ORIGIN_NOT_ALLOWED, 14),
        (ErrorCode::CONTENT_EMPTY, 20),
        (ErrorCode::CONTENT_TOO_LONG, 21),
        (ErrorCode::CONTENT_INVALID, 22),
        (ErrorCode::BAD_MESSAGE_ID, 23),
        (ErrorCode::BAD_USER_ID, 24),
        (ErrorCode::BAD_LIMIT, 25),
        (ErrorCode::WATCH_LIST_TOO_LONG, 26),
        (ErrorCode::TOKEN_TOO_LONG, 27),
        (ErrorCode::UNKNOWN_RECIPIENT, 30),
        (ErrorCode::NOT_ALLOWED, 31),
        (ErrorCode::ID_CONFLICT, 32),
        (ErrorCode::SELF_MESSAGE, 33),
        (ErrorCode::BLOCKED, 34),
        (ErrorCode::REPLY_ONLY, 35),
        (ErrorCode::UNKNOWN_MESSAGE, 36),
        (ErrorCode::CONTENT_BLOCKED, 37),
        (ErrorCode::RATE_LIMITED, 40),
        (ErrorCode::SLOW_CONSUMER, 41),
        (ErrorCode::SERVER_FULL, 42),
        (ErrorCode::IDLE_TIMEOUT, 43),
        (ErrorCode::TOO_MANY_CONNECTIONS, 44),
        (ErrorCode::INTERNAL, 50),
        (ErrorCode::SHUTTING_DOWN, 51),
        (ErrorCode::OVERLOADED, 52),
        (ErrorCode::UNAVAILABLE, 53),
        (ErrorCode::REQUEST_TIMEOUT, 60),
        (ErrorCode::CONNECTION_CLOSED, 61),
        (ErrorCode::CLIENT_CLOSED, 62),
    ];
    assert_eq!(pinned.len(), ErrorCode::ALL.len(), "pin every code");
    for (code, value) in pinned {
        assert_eq!(code.0, value, "{code}");
    }
}
