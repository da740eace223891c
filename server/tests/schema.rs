//! The schema `setup` creates is the one Prisma creates, column by column, and rows the
//! Next.js app writes through Prisma are read back correctly.

#![allow(clippy::unwrap_used)]

mod common;

use chat_protocol::{ClientFrame, ServerFrame, UserRef};
use chat_server::schema;
use common::{Client, TestDb, start};

/// `Message` exactly as Prisma 7 emits it for the guide's model (`prisma migrate diff` output).
const PRISMA_DDL: &str = r#"
CREATE SCHEMA prisma;
CREATE TABLE prisma."Message" (
    "id" TEXT NOT NULL,
    "senderId" INTEGER NOT NULL,
    "senderRole" TEXT NOT NULL,
    "recipientId" INTEGER NOT NULL,
    "recipientRole" TEXT NOT NULL,
    "content" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "isRead" BOOLEAN NOT NULL DEFAULT false,
    CONSTRAINT "Message_pkey" PRIMARY KEY ("id")
);
"#;

type Column = (String, i32, String, String, Option<String>, Option<i32>, Option<i32>);

async fn columns_of(db: &TestDb, schema: &str) -> Vec<Column> {
    sqlx::query_as(
        "SELECT column_name::text, ordinal_position::int4, data_type::text, is_nullable::text, column_default::text,
                datetime_precision::int4, character_maximum_length::int4
         FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'Message'
         ORDER BY ordinal_position",
    )
    .bind(schema)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_message_table_matches_prismas_ddl_column_by_column() {
    let db = TestDb::ready().await;
    sqlx::raw_sql(PRISMA_DDL).execute(&db.pool).await.unwrap();
    let ours = columns_of(&db, "public").await;
    let prisma = columns_of(&db, "prisma").await;
    assert_eq!(ours.len(), 9);
    assert_eq!(ours, prisma);
    // The primary key has Prisma's name, so `prisma migrate diff` sees no change there.
    let pkeys: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, constraint_name::text FROM information_schema.table_constraints
         WHERE table_name = 'Message' AND constraint_type = 'PRIMARY KEY' ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(pkeys, [("prisma".into(), "Message_pkey".into()), ("public".into(), "Message_pkey".into())]);
    // And check-db's own comparison agrees.
    let report = schema::inspect(&db.db(), "prisma").await.unwrap();
    assert!(!report.problems.iter().any(|p| p.problem.contains("differs")), "{:?}", report.problems);
}

#[tokio::test]
async fn check_db_notices_a_message_table_that_differs_from_the_model() {
    let db = TestDb::with_app_tables().await;
    sqlx::raw_sql(r#"CREATE TABLE "Message" (id uuid PRIMARY KEY, "senderId" int NOT NULL, content text)"#)
        .execute(&db.pool)
        .await
        .unwrap();
    let report = schema::inspect(&db.db(), "public").await.unwrap();
    let problem = report.problems.iter().find(|p| p.problem.contains("differs")).expect("a mismatch is reported");
    assert!(problem.problem.contains("\"id\" is uuid instead of text"), "{}", problem.problem);
    assert!(problem.problem.contains("column \"isRead\" is missing"), "{}", problem.problem);
}

#[tokio::test]
async fn rows_written_by_prisma_are_served_and_marked_read_for_prisma_to_see() {
    let db = TestDb::ready().await;
    // What Prisma's client writes: a uuid() id, createdAt by default, updatedAt set by the client.
    sqlx::raw_sql(
        r#"INSERT INTO "Message" (id, "senderId", "senderRole", "recipientId", "recipientRole", content, "updatedAt")
           VALUES ('2f1c6a2e-8a43-4a4e-9c59-6f1d2e3b4a5c', 1, 'teacher', 2, 'student', 'from prisma', CURRENT_TIMESTAMP)"#,
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let server = start(&db).await;
    let mut student = Client::login(&server, UserRef::student(2)).await;
    student.send(&ClientFrame::History { req: 1, peer: UserRef::teacher(1), before: None, limit: 10 }).await;
    let ServerFrame::History { messages, .. } = student.recv().await else { panic!() };
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].content, "from prisma");
    assert_eq!(messages[0].id.hyphenated().as_str(), "2f1c6a2e-8a43-4a4e-9c59-6f1d2e3b4a5c");
    let up_to = messages[0].cursor();
    student.send(&ClientFrame::MarkRead { req: 2, peer: UserRef::teacher(1), up_to }).await;
    let ServerFrame::MarkedRead { count, .. } = student.recv().await else { panic!() };
    assert_eq!(count, 1);
    let (read, updated_after_created): (bool, bool) =
        sqlx::query_as(r#"SELECT "isRead", "updatedAt" >= "createdAt" FROM "Message""#)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(read && updated_after_created);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn timestamps_are_stored_as_utc_wall_clock_like_prisma() {
    let db = TestDb::ready().await;
    let server = start(&db).await;
    let mut teacher = Client::login(&server, UserRef::teacher(1)).await;
    let (_, ack) = teacher.send_message(UserRef::student(1), "when?").await;
    let ServerFrame::Sent { created_at, .. } = ack else { panic!() };
    // Prisma stores UTC in TIMESTAMP(3) without time zone; read it back as text.
    let stored: String =
        sqlx::query_scalar(r#"SELECT to_char("createdAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS') FROM "Message""#)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let secs = created_at.div_euclid(1000);
    let expected_ms = created_at.rem_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let expected =
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{expected_ms:03}", rem / 3600, rem % 3600 / 60, rem % 60);
    assert_eq!(stored, expected);
    server.stop().await.unwrap();
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}
