//! Regression tests for the ways an attacker or an unlucky user could lock people out or
//! pin the server's memory: each reproduces one finding of the abuse review against a real
//! server on a real socket, and fails on the code before the fix.
//!
//! Longer than most files on purpose: one test per finding, all on the same helpers; the
//! file is the catalogue of the review.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use chat_protocol::{
    ClientFrame, Cursor, ErrorCode, MAX_CONTENT_BYTES, MAX_PAGE_BYTES, PROTOCOL_VERSION, ServerFrame, UserRef,
};
use common::{Backend, Client, RECV_TIMEOUT, TestStore, new_id, start_with, token};
use futures_util::{SinkExt, StreamExt};
use rstest::rstest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

const T1: UserRef = UserRef::teacher(1);
const T2: UserRef = UserRef::teacher(2);
const S1: UserRef = UserRef::student(1);

fn unlimited(c: &mut chat_server::ServeConfig) {
    c.limits.requests_per_second = 1_000_000;
    c.limits.request_burst = 1_000_000;
}

/// A TCP connection to the server from a chosen loopback address (127.0.0.x), so one test
/// can play several clients' IP addresses.
async fn tcp_from(source: Ipv4Addr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).unwrap();
    socket.connect(server).await.unwrap()
}

/// Opens a WebSocket from `source`; `Err` carries the HTTP status when the upgrade is refused.
async fn ws_from(source: Ipv4Addr, server: &chat_server::Running) -> Result<Client, u16> {
    let tcp = tcp_from(source, server.addr).await;
    match tokio_tungstenite::client_async(server.ws_url(), tokio_tungstenite::MaybeTlsStream::Plain(tcp)).await {
        Ok((ws, _)) => Ok(Client::from_ws(ws)),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("unexpected handshake failure: {e}"),
    }
}

/// Reads until the peer closes the TCP connection; panics if it stays open past the
/// receive timeout (the event waited for is the close, not a time).
async fn read_until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(RECV_TIMEOUT, tcp.read(&mut buf)).await.expect("the server closes the connection") {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// A metric's value, summed over its labels (0 when it has no series yet).
async fn metric(server: &chat_server::Running, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", server.http_url())).await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next())
        .map(|v| v.parse::<f64>().unwrap())
        .sum()
}

// ----- 1. responses are bounded by bytes: no recipient can be locked out by long messages -----

#[rstest]
#[tokio::test]
async fn an_offline_recipient_of_many_long_messages_catches_up_in_byte_bounded_pages(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, unlimited).await;
    let mut teacher = Client::login(&server, T1).await;
    let long = "é".repeat(MAX_CONTENT_BYTES / 2);
    let mut sent = Vec::new();
    for _ in 0..70 {
        let (id, ack) = teacher.send_message(S1, &long).await;
        assert!(matches!(ack, ServerFrame::Sent { .. }), "{ack:?}");
        sent.push(id);
    }

    // The student comes online and catches up with the SDK's page size: every page fits,
    // the connection survives, and paging from the last cursor gets every message once.
    let mut student = Client::login(&server, S1).await;
    let mut after = Cursor::from_time(0);
    let mut got = Vec::new();
    let mut pages = 0;
    loop {
        student.send(&ClientFrame::Sync { req: 500 + pages, after, limit: chat_protocol::MAX_SYNC_PAGE }).await;
        let (page, _) = student.recv_until(|f| f.request_id() == Some(500 + pages)).await;
        let ServerFrame::SyncPage { messages, more, .. } = page else { panic!("expected a sync page, got {page:?}") };
        let bytes: usize = messages.iter().map(|m| m.content.len()).sum();
        assert!(bytes <= MAX_PAGE_BYTES, "a page of {bytes} bytes");
        assert!(!messages.is_empty());
        after = messages.last().unwrap().cursor();
        got.extend(messages.iter().map(|m| m.id));
        pages += 1;
        if !more {
            break;
        }
    }
    assert!(pages >= 3, "70 messages of 16 KiB take several pages, got {pages}");
    assert_eq!(got, sent, "every message, once, in order");

    // History pages are cut by bytes too, and say where to go on.
    student.send(&ClientFrame::History { req: 9, peer: T1, before: None, limit: 100 }).await;
    let (page, _) = student.recv_until(|f| f.request_id() == Some(9)).await;
    let ServerFrame::History { messages, next, .. } = page else { panic!("expected history, got {page:?}") };
    assert!(messages.len() < 70, "cut by bytes: {}", messages.len());
    assert_eq!(next, Some(messages.last().unwrap().cursor()));
    let mut seen = messages.len();
    let mut before = next;
    while let Some(cursor) = before {
        student.send(&ClientFrame::History { req: 10, peer: T1, before: Some(cursor), limit: 100 }).await;
        let (page, _) = student.recv_until(|f| f.request_id() == Some(10)).await;
        let ServerFrame::History { messages, next, .. } = page else { panic!("{page:?}") };
        seen += messages.len();
        before = next;
    }
    assert_eq!(seen, 70);
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn the_conversation_list_comes_in_pages_that_add_up_to_every_conversation(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    // 40 students, each of whom sent teacher 1 a long message: 40 conversations of 16 KiB.
    db.execute(
        r#"WITH RECURSIVE g(n) AS (SELECT 4 UNION ALL SELECT n + 1 FROM g WHERE n < 40)
           INSERT INTO "Student" (name) SELECT 'S-' || n FROM g"#,
    )
    .await;
    let server = start_with(&db, unlimited).await;
    let long = "x".repeat(MAX_CONTENT_BYTES);
    for id in 1..=40 {
        let mut s = Client::login(&server, UserRef::student(id)).await;
        let (_, ack) = s.send_message(T1, &long).await;
        assert!(matches!(ack, ServerFrame::Sent { .. }), "{ack:?}");
    }
    let mut teacher = Client::login(&server, T1).await;
    let mut before = None;
    let mut peers = Vec::new();
    let mut pages = 0;
    loop {
        teacher.send(&ClientFrame::ConversationsPage { req: 100 + pages, before, limit: 100 }).await;
        let (page, _) = teacher.recv_until(|f| f.request_id() == Some(100 + pages)).await;
        let ServerFrame::ConversationsPage { conversations, next, .. } = page else { panic!("{page:?}") };
        pages += 1;
        peers.extend(conversations.iter().map(|c| c.peer));
        match next {
            Some(cursor) => before = Some(cursor),
            None => break,
        }
    }
    assert!(pages >= 2, "40 conversations of 16 KiB do not fit one page");
    peers.sort_unstable();
    peers.dedup();
    assert_eq!(peers.len(), 40, "every conversation once");
    // A protocol 1 client's unpaged request gets the first page, within bounds.
    teacher.send(&ClientFrame::Conversations { req: 7 }).await;
    let (page, _) = teacher.recv_until(|f| f.request_id() == Some(7)).await;
    let ServerFrame::Conversations { conversations, .. } = page else { panic!("{page:?}") };
    assert!(!conversations.is_empty() && conversations.len() < 40);
    server.stop().await.unwrap();
}

// ----- 2. one connection cannot pin the server's memory -----

#[rstest]
#[tokio::test]
async fn a_client_that_asks_and_never_reads_is_closed_with_its_queue_bounded_in_bytes(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    const BOUND: usize = 2 * 1024 * 1024;
    let server = start_with(&db, |c| {
        unlimited(c);
        c.limits.outbound_bytes = BOUND;
        c.limits.write_stall_timeout = Duration::from_millis(500);
    })
    .await;
    let mut teacher = Client::login(&server, T1).await;
    let long = "x".repeat(MAX_CONTENT_BYTES);
    for _ in 0..40 {
        teacher.send_message(S1, &long).await;
    }
    // The attacker asks for the largest history pages over and over and reads nothing.
    let mut reader = Client::login(&server, S1).await;
    let mut highest = 0.0f64;
    let mut sent = 0;
    for req in 1..=400 {
        let frame = ClientFrame::History { req, peer: T1, before: None, limit: 100 };
        let write = reader.ws.send(Message::Binary(frame.encode().unwrap().into()));
        match tokio::time::timeout(RECV_TIMEOUT, write).await {
            Ok(Ok(())) => sent += 1,
            // The server closed the socket (or stopped reading it): the bound did its work.
            Ok(Err(_)) | Err(_) => break,
        }
        if req % 20 == 0 {
            highest = highest.max(metric(&server, "chat_outbound_bytes").await);
        }
    }
    assert!(sent > 10, "the attacker got some requests in: {sent}");
    assert!(highest <= BOUND as f64, "queued bytes stayed within the bound: {highest}");
    // The server closes it as a slow consumer; everything it had queued is released.
    let stalled = async {
        loop {
            let stalled = metric(&server, "chat_write_failures_total").await;
            let slow = metric(&server, "chat_errors_total").await;
            if stalled + slow > 0.0 && metric(&server, "chat_connections").await <= 1.0 {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(RECV_TIMEOUT * 2, stalled).await.expect("the non-reader is closed");
    let released = async {
        while metric(&server, "chat_outbound_bytes").await > 0.0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(RECV_TIMEOUT, released).await.expect("its queue is released");
    // The teacher was never affected.
    let (_, ack) = teacher.send_message(S1, "still here").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }), "{ack:?}");
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn websocket_pings_alone_do_not_keep_a_connection_alive(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, |c| c.limits.idle_timeout = Duration::from_millis(400)).await;
    let mut c = Client::login(&server, T1).await;
    // Pings eight times per idle period (the interval paces them; nothing waits on it).
    let mut every = tokio::time::interval(Duration::from_millis(50));
    let pinger = async {
        loop {
            tokio::select! {
                _ = every.tick() => {
                    if c.ws.send(Message::Ping(vec![1].into())).await.is_err() {
                        panic!("the socket failed before a close frame arrived");
                    }
                }
                message = c.ws.next() => match message {
                    Some(Ok(Message::Close(frame))) => {
                        assert_eq!(frame.map(|f| u16::from(f.code)), Some(ErrorCode::IDLE_TIMEOUT.close_code()));
                        return;
                    }
                    Some(Ok(_)) => {}
                    other => panic!("closed without a close frame: {other:?}"),
                }
            }
        }
    };
    tokio::time::timeout(RECV_TIMEOUT, pinger).await.expect("the server closes a ping-only connection as idle");
    server.stop().await.unwrap();
}

// ----- 3. unauthenticated sockets cannot take real users' places -----

#[rstest]
#[tokio::test]
async fn sockets_that_never_say_hello_cannot_keep_real_users_out(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, |c| {
        c.limits.max_connections = 2;
        c.limits.max_pending = 8;
        c.limits.max_pending_per_ip = 4;
        c.limits.hello_timeout = Duration::from_secs(2);
    })
    .await;
    // One address opens sockets and never says hello: it gets its share, then 429.
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(ws_from(attacker, &server).await.expect("within the per-IP share"));
    }
    assert_eq!(ws_from(attacker, &server).await.err(), Some(429));
    // Another address fills the rest of the unauthenticated budget: then 503 for anyone new.
    for _ in 0..4 {
        held.push(ws_from(Ipv4Addr::new(127, 0, 0, 3), &server).await.expect("within the budget"));
    }
    assert_eq!(ws_from(Ipv4Addr::new(127, 0, 0, 4), &server).await.err(), Some(503));

    // Users who were already in are untouched, even with all those sockets open and more
    // of them than CHAT_MAX_CONNECTIONS: the budgets are apart.
    drop(held.pop());
    let mut teacher = Client::login(&server, T1).await;
    let mut student = Client::login(&server, S1).await;
    let (_, ack) = teacher.send_message(S1, "hello through the crowd").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }), "{ack:?}");
    let (delivered, _) = student.recv_until(|f| matches!(f, ServerFrame::Message { .. })).await;
    assert!(matches!(delivered, ServerFrame::Message { .. }));
    // The silent sockets are closed at the hello deadline and their slots come back.
    for mut c in held {
        c.expect_fatal(ErrorCode::HELLO_TIMEOUT).await;
    }
    // (The metrics request's own connection is one of the pending ones.)
    let freed = async {
        while metric(&server, "chat_pending_connections").await > 1.0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(RECV_TIMEOUT, freed).await.expect("the budget is given back");
    assert!(ws_from(attacker, &server).await.is_ok());
    server.stop().await.unwrap();
}

// ----- 4. half-sent HTTP requests are timed out and cannot hold shutdown -----

#[rstest]
#[tokio::test]
async fn half_sent_requests_are_closed_at_the_header_deadline_and_shutdown_is_bounded(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, |c| {
        c.limits.header_timeout = Duration::from_millis(300);
        c.limits.shutdown_timeout = Duration::from_secs(3);
    })
    .await;
    let mut slow = Vec::new();
    for i in 0..50u8 {
        let mut tcp = tcp_from(Ipv4Addr::new(127, 0, 1, i % 4 + 1), server.addr).await;
        if i % 2 == 0 {
            // Headers that never end.
            tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        }
        // (The others send nothing at all.)
        slow.push(tcp);
    }
    for tcp in &mut slow {
        let answer = read_until_closed(tcp).await;
        // Closed without serving the request (hyper may say 408 first).
        assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"), "{}", String::from_utf8_lossy(&answer));
    }

    // One more half-sent request, left open across the shutdown: it must not hold it.
    let mut stuck = TcpStream::connect(server.addr).await.unwrap();
    stuck.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
    let mut c = Client::login(&server, T1).await;
    tokio::time::timeout(RECV_TIMEOUT, server.stop()).await.expect("shutdown finishes").unwrap();
    let (_, close) = c.expect_close().await;
    assert_eq!(close, Some(1001));
}

// ----- 5. limits per user, shared by all of the user's connections -----

#[rstest]
#[tokio::test]
async fn one_user_cannot_open_unbounded_connections(#[values(Backend::Postgres, Backend::Sqlite)] backend: Backend) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, |c| c.limits.max_connections_per_user = 3).await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        tabs.push(Client::login(&server, S1).await);
    }
    let mut fourth = Client::hello(&server, S1).await;
    fourth.expect_fatal(ErrorCode::TOO_MANY_CONNECTIONS).await;
    assert!(ErrorCode::TOO_MANY_CONNECTIONS.is_retryable());
    // Others are not affected.
    let _teacher = Client::login(&server, T1).await;
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn the_request_budget_is_shared_by_all_of_a_users_connections(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    // One request per second sustained, ten at once: the whole test runs well within the
    // time a second token would take to matter.
    let server = start_with(&db, |c| {
        c.limits.requests_per_second = 1;
        c.limits.request_burst = 10;
    })
    .await;
    let mut tabs = Vec::new();
    for _ in 0..4 {
        tabs.push(Client::login(&server, S1).await);
    }
    let started = std::time::Instant::now();
    for tab in &mut tabs {
        for req in 1..=10 {
            tab.send(&ClientFrame::Send { req, id: new_id(), to: T1, content: "spam".into() }).await;
        }
    }
    // Each tab's answers up to its first refusal (after which the server stops reading it).
    let (mut stored, mut limited) = (0u64, 0);
    for tab in &mut tabs {
        let mut answers = 0;
        while answers < 10 {
            match tab.recv().await {
                // Copies of the other tabs' messages.
                ServerFrame::Message { .. } => continue,
                ServerFrame::Sent { .. } => stored += 1,
                ServerFrame::Error { code: ErrorCode::RATE_LIMITED, .. } => {
                    limited += 1;
                    break;
                }
                other => panic!("{other:?}"),
            }
            answers += 1;
        }
    }
    let refill = started.elapsed().as_secs() + 1;
    assert!(limited >= 3, "four tabs of one user share one budget of ten: {limited} tabs refused");
    assert!(stored <= 10 + refill, "the burst and its refill, not 40: {stored}");
    server.stop().await.unwrap();
}

// ----- 6. the server's own replies never get a well-behaved client disconnected -----

#[rstest]
#[tokio::test]
async fn bursts_of_replies_and_copies_to_other_tabs_do_not_disconnect_anyone(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, |c| {
        c.limits.requests_per_second = 2_000;
        c.limits.request_burst = 50;
    })
    .await;
    // 600 requests in one burst: answered (pong or rate_limited), never dropped.
    let mut c = Client::login(&server, T1).await;
    for req in 1..=600 {
        c.send(&ClientFrame::Ping { req }).await;
    }
    let mut answered = 0;
    while answered < 600 {
        match c.recv().await {
            ServerFrame::Pong { .. } | ServerFrame::Error { code: ErrorCode::RATE_LIMITED, .. } => answered += 1,
            other => panic!("{other:?}"),
        }
    }
    // 20 tabs of one student while one of them sends a burst: every tab gets every copy.
    let mut tabs = Vec::new();
    for _ in 0..20 {
        tabs.push(Client::login(&server, S1).await);
    }
    let mut busy = tabs.pop().unwrap();
    let long = "y".repeat(4096);
    let mut ids = Vec::new();
    for _ in 0..40 {
        let (id, ack) = busy.send_message(T1, &long).await;
        match ack {
            ServerFrame::Sent { .. } => ids.push(id),
            ServerFrame::Error { code: ErrorCode::RATE_LIMITED, .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(!ids.is_empty());
    for tab in &mut tabs {
        let mut copies = 0;
        while copies < ids.len() {
            if let ServerFrame::Message { message } = tab.recv().await {
                assert!(ids.contains(&message.id));
                copies += 1;
            }
        }
    }
    assert_eq!(metric(&server, "chat_connections").await, 21.0, "nobody was disconnected");
    server.stop().await.unwrap();
}

// ----- 7. a stalled database is visible and bounded -----

#[tokio::test]
async fn a_locked_message_table_gives_retryable_errors_a_not_ready_server_and_a_bounded_shutdown() {
    let db = common::TestDb::ready().await;
    let server = start_with(&db, |c| {
        c.limits.db_timeout = Duration::from_millis(500);
        c.limits.shutdown_timeout = Duration::from_secs(3);
    })
    .await;
    let mut teacher = Client::login(&server, T1).await;
    let (_, ack) = teacher.send_message(S1, "before").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }));

    let mut locker = db.pool.begin().await.unwrap();
    sqlx::query(r#"LOCK TABLE "Message" IN ACCESS EXCLUSIVE MODE"#).execute(&mut *locker).await.unwrap();
    let id = new_id();
    teacher.send(&ClientFrame::Send { req: 50, id, to: S1, content: "during".into() }).await;
    let (answer, _) = teacher.recv_until(|f| f.request_id() == Some(50)).await;
    match answer {
        ServerFrame::Error { code, .. } => {
            assert_eq!(code, ErrorCode::UNAVAILABLE);
            assert!(code.is_retryable());
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    // A second send sits in a stalled commit: readiness says so meanwhile.
    teacher.send(&ClientFrame::Send { req: 51, id: new_id(), to: S1, content: "stalled".into() }).await;
    let not_ready = async {
        loop {
            let r = reqwest::get(format!("{}/readyz", server.http_url())).await.unwrap();
            if r.status() == 503 {
                return r.json::<serde_json::Value>().await.unwrap();
            }
        }
    };
    let body = tokio::time::timeout(RECV_TIMEOUT, not_ready).await.expect("readyz reports the stall");
    assert_ne!(body["writer"], "ok", "{body}");
    let (answer, _) = teacher.recv_until(|f| f.request_id() == Some(51)).await;
    assert!(matches!(answer, ServerFrame::Error { code: ErrorCode::UNAVAILABLE, .. }), "{answer:?}");

    locker.rollback().await.unwrap();
    // The same id again, as the SDK resends it: stored once.
    teacher.send(&ClientFrame::Send { req: 52, id, to: S1, content: "during".into() }).await;
    let (answer, _) = teacher.recv_until(|f| f.request_id() == Some(52)).await;
    assert!(matches!(answer, ServerFrame::Sent { .. }), "{answer:?}");
    let ready = async {
        while reqwest::get(format!("{}/readyz", server.http_url())).await.unwrap().status() != 200 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(RECV_TIMEOUT, ready).await.expect("ready again once the database is");

    // Shutdown with the table locked again: bounded, not hung.
    let mut locker = db.pool.begin().await.unwrap();
    sqlx::query(r#"LOCK TABLE "Message" IN ACCESS EXCLUSIVE MODE"#).execute(&mut *locker).await.unwrap();
    teacher.send(&ClientFrame::Send { req: 53, id: new_id(), to: S1, content: "at shutdown".into() }).await;
    tokio::time::timeout(RECV_TIMEOUT, server.stop()).await.expect("shutdown is bounded").unwrap();
    locker.rollback().await.unwrap();
}

// ----- 8. tokens: the user is checked again on refresh -----

#[rstest]
#[tokio::test]
async fn a_user_removed_from_the_app_is_disconnected_at_the_next_token_refresh(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, |_| {}).await;
    let mut c = Client::login(&server, T2).await;
    c.send(&ClientFrame::RefreshToken { req: 1, token: token(T2) }).await;
    assert!(matches!(c.recv().await, ServerFrame::TokenRefreshed { .. }));
    db.execute(r#"DELETE FROM "Teacher" WHERE id = 2"#).await;
    c.send(&ClientFrame::RefreshToken { req: 2, token: token(T2) }).await;
    c.expect_fatal(ErrorCode::UNKNOWN_USER).await;
    server.stop().await.unwrap();
}

// ----- 9. the smaller ones -----

#[rstest]
#[tokio::test]
async fn a_resent_id_with_other_content_is_a_conflict_not_a_silent_ack(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, |_| {}).await;
    let mut c = Client::login(&server, T1).await;
    let id = new_id();
    c.send(&ClientFrame::Send { req: 1, id, to: S1, content: "the original".into() }).await;
    assert!(matches!(c.recv_until(|f| f.request_id() == Some(1)).await.0, ServerFrame::Sent { .. }));
    // The same id and content: the original ack.
    c.send(&ClientFrame::Send { req: 2, id, to: S1, content: "the original".into() }).await;
    assert!(matches!(c.recv_until(|f| f.request_id() == Some(2)).await.0, ServerFrame::Sent { .. }));
    // Other content, or another recipient, under the same id: refused.
    c.send(&ClientFrame::Send { req: 3, id, to: S1, content: "a rewrite".into() }).await;
    let (answer, _) = c.recv_until(|f| f.request_id() == Some(3)).await;
    assert!(matches!(answer, ServerFrame::Error { code: ErrorCode::ID_CONFLICT, .. }), "{answer:?}");
    c.send(&ClientFrame::Send { req: 4, id, to: UserRef::student(2), content: "the original".into() }).await;
    let (answer, _) = c.recv_until(|f| f.request_id() == Some(4)).await;
    assert!(matches!(answer, ServerFrame::Error { code: ErrorCode::ID_CONFLICT, .. }), "{answer:?}");
    // And inside one batch: two sends with one id and different content, back to back.
    let twin = new_id();
    c.send(&ClientFrame::Send { req: 5, id: twin, to: S1, content: "one".into() }).await;
    c.send(&ClientFrame::Send { req: 6, id: twin, to: S1, content: "two".into() }).await;
    let (first, _) = c.recv_until(|f| f.request_id() == Some(5)).await;
    let (second, _) = c.recv_until(|f| f.request_id() == Some(6)).await;
    assert!(matches!(first, ServerFrame::Sent { .. }), "{first:?}");
    assert!(matches!(second, ServerFrame::Error { code: ErrorCode::ID_CONFLICT, .. }), "{second:?}");
    assert_eq!(db.message_count().await, 2);
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn invisible_only_and_spoofing_content_is_refused_by_the_server(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with(&db, |_| {}).await;
    let mut c = Client::login(&server, T1).await;
    for (content, code) in [
        ("\u{200b}", ErrorCode::CONTENT_EMPTY),
        ("\u{200b} \u{feff}", ErrorCode::CONTENT_EMPTY),
        ("invoice\u{202e}fdp.exe", ErrorCode::CONTENT_INVALID),
        ("\u{1b}[2J\u{1b}[31mhacked", ErrorCode::CONTENT_INVALID),
    ] {
        let (_, answer) = c.send_message(S1, content).await;
        assert!(matches!(answer, ServerFrame::Error { code: got, .. } if got == code), "{content:?}: {answer:?}");
    }
    assert_eq!(db.message_count().await, 0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_protocol_1_client_is_still_served() {
    let db = TestStore::ready(Backend::Sqlite).await;
    let server = start_with(&db, |_| {}).await;
    let mut c = Client::open(&server.ws_url()).await;
    c.send(&ClientFrame::Hello { version: 1, token: token(T1) }).await;
    assert!(matches!(c.recv().await, ServerFrame::Welcome { .. }));
    const { assert!(PROTOCOL_VERSION > 1) };
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_serving_pool_bounds_every_statement() {
    let db = common::TestDb::ready().await;
    let target = common::parse_db(&db.url).with_statement_timeout(Duration::from_millis(750));
    let pool = target.connect(1).await.unwrap();
    let setting: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(&pool).await.unwrap();
    assert_eq!(setting, "750ms");
    let slow = sqlx::query("SELECT pg_sleep(5)").execute(&pool).await.expect_err("cancelled");
    let code = slow.as_database_error().and_then(|e| e.code()).unwrap_or_default().into_owned();
    assert_eq!(code, "57014", "query_canceled by statement_timeout");
    let err = chat_server::store::StoreError::Database(slow);
    assert!(err.is_unavailable(), "a statement timeout is a retryable unavailability");
}
