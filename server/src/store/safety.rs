//! Blocks and reports (`chat_block`, `chat_report`) on both backends, and what the records
//! commands read and delete of them. A macro keeps one query per call: the SQL differs only
//! in its placeholders (`$1` or `?1`) and in how time is stored.

use chat_protocol::{MessageId, Millis, Role, StoredMessage, UserRef};

use super::{MessageRow, Store, StoreError, bounded, to_message};

/// Runs `$pg` on PostgreSQL or `$lite` on SQLite with the same binds, through `$run`
/// (`fetch_one`, `fetch_all`, ...; `execute` gives the rows affected), bounded by the store's
/// timeout.
macro_rules! both {
    ($store:expr, query, $pg:expr, $lite:expr, [$($bind:expr),*], execute) => {
        bounded($store.timeout(), async {
            Ok(match $store {
                Store::Postgres(s) => sqlx::query($pg)$(.bind($bind))*.execute(s.pool()).await?.rows_affected(),
                Store::Sqlite(s) => sqlx::query($lite)$(.bind($bind))*.execute(s.pool()).await?.rows_affected(),
            })
        })
    };
    ($store:expr, $kind:ident, $pg:expr, $lite:expr, [$($bind:expr),*], $run:ident) => {
        bounded($store.timeout(), async {
            Ok(match $store {
                Store::Postgres(s) => sqlx::$kind($pg)$(.bind($bind))*.$run(s.pool()).await?,
                Store::Sqlite(s) => sqlx::$kind($lite)$(.bind($bind))*.$run(s.pool()).await?,
            })
        })
    };
}

/// Blocks between two users, seen from the first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockState {
    /// The first user blocked the second.
    pub mine: bool,
    /// The second user blocked the first.
    pub theirs: bool,
}

/// A stored report, as exports show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportEntry {
    /// Its number.
    pub id: i64,
    /// When it was made.
    pub at: Millis,
    /// The reported message.
    pub message_id: String,
    /// Who reported it (the message's recipient).
    pub reporter: UserRef,
    /// Who wrote it.
    pub reported: UserRef,
    /// The reporter's reason.
    pub reason: String,
    /// The message's text when it was reported.
    pub content: String,
}

type ReportRow = (i64, i64, String, String, i32, String, i32, String, String);

/// An edit or a deletion, as exports show it: the text the message had before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionEntry {
    /// The message.
    pub message_id: String,
    /// When it was changed.
    pub at: Millis,
    /// `edit` or `delete`.
    pub kind: String,
    /// The text before the change.
    pub content: String,
}

const PG_MESSAGE: &str = r#"id, "senderRole", "senderId", "recipientRole", "recipientId", content,
    (EXTRACT(EPOCH FROM "createdAt") * 1000)::int8, "isRead""#;
const LITE_MESSAGE: &str =
    r#"id, "senderRole", "senderId", "recipientRole", "recipientId", content, "createdAt", "isRead""#;

fn to_report(row: ReportRow) -> Result<ReportEntry, StoreError> {
    let (id, at, message_id, rr, ri, dr, di, reason, content) = row;
    let role = |r: &str| Role::parse(r).ok_or_else(|| StoreError::BadRow(format!("report {id}: unknown role {r:?}")));
    Ok(ReportEntry {
        id,
        at,
        message_id,
        reporter: UserRef::new(role(&rr)?, ri),
        reported: UserRef::new(role(&dr)?, di),
        reason,
        content,
    })
}

impl Store {
    /// Whether `me` blocked `peer`, and whether `peer` blocked `me`.
    ///
    /// # Errors
    /// A database error.
    pub async fn block_state(&self, me: UserRef, peer: UserRef) -> Result<BlockState, StoreError> {
        let rows: Vec<(String, i32)> = both!(
            self,
            query_as,
            "SELECT blocker_role, blocker_id FROM chat_block
             WHERE (blocker_role = $1 AND blocker_id = $2 AND blocked_role = $3 AND blocked_id = $4)
                OR (blocker_role = $3 AND blocker_id = $4 AND blocked_role = $1 AND blocked_id = $2)",
            "SELECT blocker_role, blocker_id FROM chat_block
             WHERE (blocker_role = ?1 AND blocker_id = ?2 AND blocked_role = ?3 AND blocked_id = ?4)
                OR (blocker_role = ?3 AND blocker_id = ?4 AND blocked_role = ?1 AND blocked_id = ?2)",
            [me.role.as_str(), me.id, peer.role.as_str(), peer.id],
            fetch_all
        )
        .await?;
        let mut state = BlockState::default();
        for (role, id) in rows {
            if role == me.role.as_str() && id == me.id {
                state.mine = true;
            } else {
                state.theirs = true;
            }
        }
        Ok(state)
    }

    /// Blocks `user` for `me` (or lifts the block); returns whether anything changed.
    ///
    /// # Errors
    /// A database error.
    pub async fn set_block(&self, me: UserRef, user: UserRef, blocked: bool, now: Millis) -> Result<bool, StoreError> {
        let done = if blocked {
            both!(
                self,
                query,
                "INSERT INTO chat_block (blocker_role, blocker_id, blocked_role, blocked_id, created_at)
                 VALUES ($1, $2, $3, $4, TIMESTAMP '1970-01-01' + $5::int8 * INTERVAL '1 millisecond')
                 ON CONFLICT DO NOTHING",
                "INSERT INTO chat_block (blocker_role, blocker_id, blocked_role, blocked_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                [me.role.as_str(), me.id, user.role.as_str(), user.id, now],
                execute
            )
            .await?
        } else {
            both!(
                self,
                query,
                "DELETE FROM chat_block WHERE blocker_role = $1 AND blocker_id = $2 AND blocked_role = $3 AND blocked_id = $4",
                "DELETE FROM chat_block WHERE blocker_role = ?1 AND blocker_id = ?2 AND blocked_role = ?3 AND blocked_id = ?4",
                [me.role.as_str(), me.id, user.role.as_str(), user.id],
                execute
            )
            .await?
        };
        Ok(done > 0)
    }

    /// The users `me` has blocked, at most `limit`, in (role, id) order.
    ///
    /// # Errors
    /// A database error.
    pub async fn blocks_of(&self, me: UserRef, limit: usize) -> Result<Vec<UserRef>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(String, i32)> = both!(
            self,
            query_as,
            "SELECT blocked_role, blocked_id FROM chat_block WHERE blocker_role = $1 AND blocker_id = $2
             ORDER BY blocked_role, blocked_id LIMIT $3",
            "SELECT blocked_role, blocked_id FROM chat_block WHERE blocker_role = ?1 AND blocker_id = ?2
             ORDER BY blocked_role, blocked_id LIMIT ?3",
            [me.role.as_str(), me.id, limit],
            fetch_all
        )
        .await?;
        Ok(rows.into_iter().filter_map(|(r, i)| Some(UserRef::new(Role::parse(&r)?, i))).collect())
    }

    /// Whether `from` has ever written to `to` (so `to` may reply where only one side may
    /// start a conversation).
    ///
    /// # Errors
    /// A database error.
    pub async fn has_written(&self, from: UserRef, to: UserRef) -> Result<bool, StoreError> {
        let found: Option<i32> = both!(
            self,
            query_scalar,
            r#"SELECT 1 FROM "Message" WHERE "senderRole" = $1 AND "senderId" = $2
               AND "recipientRole" = $3 AND "recipientId" = $4 LIMIT 1"#,
            r#"SELECT 1 FROM "Message" WHERE "senderRole" = ?1 AND "senderId" = ?2
               AND "recipientRole" = ?3 AND "recipientId" = ?4 LIMIT 1"#,
            [from.role.as_str(), from.id, to.role.as_str(), to.id],
            fetch_optional
        )
        .await?;
        Ok(found.is_some())
    }

    /// The sender and text of message `id`, if it was sent to `me`.
    ///
    /// # Errors
    /// A database error.
    pub async fn received(&self, me: UserRef, id: MessageId) -> Result<Option<(UserRef, String)>, StoreError> {
        let id = id.hyphenated();
        let row: Option<(String, i32, String)> = both!(
            self,
            query_as,
            r#"SELECT "senderRole", "senderId", content FROM "Message"
               WHERE id = $1 AND "recipientRole" = $2 AND "recipientId" = $3"#,
            r#"SELECT "senderRole", "senderId", content FROM "Message"
               WHERE id = ?1 AND "recipientRole" = ?2 AND "recipientId" = ?3"#,
            [id.as_str(), me.role.as_str(), me.id],
            fetch_optional
        )
        .await?;
        Ok(row.and_then(|(r, i, content)| Some((UserRef::new(Role::parse(&r)?, i), content))))
    }

    /// Stores a report; returns its number.
    ///
    /// # Errors
    /// A database error.
    pub async fn insert_report(
        &self,
        at: Millis,
        id: MessageId,
        reporter: UserRef,
        reported: UserRef,
        reason: &str,
        content: &str,
    ) -> Result<i64, StoreError> {
        let id = id.hyphenated();
        both!(
            self,
            query_scalar,
            "INSERT INTO chat_report (at, message_id, reporter_role, reporter_id, reported_role, reported_id, reason, content)
             VALUES (TIMESTAMP '1970-01-01' + $1::int8 * INTERVAL '1 millisecond', $2, $3, $4, $5, $6, $7, $8)
             RETURNING id",
            "INSERT INTO chat_report (at, message_id, reporter_role, reporter_id, reported_role, reported_id, reason, content)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
            [at, id.as_str(), reporter.role.as_str(), reporter.id, reported.role.as_str(), reported.id, reason, content],
            fetch_one
        )
        .await
    }

    /// The reports made by or about `user`, oldest first.
    ///
    /// # Errors
    /// A database error.
    pub async fn reports_about(&self, user: UserRef) -> Result<Vec<ReportEntry>, StoreError> {
        let rows: Vec<ReportRow> = both!(
            self,
            query_as,
            "SELECT id, (EXTRACT(EPOCH FROM at) * 1000)::int8, message_id, reporter_role, reporter_id, reported_role,
                    reported_id, reason, content
             FROM chat_report WHERE (reporter_role = $1 AND reporter_id = $2) OR (reported_role = $1 AND reported_id = $2)
             ORDER BY id",
            "SELECT id, at, message_id, reporter_role, reporter_id, reported_role, reported_id, reason, content
             FROM chat_report WHERE (reporter_role = ?1 AND reporter_id = ?2) OR (reported_role = ?1 AND reported_id = ?2)
             ORDER BY id",
            [user.role.as_str(), user.id],
            fetch_all
        )
        .await?;
        rows.into_iter().map(to_report).collect()
    }

    /// Removes `user`'s blocks (made by or against them) and the reports by or about them;
    /// returns (blocks, reports) removed.
    ///
    /// # Errors
    /// A database error.
    pub async fn erase_safety(&self, user: UserRef) -> Result<(u64, u64), StoreError> {
        let blocks = both!(
            self,
            query,
            "DELETE FROM chat_block WHERE (blocker_role = $1 AND blocker_id = $2) OR (blocked_role = $1 AND blocked_id = $2)",
            "DELETE FROM chat_block WHERE (blocker_role = ?1 AND blocker_id = ?2) OR (blocked_role = ?1 AND blocked_id = ?2)",
            [user.role.as_str(), user.id],
            execute
        )
        .await?;
        let reports = both!(
            self,
            query,
            "DELETE FROM chat_report WHERE (reporter_role = $1 AND reporter_id = $2) OR (reported_role = $1 AND reported_id = $2)",
            "DELETE FROM chat_report WHERE (reporter_role = ?1 AND reporter_id = ?2) OR (reported_role = ?1 AND reported_id = ?2)",
            [user.role.as_str(), user.id],
            execute
        )
        .await?;
        Ok((blocks, reports))
    }

    /// Message `id`, as stored now.
    ///
    /// # Errors
    /// A database error.
    pub async fn message_by_id(&self, id: MessageId) -> Result<Option<StoredMessage>, StoreError> {
        let id = id.hyphenated();
        let row: Option<MessageRow> = both!(
            self,
            query_as,
            &format!(r#"SELECT {PG_MESSAGE} FROM "Message" WHERE id = $1"#),
            &format!(r#"SELECT {LITE_MESSAGE} FROM "Message" WHERE id = ?1"#),
            [id.as_str()],
            fetch_optional
        )
        .await?;
        row.map(to_message).transpose()
    }

    /// Replaces the text of message `id`, sent by `me`, with `content` (empty: deleted) at
    /// `now`, keeping the text it had in `chat_revision` (`kind`: `edit` or `delete`), in one
    /// transaction. Returns the message as it is now, or `None` if `me` sent no such message.
    ///
    /// # Errors
    /// A database error: then nothing changed.
    pub async fn revise(
        &self,
        me: UserRef,
        id: MessageId,
        content: &str,
        kind: &str,
        now: Millis,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let id = id.hyphenated();
        let (role, uid) = (me.role.as_str(), me.id);
        let row: Option<MessageRow> = bounded(self.timeout(), async {
            Ok(match self {
                Store::Postgres(s) => {
                    let mut tx = s.pool().begin().await?;
                    let old: Option<String> = sqlx::query_scalar(
                        r#"SELECT content FROM "Message" WHERE id = $1 AND "senderRole" = $2 AND "senderId" = $3
                           FOR UPDATE"#,
                    )
                    .bind(id.as_str())
                    .bind(role)
                    .bind(uid)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(old) = old else { return Ok(None) };
                    sqlx::query(
                        "INSERT INTO chat_revision (message_id, at, kind, content)
                         VALUES ($1, TIMESTAMP '1970-01-01' + $2::int8 * INTERVAL '1 millisecond', $3, $4)",
                    )
                    .bind(id.as_str())
                    .bind(now)
                    .bind(kind)
                    .bind(&old)
                    .execute(&mut *tx)
                    .await?;
                    let row = sqlx::query_as(&format!(
                        r#"UPDATE "Message" SET content = $2,
                               "updatedAt" = TIMESTAMP '1970-01-01' + $3::int8 * INTERVAL '1 millisecond'
                           WHERE id = $1 RETURNING {PG_MESSAGE}"#
                    ))
                    .bind(id.as_str())
                    .bind(content)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    row
                }
                Store::Sqlite(s) => {
                    let mut tx = s.pool().begin().await?;
                    let old: Option<String> = sqlx::query_scalar(
                        r#"SELECT content FROM "Message" WHERE id = ?1 AND "senderRole" = ?2 AND "senderId" = ?3"#,
                    )
                    .bind(id.as_str())
                    .bind(role)
                    .bind(uid)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(old) = old else { return Ok(None) };
                    sqlx::query("INSERT INTO chat_revision (message_id, at, kind, content) VALUES (?1, ?2, ?3, ?4)")
                        .bind(id.as_str())
                        .bind(now)
                        .bind(kind)
                        .bind(&old)
                        .execute(&mut *tx)
                        .await?;
                    let row = sqlx::query_as(&format!(
                        r#"UPDATE "Message" SET content = ?2, "updatedAt" = ?3 WHERE id = ?1 RETURNING {LITE_MESSAGE}"#
                    ))
                    .bind(id.as_str())
                    .bind(content)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    row
                }
            })
        })
        .await?;
        row.map(to_message).transpose()
    }

    /// The edits and deletions of the messages `user` sent or received, oldest first.
    ///
    /// # Errors
    /// A database error.
    pub async fn revisions_about(&self, user: UserRef) -> Result<Vec<RevisionEntry>, StoreError> {
        let rows: Vec<(String, i64, String, String)> = both!(
            self,
            query_as,
            r#"SELECT r.message_id, (EXTRACT(EPOCH FROM r.at) * 1000)::int8, r.kind, r.content
               FROM chat_revision r JOIN "Message" m ON m.id = r.message_id
               WHERE (m."senderRole" = $1 AND m."senderId" = $2) OR (m."recipientRole" = $1 AND m."recipientId" = $2)
               ORDER BY r.id"#,
            r#"SELECT r.message_id, r.at, r.kind, r.content
               FROM chat_revision r JOIN "Message" m ON m.id = r.message_id
               WHERE (m."senderRole" = ?1 AND m."senderId" = ?2) OR (m."recipientRole" = ?1 AND m."recipientId" = ?2)
               ORDER BY r.id"#,
            [user.role.as_str(), user.id],
            fetch_all
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|(message_id, at, kind, content)| RevisionEntry { message_id, at, kind, content })
            .collect())
    }

    /// The newest `limit` earlier texts of message `id`, oldest first.
    ///
    /// # Errors
    /// A database error.
    pub async fn revisions_of(&self, id: MessageId, limit: usize) -> Result<Vec<RevisionEntry>, StoreError> {
        let id = id.hyphenated();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(String, i64, String, String)> = both!(
            self,
            query_as,
            "SELECT message_id, at_ms, kind, content FROM (
               SELECT r.id, r.message_id, (EXTRACT(EPOCH FROM r.at) * 1000)::int8 AS at_ms, r.kind, r.content
               FROM chat_revision r WHERE r.message_id = $1 ORDER BY r.id DESC LIMIT $2) newest
             ORDER BY id",
            "SELECT message_id, at, kind, content FROM (
               SELECT id, message_id, at, kind, content FROM chat_revision WHERE message_id = ?1
               ORDER BY id DESC LIMIT ?2)
             ORDER BY id",
            [id.as_str(), limit],
            fetch_all
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(|(message_id, at, kind, content)| RevisionEntry { message_id, at, kind, content })
            .collect())
    }

    /// Removes the revisions of the messages `user` sent or received (before the messages
    /// themselves go); returns how many.
    ///
    /// # Errors
    /// A database error.
    pub async fn erase_revisions(&self, user: UserRef) -> Result<u64, StoreError> {
        both!(
            self,
            query,
            r#"DELETE FROM chat_revision WHERE message_id IN (
                 SELECT id FROM "Message" WHERE ("senderRole" = $1 AND "senderId" = $2)
                    OR ("recipientRole" = $1 AND "recipientId" = $2))"#,
            r#"DELETE FROM chat_revision WHERE message_id IN (
                 SELECT id FROM "Message" WHERE ("senderRole" = ?1 AND "senderId" = ?2)
                    OR ("recipientRole" = ?1 AND "recipientId" = ?2))"#,
            [user.role.as_str(), user.id],
            execute
        )
        .await
    }

    /// Removes the revisions made before `before`; returns how many.
    ///
    /// # Errors
    /// A database error.
    pub async fn purge_revisions(&self, before: Millis) -> Result<u64, StoreError> {
        both!(
            self,
            query,
            "DELETE FROM chat_revision WHERE at < TIMESTAMP '1970-01-01' + $1::int8 * INTERVAL '1 millisecond'",
            "DELETE FROM chat_revision WHERE at < ?1",
            [before],
            execute
        )
        .await
    }

    /// Removes the reports made before `before`; returns how many.
    ///
    /// # Errors
    /// A database error.
    pub async fn purge_reports(&self, before: Millis) -> Result<u64, StoreError> {
        both!(
            self,
            query,
            "DELETE FROM chat_report WHERE at < TIMESTAMP '1970-01-01' + $1::int8 * INTERVAL '1 millisecond'",
            "DELETE FROM chat_report WHERE at < ?1",
            [before],
            execute
        )
        .await
    }
}
