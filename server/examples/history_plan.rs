//! Benchmark: history pages on a `Message` table of a million rows.
//!
//! Creates a fresh database (TEST_DATABASE_URL's server), fills it with 1,000,000 messages
//! (one busy conversation of 200,000 between teacher 1 and student 1, the rest spread over
//! 50 teachers x 2,000 students), prints `EXPLAIN (ANALYZE, BUFFERS)` of the exact history
//! query the server runs, and times pages through the server's own store: the newest page
//! and pages deep in the busy conversation.
//!
//!     cargo run --release -p chat-server --example history_plan
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::time::Instant;

use chat_protocol::{Cursor, UserRef};
use chat_server::testing::TestDb;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let db = TestDb::ready().await;
    let started = Instant::now();
    sqlx::raw_sql(
        r#"
        INSERT INTO "Teacher" (name) SELECT 'T-' || n FROM generate_series(3, 50) n;
        INSERT INTO "Student" (name) SELECT 'S-' || n FROM generate_series(4, 2000) n;
        -- The busy conversation: 200,000 messages, both directions, 1 ms apart.
        INSERT INTO "Message" (id, "senderId", "senderRole", "recipientId", "recipientRole", content, "createdAt", "updatedAt", "isRead")
        SELECT gen_random_uuid()::text,
               1, CASE WHEN n % 2 = 0 THEN 'teacher' ELSE 'student' END,
               1, CASE WHEN n % 2 = 0 THEN 'student' ELSE 'teacher' END,
               'busy ' || n,
               TIMESTAMP '2026-01-01' + n * INTERVAL '1 millisecond',
               TIMESTAMP '2026-01-01' + n * INTERVAL '1 millisecond', n < 190000
        FROM generate_series(1, 200000) n;
        -- 800,000 more over many conversations.
        INSERT INTO "Message" (id, "senderId", "senderRole", "recipientId", "recipientRole", content, "createdAt", "updatedAt", "isRead")
        SELECT gen_random_uuid()::text,
               1 + (n % 50), 'teacher', 1 + (n % 2000), 'student',
               'other ' || n,
               TIMESTAMP '2026-01-01' + (n * 7 % 86400000) * INTERVAL '1 millisecond',
               TIMESTAMP '2026-01-01', true
        FROM generate_series(1, 800000) n;
        ANALYZE "Message";
        "#,
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let rows: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "Message""#).fetch_one(&db.pool).await.unwrap();
    println!("loaded {rows} rows in {:.1} s", started.elapsed().as_secs_f64());

    let me = UserRef::student(1);
    let peer = UserRef::teacher(1);
    // A cursor deep in the busy conversation (about 150,000 messages back).
    let deep = Cursor { at: 1_767_225_600_000 + 50_000, id: chat_protocol::MessageId([0xff; 16]) };
    for (label, at, id) in [
        ("newest page", 253_402_300_799_999_i64, "ffffffff-ffff-ffff-ffff-ffffffffffff".to_owned()),
        ("deep page", deep.at, deep.id.hyphenated().as_str().to_owned()),
    ] {
        let plan: Vec<String> =
            sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, BUFFERS) {}", &*chat_server::store::HISTORY_SQL))
                .bind(me.role.as_str())
                .bind(me.id)
                .bind(peer.role.as_str())
                .bind(peer.id)
                .bind(at)
                .bind(id)
                .bind(50_i64)
                .fetch_all(&db.pool)
                .await
                .unwrap();
        println!("\n== EXPLAIN ANALYZE, {label} (limit 50)\n{}", plan.join("\n"));
    }

    let store = db.store();
    for (label, before) in [("newest page", None), ("deep page", Some(deep))] {
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            let page = store.history(me, peer, before, 50).await.unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(page.len(), 50);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "\n{label}: 50 messages per page, 200 pages: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            times[100], times[198], times[199]
        );
    }
    let t = Instant::now();
    let list = store.conversations(UserRef::teacher(1), None, chat_protocol::MAX_CONVERSATIONS_PAGE).await.unwrap();
    println!(
        "conversation list of teacher 1 ({} conversations, {} messages): {:.1} ms",
        list.len(),
        200_000 + 800_000 / 50,
        t.elapsed().as_secs_f64() * 1000.0
    );
}
