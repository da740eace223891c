//! Several nodes on one PostgreSQL, for each bus: clients on different nodes, every live
//! event kind, rows the app inserts itself, clocks skewed between nodes, a commit that
//! lands late, the bus's connection cut, and a node killed with SIGKILL.
//!
//! NATS must answer at 127.0.0.1:4222 (scripts/test.sh starts it when it does not).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chat_protocol::{ClientFrame, ServerFrame, StoredMessage, UserRef};
use chat_server::bus::{BusConfig, BusKeys, BusKind, NatsAuth};
use chat_server::clock::Clock;
use chat_server::{Running, ServeConfig};
use common::{Client, Node, SECRET, TestDb, new_id, wait_online};
use rstest::rstest;

const T1: UserRef = UserRef::teacher(1);
const S1: UserRef = UserRef::student(1);
const NATS: &str = "nats://127.0.0.1:4222";

/// The cluster key the tests' nodes share (`CHAT_BUS_KEY`).
const BUS_KEY: &str = "3f1c9a0b7e5d2c4f8a6b1e0d9c7f5a3b2e4d6c8f0a1b3c5d7e9f1a2b4c6d8e0f";

fn keys() -> BusKeys {
    BusKeys::parse(BUS_KEY).unwrap()
}

fn bus(kind: &str) -> BusConfig {
    let kind = match kind {
        "postgres" => BusKind::Postgres { listen_url: None },
        _ => BusKind::Nats { url: NATS.into(), auth: NatsAuth::default() },
    };
    BusConfig { kind, keys: keys(), beat: Duration::from_millis(200), node_timeout: Duration::from_secs(1) }
}

async fn node(db: &TestDb, kind: &str, tweak: impl FnOnce(&mut ServeConfig)) -> Running {
    let mut config = ServeConfig::for_tests(SECRET);
    config.bus = Some(bus(kind));
    config.limits.presence_grace = Duration::from_millis(100);
    tweak(&mut config);
    Running::start(config, db.store()).await.unwrap()
}

/// The next live message (skipping presence, typing and the like), with its position: a
/// `MessageAt` brings both; a message sent at commit (`Message`, protocol 5) is followed by
/// the `Position` that covers it.
async fn next_message(c: &mut Client) -> (StoredMessage, u64) {
    let (frame, _) = c.recv_until(|f| matches!(f, ServerFrame::MessageAt { .. } | ServerFrame::Message { .. })).await;
    match frame {
        ServerFrame::MessageAt { message, position } => (message, position),
        ServerFrame::Message { message } => {
            let (frame, between) = c.recv_until(|f| matches!(f, ServerFrame::Position { .. })).await;
            assert!(
                between.iter().all(|f| !matches!(f, ServerFrame::Message { .. } | ServerFrame::MessageAt { .. })),
                "one message at a time here: {between:?}"
            );
            let ServerFrame::Position { position } = frame else { unreachable!() };
            (message, position)
        }
        _ => unreachable!(),
    }
}

/// Inserts a message as the app would (Prisma or SQL), not through any chat server.
async fn app_insert(db: &TestDb, from: UserRef, to: UserRef, content: &str, created_at: &str) -> String {
    let id = new_id().hyphenated().as_str().to_owned();
    sqlx::query(&format!(
        r#"INSERT INTO "Message" (id, "senderId", "senderRole", "recipientId", "recipientRole", content,
               "createdAt", "updatedAt")
           VALUES ($1, $2, $3, $4, $5, $6, {created_at}, now())"#
    ))
    .bind(&id)
    .bind(from.id)
    .bind(from.role.as_str())
    .bind(to.id)
    .bind(to.role.as_str())
    .bind(content)
    .execute(&db.pool)
    .await
    .unwrap();
    id
}

/// Catches up from `after` and then takes live messages until `want` have come: a send is
/// acked at its commit and logged a moment later, so the newest may come either way.
/// Returns the ids in the order they came (a repeat would show).
/// Live messages at or below `after` are skipped, as the SDK does: a node behind the one
/// the client left may still be delivering positions the client had.
async fn catch_up_then_live(c: &mut Client, after: u64, want: usize) -> Vec<String> {
    let (messages, _, before) = catch_up(c, after).await;
    let mut ids: Vec<String> = messages.iter().map(|m| m.id.hyphenated().as_str().to_owned()).collect();
    // Live messages: those queued while the page was read come before it (as a client sees
    // them), the rest after; one in both is the same message, counted once (the SDK keeps one
    // by id). A `Message` came at its commit (protocol 5): new, whatever its position.
    let take = |ids: &mut Vec<String>, frame: ServerFrame| {
        let (message, fresh) = match frame {
            ServerFrame::MessageAt { message, position } => (message, position > after),
            ServerFrame::Message { message } => (message, true),
            _ => return,
        };
        let id = message.id.hyphenated().as_str().to_owned();
        if fresh && !ids.contains(&id) {
            ids.push(id);
        }
    };
    for frame in before {
        take(&mut ids, frame);
    }
    while ids.len() < want {
        let (frame, _) =
            c.recv_until(|f| matches!(f, ServerFrame::MessageAt { .. } | ServerFrame::Message { .. })).await;
        take(&mut ids, frame);
    }
    ids
}

/// One catch-up page (the whole catch-up: asserted), its last position, and the frames that
/// came before it (live messages queued while it was read).
async fn catch_up(c: &mut Client, after: u64) -> (Vec<StoredMessage>, u64, Vec<ServerFrame>) {
    let req = c.req();
    c.send(&ClientFrame::CatchUp { req, after, limit: 200 }).await;
    let (frame, before) = c.recv_until(|f| matches!(f, ServerFrame::CatchUpPage { .. })).await;
    let ServerFrame::CatchUpPage { messages, last, more, .. } = frame else { unreachable!() };
    assert!(!more);
    (messages, last, before)
}

#[rstest]
#[tokio::test]
async fn every_live_event_crosses_nodes(#[values("postgres", "nats")] kind: &str) {
    let db = TestDb::ready().await;
    let a = node(&db, kind, |_| {}).await;
    let b = node(&db, kind, |_| {}).await;
    let (mut student, start) = Client::login_current(&a, S1).await;
    let (mut teacher, _) = Client::login_current(&b, T1).await;
    // The teacher's second tab is on the other node (no sticky sessions).
    let (mut teacher_tab, _) = Client::login_current(&a, T1).await;

    // Presence: online on any node.
    wait_online(&mut student, T1).await;

    // A message from node B reaches the recipient on A and the sender's tab on A.
    let (id, ack) = teacher.send_message(S1, "hello across nodes").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }), "{ack:?}");
    let (got, position) = next_message(&mut student).await;
    assert_eq!((got.id, got.from, got.content.as_str()), (id, T1, "hello across nodes"));
    assert!(position > start);
    let (copy, copy_position) = next_message(&mut teacher_tab).await;
    assert_eq!((copy.id, copy_position), (id, position), "the same log position on every node");

    // Typing.
    let req = teacher.req();
    teacher.send(&ClientFrame::Typing { req, peer: S1, on: true }).await;
    student.recv_until(|f| matches!(f, ServerFrame::Typing { from, on: true } if *from == T1)).await;

    // A read receipt: to the sender on B, and to the reader's own tabs elsewhere.
    let req = student.req();
    student.send(&ClientFrame::MarkRead { req, peer: T1, up_to: got.cursor() }).await;
    let (receipt, _) = teacher.recv_until(|f| matches!(f, ServerFrame::Read { .. })).await;
    assert_eq!(receipt, ServerFrame::Read { reader: S1, peer: T1, up_to: got.cursor() });

    // A reply the other way.
    let (reply, _) = student.send_message(T1, "hi back").await;
    let (got, _) = next_message(&mut teacher).await;
    assert_eq!(got.id, reply);

    // Offline when the teacher's last tab anywhere closes.
    teacher.ws.close(None).await.unwrap();
    drop(teacher);
    teacher_tab.ws.close(None).await.unwrap();
    drop(teacher_tab);
    student.recv_until(|f| matches!(f, ServerFrame::Presence { user, online: false } if *user == T1)).await;

    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn rows_the_app_inserts_reach_every_node_live_and_through_catch_up(#[values("postgres", "nats")] kind: &str) {
    let db = TestDb::ready().await;
    let a = node(&db, kind, |_| {}).await;
    let b = node(&db, kind, |_| {}).await;
    let (mut on_a, start) = Client::login_current(&a, S1).await;
    let (mut on_b, _) = Client::login_current(&b, S1).await;
    let id = app_insert(&db, T1, S1, "a notice from a server action", "CURRENT_TIMESTAMP").await;
    let (got_a, position) = next_message(&mut on_a).await;
    let (got_b, position_b) = next_message(&mut on_b).await;
    assert_eq!(got_a.id.hyphenated().as_str(), id);
    assert_eq!((got_b.id, position_b), (got_a.id, position));
    assert_eq!(got_a.content, "a notice from a server action");
    // And a client that was away gets it by catching up.
    let (mut later, _) = Client::login_current(&b, S1).await;
    let (messages, last, _) = catch_up(&mut later, start).await;
    assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), [got_a.id]);
    assert_eq!(last, position);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// A node stopped gracefully (a deploy) tells the others its users left at once: with a
/// node timeout of a minute, only its leaving notice can bring the offline in time.
#[rstest]
#[tokio::test]
async fn a_node_that_shuts_down_tells_the_others_its_users_left(#[values("postgres", "nats")] kind: &str) {
    let db = TestDb::ready().await;
    let slow_timeout = |c: &mut ServeConfig| {
        if let Some(bus) = c.bus.as_mut() {
            bus.node_timeout = Duration::from_secs(60);
        }
    };
    let a = node(&db, kind, slow_timeout).await;
    let b = node(&db, kind, slow_timeout).await;
    let (mut student, _) = Client::login_current(&a, S1).await;
    let (_teacher, _) = Client::login_current(&b, T1).await;
    wait_online(&mut student, T1).await;
    let stopped = std::time::Instant::now();
    b.stop().await.unwrap();
    student.recv_until(|f| matches!(f, ServerFrame::Presence { user, online: false } if *user == T1)).await;
    assert!(stopped.elapsed() < Duration::from_secs(30), "{:?}", stopped.elapsed());
    a.stop().await.unwrap();
}

/// Inserts `n` messages from `from` to `to` in one statement, as an app's bulk import would.
async fn app_insert_many(db: &TestDb, from: UserRef, to: UserRef, n: u32) {
    sqlx::query(
        r#"INSERT INTO "Message" (id, "senderId", "senderRole", "recipientId", "recipientRole", content,
               "createdAt", "updatedAt")
           SELECT gen_random_uuid()::text, $1, $2, $3, $4, 'bulk ' || i,
                  now() + i * interval '1 millisecond', now()
           FROM generate_series(1, $5) AS i"#,
    )
    .bind(from.id)
    .bind(from.role.as_str())
    .bind(to.id)
    .bind(to.role.as_str())
    .bind(i32::try_from(n).unwrap())
    .execute(&db.pool)
    .await
    .unwrap();
}

/// Every page of a catch-up from `after`: the contents, in order.
async fn catch_up_all(c: &mut Client, mut after: u64) -> Vec<String> {
    let mut contents = Vec::new();
    loop {
        let req = c.req();
        c.send(&ClientFrame::CatchUp { req, after, limit: chat_protocol::MAX_SYNC_PAGE }).await;
        let (frame, _) = c.recv_until(|f| matches!(f, ServerFrame::CatchUpPage { .. })).await;
        let ServerFrame::CatchUpPage { messages, last, more, .. } = frame else { unreachable!() };
        contents.extend(messages.into_iter().map(|m| m.content));
        after = last;
        if !more {
            return contents;
        }
    }
}

/// Rows the app wrote while no chat server ran are history when one starts: a client that
/// reconnects the moment it is back gets them all in its catch-up (not as live messages
/// trickling in after an empty catch-up), once, in order, and nothing more comes live.
#[tokio::test]
async fn rows_written_while_no_node_ran_come_in_the_first_catch_up() {
    let db = TestDb::ready().await;
    let first = common::start(&db).await;
    let (_, position) = Client::login_current(&first, S1).await;
    first.stop().await.unwrap();
    app_insert_many(&db, T1, S1, 2_500).await;

    let again = common::start(&db).await;
    let (mut student, _) = Client::login_current(&again, S1).await;
    let contents = catch_up_all(&mut student, position).await;
    let expected: Vec<String> = (1..=2_500).map(|i| format!("bulk {i}")).collect();
    assert_eq!(contents, expected, "all of them in the catch-up, once, in order");
    // Nothing of them comes again live: the next live message is a new one.
    let mut teacher = Client::login(&again, T1).await;
    let (sent, _) = teacher.send_message(S1, "after").await;
    assert_eq!(next_message(&mut student).await.0.id, sent);
    again.stop().await.unwrap();
}

/// A bulk insert larger than one sequencing round (1,000 rows) while nodes run: every row
/// reaches the online recipient on each node live, once, in order, with consecutive positions.
#[rstest]
#[tokio::test]
async fn a_bulk_insert_by_the_app_is_delivered_live_in_bounded_rounds(#[values("postgres", "nats")] kind: &str) {
    let db = TestDb::ready().await;
    let a = node(&db, kind, |_| {}).await;
    let b = node(&db, kind, |_| {}).await;
    let (mut on_a, start) = Client::login_current(&a, S1).await;
    let (mut on_b, _) = Client::login_current(&b, S1).await;
    app_insert_many(&db, T1, S1, 2_500).await;
    let expected: Vec<String> = (1..=2_500).map(|i| format!("bulk {i}")).collect();
    for c in [&mut on_a, &mut on_b] {
        let mut contents = Vec::new();
        let mut positions = Vec::new();
        while contents.len() < expected.len() {
            let (message, position) = next_message(c).await;
            contents.push(message.content);
            positions.push(position);
        }
        assert_eq!(contents, expected);
        assert_eq!(positions, (start + 1..=start + 2_500).collect::<Vec<_>>());
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// The inbox is a queue (every row deleted a moment after its insert): the nodes vacuum it
/// themselves after every few thousand rows, whether or not autovacuum runs. Counted by
/// PostgreSQL's `vacuum_count` (manual vacuums; autovacuum has its own counter).
#[tokio::test]
async fn the_nodes_vacuum_the_inbox_themselves() {
    let db = TestDb::ready().await;
    let a = node(&db, "postgres", |_| {}).await;
    let (mut student, _) = Client::login_current(&a, S1).await;
    let vacuums = || async {
        sqlx::query_scalar::<_, i64>("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'chat_inbox'")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    let before = vacuums().await;
    app_insert_many(&db, T1, S1, 6_000).await;
    for _ in 0..6_000 {
        next_message(&mut student).await;
    }
    // The vacuum runs in the background after the round that crossed the threshold.
    let mut after = vacuums().await;
    for _ in 0..200 {
        if after > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = vacuums().await;
    }
    assert!(after > before, "the inbox was vacuumed ({before} -> {after})");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_inbox").fetch_one(&db.pool).await.unwrap();
    assert_eq!(left, 0, "everything sequenced");
    a.stop().await.unwrap();
}

/// The gap a `createdAt` cursor has: node B's clock runs 2 s ahead of node A's, and an app
/// transaction holds an earlier row open while later ones commit. A client that saw the
/// later messages and reconnects still gets every one of the others, once.
#[rstest]
#[tokio::test]
async fn skewed_clocks_and_late_commits_leave_no_gap(#[values("postgres", "nats")] kind: &str) {
    let db = TestDb::ready().await;
    let now = chat_server::now_ms();
    let a = node(&db, kind, |c| c.clock = Clock::manual(now - 1_000)).await;
    let b = node(&db, kind, |c| c.clock = Clock::manual(now + 1_000)).await;
    let (mut student, _) = Client::login_current(&a, S1).await;
    let (mut teacher_b, _) = Client::login_current(&b, T1).await;
    let (mut teacher_a, _) = Client::login_current(&a, T1).await;

    // An app transaction inserts a row dated before everything else and stays open.
    let mut open = db.pool.begin().await.unwrap();
    let late_id = new_id().hyphenated().as_str().to_owned();
    sqlx::query(
        r#"INSERT INTO "Message" (id, "senderId", "senderRole", "recipientId", "recipientRole", content,
               "createdAt", "updatedAt")
           VALUES ($1, 1, 'teacher', 1, 'student', 'committed late', TIMESTAMP '2001-01-01', now())"#,
    )
    .bind(&late_id)
    .execute(&mut *open)
    .await
    .unwrap();

    // Meanwhile messages flow (the open transaction holds nothing up): first from B (its
    // clock is ahead), then from A (createdAt 2 s earlier than B's).
    let (from_b, _) = teacher_b.send_message(S1, "from B, clock ahead").await;
    let (m1, p1) = next_message(&mut student).await;
    assert_eq!(m1.id, from_b);
    let (from_a, _) = teacher_a.send_message(S1, "from A, clock behind").await;
    let (m2, p2) = next_message(&mut student).await;
    assert_eq!(m2.id, from_a);
    assert!(m2.created_at < m1.created_at, "A's createdAt is earlier, yet it comes later in the log");
    assert!(p2 > p1);

    // The student leaves, having seen everything up to p2.
    student.ws.close(None).await.unwrap();
    drop(student);
    // The late transaction commits now, and one more message arrives while the student is away.
    open.commit().await.unwrap();
    let (away, _) = teacher_a.send_message(S1, "while away").await;
    // The student comes back (to the other node) and catches up from p2: both, once, even
    // though the late row's createdAt is decades before what it had seen.
    let (mut back, _) = Client::login_current(&b, S1).await;
    let mut ids = catch_up_then_live(&mut back, p2, 2).await;
    ids.sort();
    let mut expected = vec![late_id.clone(), away.hyphenated().as_str().to_owned()];
    expected.sort();
    assert_eq!(ids, expected);
    // A time cursor would have skipped the late row: it is older than the newest message seen.
    let late_at: i64 =
        sqlx::query_scalar(r#"SELECT (EXTRACT(EPOCH FROM "createdAt") * 1000)::int8 FROM "Message" WHERE id = $1"#)
            .bind(&late_id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(late_at < m1.created_at && late_at < m2.created_at);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn delivery_goes_on_when_the_postgres_bus_connection_is_cut() {
    let db = TestDb::ready().await;
    let a = node(&db, "postgres", |_| {}).await;
    let b = node(&db, "postgres", |_| {}).await;
    let (mut student, _) = Client::login_current(&a, S1).await;
    let (mut teacher, _) = Client::login_current(&b, T1).await;
    let (first, _) = teacher.send_message(S1, "before the cut").await;
    assert_eq!(next_message(&mut student).await.0.id, first);
    // Cut every listening connection (an admin, a proxy, a failover would).
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(cut >= 2, "both nodes listen: {cut}");
    for i in 0..5 {
        let (id, _) = teacher.send_message(S1, &format!("after the cut {i}")).await;
        assert_eq!(next_message(&mut student).await.0.id, id);
    }
    // Typing needs the bus itself: it comes back once the listener reconnects.
    typing_gets_through(&mut teacher, &mut student, S1).await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// Sends typing notices from `from` to `peer` until one reaches `to` (`peer`'s client: the bus is back), within 30 s;
/// returns the other frames `to` saw meanwhile.
async fn typing_gets_through(from: &mut Client, to: &mut Client, peer: UserRef) -> Vec<ServerFrame> {
    let mut seen = Vec::new();
    for _ in 0..60 {
        let req = from.req();
        from.send(&ClientFrame::Typing { req, peer, on: true }).await;
        let got = tokio::time::timeout(Duration::from_millis(500), async {
            to.recv_until(|f| matches!(f, ServerFrame::Typing { .. })).await
        })
        .await;
        match got {
            Ok((_, others)) => {
                seen.extend(others);
                return seen;
            }
            Err(_) => continue,
        }
    }
    panic!("typing did not get through within 30 s: the bus did not come back");
}

/// A NATS server of the test's own on a free port, to stop and start again.
struct Nats {
    child: Option<Child>,
    port: u16,
}

impl Nats {
    fn start(port: u16) -> Nats {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on PATH (scripts/test.sh installs it)");
        Nats { child: Some(child), port }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The NATS server killed and started again under two nodes: messages keep flowing while it
/// is gone (each feed polls the log), presence does not flap (a node cut off from the bus
/// holds the others' users as they were instead of timing them out), and once NATS is back
/// typing crosses nodes again and a message sent meanwhile arrives once.
#[tokio::test]
async fn the_nats_server_restarts_and_nothing_is_lost_or_flaps() {
    let db = TestDb::ready().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut nats = Nats::start(port);
    let url = format!("nats://127.0.0.1:{}", nats.port);
    let on_nats = |c: &mut ServeConfig| {
        c.bus = Some(BusConfig {
            kind: BusKind::Nats { url: url.clone(), auth: NatsAuth::default() },
            keys: keys(),
            beat: Duration::from_millis(200),
            node_timeout: Duration::from_secs(1),
        });
    };
    // The first node waits for NATS to answer (it retries its first connect).
    let a = node(&db, "nats", on_nats).await;
    let b = node(&db, "nats", on_nats).await;
    let (mut student, _) = Client::login_current(&a, S1).await;
    let (mut teacher, _) = Client::login_current(&b, T1).await;
    wait_online(&mut student, T1).await;
    typing_gets_through(&mut teacher, &mut student, S1).await;

    nats.kill();
    // Ten messages across nodes without a bus: each arrives (by the feed's poll), once,
    // in order; this takes seconds, several node timeouts. (Commit notices queued meanwhile
    // go out when NATS is back: they must not bring anything twice.)
    let is_message = |f: &ServerFrame| matches!(f, ServerFrame::MessageAt { .. } | ServerFrame::Message { .. });
    let id_of = |f: &ServerFrame| match f {
        ServerFrame::MessageAt { message, .. } | ServerFrame::Message { message } => message.id,
        _ => unreachable!(),
    };
    let mut seen = Vec::new();
    for i in 0..10 {
        let (id, _) = teacher.send_message(S1, &format!("without NATS {i}")).await;
        let (frame, others) = student.recv_until(is_message).await;
        seen.extend(others);
        assert_eq!(id_of(&frame), id);
    }
    let mut nats = Nats::start(port);
    seen.extend(typing_gets_through(&mut teacher, &mut student, S1).await);
    let (id, _) = teacher.send_message(S1, "NATS is back").await;
    let (frame, others) = student.recv_until(is_message).await;
    seen.extend(others);
    assert_eq!(id_of(&frame), id);
    let flaps: Vec<&ServerFrame> =
        seen.iter().filter(|f| matches!(f, ServerFrame::Presence { user, online: false } if *user == T1)).collect();
    assert!(flaps.is_empty(), "the teacher never went offline: {flaps:?}");
    assert!(!seen.iter().any(is_message), "no message twice: {seen:?}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    nats.kill();
}

/// The real binary as one node of the deployment, on `kind`'s bus.
fn spawn_node(db: &TestDb, kind: &str) -> Node {
    let bus = if kind == "postgres" { "postgres" } else { NATS };
    Node::serve(&db.url, &[("CHAT_BUS", bus), ("CHAT_BUS_KEY", BUS_KEY)])
}

/// A node killed with SIGKILL: its users show offline on the others within the stated
/// bound (node timeout 6 s after the last heartbeat, 2 s apart), and its client moves to
/// another node and catches up with nothing lost or repeated.
#[rstest]
#[tokio::test]
async fn a_killed_node_is_noticed_and_its_clients_catch_up_elsewhere(#[values("postgres", "nats")] kind: &str) {
    let db = TestDb::ready().await;
    let a = spawn_node(&db, kind);
    let mut b = spawn_node(&db, kind);
    let (mut teacher, _) = a.connect(T1).await;
    let (mut student, _) = b.connect(S1).await;
    wait_online(&mut teacher, S1).await;
    let (first, _) = teacher.send_message(S1, "before the kill").await;
    let (got, position) = next_message(&mut student).await;
    assert_eq!(got.id, first);

    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let killed = std::time::Instant::now();
    // Sends go on while the student is away.
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(teacher.send_message(S1, &format!("while B is dead {i}")).await.0);
    }
    // Presence: offline on node A within the bound.
    let offline = tokio::time::timeout(Duration::from_secs(12), async {
        teacher.recv_until(|f| matches!(f, ServerFrame::Presence { user, online: false } if *user == S1)).await
    })
    .await;
    assert!(offline.is_ok(), "the killed node's user went offline");
    assert!(killed.elapsed() < Duration::from_secs(10), "{:?}", killed.elapsed());
    // The student reconnects to A and catches up from its position: every message, once.
    let (mut again, _) = a.connect(S1).await;
    let ids = catch_up_then_live(&mut again, position, sent.len()).await;
    let sent: Vec<String> = sent.iter().map(|id| id.hyphenated().as_str().to_owned()).collect();
    assert_eq!(ids, sent, "every message, once, in order");
}

#[rstest]
#[tokio::test]
async fn a_block_made_on_one_node_holds_on_the_others(#[values("postgres", "nats")] kind: &str) {
    let db = TestDb::ready().await;
    let a = node(&db, kind, |_| {}).await;
    let b = node(&db, kind, |_| {}).await;
    let mut teacher = Client::login(&a, T1).await;
    let mut student = Client::login(&b, S1).await;
    // Node B has looked the pair up already (and keeps what it found).
    assert!(matches!(student.send_message(T1, "Hello").await.1, ServerFrame::Sent { .. }));
    teacher.recv_until(|f| matches!(f, ServerFrame::Message { .. })).await;
    let req = teacher.req();
    teacher.send(&ClientFrame::Block { req, user: S1, blocked: true }).await;
    let (done, _) = teacher.recv_until(|f| f.request_id() == Some(req)).await;
    assert!(matches!(done, ServerFrame::Done { .. }));
    // Then the teacher types to another student on node B: node A publishes that after the
    // block, on the same bus, in order, so once that student has it, node B has applied the
    // block. (A read receipt would not do: a block withholds it.)
    let mut other = Client::login(&b, UserRef::student(2)).await;
    let req = teacher.req();
    teacher.send(&ClientFrame::Typing { req, peer: UserRef::student(2), on: true }).await;
    other.recv_until(|f| matches!(f, ServerFrame::Typing { from, .. } if *from == T1)).await;
    // Typing stores nothing, and is refused on B now, as a send is.
    let req = student.req();
    student.send(&ClientFrame::Typing { req, peer: T1, on: true }).await;
    let (answer, _) = student.recv_until(|f| f.request_id() == Some(req)).await;
    assert!(matches!(answer, ServerFrame::Error { code: chat_protocol::ErrorCode::BLOCKED, .. }), "{answer:?}");
    let (_, answer) = student.send_message(T1, "Still there?").await;
    assert!(matches!(answer, ServerFrame::Error { code: chat_protocol::ErrorCode::BLOCKED, .. }), "{answer:?}");
}

#[rstest]
#[tokio::test]
async fn an_edit_on_one_node_reaches_the_recipient_on_another(#[values("postgres", "nats")] kind: &str) {
    let db = TestDb::ready().await;
    let a = node(&db, kind, |_| {}).await;
    let b = node(&db, kind, |_| {}).await;
    let mut teacher = Client::login_current(&a, T1).await.0;
    let mut student = Client::login_current(&b, S1).await.0;
    let (id, _) = teacher.send_message(S1, "Homework: page 12").await;
    let req = teacher.req();
    teacher.send(&ClientFrame::Delete { req, id }).await;
    let (done, _) = teacher.recv_until(|f| f.request_id() == Some(req)).await;
    assert!(matches!(done, ServerFrame::Done { .. }), "{done:?}");
    let (frame, _) = student.recv_until(|f| matches!(f, ServerFrame::Changed { .. })).await;
    let ServerFrame::Changed { message, deleted } = frame else { unreachable!() };
    assert_eq!((message.id, message.content.as_str(), deleted), (id, "", true));
}

async fn feed_rows(node: &Running, source: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", node.http_url())).await.unwrap().text().await.unwrap();
    let key = format!("chat_feed_rows_total{{source=\"{source}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(key.as_str())).map_or(0, |v| v.trim().parse().unwrap())
}

/// A small round's rows ride on its wake-up: the other node delivers them without reading
/// the log back (its metrics say where each delivered row came from).
#[rstest]
#[tokio::test]
async fn a_wake_up_carries_its_rows_so_the_other_node_reads_nothing(#[values("postgres", "nats")] kind: &str) {
    let db = TestDb::ready().await;
    // Long polls: only the wake-up can bring the messages in time.
    let a = node(&db, kind, |c| c.log_poll = Duration::from_secs(3_600)).await;
    let b = node(&db, kind, |c| c.log_poll = Duration::from_secs(3_600)).await;
    // Protocol 4: every message comes from the log (a protocol 5 connection has it from the
    // commit notice, and the log's rows only bring its position).
    let (mut student, _) = Client::login_positions(&a, S1, 4).await;
    let (mut teacher, _) = Client::login_current(&b, T1).await;
    let read_before = feed_rows(&a, "log").await;
    let mut sent = Vec::new();
    for i in 0..5 {
        let (id, _) = teacher.send_message(S1, &format!("carried {i}")).await;
        sent.push(id);
    }
    let mut got = Vec::new();
    while got.len() < sent.len() {
        got.push(next_message(&mut student).await.0.id);
    }
    assert_eq!(got, sent);
    // (Each node counts a row before it queues it to a connection, so these are final.)
    assert_eq!(feed_rows(&a, "bus").await, 5, "node A got all five on the wake-ups");
    assert_eq!(feed_rows(&a, "log").await, read_before, "and read none of them back");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// Wake-ups are at most once and may come out of order: one that carries a position after
/// a gap (a lost wake-up) makes the node read the gap first, so positions are delivered
/// in order; one repeated delivers nothing twice; a position past the log's end (a node's
/// bug, even sealed with the key) is refused and moves nothing.
#[tokio::test]
async fn carried_rows_never_step_over_a_gap_or_repeat_or_pass_the_logs_end() {
    let db = TestDb::ready().await;
    let a = node(&db, "postgres", |c| c.log_poll = Duration::from_secs(3_600)).await;
    let (mut student, _) = Client::login_current(&a, S1).await;
    let channel: String =
        sqlx::query_scalar("SELECT 'chat_bus.' || current_schema()").fetch_one(&db.pool).await.unwrap();
    // Sequences the inbox as another node would, and returns what it logged.
    let sequence = || {
        let pool = db.pool.clone();
        async move {
            let rows: Vec<(i64, String)> =
                sqlx::query_as("SELECT pos, id FROM chat_log_sequence(true, NULL, NULL, 1000)")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            rows.into_iter().map(|(p, _)| u64::try_from(p).unwrap()).collect::<Vec<_>>()
        }
    };
    let keys = keys();
    let other_node = 0x5eed_u64;
    let notify = |payload: Vec<u8>| {
        let (pool, channel) = (db.pool.clone(), channel.clone());
        async move {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(chat_server::testing::notify_text(&payload))
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    let stored = |id: String| {
        let store = db.store();
        async move { store.message_by_id(chat_protocol::MessageId::parse(&id).unwrap()).await.unwrap().unwrap() }
    };
    let lost = app_insert(&db, T1, S1, "its wake-up was lost", "now()").await;
    let lost_at = sequence().await;
    let carried = app_insert(&db, T1, S1, "carried after the gap", "now()").await;
    let carried_at = sequence().await;
    assert_eq!((lost_at.len(), carried_at.len()), (1, 1));
    assert_eq!(carried_at[0], lost_at[0] + 1);
    let carried_row = (carried_at[0], stored(carried.clone()).await);
    let wake = chat_server::testing::sealed_wake_up(&keys, &channel, other_node, 1, vec![carried_row.clone()]);
    notify(wake.clone()).await;

    let (m1, p1) = next_message(&mut student).await;
    let (m2, p2) = next_message(&mut student).await;
    assert_eq!((m1.id.hyphenated().as_str(), p1), (lost.as_str(), lost_at[0]), "the gap first");
    assert_eq!((m2.id.hyphenated().as_str(), p2), (carried.as_str(), carried_at[0]));

    // The same payload again (a replay) is refused; the same rows in a new payload deliver
    // nothing twice.
    notify(wake).await;
    notify(chat_server::testing::sealed_wake_up(&keys, &channel, other_node, 2, vec![carried_row.clone()])).await;
    // A position far past the log's end, sealed with the key: refused, and nothing moves.
    let mut far = carried_row.1.clone();
    far.content = "from the far future".into();
    notify(chat_server::testing::sealed_wake_up(&keys, &channel, other_node, 3, vec![(1_000_000_000_000, far)])).await;
    // Then a row logged with a bare wake-up: the node reads the log and delivers it next, at
    // the position after the last one (nothing in between, nothing twice).
    let third = app_insert(&db, T1, S1, "read from the log", "now()").await;
    let third_at = sequence().await;
    notify(chat_server::testing::sealed_wake_up(&keys, &channel, other_node, 4, Vec::new())).await;
    let (m3, p3) = next_message(&mut student).await;
    assert_eq!((m3.id.hyphenated().as_str(), p3), (third.as_str(), third_at[0]), "no repeat of {p2} before it");
    assert_eq!(third_at[0], carried_at[0] + 1);
    // Filling the gap read the carried row as well (the read takes the log to its end):
    // every row came from the log, none twice.
    assert_eq!(feed_rows(&a, "bus").await, 0);
    assert_eq!(feed_rows(&a, "log").await, 3);
    assert_eq!(bus_rejected(&a, "replayed").await, 1);
    assert_eq!(bus_rejected(&a, "position").await, 1);
    // A new connection is told the real position, not the forged one.
    let (_, position) = Client::login_current(&a, S1).await;
    assert_eq!(position, third_at[0]);
    a.stop().await.unwrap();
}

async fn bus_rejected(node: &Running, reason: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", node.http_url())).await.unwrap().text().await.unwrap();
    let key = format!("chat_bus_rejected_total{{reason=\"{reason}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(key.as_str())).map_or(0, |v| v.trim().parse().unwrap())
}

/// A message reaches protocol 5 connections the moment it committed, on its node and (the
/// commit said on the bus) on the others, even while the log cannot number it: here a
/// session holds the sequencer's lock. Protocol 4 connections wait for the log; when it
/// moves, they get `MessageAt` and the others the `Position` that covers what they have.
#[rstest]
#[tokio::test]
async fn a_commit_reaches_connections_on_every_node_before_the_log_numbers_it(
    #[values("postgres", "nats")] kind: &str,
) {
    let db = TestDb::ready().await;
    let a = node(&db, kind, |_| {}).await;
    let b = node(&db, kind, |_| {}).await;
    let (mut teacher, _) = Client::login_current(&a, T1).await;
    let (mut here, _) = Client::login_current(&a, S1).await;
    let (mut there, _) = Client::login_current(&b, S1).await;
    let (mut old_there, _) = Client::login_positions(&b, S1, 4).await;

    let mut hold = db.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(7405324)").execute(&mut *hold).await.unwrap();
    let (id, ack) = teacher.send_message(S1, "while the log waits").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }), "{ack:?}");
    for c in [&mut here, &mut there] {
        let (frame, _) =
            c.recv_until(|f| matches!(f, ServerFrame::Message { .. } | ServerFrame::MessageAt { .. })).await;
        assert!(matches!(&frame, ServerFrame::Message { message } if message.id == id), "{frame:?}");
    }
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM chat_log").fetch_one(&db.pool).await.unwrap();
    assert_eq!(logged, 0, "the log has not numbered it yet");

    sqlx::query("SELECT pg_advisory_unlock(7405324)").execute(&mut *hold).await.unwrap();
    let (frame, _) = old_there.recv_until(|f| matches!(f, ServerFrame::MessageAt { .. })).await;
    let ServerFrame::MessageAt { message, position } = frame else { unreachable!() };
    assert_eq!(message.id, id);
    for c in [&mut here, &mut there] {
        let (frame, between) = c.recv_until(|f| matches!(f, ServerFrame::Position { .. })).await;
        assert_eq!(frame, ServerFrame::Position { position });
        assert!(
            between.iter().all(|f| !matches!(f, ServerFrame::Message { .. } | ServerFrame::MessageAt { .. })),
            "not again: {between:?}"
        );
    }
    // The receiving node counted it as brought by the commit notice.
    assert_eq!(feed_rows(&b, "commit").await, 1);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
