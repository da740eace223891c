//! The school's safety rules over real sockets, on both backends: blocks (and a teacher's
//! mute) refuse messages and typing both ways at once, who may start a conversation, reports
//! stored, counted and posted to the app's webhook with a signature it can check.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use chat_protocol::{ClientFrame, ErrorCode, MessageId, ServerFrame, UserRef};
use common::{Backend, Client, TestStore};
use rstest::rstest;

const T1: UserRef = UserRef::teacher(1);
const T2: UserRef = UserRef::teacher(2);
const S1: UserRef = UserRef::student(1);
const S2: UserRef = UserRef::student(2);

/// Sends `frame` (built with the next request id) and returns the answer.
async fn ask(c: &mut Client, frame: impl FnOnce(u32) -> ClientFrame) -> ServerFrame {
    let req = c.req();
    c.send(&frame(req)).await;
    c.recv_until(|f| f.request_id() == Some(req)).await.0
}

fn refused(frame: &ServerFrame) -> Option<(ErrorCode, &str)> {
    match frame {
        ServerFrame::Error { code, message, .. } => Some((*code, message.as_str())),
        _ => None,
    }
}

#[rstest]
#[tokio::test]
async fn a_block_stops_messages_and_typing_both_ways_at_once_and_lifting_it_restores_them(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = common::start(&db).await;
    let mut teacher = Client::login(&server, T1).await;
    let mut student = Client::login(&server, S1).await;
    // The student has written before: their connection has already looked the teacher up.
    assert!(matches!(student.send_message(T1, "Hello").await.1, ServerFrame::Sent { .. }));

    // The teacher mutes the student.
    let done = ask(&mut teacher, |req| ClientFrame::Block { req, user: S1, blocked: true }).await;
    assert!(matches!(done, ServerFrame::Done { .. }), "{done:?}");
    let (_, answer) = student.send_message(T1, "Are you there?").await;
    assert_eq!(refused(&answer), Some((ErrorCode::BLOCKED, "this user does not take messages from you")));
    let typing = ask(&mut student, |req| ClientFrame::Typing { req, peer: T1, on: true }).await;
    assert_eq!(refused(&typing).map(|r| r.0), Some(ErrorCode::BLOCKED));
    let (_, answer) = teacher.send_message(S1, "One more thing").await;
    assert_eq!(refused(&answer), Some((ErrorCode::BLOCKED, "you blocked this user: unblock them to write to them")));
    let list = ask(&mut teacher, |req| ClientFrame::Blocks { req }).await;
    assert!(matches!(list, ServerFrame::Blocks { ref users, .. } if users == &[S1]), "{list:?}");
    // Other conversations are untouched.
    let mut other = Client::login(&server, S2).await;
    assert!(matches!(other.send_message(T1, "Hi").await.1, ServerFrame::Sent { .. }));

    // Lifted: both ways work again, on the same connections.
    let done = ask(&mut teacher, |req| ClientFrame::Block { req, user: S1, blocked: false }).await;
    assert!(matches!(done, ServerFrame::Done { .. }));
    assert!(matches!(student.send_message(T1, "Back").await.1, ServerFrame::Sent { .. }));
    assert!(matches!(teacher.send_message(S1, "Welcome back").await.1, ServerFrame::Sent { .. }));
    let list = ask(&mut teacher, |req| ClientFrame::Blocks { req }).await;
    assert!(matches!(list, ServerFrame::Blocks { ref users, .. } if users.is_empty()));
    // One block and one unblock were counted.
    let metrics = reqwest::get(format!("http://{}/metrics", server.addr)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("chat_safety_total{reason=\"block\"} 1"), "{metrics}");
    assert!(metrics.contains("chat_safety_total{reason=\"unblock\"} 1"), "{metrics}");
    drop(server);
}

/// A block is contact stopped both ways, not only new messages: the blocked user's edits
/// (a deletion still goes: it takes text away), live read receipts and presence.
#[rstest]
#[tokio::test]
async fn a_block_also_stops_edits_read_receipts_and_presence_either_way(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = common::start(&db).await;
    let (mut teacher, _) = Client::login_current(&server, T2).await;
    let (mut student, _) = Client::login_current(&server, S1).await;
    assert!(matches!(teacher.send_message(S1, "Welcome to the class").await.1, ServerFrame::Sent { .. }));
    let (id, _) = student.send_message(T2, "You are unfair").await;
    let (kept, _) = student.send_message(T2, "and another thing").await;
    let watching = ask(&mut student, |req| ClientFrame::WatchPresence { req, users: vec![T2] }).await;
    assert!(matches!(watching, ServerFrame::Watching { ref online, .. } if online == &[T2]), "{watching:?}");

    let done = ask(&mut teacher, |req| ClientFrame::Block { req, user: S1, blocked: true }).await;
    assert!(matches!(done, ServerFrame::Done { .. }), "{done:?}");
    for text in ["You are VERY unfair", "edit 2", "edit 3"] {
        let answer = ask(&mut student, |req| ClientFrame::Edit { req, id, content: text.into() }).await;
        assert_eq!(refused(&answer).map(|r| r.0), Some(ErrorCode::BLOCKED), "{answer:?}");
    }
    let done = ask(&mut student, |req| ClientFrame::Delete { req, id: kept }).await;
    assert!(matches!(done, ServerFrame::Done { .. }), "a deletion still goes: {done:?}");
    // Reading is the student's own business; the live receipt is not sent to the teacher.
    let up_to = chat_protocol::Cursor { at: chat_server::now_ms() + 1_000, id: MessageId([0xff; 16]) };
    let read = ask(&mut student, |req| ClientFrame::MarkRead { req, peer: T2, up_to }).await;
    assert!(matches!(read, ServerFrame::MarkedRead { count: 1, .. }), "{read:?}");
    // Presence: a new watch does not show the teacher, and the old one ended with the block.
    let watching = ask(&mut student, |req| ClientFrame::WatchPresence { req, users: vec![T2] }).await;
    assert!(matches!(watching, ServerFrame::Watching { ref online, .. } if online.is_empty()), "{watching:?}");
    // The teacher heard of the deletion, and of no edit and no read receipt.
    let req = teacher.req();
    teacher.send(&ClientFrame::Ping { req }).await;
    let (_, seen) = teacher.recv_until(|f| f.request_id() == Some(req)).await;
    assert!(!seen.iter().any(|f| matches!(f, ServerFrame::Read { .. })), "{seen:?}");
    assert!(!seen.iter().any(|f| matches!(f, ServerFrame::Changed { deleted: false, .. })), "{seen:?}");
    assert!(seen.iter().any(|f| matches!(f, ServerFrame::Changed { deleted: true, .. })), "{seen:?}");
    let (mut teacher_tab, _) = Client::login_current(&server, T2).await;
    drop(teacher_tab.ws.close(None).await);
    drop(teacher.ws.close(None).await);
    let (mut teacher, _) = Client::login_current(&server, T2).await;
    let ping = ask(&mut teacher, |req| ClientFrame::Ping { req }).await;
    assert!(matches!(ping, ServerFrame::Pong { .. }), "{ping:?}");
    let req = student.req();
    student.send(&ClientFrame::Ping { req }).await;
    let (_, seen) = student.recv_until(|f| f.request_id() == Some(req)).await;
    assert!(!seen.iter().any(|f| matches!(f, ServerFrame::Presence { .. })), "presence after the block: {seen:?}");
    drop(server);
}

#[rstest]
#[tokio::test]
async fn what_may_be_blocked_is_the_schools_policy(#[values(Backend::Postgres, Backend::Sqlite)] backend: Backend) {
    let db = TestStore::ready(backend).await;
    let server = common::start(&db).await;
    let mut student = Client::login(&server, S1).await;
    // By default a student reports a teacher rather than blocking them.
    let answer = ask(&mut student, |req| ClientFrame::Block { req, user: T1, blocked: true }).await;
    let (code, why) = refused(&answer).unwrap();
    assert_eq!(code, ErrorCode::NOT_ALLOWED);
    assert!(why.contains("does not let a student block a teacher: report a message instead"), "{why}");
    // Students may block students, but not themselves or nobody.
    let answer = ask(&mut student, |req| ClientFrame::Block { req, user: S2, blocked: true }).await;
    assert!(matches!(answer, ServerFrame::Done { .. }));
    let answer = ask(&mut student, |req| ClientFrame::Block { req, user: S1, blocked: true }).await;
    assert_eq!(refused(&answer).map(|r| r.0), Some(ErrorCode::SELF_MESSAGE));
    let answer = ask(&mut student, |req| ClientFrame::Block { req, user: UserRef::student(99), blocked: true }).await;
    assert_eq!(refused(&answer).map(|r| r.0), Some(ErrorCode::UNKNOWN_RECIPIENT));
    drop(server);

    // CHAT_BLOCKING=none: nobody blocks.
    let server =
        common::start_with(&db, |c| c.safety.blocking = chat_server::config::Blocking::parse("none").unwrap()).await;
    let mut teacher = Client::login(&server, T1).await;
    let answer = ask(&mut teacher, |req| ClientFrame::Block { req, user: S1, blocked: true }).await;
    assert_eq!(refused(&answer).map(|r| r.0), Some(ErrorCode::NOT_ALLOWED));
    drop(server);
}

#[rstest]
#[tokio::test]
async fn where_students_may_not_start_they_reply_once_a_teacher_wrote(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = common::start_with(&db, |c| {
        c.safety.students_may_start = false;
        c.policy = chat_server::config::Policy::parse("teacher-student,teacher-teacher,student-student").unwrap();
    })
    .await;
    let mut teacher = Client::login(&server, T1).await;
    let mut student = Client::login(&server, S1).await;
    let (_, answer) = student.send_message(T1, "Can I ask something?").await;
    let (code, why) = refused(&answer).unwrap();
    assert_eq!(code, ErrorCode::REPLY_ONLY);
    assert!(why.contains("the teacher writes first"), "{why}");
    // Another student cannot be written to first either.
    let (_, answer) = student.send_message(S2, "hi").await;
    assert_eq!(refused(&answer).map(|r| r.0), Some(ErrorCode::REPLY_ONLY));

    assert!(matches!(teacher.send_message(S1, "Questions about the test?").await.1, ServerFrame::Sent { .. }));
    assert!(matches!(student.send_message(T1, "Yes, question 3").await.1, ServerFrame::Sent { .. }));
    // The teacher who has not written is still closed to them; teachers start freely.
    let (_, answer) = student.send_message(T2, "Hello?").await;
    assert_eq!(refused(&answer).map(|r| r.0), Some(ErrorCode::REPLY_ONLY));
    // Typing to someone one may not write to first is refused the same way.
    let typing = ask(&mut student, |req| ClientFrame::Typing { req, peer: T2, on: true }).await;
    assert_eq!(refused(&typing).map(|r| r.0), Some(ErrorCode::REPLY_ONLY));
    // A message the teacher deleted is no longer "written first".
    let mut other = Client::login(&server, T2).await;
    let (deleted, _) = other.send_message(S1, "wrong student, sorry").await;
    let done = ask(&mut other, |req| ClientFrame::Delete { req, id: deleted }).await;
    assert!(matches!(done, ServerFrame::Done { .. }), "{done:?}");
    let (_, answer) = student.send_message(T2, "Hello?").await;
    assert_eq!(refused(&answer).map(|r| r.0), Some(ErrorCode::REPLY_ONLY));
    assert!(matches!(other.send_message(T1, "Staff meeting at 4").await.1, ServerFrame::Sent { .. }));
    drop(server);
}

/// What the app's webhook received: headers and body of each POST.
type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A stand-in for the app's route: records each report, answers 503 to the first
/// `fail_first` of them (the server must try again), then 200.
async fn webhook(fail_first: usize) -> (String, Received, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let received: Received = Arc::default();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let state = (received.clone(), tx, Arc::new(Mutex::new(fail_first)));
    type Hook = (Received, tokio::sync::mpsc::UnboundedSender<()>, Arc<Mutex<usize>>);
    let app = axum::Router::new()
        .route(
            "/chat-report",
            axum::routing::post(|State((seen, tx, left)): State<Hook>, headers: HeaderMap, body: String| async move {
                seen.lock().unwrap().push((headers, body));
                tx.send(()).unwrap();
                let mut left = left.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                }
            }),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/chat-report", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received, rx)
}

#[rstest]
#[tokio::test]
async fn a_report_is_stored_counted_and_posted_signed_to_the_apps_webhook_even_if_it_fails_once(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let (url, received, mut posts) = webhook(1).await;
    let server = common::start_with(&db, |c| c.safety.report_webhook = Some(url.parse().unwrap())).await;
    let mut teacher = Client::login(&server, T2).await;
    let mut student = Client::login(&server, S1).await;
    let (id, _) = teacher.send_message(S1, "an unkind message").await;
    let (own, _) = student.send_message(T2, "my own").await;

    let answer = ask(&mut student, |req| ClientFrame::Report { req, id, reason: "It upset me".into() }).await;
    assert!(matches!(answer, ServerFrame::Done { .. }), "{answer:?}");
    // Only a message one received can be reported; a reason is required.
    for (target, reason, code) in [
        (own, "x", ErrorCode::UNKNOWN_MESSAGE),
        (MessageId([7; 16]), "x", ErrorCode::UNKNOWN_MESSAGE),
        (id, "  ", ErrorCode::CONTENT_EMPTY),
    ] {
        let answer = ask(&mut student, |req| ClientFrame::Report { req, id: target, reason: reason.into() }).await;
        assert_eq!(refused(&answer).map(|r| r.0), Some(code), "{target:?} {reason:?}");
    }
    let stored = db
        .scalar(&format!(
            "SELECT count(*) FROM chat_report WHERE message_id = '{}' AND reporter_role = 'student' AND reporter_id = 1
               AND reported_role = 'teacher' AND reported_id = 2 AND reason = 'It upset me'
               AND content = 'an unkind message'",
            id.hyphenated().as_str()
        ))
        .await;
    assert_eq!(stored, 1);

    // The webhook: refused once, then taken on the retry, with the same signed body.
    posts.recv().await.unwrap();
    posts.recv().await.unwrap();
    let posted = received.lock().unwrap().clone();
    assert_eq!(posted.len(), 2);
    assert_eq!(posted[0].1, posted[1].1);
    let (headers, body) = &posted[1];
    let secret = chat_server::config::ServeConfig::for_tests(common::SECRET).token_secret;
    assert_eq!(
        headers["x-chat-signature"].to_str().unwrap(),
        chat_server::records::report_hook::signature(&secret, body.as_bytes())
    );
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["type"], "report");
    assert_eq!(json["reason"], "It upset me");
    assert_eq!(json["reporter"], serde_json::json!({ "role": "student", "id": 1 }));
    assert_eq!(json["message"]["from"], serde_json::json!({ "role": "teacher", "id": 2 }));
    assert_eq!(json["message"]["content"], "an unkind message");
    assert_eq!(json["message"]["id"], id.hyphenated().as_str());
    let metrics = reqwest::get(format!("http://{}/metrics", server.addr)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("chat_safety_total{reason=\"report\"} 1"), "{metrics}");
    drop(server);
}

/// A flood of reports from one student neither buries another student's report nor loses
/// any: one report per message, a per-user limit, and every stored report reaches the
/// webhook once it is back, from the table (however long it was down).
#[rstest]
#[tokio::test]
async fn a_report_flood_is_limited_and_every_stored_report_reaches_a_webhook_that_was_down(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    // Down for the first 45 posts: every report fails at least once.
    let (url, received, mut posts) = webhook(45).await;
    let server = common::start_with(&db, |c| c.safety.report_webhook = Some(url.parse().unwrap())).await;
    let mut teacher = Client::login(&server, T2).await;
    let mut flooder = Client::login(&server, S1).await;
    let mut other = Client::login(&server, S2).await;
    let mut ids = Vec::new();
    for i in 0..35 {
        ids.push(teacher.send_message(S1, &format!("message {i}")).await.0);
    }
    let (to_other, _) = teacher.send_message(S2, "for Dan").await;
    // The same message twice: done, stored once.
    for _ in 0..2 {
        let answer = ask(&mut flooder, |req| ClientFrame::Report { req, id: ids[0], reason: "again".into() }).await;
        assert!(matches!(answer, ServerFrame::Done { .. }), "{answer:?}");
    }
    let mut limited = 0;
    for &id in &ids[1..] {
        let answer = ask(&mut flooder, |req| ClientFrame::Report { req, id, reason: "flood".into() }).await;
        match answer {
            ServerFrame::Done { .. } => {}
            other => {
                assert_eq!(refused(&other).map(|r| r.0), Some(ErrorCode::RATE_LIMITED), "{other:?}");
                assert!(refused(&other).unwrap().1.contains("tell an adult"));
                limited += 1;
            }
        }
    }
    assert_eq!(limited, 35 - 30, "30 an hour are taken");
    let answer = ask(&mut other, |req| ClientFrame::Report { req, id: to_other, reason: "scared".into() }).await;
    assert!(matches!(answer, ServerFrame::Done { .. }), "another student's report is taken: {answer:?}");
    assert_eq!(db.scalar("SELECT count(*) FROM chat_report").await, 31);

    // Every stored report is taken by the webhook once it answers again, each by its number.
    let mut taken = std::collections::BTreeSet::new();
    let mut seen = 0;
    while taken.len() < 31 {
        posts.recv().await.unwrap();
        seen += 1;
        if seen > 45 {
            let posted = received.lock().unwrap()[seen - 1].clone();
            taken.insert(posted.0["x-chat-report"].to_str().unwrap().parse::<i64>().unwrap());
        }
    }
    let stored: Vec<i64> = (1..=31).collect();
    assert_eq!(taken.into_iter().collect::<Vec<_>>(), stored);
    let mut pending = 1;
    for _ in 0..100 {
        pending = db.scalar("SELECT count(*) FROM chat_report WHERE webhook_pending").await;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(pending, 0, "every report is marked taken");
    drop(server);
}

/// Connects as `user` with a token whose `supervisor` claim is `supervisor`.
async fn login_claiming(server: &chat_server::Running, user: UserRef, supervisor: bool) -> Client {
    login_scoped(server, user, supervisor, None).await
}

/// As [`login_claiming`], with the token's `supervises` claim.
async fn login_scoped(
    server: &chat_server::Running,
    user: UserRef,
    supervisor: bool,
    supervises: Option<Vec<i32>>,
) -> Client {
    let now = common::now_secs();
    let claims = chat_server::auth::Claims {
        role: user.role.as_str().into(),
        id: user.id,
        exp: now + 3600,
        iat: Some(now),
        nbf: None,
        aud: None,
        iss: None,
        supervisor,
        supervises,
    };
    let token = chat_server::auth::Auth::new(common::SECRET).mint_claims(&claims).unwrap();
    let mut c = Client::open(&server.ws_url()).await;
    c.send(&ClientFrame::Hello { version: chat_protocol::PROTOCOL_VERSION, token }).await;
    c.recv_until(|f| matches!(f, ServerFrame::Welcome { .. })).await;
    c
}

#[rstest]
#[tokio::test]
async fn a_supervisor_reads_a_students_conversations_read_only_and_every_read_is_audited(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = common::start(&db).await;
    let mut teacher = Client::login(&server, T2).await;
    let mut student = Client::login(&server, S1).await;
    teacher.send_message(S1, "Meet me after school").await;
    student.send_message(T2, "Why?").await;
    let mut other = Client::login(&server, S2).await;
    other.send_message(T2, "Dan's question").await;

    let mut lead = login_claiming(&server, T1, true).await;
    let list =
        ask(&mut lead, |req| ClientFrame::SuperviseConversations { req, student: S1, before: None, limit: 50 }).await;
    let ServerFrame::ConversationsPage { conversations, next, .. } = list else { panic!("{list:?}") };
    assert_eq!(next, None);
    assert_eq!(conversations.len(), 1);
    assert_eq!((conversations[0].peer, conversations[0].last.content.as_str()), (T2, "Why?"));
    let page =
        ask(&mut lead, |req| ClientFrame::SuperviseHistory { req, student: S1, peer: T2, before: None, limit: 50 })
            .await;
    let ServerFrame::History { messages, peer, .. } = page else { panic!("{page:?}") };
    assert_eq!(peer, T2);
    let texts: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["Why?", "Meet me after school"], "Dan's conversation is not in it");
    // Read-only: nothing was marked read.
    assert_eq!(db.scalar(r#"SELECT count(*) FROM "Message" WHERE "isRead""#).await, 0);

    // Both reads are in the audit log, about student 1, naming the supervisor.
    let audit = db.store().audit_about(S1).await.unwrap();
    let entries: Vec<(&str, &str, &str)> =
        audit.iter().map(|a| (a.actor.as_str(), a.action.as_str(), a.detail.as_str())).collect();
    assert_eq!(
        entries,
        [
            ("teacher:1 (supervisor)", "supervisor-read", "read a page of their conversation list (1 conversations)"),
            ("teacher:1 (supervisor)", "supervisor-read", "read 2 messages of their conversation with teacher:2"),
        ]
    );

    // Without the claim, or about a teacher: refused, and nothing is recorded.
    let mut plain = login_claiming(&server, T1, false).await;
    let answer =
        ask(&mut plain, |req| ClientFrame::SuperviseHistory { req, student: S1, peer: T2, before: None, limit: 50 })
            .await;
    let (code, why) = refused(&answer).unwrap();
    assert_eq!(code, ErrorCode::NOT_ALLOWED);
    assert!(why.contains("only supervisors"), "{why}");
    let answer =
        ask(&mut lead, |req| ClientFrame::SuperviseConversations { req, student: T2, before: None, limit: 50 }).await;
    assert_eq!(refused(&answer).map(|r| r.0), Some(ErrorCode::NOT_ALLOWED));
    assert_eq!(db.scalar("SELECT count(*) FROM chat_audit").await, 2);
    drop(server);
}

#[rstest]
#[tokio::test]
async fn a_supervisor_limited_to_some_students_reads_only_theirs(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = common::start(&db).await;
    let mut teacher = Client::login(&server, T2).await;
    teacher.send_message(S1, "to Carol").await;
    teacher.send_message(S2, "to Dan").await;
    let mut class_teacher = login_scoped(&server, T1, true, Some(vec![2])).await;
    let mine = ask(&mut class_teacher, |req| ClientFrame::SuperviseHistory {
        req,
        student: S2,
        peer: T2,
        before: None,
        limit: 9,
    })
    .await;
    assert!(matches!(mine, ServerFrame::History { ref messages, .. } if messages.len() == 1), "{mine:?}");
    let other =
        ask(&mut class_teacher, |req| ClientFrame::SuperviseConversations { req, student: S1, before: None, limit: 9 })
            .await;
    let (code, why) = refused(&other).unwrap();
    assert_eq!(code, ErrorCode::NOT_ALLOWED);
    assert!(why.contains("you do not supervise student 1"), "{why}");
    assert!(db.store().audit_about(S1).await.unwrap().is_empty(), "a refused read is not a read");
    drop(server);
}

#[tokio::test]
async fn a_student_token_claiming_to_be_a_supervisor_is_refused() {
    let db = TestStore::ready(Backend::Sqlite).await;
    let server = common::start(&db).await;
    let now = common::now_secs();
    let claims = chat_server::auth::Claims {
        role: "student".into(),
        id: 1,
        exp: now + 3600,
        iat: Some(now),
        nbf: None,
        aud: None,
        iss: None,
        supervisor: true,
        supervises: None,
    };
    let token = chat_server::auth::Auth::new(common::SECRET).mint_claims(&claims).unwrap();
    let mut c = Client::open(&server.ws_url()).await;
    c.send(&ClientFrame::Hello { version: chat_protocol::PROTOCOL_VERSION, token }).await;
    c.expect_fatal(ErrorCode::UNAUTHORIZED).await;
    drop(server);
}

/// The next `Changed` frame this client gets (skipping others).
async fn next_change(c: &mut Client) -> (chat_protocol::StoredMessage, bool) {
    let (frame, _) = c.recv_until(|f| matches!(f, ServerFrame::Changed { .. })).await;
    let ServerFrame::Changed { message, deleted } = frame else { unreachable!() };
    (message, deleted)
}

#[rstest]
#[tokio::test]
async fn a_sender_edits_and_deletes_within_the_window_every_tab_updates_and_the_records_keep_the_text(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let clock = chat_server::Clock::manual(chat_server::now_ms());
    let server = common::start_with(&db, |c| c.clock = clock.clone()).await;
    // Protocol 4 and later get `Changed` (an older client would take it for a protocol error).
    let mut teacher = Client::login_current(&server, T1).await.0;
    let mut teacher_tab = Client::login_current(&server, T1).await.0;
    let mut student = Client::login_current(&server, S1).await.0;
    let mut old_student = Client::login(&server, S1).await;
    let (id, _) = teacher.send_message(S1, "Tomorow's test is cancelled").await;

    let req = teacher.req();
    teacher.send(&ClientFrame::Edit { req, id, content: "Tomorrow's test is cancelled".into() }).await;
    // The editing connection gets the change too (before or after its answer).
    let (done, before) = teacher.recv_until(|f| f.request_id() == Some(req)).await;
    assert!(matches!(done, ServerFrame::Done { .. }), "{done:?}");
    let own = match before.into_iter().find(|f| matches!(f, ServerFrame::Changed { .. })) {
        Some(ServerFrame::Changed { message, .. }) => message,
        _ => next_change(&mut teacher).await.0,
    };
    assert_eq!(own.content, "Tomorrow's test is cancelled");
    for c in [&mut student, &mut teacher_tab] {
        let (message, deleted) = next_change(c).await;
        assert_eq!((message.id, message.content.as_str(), deleted), (id, "Tomorrow's test is cancelled", false));
    }
    // Only the sender may change it.
    let answer = ask(&mut student, |req| ClientFrame::Delete { req, id }).await;
    assert_eq!(refused(&answer).map(|r| r.0), Some(ErrorCode::UNKNOWN_MESSAGE));

    let done = ask(&mut teacher, |req| ClientFrame::Delete { req, id }).await;
    assert!(matches!(done, ServerFrame::Done { .. }));
    let (message, deleted) = next_change(&mut student).await;
    assert_eq!((message.content.as_str(), deleted), ("", true));
    // The student's protocol 2 tab got neither change (it would not know the frame) and is
    // served as before.
    let req = old_student.req();
    old_student.send(&ClientFrame::History { req, peer: T1, before: None, limit: 1 }).await;
    let (answer, before) = old_student.recv_until(|f| f.request_id() == Some(req)).await;
    assert!(matches!(answer, ServerFrame::History { .. }), "{answer:?}");
    assert!(before.iter().all(|f| !matches!(f, ServerFrame::Changed { .. })), "{before:?}");
    // A deleted message cannot be edited back; history shows it empty.
    let answer = ask(&mut teacher, |req| ClientFrame::Edit { req, id, content: "again".into() }).await;
    assert_eq!(refused(&answer).map(|r| r.1), Some("this message was deleted"));
    let page = ask(&mut student, |req| ClientFrame::History { req, peer: T1, before: None, limit: 10 }).await;
    let ServerFrame::History { messages, .. } = page else { panic!() };
    assert_eq!(messages[0].content, "");

    // Past the window (15 minutes by default): refused.
    let (late, _) = teacher.send_message(S1, "Typo here").await;
    clock.advance(16 * 60 * 1000);
    let answer = ask(&mut teacher, |req| ClientFrame::Edit { req, id: late, content: "Fixed".into() }).await;
    let (code, why) = refused(&answer).unwrap();
    assert_eq!(code, ErrorCode::NOT_ALLOWED);
    assert!(why.contains("within 15 minutes"), "{why}");

    // A supervisor sees the earlier texts (audited); not of a message the student has nothing to do with.
    let mut lead = login_claiming(&server, T2, true).await;
    let answer = ask(&mut lead, |req| ClientFrame::SuperviseRevisions { req, student: S1, id }).await;
    let ServerFrame::Revisions { revisions, .. } = answer else { panic!("{answer:?}") };
    let seen: Vec<(bool, &str)> = revisions.iter().map(|r| (r.deleted, r.before.as_str())).collect();
    assert_eq!(seen, [(false, "Tomorow's test is cancelled"), (true, "Tomorrow's test is cancelled")]);
    let answer = ask(&mut lead, |req| ClientFrame::SuperviseRevisions { req, student: S2, id }).await;
    assert_eq!(refused(&answer).map(|r| r.0), Some(ErrorCode::UNKNOWN_MESSAGE));
    let audit = db.store().audit_about(S1).await.unwrap();
    assert!(
        audit.iter().any(|a| a.action == "supervisor-read" && a.detail.starts_with("read the 2 earlier texts")),
        "{audit:?}"
    );

    // The records keep every earlier text, in order.
    let export = chat_server::records::export(&db.store(), S1, chat_server::now_ms(), "t", &mut |_| {}).await.unwrap();
    let kept: Vec<(&str, &str)> = export.revisions.iter().map(|r| (r.kind.as_str(), r.content.as_str())).collect();
    assert_eq!(kept, [("edit", "Tomorow's test is cancelled"), ("delete", "Tomorrow's test is cancelled")]);
    let json: serde_json::Value =
        serde_json::from_str(&export.render(chat_server::records::ExportFormat::Json)).unwrap();
    assert_eq!(json["messages"][0]["deleted"], true);
    assert_eq!(json["messages"][0]["revisions"][0]["before"], "Tomorow's test is cancelled");
    drop(server);
}

/// A message can be edited a bounded number of times (its earlier texts are all kept, and a
/// supervisor's view holds them all); it can always be deleted.
#[tokio::test]
async fn a_message_is_edited_at_most_31_times_and_can_still_be_deleted() {
    let db = TestStore::ready(Backend::Postgres).await;
    let server = common::start(&db).await;
    let mut teacher = Client::login(&server, T1).await;
    let (id, _) = teacher.send_message(S1, "draft").await;
    for i in 0..chat_server::store::MAX_EDITS {
        let answer = ask(&mut teacher, |req| ClientFrame::Edit { req, id, content: format!("draft {i}") }).await;
        assert!(matches!(answer, ServerFrame::Done { .. }), "edit {i}: {answer:?}");
    }
    let answer = ask(&mut teacher, |req| ClientFrame::Edit { req, id, content: "one more".into() }).await;
    let (code, why) = refused(&answer).unwrap();
    assert_eq!(code, ErrorCode::NOT_ALLOWED);
    assert!(why.contains("edited 31 times"), "{why}");
    let answer = ask(&mut teacher, |req| ClientFrame::Delete { req, id }).await;
    assert!(matches!(answer, ServerFrame::Done { .. }), "{answer:?}");
    assert_eq!(db.scalar("SELECT count(*) FROM chat_revision").await, 32);
    drop(server);
}

#[tokio::test]
async fn with_an_edit_window_of_zero_nothing_can_be_changed() {
    let db = TestStore::ready(Backend::Sqlite).await;
    let server = common::start_with(&db, |c| c.safety.edit_window = std::time::Duration::ZERO).await;
    let mut teacher = Client::login(&server, T1).await;
    let (id, _) = teacher.send_message(S1, "final").await;
    let answer = ask(&mut teacher, |req| ClientFrame::Delete { req, id }).await;
    let (code, why) = refused(&answer).unwrap();
    assert_eq!(code, ErrorCode::NOT_ALLOWED);
    assert!(why.contains("does not let messages be edited or deleted"), "{why}");
    drop(server);
}
