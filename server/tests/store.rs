//! The storage seam itself, on both backends: the same calls must give the same answers
//! from PostgreSQL and from the embedded SQLite file.

#![allow(clippy::unwrap_used)]

mod common;

use chat_protocol::{Cursor, MessageId, UserRef};
use chat_server::store::{InsertOutcome, NewMessage};
use common::{Backend, TestStore, new_id};
use rstest::rstest;

const T1: UserRef = UserRef::teacher(1);
const T2: UserRef = UserRef::teacher(2);
const S1: UserRef = UserRef::student(1);
const S2: UserRef = UserRef::student(2);

fn msg(id: MessageId, from: UserRef, to: UserRef, content: &str) -> NewMessage {
    NewMessage { id, from, to, content: content.into() }
}

#[rstest]
#[tokio::test]
async fn a_batch_reports_stored_duplicate_and_conflict(#[values(Backend::Postgres, Backend::Sqlite)] backend: Backend) {
    let db = TestStore::ready(backend).await;
    let store = db.store();
    let (a, b) = (new_id(), new_id());
    let first = msg(a, T1, S1, "first");
    let out = store.insert_batch(&[&first], 1_000).await.unwrap();
    assert_eq!(out, [InsertOutcome::Stored { created_at: 1_000 }]);

    // A resend of `a`, another sender claiming `a`, a new `b` and a repeat of `b` inside the batch.
    let resend = msg(a, T1, S1, "first");
    let hijack = msg(a, T2, S1, "not yours");
    let new = msg(b, S1, T1, "second");
    let repeat = msg(b, S1, T1, "second");
    let out = store.insert_batch(&[&resend, &hijack, &new, &repeat], 2_000).await.unwrap();
    assert_eq!(
        out,
        [
            InsertOutcome::Duplicate { created_at: 1_000 },
            InsertOutcome::Conflict,
            InsertOutcome::Stored { created_at: 2_000 },
            InsertOutcome::Duplicate { created_at: 2_000 },
        ]
    );
    assert_eq!(db.message_count().await, 2);
    assert_eq!(db.row(a).await.4, "first");
}

#[rstest]
#[tokio::test]
async fn history_pages_backwards_through_one_conversation_only(
    #[values(Backend::Postgres, Backend::Sqlite)] backend: Backend,
) {
    let db = TestStore::ready(backend).await;
    let store = db.store();
    let mut ours = Vec::new();
    for i in 0..7_i64 {
        let (from, to) = if i % 2 == 0 { (T1, S1) } else { (S1, T1) };
        let m = msg(new_id(), from, to, &format!("m{i}"));
        // Two messages share each millisecond: the id breaks the tie.
        store.insert_batch(&[&m], 10_000 + i / 2).await.unwrap();
        ours.push(m.id);
        // Noise: teacher 1 with student 2, and teacher 2 with student 1.
        store.insert_batch(&[&msg(new_id(), T1, S2, "other"), &msg(new_id(), T2, S1, "other")], 10_000).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut before: Option<Cursor> = None;
    loop {
        let page = store.history(S1, T1, before, 3).await.unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|m| m.id));
        if page.len() < 3 {
            break;
        }
        before = page.last().map(chat_protocol::StoredMessage::cursor);
    }
    ours.reverse();
    assert_eq!(seen, ours);
}

#[rstest]
#[tokio::test]
async fn sync_conversations_and_mark_read_agree(#[values(Backend::Postgres, Backend::Sqlite)] backend: Backend) {
    let db = TestStore::ready(backend).await;
    let store = db.store();
    // Student 1 hears from teacher 1 (3 messages) and teacher 2 (1), and writes to teacher 2.
    let from_t1: Vec<NewMessage> = (0..3).map(|i| msg(new_id(), T1, S1, &format!("t1-{i}"))).collect();
    for (i, m) in from_t1.iter().enumerate() {
        store.insert_batch(&[m], 5_000 + i64::try_from(i).unwrap()).await.unwrap();
    }
    let from_t2 = msg(new_id(), T2, S1, "t2");
    store.insert_batch(&[&from_t2], 6_000).await.unwrap();
    let to_t2 = msg(new_id(), S1, T2, "reply");
    store.insert_batch(&[&to_t2], 7_000).await.unwrap();

    // Sync: everything to or from student 1 after a message, oldest first.
    let after = Cursor { at: 5_000, id: from_t1[0].id };
    let synced: Vec<MessageId> = store.sync(S1, after, 100).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(synced, [from_t1[1].id, from_t1[2].id, from_t2.id, to_t2.id]);
    assert_eq!(store.sync(S1, after, 2).await.unwrap().len(), 2);

    // Conversations, most recent first, with names and unread counts per (role, id).
    let list = store.conversations(S1, None, 100).await.unwrap();
    let summary: Vec<(UserRef, &str, u32, &str)> =
        list.iter().map(|c| (c.peer, c.peer_name.as_str(), c.unread, c.last.content.as_str())).collect();
    assert_eq!(summary, [(T2, "T-Bob", 1, "reply"), (T1, "T-Alice", 3, "t1-2")]);
    // Teacher 1's view: one conversation, with student 1 (not teacher 1's namesake).
    let list = store.conversations(T1, None, 100).await.unwrap();
    assert_eq!(list.iter().map(|c| (c.peer, c.peer_name.as_str(), c.unread)).collect::<Vec<_>>(), [(S1, "S-Carol", 0)]);

    // Mark read up to the second of teacher 1's messages: two rows change, once.
    let up_to = Cursor { at: 5_001, id: from_t1[1].id };
    assert_eq!(store.mark_read(S1, T1, up_to, 9_000).await.unwrap(), 2);
    assert_eq!(store.mark_read(S1, T1, up_to, 9_001).await.unwrap(), 0);
    let row = db.row(from_t1[0].id).await;
    assert!(row.5, "read");
    assert_eq!(row.7, 9_000, "updatedAt moved with isRead");
    assert!(!db.row(from_t1[2].id).await.5);
    let unread: Vec<u32> = store.conversations(S1, None, 100).await.unwrap().iter().map(|c| c.unread).collect();
    assert_eq!(unread, [1, 1]);

    assert_eq!(store.find_user(S1).await.unwrap().as_deref(), Some("S-Carol"));
    assert_eq!(store.find_user(T1).await.unwrap().as_deref(), Some("T-Alice"));
    assert_eq!(store.find_user(UserRef::student(99)).await.unwrap(), None);
}

#[tokio::test]
async fn when_the_owner_of_a_resent_id_cannot_be_read_the_new_messages_still_count_as_stored() {
    // A database role that may insert (and read back ids) but not read senders: the
    // follow-up read for resent ids fails after the batch's INSERT committed.
    let db = common::TestDb::ready().await;
    let role = format!("chat_limited_{}", common::hex(&rand::random::<[u8; 4]>()));
    for sql in [format!("CREATE ROLE {role} LOGIN"), format!(r#"GRANT INSERT, SELECT (id) ON "Message" TO {role}"#)] {
        sqlx::query(&sql).execute(&db.pool).await.unwrap();
    }
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(&role).unwrap();
    let limited = sqlx::PgPool::connect(url.as_str()).await.unwrap();
    let store = chat_server::Store::Postgres(chat_server::store::PgStore::new(limited.clone()));

    let (a, b) = (new_id(), new_id());
    let first = msg(a, T1, S1, "first");
    assert_eq!(store.insert_batch(&[&first], 1_000).await.unwrap(), [InsertOutcome::Stored { created_at: 1_000 }]);
    let resend = msg(a, T1, S1, "first");
    let new = msg(b, T1, S1, "second");
    let out = store.insert_batch(&[&resend, &new], 2_000).await.unwrap();
    assert_eq!(out, [InsertOutcome::Unresolved, InsertOutcome::Stored { created_at: 2_000 }]);
    let n: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "Message""#).fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 2);

    limited.close().await;
    let admin = sqlx::PgPool::connect(&common::admin_url()).await.unwrap();
    drop(db);
    sqlx::query(&format!("DROP ROLE IF EXISTS {role}")).execute(&admin).await.unwrap();
}
