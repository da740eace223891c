//! Send, persist, acknowledge, deliver: against a real PostgreSQL and real sockets.

#![allow(clippy::unwrap_used)]

mod common;

use chat_protocol::{ClientFrame, Cursor, ErrorCode, ServerFrame, UserRef};
use common::{Backend, Client, TestStore, new_id, start};
use rstest::rstest;

const T1: UserRef = UserRef::teacher(1);
const T2: UserRef = UserRef::teacher(2);
const S1: UserRef = UserRef::student(1);
const S2: UserRef = UserRef::student(2);

#[rstest]
#[tokio::test]
async fn a_teacher_and_a_student_exchange_messages(#[values(Backend::Postgres, Backend::Sqlite)] backend: Backend) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    let mut teacher = Client::login(&server, T1).await;
    let mut student = Client::login(&server, S1).await;

    let (id, ack) = teacher.send_message(S1, "Homework is due Friday").await;
    let ServerFrame::Sent { id: acked, created_at, .. } = ack else { panic!("expected an ack, got {ack:?}") };
    assert_eq!(acked, id);
    // Acked means committed: the row is there, as Prisma will read it.
    let row = db.row(id).await;
    assert_eq!(
        row,
        ("teacher".into(), 1, "student".into(), 1, "Homework is due Friday".into(), false, created_at, created_at)
    );

    let ServerFrame::Message { message } = student.recv().await else { panic!("expected a message") };
    assert_eq!((message.id, message.from, message.to, message.created_at), (id, T1, S1, created_at));
    assert_eq!(message.content, "Homework is due Friday");

    let (_, ack) = student.send_message(T1, "OK!").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }), "{ack:?}");
    let ServerFrame::Message { message } = teacher.recv().await else { panic!("expected a message") };
    assert_eq!((message.from, message.to, message.content.as_str()), (S1, T1, "OK!"));
    assert_eq!(db.message_count().await, 2);
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn teacher_one_and_student_one_are_different_users(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    let mut teacher1 = Client::login(&server, T1).await;
    let mut student1 = Client::login(&server, S1).await;
    let mut teacher2 = Client::login(&server, T2).await;
    // A message to teacher 1 must not reach student 1, whose id is also 1.
    let (_, ack) = teacher2.send_message(T1, "staff meeting").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }));
    let ServerFrame::Message { message } = teacher1.recv().await else { panic!() };
    assert_eq!(message.content, "staff meeting");
    let req = student1.req();
    student1.send(&ClientFrame::Ping { req }).await;
    assert!(
        matches!(student1.recv().await, ServerFrame::Pong { req: r, .. } if r == req),
        "student 1 got nothing else"
    );
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn every_tab_of_the_recipient_and_the_senders_other_tabs_receive_the_message(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    let mut sender_tab1 = Client::login(&server, T1).await;
    let mut sender_tab2 = Client::login(&server, T1).await;
    let mut recipient_tab1 = Client::login(&server, S2).await;
    let mut recipient_tab2 = Client::login(&server, S2).await;

    let (id, ack) = sender_tab1.send_message(S2, "hello both tabs").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }));
    for client in [&mut recipient_tab1, &mut recipient_tab2, &mut sender_tab2] {
        let ServerFrame::Message { message } = client.recv().await else { panic!("expected the message") };
        assert_eq!(message.id, id);
    }
    // The sending tab gets the ack, not a second copy.
    let req = sender_tab1.req();
    sender_tab1.send(&ClientFrame::Ping { req }).await;
    assert!(matches!(sender_tab1.recv().await, ServerFrame::Pong { .. }));
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn resend_of_a_stored_id_returns_the_original_ack_and_stores_nothing(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    let mut teacher = Client::login(&server, T1).await;
    let mut student = Client::login(&server, S1).await;
    let id = new_id();
    let send = |req| ClientFrame::Send { req, id, to: S1, content: "once".into() };
    teacher.send(&send(10)).await;
    let ServerFrame::Sent { created_at: first, .. } = teacher.recv().await else { panic!() };
    assert!(matches!(student.recv().await, ServerFrame::Message { .. }));

    // The client lost the ack and retries, even on a new connection.
    drop(teacher);
    let mut teacher = Client::login(&server, T1).await;
    teacher.send(&send(11)).await;
    // (This new connection may get the message itself first: its user's, logged after it came.)
    let (ack, _) = teacher.recv_until(|f| matches!(f, ServerFrame::Sent { .. })).await;
    let ServerFrame::Sent { req, created_at: again, .. } = ack else { unreachable!() };
    assert_eq!((req, again), (11, first));
    assert_eq!(db.count_id(id).await, 1);
    // And the recipient does not get it twice.
    let req = student.req();
    student.send(&ClientFrame::Ping { req }).await;
    assert!(matches!(student.recv().await, ServerFrame::Pong { .. }));
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn the_same_id_sent_twice_at_once_is_stored_once(#[values(Backend::Postgres, Backend::Sqlite)] backend: Backend) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    let mut teacher = Client::login(&server, T1).await;
    let id = new_id();
    for req in [1, 2, 3] {
        teacher.send(&ClientFrame::Send { req, id, to: S1, content: "burst".into() }).await;
    }
    let mut acks = Vec::new();
    while acks.len() < 3 {
        if let ServerFrame::Sent { req, created_at, .. } = teacher.recv().await {
            acks.push((req, created_at));
        }
    }
    acks.sort_unstable();
    assert_eq!(acks.iter().map(|a| a.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(acks.iter().all(|a| a.1 == acks[0].1), "all acks carry the stored timestamp: {acks:?}");
    assert_eq!(db.count_id(id).await, 1);
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn an_id_owned_by_another_sender_is_refused(#[values(Backend::Postgres, Backend::Sqlite)] backend: Backend) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    let mut teacher = Client::login(&server, T1).await;
    let mut other = Client::login(&server, T2).await;
    let id = new_id();
    teacher.send(&ClientFrame::Send { req: 1, id, to: S1, content: "mine".into() }).await;
    assert!(matches!(teacher.recv().await, ServerFrame::Sent { .. }));
    other.send(&ClientFrame::Send { req: 2, id, to: S1, content: "hijack".into() }).await;
    let (answer, _) = other.recv_until(|f| f.request_id() == Some(2)).await;
    assert!(matches!(answer, ServerFrame::Error { code: ErrorCode::ID_CONFLICT, .. }), "{answer:?}");
    assert_eq!(db.row(id).await.4, "mine");
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn many_concurrent_senders_are_all_stored_and_delivered_once(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with_rate(&db).await;
    let mut student = Client::login(&server, S1).await;
    let mut handles = Vec::new();
    for sender in [T1, T2] {
        let url = server.ws_url();
        handles.push(tokio::spawn(async move {
            let mut c = Client::open(&url).await;
            c.send(&ClientFrame::Hello { version: chat_protocol::PROTOCOL_VERSION, token: common::token(sender) })
                .await;
            assert!(matches!(c.recv().await, ServerFrame::Welcome { .. }));
            for req in 1..=200u32 {
                c.send(&ClientFrame::Send { req, id: new_id(), to: S1, content: format!("m{req}") }).await;
            }
            let mut acked = 0;
            while acked < 200 {
                if let ServerFrame::Sent { .. } = c.recv().await {
                    acked += 1;
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let mut received = std::collections::HashSet::new();
    while received.len() < 400 {
        if let ServerFrame::Message { message } = student.recv().await {
            assert!(received.insert(message.id), "delivered twice");
        }
    }
    assert_eq!(db.message_count().await, 400);
    server.stop().await.unwrap();
}

async fn start_with_rate(db: &TestStore) -> chat_server::Running {
    common::start_with(db, |c| {
        c.limits.requests_per_second = 10_000;
        c.limits.request_burst = 10_000;
    })
    .await
}

#[rstest]
#[tokio::test]
async fn history_sync_conversations_and_read_receipts_work_through_the_socket(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    let mut teacher = Client::login(&server, T1).await;
    let mut student = Client::login(&server, S1).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (id, ack) = teacher.send_message(S1, &format!("m{i}")).await;
        assert!(matches!(ack, ServerFrame::Sent { .. }));
        ids.push(id);
    }
    for _ in 0..5 {
        assert!(matches!(student.recv().await, ServerFrame::Message { .. }));
    }

    // History, newest first, in pages of 2.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let req = student.req();
        student.send(&ClientFrame::History { req, peer: T1, before, limit: 2 }).await;
        let f = student.recv().await;
        let ServerFrame::History { messages, next, .. } = f else { panic!("{f:?}") };
        seen.extend(messages.iter().map(|m| m.id));
        match next {
            Some(cursor) => before = Some(cursor),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);

    // The conversation list with the unread count and the peer's name.
    let req = student.req();
    student.send(&ClientFrame::Conversations { req }).await;
    let f = student.recv().await;
    let ServerFrame::Conversations { conversations, .. } = f else { panic!("{f:?}") };
    assert_eq!(conversations.len(), 1);
    assert_eq!(
        (conversations[0].peer, conversations[0].peer_name.as_str(), conversations[0].unread),
        (T1, "T-Alice", 5)
    );

    // Sync from the start returns everything, oldest first.
    let req = student.req();
    student.send(&ClientFrame::Sync { req, after: Cursor::from_time(0), limit: 3 }).await;
    let ServerFrame::SyncPage { messages, more, .. } = student.recv().await else { panic!() };
    assert!(more);
    assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), ids[..3]);

    // Mark read up to the third message: 3 rows change, the teacher gets a receipt.
    let up_to = messages[2].cursor();
    let req = student.req();
    student.send(&ClientFrame::MarkRead { req, peer: T1, up_to }).await;
    let ServerFrame::MarkedRead { count, .. } = student.recv().await else { panic!() };
    assert_eq!(count, 3);
    let ServerFrame::Read { reader, peer, up_to: got } = teacher.recv().await else { panic!() };
    assert_eq!((reader, peer, got), (S1, T1, up_to));
    let unread = db.scalar(r#"SELECT count(*) FROM "Message" WHERE NOT "isRead""#).await;
    assert_eq!(unread, 2);
    let changed = db.scalar(r#"SELECT count(*) FROM "Message" WHERE "updatedAt" > "createdAt""#).await;
    assert!(changed <= 3, "updatedAt moves only on the rows marked read");
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn shutdown_commits_and_acks_what_was_accepted_then_says_going_away(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = start_with_rate(&db).await;
    let mut teacher = Client::login(&server, T1).await;
    let n = 300u32;
    for req in 1..=n {
        teacher.send(&ClientFrame::Send { req, id: new_id(), to: S1, content: format!("m{req}") }).await;
    }
    // Make sure the server has read at least the first frames before stopping it.
    let (first, _) = teacher.recv_until(|f| matches!(f, ServerFrame::Sent { .. } | ServerFrame::Error { .. })).await;
    assert!(matches!(first, ServerFrame::Sent { .. }));
    let stopping = tokio::spawn(server.stop());
    let mut acked = 1;
    let mut refused = 0;
    let close = loop {
        match tokio::time::timeout(common::RECV_TIMEOUT, futures_util::StreamExt::next(&mut teacher.ws)).await.unwrap()
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(b))) => match ServerFrame::decode(&b).unwrap() {
                ServerFrame::Sent { .. } => acked += 1,
                ServerFrame::Error { code, .. } => {
                    assert_eq!(code, ErrorCode::SHUTTING_DOWN);
                    refused += 1;
                }
                ServerFrame::Fatal { code, .. } => assert_eq!(code, ErrorCode::SHUTTING_DOWN),
                other => panic!("unexpected {other:?}"),
            },
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                break frame.map(|f| u16::from(f.code));
            }
            Some(Ok(_)) => {}
            other => panic!("the server must close cleanly, got {other:?}"),
        }
    };
    stopping.await.unwrap().unwrap();
    assert_eq!(close, Some(1001), "going away");
    // Every ack corresponds to a committed row; nothing was stored without an ack.
    assert_eq!(db.message_count().await, i64::from(acked));
    assert!(acked + refused <= n);
}

/// A message reaches each connection the way its protocol takes it: protocol 5 the moment it
/// committed (`Message`), then the `Position` that covers it once the log numbered it;
/// protocol 3 and 4 as `MessageAt` with that same position; protocol 2 as `Message`. Nobody
/// gets it twice, and a catch-up from the position given does not bring it again.
#[rstest]
#[tokio::test]
async fn each_protocol_gets_a_live_message_its_own_way(#[values(Backend::Postgres, Backend::Sqlite)] backend: Backend) {
    let db = TestStore::ready(backend).await;
    let server = start(&db).await;
    let (mut teacher, _) = Client::login_current(&server, T1).await;
    let (mut other_tab, _) = Client::login_current(&server, T1).await;
    let (mut current, start_position) = Client::login_current(&server, S1).await;
    let (mut v4, _) = Client::login_positions(&server, S1, 4).await;
    let mut v2 = Client::login(&server, S1).await;

    let (id, ack) = teacher.send_message(S1, "at commit").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }), "{ack:?}");
    let ServerFrame::Message { message } = current.recv().await else { panic!("protocol 5: the message first") };
    assert_eq!(message.id, id);
    let ServerFrame::Position { position } = current.recv().await else { panic!("then its position") };
    assert!(position > start_position);
    let ServerFrame::MessageAt { message, position: at } = v4.recv().await else { panic!("protocol 4: MessageAt") };
    assert_eq!((message.id, at), (id, position), "the same position, with the message");
    let ServerFrame::Message { message } = v2.recv().await else { panic!("protocol 2: Message") };
    assert_eq!(message.id, id);
    let ServerFrame::Message { message } = other_tab.recv().await else { panic!("the sender's other tab") };
    assert_eq!(message.id, id);
    assert_eq!(other_tab.recv().await, ServerFrame::Position { position });
    // The sending connection has the ack; it learns the position too.
    assert_eq!(teacher.recv().await, ServerFrame::Position { position });

    // Covered: a catch-up from the position has nothing; from the one before, just it.
    for (after, expected) in [(position, vec![]), (position - 1, vec![id])] {
        let req = current.req();
        current.send(&ClientFrame::CatchUp { req, after, limit: 100 }).await;
        let ServerFrame::CatchUpPage { messages, .. } = current.recv().await else { panic!("a catch-up page") };
        assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), expected);
    }
    // Nothing more of it comes: the next frame each gets is the next message.
    let (next, _) = teacher.send_message(S1, "next").await;
    for c in [&mut current, &mut v2, &mut other_tab] {
        let ServerFrame::Message { message } = c.recv().await else { panic!("the next message") };
        assert_eq!(message.id, next);
    }
    let ServerFrame::MessageAt { message, .. } = v4.recv().await else { panic!("the next message") };
    assert_eq!(message.id, next);
    server.stop().await.unwrap();
}
