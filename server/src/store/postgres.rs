//! The PostgreSQL backend: the app's own database, shared with Prisma.
//!
//! Timestamps are `TIMESTAMP(3)` without time zone holding UTC, as Prisma writes them;
//! they cross this boundary as integer milliseconds, converted in SQL with exact integer
//! and numeric arithmetic (no floating point). Message ids are the lowercase hyphenated
//! UUID text Prisma's `uuid()` writes, whose text order equals the byte order of
//! [`MessageId`], so `(createdAt, id)` orders the same here and in the protocol.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;
use std::time::Duration;

use chat_protocol::{Conversation, Cursor, Millis, Role, StoredMessage, UserRef};
use sqlx::PgPool;

use super::PgDb;

use super::{
    CatchUpRow, ConversationRow, InsertOutcome, LogRow, Logged, LoggedRow, MessageRow, NewMessage, StoreError,
    to_conversation, to_logged, to_logged_row, to_message,
};

/// `9999-12-31T23:59:59.999Z`: later than any stored message; cursors are clamped to it.
const MAX_MS: Millis = 253_402_300_799_999;
/// `0001-01-01T00:00:00Z`.
const MIN_MS: Millis = -62_135_596_800_000;

const MESSAGE_COLUMNS: &str = r#"id, "senderRole", "senderId", "recipientRole", "recipientId", content,
    (EXTRACT(EPOCH FROM "createdAt") * 1000)::int8 AS created_ms, "isRead""#;

/// The SQL of [`PgStore::history`]; public so benchmarks can `EXPLAIN` exactly what runs.
pub static HISTORY_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"SELECT {MESSAGE_COLUMNS} FROM (
                 (SELECT * FROM "Message"
                  WHERE "senderRole" = $1 AND "senderId" = $2 AND "recipientRole" = $3 AND "recipientId" = $4
                    AND ("createdAt", id) < (TIMESTAMP '1970-01-01' + $5::int8 * INTERVAL '1 millisecond', $6)
                  ORDER BY "createdAt" DESC, id DESC LIMIT $7)
                 UNION ALL
                 (SELECT * FROM "Message"
                  WHERE "senderRole" = $3 AND "senderId" = $4 AND "recipientRole" = $1 AND "recipientId" = $2
                    AND ("createdAt", id) < (TIMESTAMP '1970-01-01' + $5::int8 * INTERVAL '1 millisecond', $6)
                  ORDER BY "createdAt" DESC, id DESC LIMIT $7)
               ) m ORDER BY "createdAt" DESC, id DESC LIMIT $7"#
    )
});

/// The SQL of [`PgStore::sync`]; public so benchmarks can `EXPLAIN` exactly what runs.
pub static SYNC_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"SELECT {MESSAGE_COLUMNS} FROM (
                 (SELECT * FROM "Message"
                  WHERE "recipientRole" = $1 AND "recipientId" = $2
                    AND ("createdAt", id) > (TIMESTAMP '1970-01-01' + $3::int8 * INTERVAL '1 millisecond', $4)
                  ORDER BY "createdAt", id LIMIT $5)
                 UNION ALL
                 (SELECT * FROM "Message"
                  WHERE "senderRole" = $1 AND "senderId" = $2
                    AND ("createdAt", id) > (TIMESTAMP '1970-01-01' + $3::int8 * INTERVAL '1 millisecond', $4)
                  ORDER BY "createdAt", id LIMIT $5)
               ) m ORDER BY "createdAt", id LIMIT $5"#
    )
});

/// The SQL of [`PgStore::conversations`]; public so benchmarks can `EXPLAIN` exactly what runs.
pub static CONVERSATIONS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"WITH RECURSIVE
               -- The distinct peers, found by skipping through the indexes (one probe per
               -- peer) instead of reading every message of the user.
               sent_to(r, i) AS (
                 (SELECT "recipientRole", "recipientId" FROM "Message"
                  WHERE "senderRole" = $1 AND "senderId" = $2
                  ORDER BY "recipientRole", "recipientId" LIMIT 1)
                 UNION ALL
                 (SELECT n.r, n.i FROM sent_to p CROSS JOIN LATERAL (
                    SELECT "recipientRole" AS r, "recipientId" AS i FROM "Message"
                    WHERE "senderRole" = $1 AND "senderId" = $2 AND ("recipientRole", "recipientId") > (p.r, p.i)
                    ORDER BY "recipientRole", "recipientId" LIMIT 1) n)
               ),
               received_from(r, i) AS (
                 (SELECT "senderRole", "senderId" FROM "Message"
                  WHERE "recipientRole" = $1 AND "recipientId" = $2
                  ORDER BY "senderRole", "senderId" LIMIT 1)
                 UNION ALL
                 (SELECT n.r, n.i FROM received_from p CROSS JOIN LATERAL (
                    SELECT "senderRole" AS r, "senderId" AS i FROM "Message"
                    WHERE "recipientRole" = $1 AND "recipientId" = $2 AND ("senderRole", "senderId") > (p.r, p.i)
                    ORDER BY "senderRole", "senderId" LIMIT 1) n)
               ),
               peers AS (SELECT r, i FROM sent_to UNION SELECT r, i FROM received_from)
               SELECT {MESSAGE_COLUMNS}, peer_name, unread_count FROM (
                 SELECT last.*, COALESCE(u.name, '') AS peer_name, unread.n AS unread_count
                 FROM peers
                 CROSS JOIN LATERAL (
                   SELECT * FROM (
                     (SELECT * FROM "Message"
                      WHERE "senderRole" = $1 AND "senderId" = $2 AND "recipientRole" = peers.r AND "recipientId" = peers.i
                      ORDER BY "createdAt" DESC, id DESC LIMIT 1)
                     UNION ALL
                     (SELECT * FROM "Message"
                      WHERE "senderRole" = peers.r AND "senderId" = peers.i AND "recipientRole" = $1 AND "recipientId" = $2
                      ORDER BY "createdAt" DESC, id DESC LIMIT 1)
                   ) both_ways ORDER BY "createdAt" DESC, id DESC LIMIT 1
                 ) last
                 CROSS JOIN LATERAL (
                   SELECT count(*)::int8 AS n FROM "Message"
                   WHERE "recipientRole" = $1 AND "recipientId" = $2 AND "senderRole" = peers.r AND "senderId" = peers.i
                     AND NOT "isRead"
                 ) unread
                 LEFT JOIN users_view u ON u.role = peers.r AND u.id = peers.i
               ) c
               WHERE ("createdAt", id) < (TIMESTAMP '1970-01-01' + $3::int8 * INTERVAL '1 millisecond', $4)
               ORDER BY "createdAt" DESC, id DESC
               LIMIT $5"#
    )
});

/// A log row's message columns, from `chat_log l` left-joined with `"Message" m`.
const LOG_COLUMNS: &str = r#"l.pos, m.id IS NOT NULL, COALESCE(m.id, ''), COALESCE(m."senderRole", ''),
    COALESCE(m."senderId", 0), COALESCE(m."recipientRole", ''), COALESCE(m."recipientId", 0),
    COALESCE(m.content, ''), COALESCE((EXTRACT(EPOCH FROM m."createdAt") * 1000)::int8, 0),
    COALESCE(m."isRead", false)"#;

/// The SQL of [`PgStore::catch_up`]: each direction walks its own index of the log from the
/// position on; the outer query merges them (`UNION`: a message to oneself is one row).
pub static CATCH_UP_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"SELECT {LOG_COLUMNS} FROM (
                 (SELECT * FROM chat_log
                  WHERE recipient_role = $1 AND recipient_id = $2 AND pos > $3 ORDER BY pos LIMIT $4)
                 UNION
                 (SELECT * FROM chat_log
                  WHERE sender_role = $1 AND sender_id = $2 AND pos > $3 ORDER BY pos LIMIT $4)
               ) l
               -- One index lookup per log row, whatever the planner estimates: a plain join
               -- may hash all of "Message" when the log's statistics are young. A row with
               -- this id in another conversation is not the logged message (the app deleted
               -- it and reused the id).
               -- The conversation is compared after the lookup by id, not inside it (the
               -- planner would take the conversation index and walk the pair's messages).
               LEFT JOIN LATERAL (SELECT * FROM "Message" WHERE id = l.message_id LIMIT 1) m
                 ON m."senderRole" = l.sender_role AND m."senderId" = l.sender_id
                    AND m."recipientRole" = l.recipient_role AND m."recipientId" = l.recipient_id
               ORDER BY l.pos LIMIT $4"#
    )
});

row! {
    /// A stored message's id, sender, recipient and content, and `createdAt` in milliseconds:
    /// what tells a resend from a conflict.
    struct OwnerRow {
        id: String,
        sender_role: String,
        sender_id: i32,
        recipient_role: String,
        recipient_id: i32,
        content: String,
        created_at: i64,
    }
}

/// The PostgreSQL store. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct PgStore {
    db: PgDb,
    pub(super) timeout: Duration,
}

impl PgStore {
    /// Wraps a pool whose connections see the chat tables through their search path.
    /// Calls are bounded by 10 s unless [`super::Store::with_timeout`] says otherwise.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        PgStore::on(PgDb::new(pool, false))
    }

    /// [`PgStore::new`] on a [`PgDb`] (which knows whether PgBouncer sits in front).
    #[must_use]
    pub fn on(db: PgDb) -> Self {
        PgStore { db, timeout: Duration::from_secs(10) }
    }

    /// What every statement goes through (the bus notifies and listens through its pool).
    #[must_use]
    pub(crate) fn pool(&self) -> &PgDb {
        &self.db
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.db).await?;
        Ok(())
    }

    pub(super) async fn find_user(&self, user: UserRef) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar::<_, String>("SELECT name FROM users_view WHERE role = $1 AND id = $2")
            .bind(user.role.as_str())
            .bind(user.id)
            .fetch_optional(&self.db)
            .await?)
    }

    pub(super) async fn insert_batch(
        &self,
        batch: &[&NewMessage],
        created_at: Millis,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let n = batch.len();
        let mut ids = Vec::with_capacity(n);
        let mut sender_roles = Vec::with_capacity(n);
        let mut sender_ids = Vec::with_capacity(n);
        let mut recipient_roles = Vec::with_capacity(n);
        let mut recipient_ids = Vec::with_capacity(n);
        let mut contents = Vec::with_capacity(n);
        for m in batch {
            ids.push(m.id.hyphenated().as_str().to_owned());
            sender_roles.push(m.from.role.as_str());
            sender_ids.push(m.from.id);
            recipient_roles.push(m.to.role.as_str());
            recipient_ids.push(m.to.id);
            contents.push(m.content.as_str());
        }
        // One statement for the whole batch, committed on its own (autocommit): a single
        // statement is atomic, and skipping BEGIN and COMMIT saves two round trips to the
        // database per batch, which is most of a light load's latency. ON CONFLICT DO NOTHING
        // skips ids already stored (a resend) and repeated ids inside the batch; RETURNING
        // tells which rows are new.
        let inserted: Vec<String> = sqlx::query_scalar(
            r#"INSERT INTO "Message"
                   (id, "senderId", "senderRole", "recipientId", "recipientRole", content,
                    "createdAt", "updatedAt", "isRead")
               SELECT t.id, t.sid, t.srole, t.rid, t.rrole, t.content, ts.at, ts.at, false
               FROM UNNEST($1::text[], $2::int4[], $3::text[], $4::int4[], $5::text[], $6::text[])
                    AS t(id, sid, srole, rid, rrole, content),
                    (SELECT TIMESTAMP '1970-01-01' + $7::int8 * INTERVAL '1 millisecond' AS at) ts
               ON CONFLICT (id) DO NOTHING
               RETURNING id"#,
        )
        .bind(&ids)
        .bind(&sender_ids)
        .bind(&sender_roles)
        .bind(&recipient_ids)
        .bind(&recipient_roles)
        .bind(&contents)
        .bind(created_at)
        .fetch_all(&self.db)
        .await?;
        let mut new_ids: HashSet<String> = inserted.into_iter().collect();

        // Only when something was skipped: who owns those ids. The rows read are committed,
        // and this task is the only writer of messages, so they cannot change in between.
        // Should this read fail, the new rows are still stored (and reported as such); only
        // the skipped ones are left unresolved, for their senders to retry.
        let mut existing: HashMap<String, (super::Resent, Millis)> = HashMap::new();
        if new_ids.len() < n {
            let others: Vec<&str> =
                ids.iter().filter(|id| !new_ids.contains(id.as_str())).map(String::as_str).collect();
            let rows: Result<Vec<OwnerRow>, sqlx::Error> = sqlx::query_as(
                r#"SELECT id, "senderRole", "senderId", "recipientRole", "recipientId", content,
                          (EXTRACT(EPOCH FROM "createdAt") * 1000)::int8
                   FROM "Message" WHERE id = ANY($1::text[])"#,
            )
            .bind(&others)
            .fetch_all(&self.db)
            .await;
            match rows {
                Ok(rows) => {
                    for OwnerRow { id, sender_role, sender_id, recipient_role, recipient_id, content, created_at } in
                        rows
                    {
                        match (Role::parse(&sender_role), Role::parse(&recipient_role)) {
                            (Some(sr), Some(rr)) => {
                                let from = UserRef::new(sr, sender_id);
                                let stored = super::Resent { from, to: UserRef::new(rr, recipient_id), content };
                                existing.insert(id, (stored, created_at));
                            }
                            _ => {
                                tracing::error!(id, sender_role, recipient_role, "a stored message has an unknown role")
                            }
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading the owners of resent ids failed"),
            }
        }
        let mut outcomes = Vec::with_capacity(n);
        let mut first_in_batch: HashMap<&str, &NewMessage> = HashMap::new();
        for (m, id) in batch.iter().zip(&ids) {
            let outcome = if new_ids.remove(id.as_str()) {
                first_in_batch.insert(id, m);
                InsertOutcome::Stored { created_at }
            } else if let Some(first) = first_in_batch.get(id.as_str()) {
                // Repeated inside this batch: the first copy was stored just now.
                if first.is_resent_as(m) { InsertOutcome::Duplicate { created_at } } else { InsertOutcome::Conflict }
            } else {
                match existing.get(id) {
                    Some((stored, at)) if stored.is_same(m) => InsertOutcome::Duplicate { created_at: *at },
                    Some(_) => InsertOutcome::Conflict,
                    None => InsertOutcome::Unresolved,
                }
            };
            outcomes.push(outcome);
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
        let (at, id) = (before.at.clamp(MIN_MS, MAX_MS), before.id);
        // Each direction walks its own index backwards; the outer query merges them.
        let sql: &str = &HISTORY_SQL;
        let rows: Vec<MessageRow> =
            fetch_page!(sql, &self.db, me, [peer.role.as_str(), peer.id, at, id.hyphenated().as_str()], limit);
        rows.into_iter().map(to_message).collect()
    }

    pub(super) async fn sync(&self, me: UserRef, after: Cursor, limit: u16) -> Result<Vec<StoredMessage>, StoreError> {
        let sql: &str = &SYNC_SQL;
        let rows: Vec<MessageRow> =
            fetch_page!(sql, &self.db, me, [after.at.clamp(MIN_MS, MAX_MS), after.id.hyphenated().as_str()], limit);
        rows.into_iter().map(to_message).collect()
    }

    pub(super) async fn conversations(
        &self,
        me: UserRef,
        before: Cursor,
        limit: u16,
    ) -> Result<Vec<Conversation>, StoreError> {
        let sql: &str = &CONVERSATIONS_SQL;
        let rows: Vec<ConversationRow> =
            fetch_page!(sql, &self.db, me, [before.at.clamp(MIN_MS, MAX_MS), before.id.hyphenated().as_str()], limit);
        rows.into_iter().map(|row| to_conversation(me, row)).collect()
    }

    pub(super) async fn sequence(&self, wait: bool, limit: u16) -> Result<Vec<Logged>, StoreError> {
        // The function's notify arguments are no longer used (the nodes seal their own
        // wake-ups); they stay in its signature so `setup` replaces it in place.
        let rows: Vec<LogRow> = sqlx::query_as("SELECT * FROM chat_log_sequence($1, NULL, NULL, $2)")
            .bind(wait)
            .bind(i32::from(limit))
            .fetch_all(&self.db)
            .await?;
        rows.into_iter().map(to_logged).collect()
    }

    pub(super) async fn log_after(&self, after: u64, limit: u16) -> Result<Vec<Logged>, StoreError> {
        let rows: Vec<LogRow> = sqlx::query_as(&format!(
            r#"SELECT l.pos, m.id, m."senderRole", m."senderId", m."recipientRole", m."recipientId", m.content,
                      m.created_ms, m."isRead"
               FROM (SELECT * FROM chat_log WHERE pos > $1 ORDER BY pos LIMIT $2) l
               CROSS JOIN LATERAL (SELECT {MESSAGE_COLUMNS} FROM "Message" WHERE id = l.message_id LIMIT 1) m
               -- After the lookup by id (see chat_log_sequence): a row with this id in another
               -- conversation is not the logged message.
               WHERE m."senderRole" = l.sender_role AND m."senderId" = l.sender_id
                 AND m."recipientRole" = l.recipient_role AND m."recipientId" = l.recipient_id
               ORDER BY l.pos"#
        ))
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.db)
        .await?;
        rows.into_iter().map(to_logged).collect()
    }

    pub(super) async fn vacuum_inbox(&self) -> Result<(), StoreError> {
        sqlx::raw_sql("VACUUM (SKIP_LOCKED) chat_inbox").execute(&self.db).await?;
        Ok(())
    }

    pub(super) async fn log_head(&self) -> Result<u64, StoreError> {
        let head: i64 =
            sqlx::query_scalar("SELECT coalesce(max(pos), 0)::int8 FROM chat_log").fetch_one(&self.db).await?;
        Ok(u64::try_from(head).unwrap_or(0))
    }

    pub(super) async fn catch_up(&self, me: UserRef, after: u64, limit: u16) -> Result<Vec<LoggedRow>, StoreError> {
        let sql: &str = &CATCH_UP_SQL;
        let rows: Vec<CatchUpRow> = fetch_page!(sql, &self.db, me, [i64::try_from(after).unwrap_or(i64::MAX)], limit);
        rows.into_iter().map(to_logged_row).collect()
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
            r#"UPDATE "Message"
               SET "isRead" = true, "updatedAt" = TIMESTAMP '1970-01-01' + $6::int8 * INTERVAL '1 millisecond'
               WHERE "recipientRole" = $1 AND "recipientId" = $2 AND "senderRole" = $3 AND "senderId" = $4
                 AND NOT "isRead"
                 AND ("createdAt", id) <= (TIMESTAMP '1970-01-01' + $5::int8 * INTERVAL '1 millisecond', $7)"#,
        )
        .bind(me.role.as_str())
        .bind(me.id)
        .bind(peer.role.as_str())
        .bind(peer.id)
        .bind(up_to.at.clamp(MIN_MS, MAX_MS))
        .bind(now)
        .bind(up_to.id.hyphenated().as_str())
        .execute(&self.db)
        .await?;
        Ok(u32::try_from(done.rows_affected()).unwrap_or(u32::MAX))
    }
}
