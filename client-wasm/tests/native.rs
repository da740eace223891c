//! The SDK's native client against the real server, in one process, on both backends
//! (PostgreSQL and the embedded SQLite file).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chat_client::core::{Event, Status};
use chat_client::native::{Client, TokenProvider};
use chat_protocol::{ErrorCode, UserRef};
use chat_server::auth::Auth;
use chat_server::testing::{Backend, TestStore};
use chat_server::{Clock, Running};
use common::{client_with, fast, next_event, now_secs, provider, provider_on, server, server_at, server_with};
use rstest::rstest;
use tokio::sync::mpsc::UnboundedReceiver;

const T1: UserRef = UserRef::teacher(1);
const S1: UserRef = UserRef::student(1);

async fn client(server: &Running, user: UserRef) -> (Client, UnboundedReceiver<Event>) {
    client_with(server, user, fast()).await
}

/// The next message event, skipping others.
async fn next_message(events: &mut UnboundedReceiver<Event>) -> (chat_protocol::StoredMessage, bool) {
    match next_event(events, |e| matches!(e, Event::Message { .. })).await {
        Event::Message { message, live, .. } => (message, live),
        _ => unreachable!(),
    }
}

#[rstest]
#[tokio::test]
async fn a_send_resolves_once_committed_and_reaches_the_recipient(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = server(&db).await;
    let (teacher, _teacher_events) = client(&server, T1).await;
    let (_student, mut student_events) = client(&server, S1).await;

    let stored = teacher.send(S1, "Read chapter 3").await.unwrap();
    assert_eq!((stored.from, stored.to, stored.content.as_str()), (T1, S1, "Read chapter 3"));
    assert_eq!(db.count_id(stored.id).await, 1);
    let (message, live) = next_message(&mut student_events).await;
    assert!(live);
    assert_eq!(message, stored);

    // History and the conversation list through the same client.
    let (page, next) = teacher.history(S1, None, 10).await.unwrap();
    assert_eq!(page, vec![stored.clone()]);
    assert_eq!(next, None);
    let conversations = teacher.conversations().await.unwrap();
    assert_eq!(conversations[0].peer, S1);
    assert_eq!(conversations[0].peer_name, "S-Carol");
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_permanent_refusal_rejects_the_send_and_validation_fails_before_sending(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = server(&db).await;
    let (student, _events) = client(&server, S1).await;
    let err = student.send(UserRef::student(2), "hi").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NOT_ALLOWED);
    let err = student.send(T1, "   ").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::CONTENT_EMPTY);
    let err = student.send(UserRef::teacher(77), "hello?").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UNKNOWN_RECIPIENT);
    assert_eq!(db.message_count().await, 0);
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_connection_killed_mid_send_delivers_every_message_exactly_once(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = server(&db).await;
    let (teacher, _teacher_events) = client(&server, T1).await;
    let (_student, mut student_events) = client(&server, S1).await;

    let n = 60;
    let mut sends = Vec::new();
    for i in 0..n {
        let t = teacher.clone();
        sends.push(tokio::spawn(async move { t.send(S1, format!("message {i}")).await }));
        if i == n / 3 || i == 2 * n / 3 {
            // The network drops while sends are in flight.
            teacher.drop_connection();
        }
    }
    let mut ids = Vec::new();
    for s in sends {
        ids.push(tokio::time::timeout(Duration::from_secs(20), s).await.unwrap().unwrap().unwrap().id);
    }
    assert_eq!(db.message_count().await, n);
    let mut received = std::collections::HashSet::new();
    while received.len() < n as usize {
        let (message, _) = next_message(&mut student_events).await;
        assert!(received.insert(message.id), "message {} delivered twice", message.content);
    }
    for id in ids {
        assert_eq!(db.count_id(id).await, 1);
    }
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn sends_made_while_the_server_is_down_go_out_after_it_restarts_and_the_recipient_catches_up(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let a = server(&db).await;
    let addr = a.addr.to_string();
    let (teacher, _te) = client(&a, T1).await;
    let (student, mut student_events) = client(&a, S1).await;
    let first = teacher.send(S1, "before").await.unwrap();
    assert_eq!(next_message(&mut student_events).await.0, first);

    a.stop().await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), student.wait_for(Status::Reconnecting)).await.unwrap(),
        Status::Reconnecting
    );
    // Queued while offline: these resolve only once a server stored them.
    let queued: Vec<_> = (0..5)
        .map(|i| {
            let t = teacher.clone();
            tokio::spawn(async move { t.send(S1, format!("while down {i}")).await })
        })
        .collect();
    // Meanwhile another instance on the same database takes messages from another teacher.
    let b = server(&db).await;
    let (other, _oe) = client(&b, UserRef::teacher(2)).await;
    let mut missed = Vec::new();
    for i in 0..30 {
        missed.push(other.send(S1, format!("missed {i}")).await.unwrap());
    }

    let a = server_at(&db, &addr).await;
    for q in queued {
        tokio::time::timeout(Duration::from_secs(20), q).await.unwrap().unwrap().unwrap();
    }
    assert_eq!(db.message_count().await, 36);
    // The student gets every missed message once, in order, marked as caught up.
    let mut caught_up = Vec::new();
    let mut live_after = Vec::new();
    while caught_up.len() + live_after.len() < 35 {
        let (message, live) = next_message(&mut student_events).await;
        if live { live_after.push(message) } else { caught_up.push(message) }
    }
    let missed_ids: Vec<_> = missed.iter().map(|m| m.id).collect();
    let caught_missed: Vec<_> = caught_up.iter().filter(|m| m.from == UserRef::teacher(2)).map(|m| m.id).collect();
    assert_eq!(caught_missed, missed_ids, "all missed messages, in order, exactly once");
    let mut all: Vec<_> = caught_up.iter().chain(&live_after).map(|m| m.id).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 35);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn the_token_is_refreshed_before_it_expires_without_reconnecting(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    // Both ends on a clock the test moves: the server's ends a connection when its token's
    // expiry passes, the client's refreshes the token before that.
    let clock = Clock::manual(chat_server::now_ms());
    let server = server_with(&db, |c| c.clock = clock.clone()).await;
    let (calls_tx, mut calls) = tokio::sync::watch::channel(0usize);
    let minted = clock.clone();
    let provider: TokenProvider = Arc::new(move || {
        calls_tx.send_modify(|n| *n += 1);
        let now = minted.now_ms() / 1000;
        let token = Auth::new(common::SECRET).mint(T1, now, now + 60).unwrap();
        Box::pin(async move { Ok(token) })
    });
    let (c, mut events) = Client::start(&server.http_url(), provider, fast()).unwrap();
    c.wait_for(Status::Open).await;
    // 50 s later the refresh (due 12 s before the expiry) has started...
    clock.advance(50_000);
    c.skip_time(50_000);
    tokio::time::timeout(Duration::from_secs(10), calls.wait_for(|&n| n >= 2)).await.expect("a refresh").unwrap();
    // The driver hands the new token to the session at its next turn, long before this
    // send's commit is acked; the server reads a connection's frames in order, so by the
    // answer to the request after it, the refresh (and the ping the jump set off) is done.
    c.send(S1, "during refresh").await.unwrap();
    c.conversations().await.unwrap();
    // ...and past the first token's expiry the connection lives on under the new one.
    clock.advance(15_000);
    c.skip_time(15_000);
    c.send(S1, "after refresh").await.unwrap();
    // Still the same connection: no status change since it opened.
    let mut statuses = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::Status(s) = e {
            statuses.push(s);
        }
    }
    assert_eq!(statuses, [Status::Connecting, Status::Open]);
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_refused_token_ends_in_the_unauthorized_state_instead_of_retrying_forever(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = server(&db).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let forged: TokenProvider = Arc::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        let token = Auth::new(b"not-the-server-secret-not-the-secret").mint(T1, now_secs(), now_secs() + 60).unwrap();
        Box::pin(async move { Ok(token) })
    });
    let (c, _events) = Client::start(&server.http_url(), forged, fast()).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), c.wait_for(Status::Unauthorized)).await.unwrap();
    assert_eq!(status, Status::Unauthorized);
    // Terminal: however much time passes, no new attempt (the core's tests show nothing is
    // even scheduled).
    c.skip_time(3_600_000);
    assert_eq!(c.send(S1, "hi").await.unwrap_err().code, ErrorCode::UNAUTHORIZED);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no retry loop");

    // An unknown user is refused the same way.
    let (c, _events) =
        Client::start(&server.http_url(), provider(UserRef::teacher(99), 60, Arc::default()), fast()).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), c.wait_for(Status::Unauthorized)).await.unwrap();
    assert_eq!(status, Status::Unauthorized);
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_burst_of_sends_is_paced_to_the_announced_rate_and_never_refused(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let mut config = chat_server::ServeConfig::for_tests(common::SECRET);
    config.limits.requests_per_second = 40;
    config.limits.request_burst = 10;
    let server = Running::start(config, db.store()).await.unwrap();
    let (teacher, _events) = client(&server, T1).await;
    // 60 sends at once: the SDK sends the burst, then paces the rest; the server never has
    // to refuse one.
    let sends: Vec<_> = (0..60).map(|i| teacher.send(S1, format!("homework {i}"))).collect();
    let stored = futures_util::future::join_all(sends).await;
    let ids: Vec<_> = stored.into_iter().map(|s| s.unwrap().id).collect();
    assert_eq!(ids.len(), 60);
    for id in &ids {
        assert_eq!(db.count_id(*id).await, 1);
    }
    let metrics = reqwest::get(format!("{}/metrics", server.http_url())).await.unwrap().text().await.unwrap();
    assert!(!metrics.contains(r#"code="rate_limited""#), "{metrics}");
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn the_schools_rules_reach_the_app_through_the_sdk(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = server_with(&db, |c| c.safety.students_may_start = false).await;
    let (teacher, _teacher_events) = client(&server, T1).await;
    let (student, mut student_events) = client(&server, S1).await;

    // Reply-only: refused for good (a `SendFailed` event and the promise), nothing stored.
    let err = student.send(T1, "May I ask?").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::REPLY_ONLY);
    let failed = next_event(&mut student_events, |e| matches!(e, Event::SendFailed { .. })).await;
    assert!(matches!(failed, Event::SendFailed { code: ErrorCode::REPLY_ONLY, .. }), "{failed:?}");
    assert_eq!(db.message_count().await, 0);

    // The teacher writes; the student may reply, and reports the message.
    let first = teacher.send(S1, "Any questions?").await.unwrap();
    student.send(T1, "Yes").await.unwrap();
    student.report(first.id, "Just testing reports").await.unwrap();
    assert_eq!(db.scalar("SELECT count(*) FROM chat_report").await, 1);
    let err = student.report(first.id, "").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::CONTENT_EMPTY, "checked before it is sent");

    // A mute: the student's sends are refused until it is lifted.
    teacher.block(S1, true).await.unwrap();
    assert_eq!(teacher.blocks().await.unwrap(), [S1]);
    let err = student.send(T1, "Hello?").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::BLOCKED);
    teacher.block(S1, false).await.unwrap();
    student.send(T1, "Thanks").await.unwrap();
    assert!(teacher.blocks().await.unwrap().is_empty());
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn a_supervisor_reads_a_students_conversations_through_the_sdk(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = server(&db).await;
    let (teacher, _t) = client(&server, UserRef::teacher(2)).await;
    teacher.send(S1, "See me at noon").await.unwrap();
    let supervisor: TokenProvider = Arc::new(|| {
        let claims = chat_server::auth::Claims {
            role: "teacher".into(),
            id: 1,
            exp: now_secs() + 600,
            iat: Some(now_secs()),
            nbf: None,
            aud: None,
            iss: None,
            supervisor: true,
            supervises: None,
        };
        let token = Auth::new(common::SECRET).mint_claims(&claims).unwrap();
        Box::pin(async move { Ok(token) })
    });
    let (lead, _events) = Client::start(&server.http_url(), supervisor, fast()).unwrap();
    lead.wait_for(Status::Open).await;
    // An edited message: the supervisor sees the text before the edit.
    let fixed = teacher.send(S1, "Meet at noo").await.unwrap();
    teacher.edit(fixed.id, "Meet at noon").await.unwrap();
    let earlier = lead.supervise_revisions(S1, fixed.id).await.unwrap();
    assert_eq!(earlier.iter().map(|r| (r.deleted, r.before.as_str())).collect::<Vec<_>>(), [(false, "Meet at noo")]);
    let list = lead.supervise_conversations(S1).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].peer, UserRef::teacher(2));
    let (page, next) = lead.supervise_history(S1, UserRef::teacher(2), None, 10).await.unwrap();
    assert_eq!(page.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["Meet at noon", "See me at noon"]);
    assert_eq!(next, None);
    assert_eq!(db.scalar("SELECT count(*) FROM chat_audit WHERE action = 'supervisor-read'").await, 3);
    // An ordinary teacher is refused.
    let err = teacher.supervise_conversations(S1).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NOT_ALLOWED);
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn an_edit_and_a_deletion_reach_the_other_user_as_changed_events(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = server(&db).await;
    let (teacher, _t) = client(&server, T1).await;
    let (_student, mut events) = client(&server, S1).await;
    let sent = teacher.send(S1, "Quiz on Fridya").await.unwrap();
    teacher.edit(sent.id, "Quiz on Friday").await.unwrap();
    let changed = next_event(&mut events, |e| matches!(e, Event::Changed { .. })).await;
    let Event::Changed { message, deleted } = changed else { unreachable!() };
    assert_eq!((message.id, message.content.as_str(), deleted), (sent.id, "Quiz on Friday", false));
    teacher.delete(sent.id).await.unwrap();
    let changed = next_event(&mut events, |e| matches!(e, Event::Changed { .. })).await;
    assert!(matches!(changed, Event::Changed { deleted: true, ref message } if message.content.is_empty()));
    let err = teacher.edit(sent.id, "undo").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NOT_ALLOWED);
    server.stop().await.unwrap();
}

#[rstest]
#[tokio::test]
async fn messages_to_a_student_in_quiet_hours_arrive_marked_quiet(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    // 20:00 in the school's zone (UTC here): inside 19:00-07:00.
    let evening = 1_768_507_200_000; // 2026-01-15T20:00:00Z
    let clock = Clock::manual(evening);
    let server = server_with(&db, |c| {
        c.clock = clock.clone();
        c.safety.quiet_hours = Some(chat_server::config::QuietHours::parse("19:00-07:00", "UTC").unwrap());
    })
    .await;
    // Tokens minted on the server's (moved) clock, as the server checks them on it.
    let open = |user| {
        let (c, events) = Client::start(&server.http_url(), provider_on(user, 3600, clock.clone()), fast()).unwrap();
        async move {
            assert_eq!(c.wait_for(Status::Open).await, Status::Open);
            (c, events)
        }
    };
    let (teacher, mut teacher_events) = open(T1).await;
    let (student, mut student_events) = open(S1).await;
    teacher.send(S1, "Reminder for tomorrow").await.unwrap();
    let quiet = next_event(&mut student_events, |e| matches!(e, Event::Message { .. })).await;
    assert!(matches!(quiet, Event::Message { quiet: true, live: true, .. }), "{quiet:?}");
    // A teacher has no quiet hours; in the morning, messages are not quiet.
    student.send(T1, "ok").await.unwrap();
    let to_teacher = next_event(&mut teacher_events, |e| matches!(e, Event::Message { .. })).await;
    assert!(matches!(to_teacher, Event::Message { quiet: false, .. }), "{to_teacher:?}");
    clock.advance(12 * 3600 * 1000);
    teacher.send(S1, "Good morning").await.unwrap();
    let morning = next_event(&mut student_events, |e| matches!(e, Event::Message { .. })).await;
    assert!(matches!(morning, Event::Message { quiet: false, .. }), "{morning:?}");
    server.stop().await.unwrap();
}
