//! Every way a client can be refused: each answered with its stable code, never a panic.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chat_protocol::{
    ClientFrame, ErrorCode, MAX_CLIENT_FRAME_BYTES, MAX_CONTENT_BYTES, MIN_SUPPORTED_VERSION, MessageId,
    PROTOCOL_VERSION, ServerFrame, UserRef,
};
use chat_server::Clock;
use chat_server::auth::Auth;
use common::{Backend, Client, SECRET, TestStore, new_id, now_secs, start, start_with, token};
use futures_util::StreamExt;
use rstest::rstest;
use tokio_tungstenite::tungstenite::Message;

const T1: UserRef = UserRef::teacher(1);
const S1: UserRef = UserRef::student(1);
const S2: UserRef = UserRef::student(2);

async fn hello_refused(server: &chat_server::Running, token: String, code: ErrorCode) {
    let mut c = Client::open(&server.ws_url()).await;
    c.send(&ClientFrame::Hello { version: 2, token }).await;
    c.expect_fatal(code).await;
}

#[rstest]
#[tokio::test]
async fn bad_expired_forged_and_unsigned_tokens_are_refused_with_their_codes(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    hello_refused(&server, "not-a-jwt".into(), ErrorCode::UNAUTHORIZED).await;
    let expired = Auth::new(SECRET).mint(T1, now_secs() - 7200, now_secs() - 3600).unwrap();
    hello_refused(&server, expired, ErrorCode::TOKEN_EXPIRED).await;
    let forged = Auth::new(b"some-other-secret-some-other-secret!").mint(T1, now_secs(), now_secs() + 60).unwrap();
    hello_refused(&server, forged, ErrorCode::UNAUTHORIZED).await;
    // alg "none" with valid-looking claims and no signature.
    let claims = format!(r#"{{"role":"teacher","id":1,"exp":{}}}"#, now_secs() + 3600);
    let none = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(claims.as_bytes()));
    hello_refused(&server, none, ErrorCode::UNAUTHORIZED).await;
    // HS512 with the right secret is still not HS256.
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &chat_server::auth::Claims {
            role: "teacher".into(),
            id: 1,
            exp: now_secs() + 3600,
            iat: None,
            nbf: None,
            aud: None,
            iss: None,
            supervisor: false,
            supervises: None,
        },
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    hello_refused(&server, hs512, ErrorCode::UNAUTHORIZED).await;
    // A token without exp.
    let no_exp = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"role": "teacher", "id": 1}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    hello_refused(&server, no_exp, ErrorCode::UNAUTHORIZED).await;
    server.stop().await.unwrap();
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[rstest]
#[tokio::test]
async fn a_token_for_a_user_missing_from_users_view_is_refused(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    hello_refused(&server, token(UserRef::student(999)), ErrorCode::UNKNOWN_USER).await;
    // Teacher 3 does not exist even though student 3 does.
    hello_refused(&server, token(UserRef::teacher(3)), ErrorCode::UNKNOWN_USER).await;
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn an_incompatible_protocol_version_is_refused(#[values(Backend::Postgres, Backend::Sqlite)] backend: Backend) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    // Each message names both sides' versions and the package to upgrade.
    let server_version = env!("CARGO_PKG_VERSION");
    for (version, says) in [
        (0, format!("this chat-sdk speaks protocol 0, older than chat-server {server_version}")),
        (0, format!("upgrade chat-sdk to {server_version}")),
        (PROTOCOL_VERSION + 1, format!("speaks protocol {}, newer than chat-server", PROTOCOL_VERSION + 1)),
        (PROTOCOL_VERSION + 1, "upgrade chat-server to the same version as chat-sdk".to_owned()),
    ] {
        let mut c = Client::open(&server.ws_url()).await;
        c.send(&ClientFrame::Hello { version, token: token(T1) }).await;
        let (fatal, close) = c.expect_close().await;
        let Some(ServerFrame::Fatal { code, message }) = fatal else { panic!("fatal frame") };
        assert_eq!(code, ErrorCode::UNSUPPORTED_VERSION);
        assert!(message.contains(&says), "{message}");
        assert!(message.contains(&format!("protocols {MIN_SUPPORTED_VERSION} to {PROTOCOL_VERSION}")), "{message}");
        assert_eq!(close, Some(ErrorCode::UNSUPPORTED_VERSION.close_code()));
    }
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_browser_page_from_another_origin_cannot_open_a_socket(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, |c| {
        c.origins = chat_server::config::Origins::parse("http://localhost:3000").unwrap();
    })
    .await;
    // Upgraded, then closed at once with a code and a sentence a browser page can see (an
    // HTTP 403 on the upgrade reaches a page only as "closed"): the SDK shows it, for good.
    let mut refused =
        Client::open_with_origin(&server.ws_url(), "http://evil.example").await.expect("upgraded, then closed");
    let (fatal, close) = refused.expect_close().await;
    let Some(ServerFrame::Fatal { code, message }) = fatal else { panic!("fatal frame, got {fatal:?}") };
    assert_eq!(code, ErrorCode::ORIGIN_NOT_ALLOWED);
    assert!(message.contains("http://evil.example is not in CHAT_ALLOWED_ORIGINS"), "{message}");
    assert_eq!(close, Some(ErrorCode::ORIGIN_NOT_ALLOWED.close_code()));
    let mut allowed = Client::open_with_origin(&server.ws_url(), "http://localhost:3000").await.expect("allowed");
    allowed.send(&ClientFrame::Hello { version: 2, token: token(T1) }).await;
    assert!(matches!(allowed.recv().await, ServerFrame::Welcome { .. }));
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn the_first_frame_must_be_a_hello_and_arrive_in_time(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, |c| c.limits.hello_timeout = Duration::from_millis(300)).await;
    let mut c = Client::open(&server.ws_url()).await;
    c.send(&ClientFrame::Ping { req: 1 }).await;
    c.expect_fatal(ErrorCode::HELLO_REQUIRED).await;

    let mut c = Client::open(&server.ws_url()).await;
    c.expect_fatal(ErrorCode::HELLO_TIMEOUT).await;

    let mut c = Client::login(&server, T1).await;
    c.send(&ClientFrame::Hello { version: PROTOCOL_VERSION, token: token(T1) }).await;
    c.expect_fatal(ErrorCode::ALREADY_AUTHENTICATED).await;
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn garbage_text_and_oversized_frames_close_the_connection_with_their_codes(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    // Garbage before hello.
    let mut c = Client::open(&server.ws_url()).await;
    c.send_raw(Message::Binary(vec![0xff, 0x00, 0x13].into())).await;
    c.expect_fatal(ErrorCode::BAD_FRAME).await;
    // Garbage after hello.
    let mut c = Client::login(&server, T1).await;
    c.send_raw(Message::Binary(vec![0x01, 0x02].into())).await;
    c.expect_fatal(ErrorCode::BAD_FRAME).await;
    // A text frame.
    let mut c = Client::login(&server, T1).await;
    c.send_raw(Message::Text("{\"type\":\"send\"}".into())).await;
    c.expect_fatal(ErrorCode::BAD_FRAME).await;
    // Invalid UTF-8 inside a send's content.
    let mut c = Client::login(&server, T1).await;
    let mut bytes = ClientFrame::Send { req: 1, id: new_id(), to: S1, content: "ab".into() }.encode().unwrap();
    let n = bytes.len();
    bytes[n - 2..].copy_from_slice(&[0xc3, 0x28]);
    c.send_raw(Message::Binary(bytes.into())).await;
    c.expect_fatal(ErrorCode::INVALID_UTF8).await;
    // Over the frame limit, and far over it.
    for size in [MAX_CLIENT_FRAME_BYTES + 1, MAX_CLIENT_FRAME_BYTES * 4] {
        let mut c = Client::login(&server, T1).await;
        c.send_raw(Message::Binary(vec![0u8; size].into())).await;
        let (fatal, close) = c.expect_close().await;
        if size <= MAX_CLIENT_FRAME_BYTES * 2 {
            assert!(matches!(fatal, Some(ServerFrame::Fatal { code: ErrorCode::FRAME_TOO_LARGE, .. })), "{fatal:?}");
            assert_eq!(close, Some(ErrorCode::FRAME_TOO_LARGE.close_code()));
        } else {
            // Refused by the WebSocket layer before it buffers it; the server still closes.
            assert!(
                close.is_none() || close == Some(ErrorCode::FRAME_TOO_LARGE.close_code()) || close == Some(1009),
                "{close:?}"
            );
        }
    }
    // The server is still fine.
    let mut c = Client::login(&server, T1).await;
    let (_, ack) = c.send_message(S1, "still alive").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }));
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn invalid_requests_get_an_error_and_the_connection_stays_open(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    let mut c = Client::login(&server, T1).await;
    let cases: Vec<(ClientFrame, ErrorCode)> = vec![
        (ClientFrame::Send { req: 1, id: new_id(), to: S1, content: "   ".into() }, ErrorCode::CONTENT_EMPTY),
        (
            ClientFrame::Send { req: 2, id: new_id(), to: S1, content: "x".repeat(MAX_CONTENT_BYTES + 1) },
            ErrorCode::CONTENT_TOO_LONG,
        ),
        (ClientFrame::Send { req: 3, id: new_id(), to: S1, content: "a\0b".into() }, ErrorCode::CONTENT_INVALID),
        (ClientFrame::Send { req: 4, id: MessageId::NIL, to: S1, content: "hi".into() }, ErrorCode::BAD_MESSAGE_ID),
        (
            ClientFrame::Send { req: 5, id: new_id(), to: UserRef::student(0), content: "hi".into() },
            ErrorCode::BAD_USER_ID,
        ),
        (
            ClientFrame::Send { req: 6, id: new_id(), to: UserRef::student(999), content: "hi".into() },
            ErrorCode::UNKNOWN_RECIPIENT,
        ),
        (ClientFrame::Send { req: 7, id: new_id(), to: T1, content: "me".into() }, ErrorCode::SELF_MESSAGE),
        (ClientFrame::History { req: 8, peer: S1, before: None, limit: 0 }, ErrorCode::BAD_LIMIT),
        (ClientFrame::WatchPresence { req: 9, users: vec![S1; 300] }, ErrorCode::WATCH_LIST_TOO_LONG),
        (ClientFrame::RefreshToken { req: 10, token: token(S1) }, ErrorCode::IDENTITY_CHANGED),
    ];
    for (frame, code) in cases {
        let req = frame.request_id().unwrap();
        c.send(&frame).await;
        let (answer, _) = c.recv_until(|f| f.request_id() == Some(req)).await;
        match answer {
            ServerFrame::Error { code: got, .. } => assert_eq!(got, code, "request {req}"),
            other => panic!("request {req}: expected {code}, got {other:?}"),
        }
    }
    assert_eq!(db.message_count().await, 0);
    let (_, ack) = c.send_message(S1, "valid").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }));
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn students_cannot_message_or_watch_each_other_by_default(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    let mut s1 = Client::login(&server, S1).await;
    let (_, answer) = s1.send_message(S2, "psst").await;
    assert!(matches!(answer, ServerFrame::Error { code: ErrorCode::NOT_ALLOWED, .. }), "{answer:?}");
    for frame in [
        ClientFrame::Typing { req: 20, peer: S2, on: true },
        ClientFrame::WatchPresence { req: 21, users: vec![T1, S2] },
        ClientFrame::History { req: 22, peer: S2, before: None, limit: 10 },
    ] {
        let req = frame.request_id().unwrap();
        s1.send(&frame).await;
        let (answer, _) = s1.recv_until(|f| f.request_id() == Some(req)).await;
        assert!(matches!(answer, ServerFrame::Error { code: ErrorCode::NOT_ALLOWED, .. }), "{answer:?}");
    }
    assert_eq!(db.message_count().await, 0);
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_client_over_its_rate_gets_rate_limited_errors(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, |c| {
        c.limits.requests_per_second = 10;
        c.limits.request_burst = 10;
    })
    .await;
    let mut c = Client::login(&server, T1).await;
    for req in 1..=20 {
        c.send(&ClientFrame::Ping { req }).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    while pongs + limited < 20 {
        match c.recv().await {
            ServerFrame::Pong { .. } => pongs += 1,
            ServerFrame::Error { code: ErrorCode::RATE_LIMITED, message, .. } => {
                assert!(message.contains("retry in"), "{message}");
                limited += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pongs >= 10, "the burst is allowed: {pongs}");
    assert!(limited >= 1, "the rest is limited: {limited}");
    // Every request got its answer and the connection is still open: throttled, not dropped.
    c.send(&ClientFrame::Ping { req: 21 }).await;
    let (answer, _) = c.recv_until(|f| f.request_id() == Some(21)).await;
    assert!(matches!(answer, ServerFrame::Pong { .. } | ServerFrame::Error { .. }), "{answer:?}");
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_as_a_slow_consumer(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, |c| {
        c.limits.outbound_bytes = 8 * 1024;
        c.limits.requests_per_second = 100_000;
        c.limits.request_burst = 100_000;
    })
    .await;
    // The slow client logs in and then never reads.
    let mut slow = Client::login(&server, S1).await;
    let mut sender = Client::login(&server, T1).await;
    let big = "x".repeat(MAX_CONTENT_BYTES);
    let total = 2_000u32;
    // The sender reads its acks as it goes (4 in flight), so only the recipient lags.
    let mut acked = 0;
    for chunk in (1..=total).collect::<Vec<_>>().chunks(4) {
        for &req in chunk {
            sender.send(&ClientFrame::Send { req, id: new_id(), to: S1, content: big.clone() }).await;
        }
        let mut got = 0;
        while got < chunk.len() {
            if let ServerFrame::Sent { .. } = sender.recv().await {
                got += 1;
            }
        }
        acked += got;
    }
    assert_eq!(acked, total as usize);
    // Now read what the slow client was sent: some messages, then the verdict.
    let mut saw_fatal = None;
    let mut close = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.ws.next()).await.expect("closes") {
            Some(Ok(Message::Binary(b))) => {
                if let ServerFrame::Fatal { code, .. } = ServerFrame::decode(&b).unwrap() {
                    saw_fatal = Some(code);
                }
            }
            Some(Ok(Message::Close(f))) => {
                close = f.map(|f| u16::from(f.code));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    assert!(
        saw_fatal == Some(ErrorCode::SLOW_CONSUMER)
            || close == Some(ErrorCode::SLOW_CONSUMER.close_code())
            || close.is_none(),
        "fatal {saw_fatal:?}, close {close:?}"
    );
    // Every message is stored all the same: the recipient catches up from the database.
    assert_eq!(db.message_count().await, i64::from(total));
    // The sender was never held up.
    let (_, ack) = sender.send_message(S1, "after").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }));
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn idle_connections_are_closed_and_expired_tokens_end_the_session(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, |c| c.limits.idle_timeout = Duration::from_millis(400)).await;
    let mut idle = Client::login(&server, T1).await;
    idle.expect_fatal(ErrorCode::IDLE_TIMEOUT).await;

    // The token's expiry is wall time: the server's clock is moved past it, not waited for.
    let clock = Clock::manual(chat_server::now_ms());
    let server2 = start_with(&db, |c| c.clock = clock.clone()).await;
    let short = Auth::new(SECRET).mint(S1, now_secs(), now_secs() + 60).unwrap();
    let mut c = Client::open(&server2.ws_url()).await;
    c.send(&ClientFrame::Hello { version: 2, token: short }).await;
    assert!(matches!(c.recv().await, ServerFrame::Welcome { .. }));
    // Still alive a moment before the expiry...
    clock.advance(55_000);
    c.send(&ClientFrame::Ping { req: 1 }).await;
    assert!(matches!(c.recv().await, ServerFrame::Pong { req: 1, .. }));
    // ...and ended once the clock passes it.
    clock.advance(6_000);
    c.expect_fatal(ErrorCode::TOKEN_EXPIRED).await;
    server.stop().await.unwrap();
    server2.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_refreshed_token_keeps_the_session_alive(#[values(Backend::Postgres, Backend::Sqlite)] backend: Backend) {
    let db = TestStore::ready(backend).await;
    let clock = Clock::manual(chat_server::now_ms());
    let server = start_with(&db, |c| c.clock = clock.clone()).await;
    let short = Auth::new(SECRET).mint(S1, now_secs(), now_secs() + 60).unwrap();
    let mut c = Client::open(&server.ws_url()).await;
    c.send(&ClientFrame::Hello { version: 2, token: short }).await;
    assert!(matches!(c.recv().await, ServerFrame::Welcome { .. }));
    c.send(&ClientFrame::RefreshToken { req: 1, token: token(S1) }).await;
    let ServerFrame::TokenRefreshed { expires_at, .. } = c.recv().await else { panic!() };
    assert!(expires_at > (now_secs() + 3000) * 1000);
    // Past the first token's expiry: the connection lives on under the new one.
    clock.advance(120_000);
    let (_, ack) = c.send_message(T1, "still here").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }), "{ack:?}");
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn connections_beyond_the_maximum_are_refused_with_server_full(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, |c| c.limits.max_connections = 2).await;
    let _a = Client::login(&server, T1).await;
    let _b = Client::login(&server, S1).await;
    let mut c = Client::hello(&server, UserRef::teacher(2)).await;
    c.expect_fatal(ErrorCode::SERVER_FULL).await;
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_database_failure_is_a_generic_retryable_error_never_database_text(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    let mut c = Client::login(&server, T1).await;
    // Break the table under the running server.
    db.execute(r#"ALTER TABLE "Message" RENAME TO "Message_gone""#).await;
    let (_, answer) = c.send_message(S1, "lost?").await;
    match answer {
        ServerFrame::Error { code, message, .. } => {
            assert_eq!(code, ErrorCode::INTERNAL);
            assert!(code.is_retryable());
            assert!(!message.contains("Message_gone") && !message.contains("relation"), "{message}");
        }
        other => panic!("expected an internal error, got {other:?}"),
    }
    // Repaired, the same client's retry succeeds: nothing was half-stored.
    db.execute(r#"ALTER TABLE "Message_gone" RENAME TO "Message""#).await;
    let (_, answer) = c.send_message(S1, "again").await;
    assert!(matches!(answer, ServerFrame::Sent { .. }), "{answer:?}");
    assert_eq!(db.message_count().await, 1);
    server.stop().await.unwrap();
}
