//! Conversations through the SDK's native client against the real server and database:
//! history paging, the conversation list, read state, typing, presence, catch-up. The tests that
//! need no PostgreSQL-only SQL run on both backends.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use chat_client::core::{Event, Status};
use chat_client::native::Client;
use chat_protocol::{Cursor, ErrorCode, StoredMessage, UserRef};
use chat_server::testing::{Backend, TestDb, TestStore};
use chat_server::{Clock, Running};
use common::{client_with, fast, next_event, server, server_at, server_with};
use rstest::rstest;
use tokio::sync::mpsc::UnboundedReceiver;

const T1: UserRef = UserRef::teacher(1);
const T2: UserRef = UserRef::teacher(2);
const S1: UserRef = UserRef::student(1);
const S2: UserRef = UserRef::student(2);

async fn client(server: &Running, user: UserRef) -> (Client, UnboundedReceiver<Event>) {
    client_with(server, user, fast()).await
}

/// The events up to and including the next message.
async fn until_message(events: &mut UnboundedReceiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    while !matches!(out.last(), Some(Event::Message { .. })) {
        out.push(tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("a message").unwrap());
    }
    out
}

#[tokio::test]
async fn history_pages_neither_skip_nor_repeat_while_new_messages_arrive() {
    let db = TestDb::ready().await;
    let srv = server(&db).await;
    let (teacher, _te) = client(&srv, T1).await;
    let (student, _se) = client(&srv, S1).await;
    let mut sent = Vec::new();
    for i in 0..120 {
        let who = if i % 3 == 0 { &student } else { &teacher };
        let to = if i % 3 == 0 { T1 } else { S1 };
        sent.push(who.send(to, format!("m{i}")).await.unwrap());
    }
    // Rows sharing one millisecond, as a burst or Prisma could write them.
    sqlx::raw_sql(
        r#"INSERT INTO "Message" (id, "senderId", "senderRole", "recipientId", "recipientRole", content, "createdAt", "updatedAt")
           SELECT gen_random_uuid()::text, 1, 'teacher', 1, 'student', 'same ms ' || n, TIMESTAMP '2020-01-01 00:00:00.000', TIMESTAMP '2020-01-01'
           FROM generate_series(1, 30) n"#,
    )
    .execute(&db.pool)
    .await
    .unwrap();

    let mut seen = Vec::new();
    let mut before: Option<Cursor> = None;
    let mut interleaved = 0;
    loop {
        let (page, next) = student.history(T1, before, 25).await.unwrap();
        assert!(page.windows(2).all(|w| w[0].cursor() > w[1].cursor()), "newest first, strictly");
        seen.extend(page.iter().map(|m| m.id));
        // New messages arrive between page loads: they must not shift the older pages.
        teacher.send(S1, format!("arrived during paging {interleaved}")).await.unwrap();
        interleaved += 1;
        match next {
            Some(cursor) => before = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen.len(), 150, "120 sent before paging + 30 same-millisecond rows, each once");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 150);
    // History's order is (createdAt, id), newest first. Two clients sending in the same
    // millisecond may be stored in one order and sort in the other, so the expectation is
    // the acked rows sorted by that key, not the order the sends were made in.
    let mut newest_first: Vec<_> = sent.iter().map(|m| (m.cursor(), m.id)).collect();
    newest_first.sort_unstable_by_key(|m| std::cmp::Reverse(m.0));
    let newest_first: Vec<_> = newest_first.into_iter().map(|(_, id)| id).collect();
    assert_eq!(&seen[..120], &newest_first[..]);
    srv.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn the_conversation_list_has_names_by_role_and_id_last_messages_and_unread_counts(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    // A clock the test moves: each message a millisecond after the one before, so the
    // order is the order sent (within one millisecond, messages order by their random ids).
    let clock = Clock::manual(chat_server::now_ms());
    let srv = server_with(&db, |c| c.clock = clock.clone()).await;
    let (t1, _e1) = client(&srv, T1).await;
    let (t2, _e2) = client(&srv, T2).await;
    let (s1, _e3) = client(&srv, S1).await;
    t1.send(S1, "to carol 1").await.unwrap();
    clock.advance(1);
    t1.send(S1, "to carol 2").await.unwrap();
    clock.advance(1);
    t2.send(T1, "from bob").await.unwrap();
    clock.advance(1);
    s1.send(T1, "carol answers").await.unwrap();
    clock.advance(1);
    t1.send(S2, "to dan").await.unwrap();

    let list = t1.conversations().await.unwrap();
    let summary: Vec<_> =
        list.iter().map(|c| (c.peer, c.peer_name.as_str(), c.last.content.as_str(), c.unread)).collect();
    assert_eq!(
        summary,
        [(S2, "S-Dan", "to dan", 0), (S1, "S-Carol", "carol answers", 1), (T2, "T-Bob", "from bob", 1)],
        "most recent first; teacher 1's peer student 1 is Carol, not Alice"
    );
    let list = s1.conversations().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].peer, list[0].peer_name.as_str(), list[0].unread), (T1, "T-Alice", 2));
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn marking_read_updates_rows_the_peer_and_the_readers_other_tabs() {
    let db = TestDb::ready().await;
    let srv = server(&db).await;
    let (teacher, mut teacher_events) = client(&srv, T1).await;
    let (tab_a, _a) = client(&srv, S1).await;
    let (_tab_b, mut tab_b_events) = client(&srv, S1).await;
    let mut sent = Vec::new();
    for i in 0..4 {
        sent.push(teacher.send(S1, format!("q{i}")).await.unwrap());
    }
    let count = tab_a.mark_read(T1, sent[2].cursor()).await.unwrap();
    assert_eq!(count, 3);
    let receipt = next_event(&mut teacher_events, |e| matches!(e, Event::Read { .. })).await;
    assert_eq!(receipt, Event::Read { reader: S1, peer: T1, up_to: sent[2].cursor() });
    let other_tab = next_event(&mut tab_b_events, |e| matches!(e, Event::Read { .. })).await;
    assert_eq!(other_tab, receipt);
    // Exactly those rows, with updatedAt moved as Prisma's @updatedAt would.
    let rows: Vec<(String, bool, bool)> = sqlx::query_as(
        r#"SELECT content, "isRead", "updatedAt" >= "createdAt" FROM "Message" ORDER BY "createdAt", id"#,
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.iter().map(|r| r.1).collect::<Vec<_>>(), [true, true, true, false]);
    assert!(rows.iter().all(|r| r.2));
    // Marking again changes nothing; unread counts are right on a fresh connection.
    assert_eq!(tab_a.mark_read(T1, sent[2].cursor()).await.unwrap(), 0);
    let (later, _l) = client(&srv, S1).await;
    assert_eq!(later.conversations().await.unwrap()[0].unread, 1);
    srv.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn typing_reaches_the_peer_expires_and_clears_when_the_message_arrives(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let srv = server(&db).await;
    let (teacher, _te) = client(&srv, T1).await;
    let (student, mut student_events) = client(&srv, S1).await;
    teacher.set_typing(S1, true).await.unwrap();
    assert_eq!(
        next_event(&mut student_events, |e| matches!(e, Event::Typing { .. })).await,
        Event::Typing { from: T1, on: true }
    );
    // No refresh: it expires on the receiving side once its time passes there.
    student.skip_time(fast().typing_expiry);
    assert_eq!(
        next_event(&mut student_events, |e| matches!(e, Event::Typing { .. })).await,
        Event::Typing { from: T1, on: false }
    );
    // Typing again (past the sender's throttle), then the message arrives: typing is
    // cleared before the message.
    teacher.skip_time(fast().typing_throttle);
    teacher.set_typing(S1, true).await.unwrap();
    next_event(&mut student_events, |e| matches!(e, Event::Typing { on: true, .. })).await;
    teacher.send(S1, "done").await.unwrap();
    let relevant = until_message(&mut student_events).await;
    assert!(
        matches!(relevant.as_slice(), [.., Event::Typing { from: T1, on: false }, Event::Message { .. }]),
        "{relevant:?}"
    );
    srv.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn presence_follows_connections_and_a_reload_does_not_flap(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let srv = server(&db).await;
    let (student, mut events) = client(&srv, S1).await;
    assert_eq!(student.watch_presence(vec![T1, T2]).await.unwrap(), Vec::<UserRef>::new());
    let (teacher, _te) = client(&srv, T1).await;
    assert_eq!(
        next_event(&mut events, |e| matches!(e, Event::Presence { .. })).await,
        Event::Presence { user: T1, online: true }
    );

    // A reload: the only connection closes and a new one opens within the grace period.
    teacher.close();
    let (teacher, _te) = client(&srv, T1).await;
    // A round trip on the student's connection: any presence notice the reload caused was
    // queued to it before this answer.
    assert_eq!(student.watch_presence(vec![T1, T2]).await.unwrap(), [T1]);
    let flaps: Vec<_> =
        std::iter::from_fn(|| events.try_recv().ok()).filter(|e| matches!(e, Event::Presence { .. })).collect();
    assert!(flaps.is_empty(), "no offline/online flap on reload: {flaps:?}");

    // Really gone: offline after the grace period.
    teacher.close();
    assert_eq!(
        next_event(&mut events, |e| matches!(e, Event::Presence { .. })).await,
        Event::Presence { user: T1, online: false }
    );

    // Watching is limited to users one may message.
    let err = student.watch_presence(vec![S2]).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NOT_ALLOWED);
    srv.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn after_a_long_gap_thousands_of_missed_messages_arrive_once_in_order_with_fresh_unread_counts(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let a = server(&db).await;
    let addr = a.addr.to_string();
    let (student, mut student_events) = client(&a, S1).await;
    let (t1, _t1e) = client(&a, T1).await;
    let first = t1.send(S1, "before the gap").await.unwrap();
    next_event(&mut student_events, |e| matches!(e, Event::Message { .. })).await;

    // The student's device loses its server; others keep talking through another instance.
    a.stop().await.unwrap();
    student.wait_for(Status::Reconnecting).await;
    let b = server(&db).await;
    let (t1b, _x) = client(&b, T1).await;
    let (t2b, _y) = client(&b, T2).await;
    let (student_phone, _z) = client(&b, S1).await;
    let per_teacher = 1_500;
    let send_many = |c: Client, tag: &'static str| {
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..per_teacher {
                ids.push(c.send(S1, format!("{tag} {i}")).await.unwrap().id);
            }
            ids
        })
    };
    let from_t1 = send_many(t1b, "t1");
    let from_t2 = send_many(t2b, "t2");
    let from_t1 = from_t1.await.unwrap();
    let from_t2 = from_t2.await.unwrap();
    let own: StoredMessage = student_phone.send(T1, "sent from my phone").await.unwrap();

    let a = server_at(&db, &addr).await;
    let mut caught = Vec::new();
    let conversations = loop {
        match next_event(&mut student_events, |e| matches!(e, Event::Message { .. } | Event::CaughtUp { .. })).await {
            Event::Message { message, live, .. } => {
                assert!(!live, "{message:?} should be a caught-up message");
                caught.push(message);
            }
            Event::CaughtUp { count, conversations } => {
                assert_eq!(count as usize, caught.len());
                break conversations.unwrap();
            }
            _ => unreachable!(),
        }
    };
    assert_eq!(caught.len(), 2 * per_teacher + 1, "every missed message once (not {})", first.content);
    let ids: HashSet<_> = caught.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), caught.len());
    let in_order = |from: UserRef| caught.iter().filter(|m| m.from == from).map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(in_order(T1).into_iter().filter(|id| *id != own.id).collect::<Vec<_>>(), from_t1);
    assert_eq!(in_order(T2), from_t2);
    assert!(caught.iter().any(|m| m.id == own.id && m.from == S1), "the own phone's message is caught up too");
    let unread: Vec<_> = conversations.iter().map(|c| (c.peer, c.unread)).collect();
    assert!(unread.contains(&(T1, per_teacher as u32 + 1)), "{unread:?}");
    assert!(unread.contains(&(T2, per_teacher as u32)), "{unread:?}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
