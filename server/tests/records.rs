//! Safety and compliance records on both backends: an export holds exactly what a user sent
//! and received; purge and erase remove what they say (rows counted before and after) and
//! nothing else; each leaves an audit entry; retention in `serve` runs on the server's clock.
//! The commands themselves, as an operator runs them, are in `cli.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use chat_protocol::{MessageId, Millis, UserRef};
use chat_server::records::{self, DAY_MS, ExportFormat};
use chat_server::store::{NewMessage, Store};
use chat_server::{Clock, now_ms};
use common::{Backend, Client, TestStore, new_id};
use rstest::rstest;

const T1: UserRef = UserRef::teacher(1);
const T2: UserRef = UserRef::teacher(2);
const S1: UserRef = UserRef::student(1);
const S2: UserRef = UserRef::student(2);

fn msg(from: UserRef, to: UserRef, content: &str) -> NewMessage {
    NewMessage { id: new_id(), from, to, content: content.into() }
}

/// Stores messages `created_at`, one batch.
async fn store_at(store: &Store, messages: &[NewMessage], created_at: Millis) -> Vec<MessageId> {
    for chunk in messages.chunks(500) {
        let refs: Vec<&NewMessage> = chunk.iter().collect();
        store.insert_batch(&refs, created_at).await.unwrap();
    }
    messages.iter().map(|m| m.id).collect()
}

/// Moves everything committed into the message log, as a node's feed does (PostgreSQL
/// numbers rows there; SQLite already has).
async fn sequence_all(store: &Store) {
    while !store.sequence(0, true, 1000).await.unwrap().is_empty() {
        if matches!(store, Store::Sqlite(_)) {
            break;
        }
    }
}

async fn log_rows(db: &TestStore) -> i64 {
    db.scalar("SELECT count(*) FROM chat_log").await
}

async fn log_rows_naming(db: &TestStore, user: UserRef) -> i64 {
    db.scalar(&format!(
        "SELECT count(*) FROM chat_log WHERE (sender_role = '{r}' AND sender_id = {i}) \
         OR (recipient_role = '{r}' AND recipient_id = {i})",
        r = user.role.as_str(),
        i = user.id
    ))
    .await
}

async fn messages_of(db: &TestStore, user: UserRef) -> i64 {
    db.scalar(&format!(
        r#"SELECT count(*) FROM "Message" WHERE ("senderRole" = '{r}' AND "senderId" = {i})
           OR ("recipientRole" = '{r}' AND "recipientId" = {i})"#,
        r = user.role.as_str(),
        i = user.id
    ))
    .await
}

#[rstest]
#[tokio::test]
async fn an_export_holds_what_the_user_sent_and_received_in_order_and_nothing_else(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let server = common::start(&db).await;
    let mut teacher = Client::login(&server, T1).await;
    let mut student = Client::login(&server, S1).await;
    let mut other = Client::login(&server, T2).await;
    // Sent through the server, as users send them; the awkward texts test every format.
    let tricky = "Line one, \"quoted\"\n<script>alert('x')</script> & =SUM(A1)";
    let mut sent = Vec::new();
    for (who, to, text) in
        [(0, S1, "Hello Carol"), (1, T1, tricky), (2, S1, "From Bob"), (0, S1, "Homework is due Friday")]
    {
        let client = match who {
            0 => &mut teacher,
            1 => &mut student,
            _ => &mut other,
        };
        let (id, _) = client.send_message(to, text).await;
        sent.push((id, text));
    }
    // Someone else's conversation, which must not appear.
    let (elsewhere, _) = other.send_message(S2, "Not Carol's").await;

    let store = db.store();
    store.insert_report(now_ms(), sent[2].0, S1, T2, "Not nice", "From Bob", false).await.unwrap();
    let mut pages = Vec::new();
    let export = records::export(&store, S1, now_ms(), "operator test", &mut |n| pages.push(n)).await.unwrap();
    let got: Vec<(String, &str)> = export.messages.iter().map(|m| (m.id.clone(), m.content.as_str())).collect();
    let want: Vec<(String, &str)> = sent.iter().map(|(id, t)| (id.hyphenated().as_str().to_owned(), *t)).collect();
    assert_eq!(got, want, "every message of student 1, oldest first, text in full");
    assert!(!export.messages.iter().any(|m| m.id == elsewhere.hyphenated().as_str()));
    assert_eq!(export.names.get(&S1).map(String::as_str), Some("S-Carol"));
    assert_eq!(export.names.get(&T2).map(String::as_str), Some("T-Bob"));

    // JSON: complete and parseable.
    let json: serde_json::Value = serde_json::from_str(&export.render(ExportFormat::Json)).unwrap();
    assert_eq!(json["user"], serde_json::json!({ "role": "student", "id": 1, "name": "S-Carol" }));
    assert_eq!(json["messages"].as_array().unwrap().len(), 4);
    assert_eq!(json["messages"][1]["content"], tricky);
    assert_eq!(json["messages"][1]["from"]["name"], "S-Carol");
    assert_eq!(json["messages"][2]["from"], serde_json::json!({ "role": "teacher", "id": 2, "name": "T-Bob" }));
    assert_eq!(json["reports"][0]["reason"], "Not nice");
    assert_eq!(json["reports"][0]["reported"]["name"], "T-Bob");
    assert_eq!(json["reports"][0]["messageId"], sent[2].0.hyphenated().as_str());
    // CSV: a header, one record per message, then one per report (its reason last); the
    // quoted field keeps its line break, the formula is defused.
    let csv = export.render(ExportFormat::Csv);
    assert!(csv.starts_with(
        "createdAt,id,fromRole,fromId,fromName,toRole,toId,toName,content,isRead,updatedAt,record,reason\r\n"
    ));
    assert_eq!(csv.matches("\r\n").count(), 6, "{csv}");
    assert!(csv.contains(",report,Not nice\r\n"), "{csv}");
    assert!(csv.contains("\"Line one, \"\"quoted\"\"\n<script>alert('x')</script> & =SUM(A1)\""), "{csv}");
    // HTML: escaped, one section per conversation.
    let html = export.render(ExportFormat::Html);
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; =SUM(A1)"));
    assert!(!html.contains("<script>"));
    assert_eq!(html.matches("<h2>With ").count(), 2, "T-Alice and T-Bob");
    assert!(html.contains("<td class=\"text\">Not nice</td>"), "{html}");
    drop(server);
}

#[rstest]
#[tokio::test]
async fn purge_removes_the_old_messages_and_their_log_rows_and_keeps_the_rest(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let store = db.store();
    let now = now_ms();
    // 2,500 old messages (several batches) and 3 recent ones, all logged.
    let old: Vec<NewMessage> = (0..2_500).map(|i| msg(T1, S1, &format!("old {i}"))).collect();
    store_at(&store, &old, now - 400 * DAY_MS).await;
    let recent = store_at(&store, &[msg(T1, S1, "a"), msg(S1, T1, "b"), msg(T2, S2, "c")], now - DAY_MS).await;
    sequence_all(&store).await;
    assert_eq!((db.message_count().await, log_rows(&db).await), (2_503, 2_503));

    // A dry run counts and removes nothing.
    let before = now - 365 * DAY_MS;
    let counted = records::purge(&store, before, true, "operator test", now, &mut |_, _| {}).await.unwrap();
    assert_eq!(counted.messages, 2_500);
    assert_eq!(counted.oldest, Some(now - 400 * DAY_MS));
    assert_eq!((db.message_count().await, log_rows(&db).await), (2_503, 2_503));

    let mut seen = Vec::new();
    let report =
        records::purge(&store, before, false, "operator test", now, &mut |d, t| seen.push((d, t))).await.unwrap();
    assert_eq!((report.messages, report.log_rows), (2_500, 2_500));
    assert_eq!(seen.last(), Some(&(2_500, 2_500)));
    assert!(seen.len() >= 3, "batches: {seen:?}");
    assert_eq!((db.message_count().await, log_rows(&db).await), (3, 3));
    for id in recent {
        assert_eq!(db.count_id(id).await, 1);
    }
    // A catch-up from the start finds the recent messages only.
    let caught: Vec<_> = store.catch_up(S1, 0, 100).await.unwrap().into_iter().flat_map(|(_, m)| m).collect();
    assert_eq!(caught.len(), 2);
    let audit = db.scalar("SELECT count(*) FROM chat_audit WHERE action = 'purge' AND subject_id IS NULL").await;
    assert_eq!(audit, 1);
    // Nothing more to do: nothing removed, no new audit entry.
    let again = records::purge(&store, before, false, "operator test", now, &mut |_, _| {}).await.unwrap();
    assert_eq!((again.messages, again.log_rows), (0, 0));
    assert_eq!(db.scalar("SELECT count(*) FROM chat_audit").await, 1);
}

#[rstest]
#[tokio::test]
async fn purging_every_message_keeps_the_log_head_so_positions_never_repeat(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let store = db.store();
    let now = now_ms();
    store_at(&store, &[msg(T1, S1, "x"), msg(S1, T1, "y")], now - 400 * DAY_MS).await;
    sequence_all(&store).await;
    let head = store.log_head().await.unwrap();
    let report = records::purge(&store, now - 365 * DAY_MS, false, "t", now, &mut |_, _| {}).await.unwrap();
    assert_eq!((report.messages, report.log_rows), (2, 1), "the head row stays");
    assert_eq!(store.log_head().await.unwrap(), head);
    store_at(&store, &[msg(T1, S1, "new")], now).await;
    let logged = store.sequence(head, true, 10).await.unwrap();
    assert_eq!(logged.iter().map(|(pos, _)| *pos).collect::<Vec<_>>(), [head + 1]);
}

#[rstest]
#[tokio::test]
async fn erase_removes_every_message_and_log_row_of_one_user_and_leaves_an_audit_record(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let store = db.store();
    let now = now_ms();
    let many: Vec<NewMessage> = (0..1_200).map(|i| msg(T1, S1, &format!("to Carol {i}"))).collect();
    store_at(&store, &many, now - 10_000).await;
    let kept = store_at(&store, &[msg(T1, S2, "to Dan"), msg(S2, T2, "from Dan")], now - 5_000).await;
    // Student 1's reply is the newest: the log's head names them.
    let last = store_at(&store, &[msg(T2, S1, "from Bob"), msg(S1, T1, "from Carol")], now - 1_000).await;
    // Carol edits her message: its earlier text is kept, and is hers to have erased.
    assert!(matches!(
        store.revise(S1, last[1], "from Carol, edited", "edit", now).await.unwrap(),
        chat_server::store::Revised::Changed(_)
    ));
    sequence_all(&store).await;
    let head = store.log_head().await.unwrap();
    assert_eq!((messages_of(&db, S1).await, log_rows_naming(&db, S1).await), (1_202, 1_202));
    // Blocks and reports involving student 1, and one that does not.
    assert!(store.set_block(S1, S2, true, now).await.unwrap());
    assert!(store.set_block(T1, S1, true, now).await.unwrap());
    assert!(store.set_block(T2, S2, true, now).await.unwrap());
    store.insert_report(now, many[0].id, S1, T1, "mean", "to Carol 0", false).await.unwrap();
    store.insert_report(now, kept[1], T2, S2, "rude", "from Dan", false).await.unwrap();

    let counted = records::erase(&store, S1, true, "operator test", now, &mut |_, _| {}).await.unwrap();
    assert_eq!((counted.messages, counted.log_rows), (1_202, 1_202));
    assert_eq!(counted.directory, backend == Backend::Sqlite);
    assert_eq!(messages_of(&db, S1).await, 1_202, "a dry run removes nothing");

    let report = records::erase(&store, S1, false, "operator test", now, &mut |_, _| {}).await.unwrap();
    assert_eq!(report.messages, 1_202);
    assert_eq!(report.log_rows, 1_202, "1,201 removed and the head blanked");
    assert_eq!((report.blocks, report.reports, report.revisions), (2, 1, 1));
    assert_eq!(db.scalar("SELECT count(*) FROM chat_revision").await, 0);
    assert_eq!(db.scalar("SELECT count(*) FROM chat_block").await, 1, "teacher 2's block of student 2 stays");
    assert_eq!(db.scalar("SELECT count(*) FROM chat_report").await, 1, "student 2's report stays");
    assert_eq!((messages_of(&db, S1).await, log_rows_naming(&db, S1).await), (0, 0));
    assert_eq!(store.log_head().await.unwrap(), head);
    for id in kept {
        assert_eq!(db.count_id(id).await, 1, "other users' messages stay");
    }
    assert_eq!(log_rows_naming(&db, S2).await, 2);
    assert_eq!(store.find_user(S1).await.unwrap().is_none(), backend == Backend::Sqlite, "SQLite's directory entry");
    let audit = store.audit_about(S1).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "erase");
    assert_eq!(audit[0].actor, "operator test");
    assert!(
        audit[0].detail.contains(
            "erased 1202 messages sent or received by student:1 (1 earlier texts), 1202 message-log rows, 2 blocks and 1 reports"
        ),
        "{}",
        audit[0].detail
    );
    // A later export finds nothing but the audit record.
    let export = records::export(&store, S1, now, "t", &mut |_| {}).await.unwrap();
    assert!(export.messages.is_empty());
    assert_eq!(export.audit.len(), 1);
}

#[rstest]
#[tokio::test]
async fn serve_with_retention_purges_at_start_and_again_a_day_later_on_its_clock(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let store = db.store();
    let start = now_ms();
    let oldest = store_at(&store, &[msg(T1, S1, "400 days old")], start - 400 * DAY_MS).await;
    let older = store_at(&store, &[msg(T1, S1, "360 days old")], start - 360 * DAY_MS).await;
    let recent = store_at(&store, &[msg(T1, S1, "yesterday")], start - DAY_MS).await;
    let clock = Clock::manual(start);
    let server = common::start_with(&db, |c| {
        c.clock = clock.clone();
        c.retention = Some(365 * DAY_MS);
    })
    .await;
    wait_until("the purge at start", || async { db.count_id(oldest[0]).await == 0 }).await;
    assert_eq!(db.count_id(older[0]).await, 1);
    // The next run is due a day after the first; six days on, the 360-day-old message is
    // 366 days old and goes.
    clock.advance(6 * DAY_MS);
    wait_until("the next day's purge", || async { db.count_id(older[0]).await == 0 }).await;
    assert_eq!(db.count_id(recent[0]).await, 1);
    // Each run that removed something records it (after its last batch: wait for it).
    let audited = "SELECT count(*) FROM chat_audit WHERE action = 'purge' AND actor LIKE 'chat-server serve%'";
    wait_until("the second run's audit entry", || async { db.scalar(audited).await == 2 }).await;
    drop(server);
}

/// Waits (up to 10 s) for a condition the server reaches in the background.
async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// An id the app deleted and then reused (another conversation, a new row) brings none of
/// the old message's history: not its earlier texts (export, supervision), not its place in
/// the old sender's catch-up.
#[rstest]
#[tokio::test]
async fn an_id_reused_after_the_app_deleted_its_row_inherits_nothing(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let store = db.store();
    let s3 = UserRef::student(3);
    let now = now_ms();
    let first = msg(S1, T1, "student 1's private words");
    let id = first.id;
    store_at(&store, &[first], now - 60_000).await;
    sequence_all(&store).await;
    let head_before = store.log_head().await.unwrap();
    assert!(matches!(
        store.revise(S1, id, "student 1's edited words", "edit", now - 30_000).await.unwrap(),
        chat_server::store::Revised::Changed(_)
    ));
    // The app deletes the row (allowed: it is its table), then the id comes back elsewhere.
    db.execute(&format!(r#"DELETE FROM "Message" WHERE id = '{}'"#, id.hyphenated().as_str())).await;
    let reused = NewMessage { id, from: T1, to: s3, content: "teacher 1 to student 3".into() };
    store_at(&store, &[reused], now).await;
    sequence_all(&store).await;

    let export = records::export(&store, s3, now, "t", &mut |_| {}).await.unwrap();
    assert!(export.revisions.is_empty(), "{:?}", export.revisions);
    let message = store.message_by_id(id).await.unwrap().unwrap();
    assert!(store.revisions_of(&message, 32).await.unwrap().is_empty());
    // Student 1's catch-up from before: their old position is there, but not the new message.
    let rows = store.catch_up(S1, head_before - 1, 100).await.unwrap();
    assert!(rows.iter().all(|(_, m)| m.as_ref().is_none_or(|m| m.to != s3)), "{rows:?}");
    // Student 1's own export still holds the earlier text of what they wrote.
    let own = records::export(&store, S1, now, "t", &mut |_| {}).await.unwrap();
    assert_eq!(own.revisions.len(), 1);
    assert_eq!(own.revisions[0].content, "student 1's private words");
    // The CSV export holds the earlier texts too, one row each, marked as such.
    let csv = own.render(ExportFormat::Csv);
    assert!(csv.lines().next().unwrap().ends_with(",record,reason"), "{csv}");
    assert!(csv.lines().any(|l| l.contains("student 1's private words") && l.ends_with(",edit,")), "{csv}");
}

/// Erasure removes the earlier texts of messages the app already deleted; purge removes
/// the earlier texts of the messages it purges, however recently they were edited; on the
/// embedded database no erased text is left readable in the file or its WAL.
#[rstest]
#[tokio::test]
async fn erase_and_purge_leave_no_earlier_text_behind(#[values(Backend::Postgres, Backend::Sqlite)] backend: Backend) {
    let db = TestStore::ready(backend).await;
    let store = db.store();
    let now = now_ms();
    let old = msg(S2, T2, "an old text, edited lately");
    let old_id = old.id;
    store_at(&store, &[old], now - 400 * DAY_MS).await;
    let gone = msg(S1, T1, "zanzibar-marmalade-quokka");
    let gone_id = gone.id;
    store_at(&store, &[gone], now - 60_000).await;
    sequence_all(&store).await;
    store.revise(S2, old_id, "edited yesterday", "edit", now - DAY_MS).await.unwrap();
    store.revise(S1, gone_id, "something else", "edit", now - 30_000).await.unwrap();
    db.execute(&format!(r#"DELETE FROM "Message" WHERE id = '{}'"#, gone_id.hyphenated().as_str())).await;

    let erased = records::erase(&store, S1, false, "t", now, &mut |_, _| {}).await.unwrap();
    assert_eq!(erased.revisions, 1, "the earlier text of a message the app deleted");
    assert_eq!(db.scalar("SELECT count(*) FROM chat_revision WHERE content LIKE 'zanzibar%'").await, 0);
    let audit = store.audit_about(S1).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "erase" && a.detail.contains("(1 earlier texts)")), "{audit:?}");

    let purged = records::purge(&store, now - 365 * DAY_MS, false, "t", now, &mut |_, _| {}).await.unwrap();
    assert_eq!((purged.messages, purged.revisions), (1, 1), "the old message's earlier text goes with it");
    assert_eq!(db.scalar("SELECT count(*) FROM chat_revision").await, 0);

    if let TestStore::Sqlite(lite) = &db {
        let mut bytes = std::fs::read(&lite.path).unwrap();
        bytes.extend(std::fs::read(lite.path.with_extension("db-wal")).unwrap_or_default());
        assert!(!bytes.windows(9).any(|w| w == b"zanzibar-"), "the erased text is still in the file or its WAL");
    }
}

/// The audit log is kept for ever unless the school says otherwise; with an audit retention
/// old entries go (daily, on the server's clock) and the removal is itself an entry.
#[rstest]
#[tokio::test]
async fn audit_retention_removes_old_entries_and_records_that_it_did(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let store = db.store();
    let start = now_ms();
    store.write_audit(start - 800 * DAY_MS, "t", "export", Some(S1), "an old export").await.unwrap();
    store.write_audit(start - 10 * DAY_MS, "t", "export", Some(S1), "a recent export").await.unwrap();
    let clock = Clock::manual(start);
    let server = common::start_with(&db, |c| {
        c.clock = clock.clone();
        c.audit_retention = Some(730 * DAY_MS);
    })
    .await;
    let old = "SELECT count(*) FROM chat_audit WHERE detail = 'an old export'";
    wait_until("the audit purge at start", || async { db.scalar(old).await == 0 }).await;
    let recorded = "SELECT count(*) FROM chat_audit WHERE action = 'purge-audit'
                      AND detail LIKE 'removed 1 audit entries written before %'";
    wait_until("its own entry", || async { db.scalar(recorded).await == 1 }).await;
    assert_eq!(db.scalar("SELECT count(*) FROM chat_audit WHERE detail = 'a recent export'").await, 1);
    drop(server);
}

/// On PostgreSQL a message committed but not yet sequenced waits in `chat_inbox` with its
/// sender and recipient: an erasure removes those rows too.
#[tokio::test]
async fn erase_removes_the_users_rows_waiting_in_the_inbox() {
    let db = TestStore::ready(Backend::Postgres).await;
    let store = db.store();
    store_at(&store, &[msg(S1, T1, "not sequenced yet"), msg(T2, S2, "someone else's")], now_ms()).await;
    assert_eq!(db.scalar("SELECT count(*) FROM chat_inbox").await, 2);
    let erased = records::erase(&store, S1, false, "t", now_ms(), &mut |_, _| {}).await.unwrap();
    assert_eq!(erased.messages, 1);
    let left = "SELECT count(*) FROM chat_inbox WHERE sender_role = 'student' AND sender_id = 1";
    assert_eq!(db.scalar(left).await, 0);
    assert_eq!(db.scalar("SELECT count(*) FROM chat_inbox").await, 1, "the other user's row stays");
}

/// A legal hold keeps a user's records whatever retention says (their messages either way,
/// the earlier texts of those messages, the reports they are in) while everyone else's old
/// records go; erase refuses with a sentence naming the hold; each change is audited; after the
/// release, retention and erase apply again.
#[rstest]
#[tokio::test]
async fn a_legal_hold_outlives_retention_and_stops_erase_until_released(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let store = db.store();
    let now = now_ms();
    let old = now - 400 * DAY_MS;
    let to_held = msg(T1, S1, "to the held student");
    let from_held = msg(S1, T1, "from the held student");
    let other = msg(T2, S2, "nobody holds this");
    let (to_id, other_id) = (to_held.id, other.id);
    store_at(&store, &[to_held, from_held, other], old).await;
    sequence_all(&store).await;
    store.revise(T1, to_id, "to the held student, edited", "edit", old + 1_000).await.unwrap();
    store.revise(T2, other_id, "nobody holds this, edited", "edit", old + 1_000).await.unwrap();
    store.insert_report(old + 2_000, to_id, S1, T1, "a held student's report", "x", false).await.unwrap();
    store.insert_report(old + 2_000, other_id, S2, T2, "another report", "y", false).await.unwrap();

    let placed = records::place_hold(&store, S1, "case 2026-14", "operator dpo", now).await.unwrap();
    assert!(placed.is_ok(), "{placed:?}");
    let again = records::place_hold(&store, S1, "another case", "operator x", now).await.unwrap();
    let existing = again.expect_err("one hold per user");
    assert_eq!((existing.reason.as_str(), existing.placed_by.as_str()), ("case 2026-14", "operator dpo"));
    let holds = store.holds().await.unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!((holds[0].user, holds[0].placed_at), (S1, now));

    // Retention: everything old goes but what names the held student.
    let before = now - 365 * DAY_MS;
    let counted = records::purge(&store, before, true, "t", now, &mut |_, _| {}).await.unwrap();
    assert_eq!(counted.messages, 1, "only the message nobody holds counts");
    let purged = records::purge(&store, before, false, "t", now, &mut |_, _| {}).await.unwrap();
    assert_eq!((purged.messages, purged.revisions, purged.reports), (1, 1, 1));
    assert_eq!(messages_of(&db, S1).await, 2, "both of the held student's messages stay");
    assert_eq!(db.count_id(other_id).await, 0);
    assert_eq!(db.scalar("SELECT count(*) FROM chat_revision").await, 1, "the held message's earlier text stays");
    assert_eq!(db.scalar("SELECT count(*) FROM chat_report").await, 1, "the held student's report stays");

    // Erase refuses, saying which hold and how it ends; nothing is removed.
    let refused = records::erase(&store, S1, false, "t", now, &mut |_, _| {}).await.unwrap_err();
    let said = refused.to_string();
    assert!(said.contains("student:1 is under a legal hold placed by operator dpo"), "{said}");
    assert!(said.contains("case 2026-14") && said.contains("chat-server hold release --user student:1"), "{said}");
    assert_eq!(messages_of(&db, S1).await, 2);

    // Released (with why): retention and erase apply again. Each step is in the audit log.
    let released = records::release_hold(&store, S1, "the case closed", "operator dpo", now).await.unwrap();
    assert_eq!(released.map(|h| h.reason), Some("case 2026-14".to_owned()));
    assert!(records::release_hold(&store, S1, "twice", "operator dpo", now).await.unwrap().is_none());
    let purged = records::purge(&store, before, false, "t", now, &mut |_, _| {}).await.unwrap();
    assert_eq!((purged.messages, purged.revisions, purged.reports), (2, 1, 1));
    let audit = store.audit_about(S1).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["hold", "hold-release"], "{audit:?}");
    assert!(audit[1].detail.contains("released because: the case closed"), "{audit:?}");
    records::erase(&store, S1, false, "t", now, &mut |_, _| {}).await.unwrap();
}
