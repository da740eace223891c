//! The embedded backend: one SQLite file the chat server owns, for a start with no
//! database server (`chat-server serve` without `DATABASE_URL`, and `chat-server demo`).
//!
//! Same logical schema as PostgreSQL (`migrations/sqlite/`), applied by sqlx's migrator
//! when the file is opened. Timestamps are integer milliseconds (as Prisma stores
//! `DateTime` in SQLite) and ids the same lowercase hyphenated UUID text, so
//! `(createdAt, id)` orders rows exactly as the protocol does. WAL mode lets reads run
//! beside the writer; `synchronous = FULL` makes every commit durable before its ack.

use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use chat_protocol::{Conversation, Cursor, Millis, Role, StoredMessage, UserRef};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{
    CatchUpRow, ConversationRow, InsertOutcome, LogRow, Logged, LoggedRow, MessageRow, NewMessage, StoreError,
    to_conversation, to_logged, to_logged_row, to_message,
};

/// The schema, embedded in the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections in the pool: the writer, and readers beside it (WAL).
const POOL_SIZE: u32 = 4;

const MESSAGE_COLUMNS: &str =
    r#"id, "senderRole", "senderId", "recipientRole", "recipientId", content, "createdAt", "isRead""#;

/// The SQL of [`SqliteStore::history`]: each direction walks its own index backwards, the
/// outer query merges them.
static HISTORY_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"SELECT {MESSAGE_COLUMNS} FROM (
                 SELECT * FROM (SELECT * FROM "Message"
                   WHERE "senderRole" = ?1 AND "senderId" = ?2 AND "recipientRole" = ?3 AND "recipientId" = ?4
                     AND ("createdAt", id) < (?5, ?6)
                   ORDER BY "createdAt" DESC, id DESC LIMIT ?7)
                 UNION ALL
                 SELECT * FROM (SELECT * FROM "Message"
                   WHERE "senderRole" = ?3 AND "senderId" = ?4 AND "recipientRole" = ?1 AND "recipientId" = ?2
                     AND ("createdAt", id) < (?5, ?6)
                   ORDER BY "createdAt" DESC, id DESC LIMIT ?7)
               ) ORDER BY "createdAt" DESC, id DESC LIMIT ?7"#
    )
});

/// The SQL of [`SqliteStore::catch_up`] (see the PostgreSQL one).
static CATCH_UP_SQL: &str = r#"SELECT l.pos, m.id IS NOT NULL, COALESCE(m.id, ''), COALESCE(m."senderRole", ''),
        COALESCE(m."senderId", 0), COALESCE(m."recipientRole", ''), COALESCE(m."recipientId", 0),
        COALESCE(m.content, ''), COALESCE(m."createdAt", 0), COALESCE(m."isRead", false)
    FROM (
        SELECT * FROM (SELECT * FROM chat_log
          WHERE recipient_role = ?1 AND recipient_id = ?2 AND pos > ?3 ORDER BY pos LIMIT ?4)
        UNION
        SELECT * FROM (SELECT * FROM chat_log
          WHERE sender_role = ?1 AND sender_id = ?2 AND pos > ?3 ORDER BY pos LIMIT ?4)
    ) l LEFT JOIN "Message" m ON m.id = l.message_id
        -- A row with this id in another conversation is not the logged message (the app
        -- deleted it and reused the id). Unary `+`: compared after the lookup by id, never
        -- through the conversation index.
        AND +m."senderRole" = l.sender_role AND +m."senderId" = l.sender_id
        AND +m."recipientRole" = l.recipient_role AND +m."recipientId" = l.recipient_id
    ORDER BY l.pos LIMIT ?4"#;

/// The SQL of [`SqliteStore::sync`].
static SYNC_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"SELECT {MESSAGE_COLUMNS} FROM (
                 SELECT * FROM (SELECT * FROM "Message"
                   WHERE "recipientRole" = ?1 AND "recipientId" = ?2 AND ("createdAt", id) > (?3, ?4)
                   ORDER BY "createdAt", id LIMIT ?5)
                 UNION ALL
                 SELECT * FROM (SELECT * FROM "Message"
                   WHERE "senderRole" = ?1 AND "senderId" = ?2 AND ("createdAt", id) > (?3, ?4)
                   ORDER BY "createdAt", id LIMIT ?5)
               ) ORDER BY "createdAt", id LIMIT ?5"#
    )
});

/// The SQL of [`SqliteStore::conversations`]: one pass over the user's messages (both
/// directions, each by its index), grouped by peer with window functions. Fine at embedded
/// scale; PostgreSQL skips through its indexes instead.
static CONVERSATIONS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"WITH mine AS (
                 SELECT *, "recipientRole" AS peer_role, "recipientId" AS peer_id FROM "Message"
                   WHERE "senderRole" = ?1 AND "senderId" = ?2
                 UNION ALL
                 SELECT *, "senderRole", "senderId" FROM "Message"
                   WHERE "recipientRole" = ?1 AND "recipientId" = ?2
                     AND NOT ("senderRole" = ?1 AND "senderId" = ?2)
               ),
               ranked AS (
                 SELECT *,
                   row_number() OVER (PARTITION BY peer_role, peer_id ORDER BY "createdAt" DESC, id DESC) AS nth,
                   sum("recipientRole" = ?1 AND "recipientId" = ?2 AND NOT "isRead")
                     OVER (PARTITION BY peer_role, peer_id) AS unread_count
                 FROM mine
               )
               SELECT {MESSAGE_COLUMNS}, peer_name, unread_count FROM (
                 SELECT ranked.*, COALESCE(u.name, '') AS peer_name
                 FROM ranked LEFT JOIN users_view u ON u.role = ranked.peer_role AND u.id = ranked.peer_id
                 WHERE nth = 1
               ) WHERE ("createdAt", id) < (?3, ?4)
               ORDER BY "createdAt" DESC, id DESC LIMIT ?5"#
    )
});

/// The SQLite store. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    pub(super) timeout: Duration,
}

/// One user of the embedded directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryUser {
    /// Teacher or student.
    pub role: Role,
    /// The id within the role.
    pub id: i32,
    /// The display name.
    pub name: String,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path` and brings its schema up
    /// to date.
    ///
    /// # Errors
    /// The file cannot be opened or is not a chat database this version understands.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // Deleted rows are overwritten with zeros, so an erased or purged text does not
            // linger in free pages (the WAL is emptied after each, `Store::reclaim`).
            .pragma("secure_delete", "ON")
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(POOL_SIZE).connect_with(options).await?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Schema(e.to_string()))?;
        Ok(SqliteStore { pool, timeout: Duration::from_secs(10) })
    }

    /// The pool (the compliance commands' queries, and tests that read the tables directly).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// How many messages the database holds.
    ///
    /// # Errors
    /// A database error.
    pub async fn message_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(r#"SELECT count(*) FROM "Message""#).fetch_one(&self.pool).await?)
    }

    /// Adds a user to the embedded directory; returns the new id.
    ///
    /// # Errors
    /// A database error.
    pub async fn add_user(&self, role: Role, name: &str) -> Result<i32, StoreError> {
        let sql = match role {
            Role::Teacher => r#"INSERT INTO "Teacher" (name) VALUES (?1) RETURNING id"#,
            Role::Student => r#"INSERT INTO "Student" (name) VALUES (?1) RETURNING id"#,
        };
        Ok(sqlx::query_scalar(sql).bind(name).fetch_one(&self.pool).await?)
    }

    /// Every user of the embedded directory, teachers first, by id.
    ///
    /// # Errors
    /// A database error, or a row with an unknown role.
    pub async fn users(&self) -> Result<Vec<DirectoryUser>, StoreError> {
        let rows: Vec<(String, i32, String)> =
            sqlx::query_as("SELECT role, id, name FROM users_view ORDER BY role = 'student', id")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(role, id, name)| {
                let role = Role::parse(&role).ok_or_else(|| StoreError::BadRow(format!("role {role:?}")))?;
                Ok(DirectoryUser { role, id, name })
            })
            .collect()
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The display name of `user` in the directory, if there is such a user.
    ///
    /// # Errors
    /// A database error.
    pub async fn find_user(&self, user: UserRef) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar::<_, String>("SELECT name FROM users_view WHERE role = ?1 AND id = ?2")
            .bind(user.role.as_str())
            .bind(user.id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub(super) async fn insert_batch(
        &self,
        batch: &[&NewMessage],
        created_at: Millis,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        // One multi-row statement in autocommit, as on PostgreSQL: atomic by itself, and no
        // transaction object to be left half-open when the disk fills up (SQLite rolls a
        // failed statement back on its own) or when a call is abandoned at its deadline.
        let ids: Vec<_> = batch.iter().map(|m| m.id.hyphenated()).collect();
        let mut sql = String::from(
            r#"INSERT INTO "Message"
                   (id, "senderId", "senderRole", "recipientId", "recipientRole", content,
                    "createdAt", "updatedAt", "isRead") VALUES "#,
        );
        for i in 0..batch.len() {
            let p = i * 6;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(?{}, ?{}, ?{}, ?{}, ?{}, ?{}, ?1, ?1, false)",
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6,
                p + 7
            ));
        }
        sql.push_str(" ON CONFLICT (id) DO NOTHING RETURNING id");
        let mut query = sqlx::query_scalar::<_, String>(&sql).bind(created_at);
        for (m, id) in batch.iter().zip(&ids) {
            query = query
                .bind(id.as_str())
                .bind(m.from.id)
                .bind(m.from.role.as_str())
                .bind(m.to.id)
                .bind(m.to.role.as_str())
                .bind(m.content.as_str());
        }
        let inserted: Vec<String> = query.fetch_all(&self.pool).await?;
        let mut new_ids: std::collections::HashSet<String> = inserted.into_iter().collect();

        let mut outcomes = Vec::with_capacity(batch.len());
        let mut first_in_batch: std::collections::HashMap<&str, &NewMessage> = std::collections::HashMap::new();
        for (m, id) in batch.iter().zip(&ids) {
            if new_ids.remove(id.as_str()) {
                first_in_batch.insert(id.as_str(), m);
                outcomes.push(InsertOutcome::Stored { created_at });
                continue;
            }
            if let Some(first) = first_in_batch.get(id.as_str()) {
                // Repeated inside this batch: the first copy was stored just now.
                let same = first.is_resent_as(m);
                outcomes.push(if same { InsertOutcome::Duplicate { created_at } } else { InsertOutcome::Conflict });
                continue;
            }
            // Stored before: whose, and is it the same message? The row is committed and
            // only this task writes messages, so it cannot change in between.
            let row: Option<(String, i32, String, i32, String, i64)> = sqlx::query_as(
                r#"SELECT "senderRole", "senderId", "recipientRole", "recipientId", content, "createdAt"
                   FROM "Message" WHERE id = ?1"#,
            )
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
            let Some((sr, si, rr, ri, content, at)) = row else {
                outcomes.push(InsertOutcome::Unresolved);
                continue;
            };
            let role = |r: &str| Role::parse(r).ok_or_else(|| StoreError::BadRow(format!("role {r:?}")));
            let stored =
                super::Resent { from: UserRef::new(role(&sr)?, si), to: UserRef::new(role(&rr)?, ri), content };
            outcomes.push(if stored.is_same(m) {
                InsertOutcome::Duplicate { created_at: at }
            } else {
                InsertOutcome::Conflict
            });
        }
        Ok(outcomes)
    }

    pub(super) async fn history(
        &self,
        me: UserRef,
        peer: UserRef,
        before: Cursor,
        limit: u16,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let (at, id) = (before.at, before.id);
        let sql: &str = &HISTORY_SQL;
        let rows: Vec<MessageRow> =
            fetch_page!(sql, &self.pool, me, [peer.role.as_str(), peer.id, at, id.hyphenated().as_str()], limit);
        rows.into_iter().map(to_message).collect()
    }

    pub(super) async fn sync(&self, me: UserRef, after: Cursor, limit: u16) -> Result<Vec<StoredMessage>, StoreError> {
        let sql: &str = &SYNC_SQL;
        let rows: Vec<MessageRow> = fetch_page!(sql, &self.pool, me, [after.at, after.id.hyphenated().as_str()], limit);
        rows.into_iter().map(to_message).collect()
    }

    pub(super) async fn log_after(&self, after: u64, limit: u16) -> Result<Vec<Logged>, StoreError> {
        let rows: Vec<LogRow> = sqlx::query_as(&format!(
            r#"SELECT l.pos, {MESSAGE_COLUMNS} FROM chat_log l JOIN "Message" m ON m.id = l.message_id
                 AND +m."senderRole" = l.sender_role AND +m."senderId" = l.sender_id
                 AND +m."recipientRole" = l.recipient_role AND +m."recipientId" = l.recipient_id
               WHERE l.pos > ?1 ORDER BY l.pos LIMIT ?2"#
        ))
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(to_logged).collect()
    }

    pub(super) async fn log_head(&self) -> Result<u64, StoreError> {
        let head: i64 = sqlx::query_scalar("SELECT coalesce(max(pos), 0) FROM chat_log").fetch_one(&self.pool).await?;
        Ok(u64::try_from(head).unwrap_or(0))
    }

    pub(super) async fn catch_up(&self, me: UserRef, after: u64, limit: u16) -> Result<Vec<LoggedRow>, StoreError> {
        let rows: Vec<CatchUpRow> =
            fetch_page!(CATCH_UP_SQL, &self.pool, me, [i64::try_from(after).unwrap_or(i64::MAX)], limit);
        rows.into_iter().map(to_logged_row).collect()
    }

    pub(super) async fn conversations(
        &self,
        me: UserRef,
        before: Cursor,
        limit: u16,
    ) -> Result<Vec<Conversation>, StoreError> {
        let sql: &str = &CONVERSATIONS_SQL;
        let rows: Vec<ConversationRow> =
            fetch_page!(sql, &self.pool, me, [before.at, before.id.hyphenated().as_str()], limit);
        rows.into_iter().map(|row| to_conversation(me, row)).collect()
    }

    pub(super) async fn mark_read(
        &self,
        me: UserRef,
        peer: UserRef,
        up_to: Cursor,
        now: Millis,
    ) -> Result<u32, StoreError> {
        // `updatedAt` changes with `isRead`, as Prisma's @updatedAt would do.
        let done = sqlx::query(
            r#"UPDATE "Message" SET "isRead" = true, "updatedAt" = ?6
               WHERE "recipientRole" = ?1 AND "recipientId" = ?2 AND "senderRole" = ?3 AND "senderId" = ?4
                 AND NOT "isRead" AND ("createdAt", id) <= (?5, ?7)"#,
        )
        .bind(me.role.as_str())
        .bind(me.id)
        .bind(peer.role.as_str())
        .bind(peer.id)
        .bind(up_to.at)
        .bind(now)
        .bind(up_to.id.hyphenated().as_str())
        .execute(&self.pool)
        .await?;
        Ok(u32::try_from(done.rows_affected()).unwrap_or(u32::MAX))
    }
}
