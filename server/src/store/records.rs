//! What the compliance commands read and delete (`export`, `purge`, `erase`; see
//! `crate::records`), and the audit log they write. Both backends side by side: only the SQL
//! differs. Every call is one short statement (a page, or a batch of at most `limit` rows),
//! so a long purge never holds a lock that live traffic waits on for long.
//!
//! The message log (`chat_log`) must never lose its last row: PostgreSQL's sequencer numbers
//! new messages after the largest position there, so removing the head would hand out
//! positions again that clients have already passed. Deletes here keep it (an erasure
//! blanks its ids instead).

use chat_protocol::{Millis, Role, UserRef};

use super::{Store, StoreError, bounded};

/// A stored message as an export shows it: every column, the text in full.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedMessage {
    /// The message id (as stored).
    pub id: String,
    /// The sender.
    pub from: UserRef,
    /// The recipient.
    pub to: UserRef,
    /// The text, as stored (not cut to the protocol's bound).
    pub content: String,
    /// `createdAt`, milliseconds since the epoch.
    pub created_at: Millis,
    /// `updatedAt` (when it was read, for a read message).
    pub updated_at: Millis,
    /// `isRead`.
    pub read: bool,
}

/// One entry of the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its number (increasing).
    pub id: i64,
    /// When, in milliseconds since the epoch.
    pub at: Millis,
    /// Who did it (an operator's name, or a user as `role:id`).
    pub actor: String,
    /// What: `export`, `purge`, `erase`.
    pub action: String,
    /// Whose data, when it concerned one user.
    pub subject: Option<UserRef>,
    /// What was done, in words (ids and counts, never message text).
    pub detail: String,
}

/// One window of the message log's start, examined by [`Store::trim_log`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogTrim {
    /// Log rows removed (their messages no longer exist).
    pub removed: u64,
    /// The last position examined: the next window starts after it.
    pub last: Option<u64>,
    /// How many rows of the window pointed at a deleted message.
    pub orphans: u64,
}

row! {
    /// A message as an export reads it: its columns, with `updatedAt`.
    struct RecordRow {
        id: String,
        sender_role: String,
        sender_id: i32,
        recipient_role: String,
        recipient_id: i32,
        content: String,
        created_at: i64,
        updated_at: i64,
        read: bool,
    }
}

row! {
    /// An audit entry's columns.
    struct AuditRow {
        id: i64,
        at: i64,
        actor: String,
        action: String,
        subject_role: Option<String>,
        subject_id: Option<i32>,
        detail: String,
    }
}

fn to_record(row: RecordRow) -> Result<RecordedMessage, StoreError> {
    let RecordRow {
        id,
        sender_role: sr,
        sender_id: si,
        recipient_role: rr,
        recipient_id: ri,
        content,
        created_at,
        updated_at,
        read,
    } = row;
    let role =
        |r: &str| Role::parse(r).ok_or_else(|| StoreError::BadRow(format!("message {id:?}: unknown role {r:?}")));
    Ok(RecordedMessage {
        from: UserRef::new(role(&sr)?, si),
        to: UserRef::new(role(&rr)?, ri),
        id,
        content,
        created_at,
        updated_at,
        read,
    })
}

fn to_audit(row: AuditRow) -> AuditEntry {
    let AuditRow { id, at, actor, action, subject_role: role, subject_id, detail } = row;
    let subject = role.as_deref().and_then(Role::parse).zip(subject_id).map(|(r, i)| UserRef::new(r, i));
    AuditEntry { id, at, actor, action, subject, detail }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A positive page size as SQL binds it.
fn limit_of(limit: u32) -> i64 {
    i64::from(limit.max(1))
}

const PG_RECORD_COLUMNS: &str = r#"id, "senderRole", "senderId", "recipientRole", "recipientId", content,
    (EXTRACT(EPOCH FROM "createdAt") * 1000)::int8, (EXTRACT(EPOCH FROM "updatedAt") * 1000)::int8, "isRead""#;
const PG_MS: &str = "TIMESTAMP '1970-01-01' + $3::int8 * INTERVAL '1 millisecond'";

impl Store {
    /// The messages sent or received by `user` strictly after `after` (`createdAt`, id), oldest
    /// first, at most `limit`: one page of an export. A message to oneself comes once.
    ///
    /// # Errors
    /// A database error.
    pub async fn records_page(
        &self,
        user: UserRef,
        after: Option<(Millis, String)>,
        limit: u32,
    ) -> Result<Vec<RecordedMessage>, StoreError> {
        let (at, id) = after.unwrap_or((Millis::MIN, String::new()));
        let rows: Vec<RecordRow> = dispatch!(
            self,
            postgres | s | {
                // Each direction walks its own index in order; the outer query merges them.
                let after = format!(r#"("createdAt", id) > ({PG_MS}, $4)"#);
                let at = at.max(-62_135_596_800_000);
                Ok(sqlx::query_as(&format!(
                    r#"SELECT {PG_RECORD_COLUMNS} FROM (
                         (SELECT * FROM "Message" WHERE "senderRole" = $1 AND "senderId" = $2 AND {after}
                          ORDER BY "createdAt", id LIMIT $5)
                         UNION ALL
                         (SELECT * FROM "Message" WHERE "recipientRole" = $1 AND "recipientId" = $2 AND {after}
                            AND NOT ("senderRole" = $1 AND "senderId" = $2)
                          ORDER BY "createdAt", id LIMIT $5)
                       ) m ORDER BY "createdAt", id LIMIT $5"#
                ))
                .bind(user.role.as_str())
                .bind(user.id)
                .bind(at)
                .bind(&id)
                .bind(limit_of(limit))
                .fetch_all(s.pool())
                .await?)
            },
            sqlite
                | s
                | Ok(sqlx::query_as(
                    r#"SELECT id, "senderRole", "senderId", "recipientRole", "recipientId", content,
                          "createdAt", "updatedAt", "isRead" FROM (
                     SELECT * FROM (SELECT * FROM "Message" WHERE "senderRole" = ?1 AND "senderId" = ?2
                       AND ("createdAt", id) > (?3, ?4) ORDER BY "createdAt", id LIMIT ?5)
                     UNION ALL
                     SELECT * FROM (SELECT * FROM "Message" WHERE "recipientRole" = ?1 AND "recipientId" = ?2
                       AND ("createdAt", id) > (?3, ?4) AND NOT ("senderRole" = ?1 AND "senderId" = ?2)
                       ORDER BY "createdAt", id LIMIT ?5)
                   ) ORDER BY "createdAt", id LIMIT ?5"#,
                )
                .bind(user.role.as_str())
                .bind(user.id)
                .bind(at)
                .bind(&id)
                .bind(limit_of(limit))
                .fetch_all(s.pool())
                .await?)
        )
        .await?;
        rows.into_iter().map(to_record).collect()
    }

    /// How many messages `user` sent or received, and how many message-log rows name them.
    ///
    /// # Errors
    /// A database error.
    pub async fn user_record_counts(&self, user: UserRef) -> Result<(u64, u64), StoreError> {
        let (messages, log): (i64, i64) = both!(
            self,
            query_as,
            r#"SELECT (SELECT count(*) FROM "Message" WHERE "senderRole" = $1 AND "senderId" = $2)
                    + (SELECT count(*) FROM "Message" WHERE "recipientRole" = $1 AND "recipientId" = $2
                         AND NOT ("senderRole" = $1 AND "senderId" = $2)),
                      (SELECT count(*) FROM chat_log WHERE (sender_role = $1 AND sender_id = $2)
                         OR (recipient_role = $1 AND recipient_id = $2))"#,
            r#"SELECT (SELECT count(*) FROM "Message" WHERE "senderRole" = ?1 AND "senderId" = ?2)
                    + (SELECT count(*) FROM "Message" WHERE "recipientRole" = ?1 AND "recipientId" = ?2
                         AND NOT ("senderRole" = ?1 AND "senderId" = ?2)),
                      (SELECT count(*) FROM chat_log WHERE (sender_role = ?1 AND sender_id = ?2)
                         OR (recipient_role = ?1 AND recipient_id = ?2))"#,
            [user.role.as_str(), user.id],
            fetch_one
        )
        .await?;
        Ok((count(messages), count(log)))
    }

    /// Deletes at most `limit` messages sent or received by `user`; returns how many went.
    ///
    /// # Errors
    /// A database error.
    pub async fn erase_batch(&self, user: UserRef, limit: u32) -> Result<u64, StoreError> {
        both!(
            self,
            query,
            r#"DELETE FROM "Message" WHERE id = ANY (ARRAY(
                 (SELECT id FROM "Message" WHERE "senderRole" = $1 AND "senderId" = $2 LIMIT $3)
                 UNION ALL
                 (SELECT id FROM "Message" WHERE "recipientRole" = $1 AND "recipientId" = $2 LIMIT $3)))"#,
            r#"DELETE FROM "Message" WHERE id IN (
                 SELECT id FROM (SELECT id FROM "Message" WHERE "senderRole" = ?1 AND "senderId" = ?2 LIMIT ?3)
                 UNION ALL
                 SELECT id FROM (SELECT id FROM "Message" WHERE "recipientRole" = ?1 AND "recipientId" = ?2
                   LIMIT ?3))"#,
            [user.role.as_str(), user.id, limit_of(limit)],
            execute
        )
        .await
    }

    /// Removes at most `limit` message-log rows that name `user` (below the head; the head,
    /// if it names them, gets blank ids instead); returns how many rows were removed or blanked.
    ///
    /// # Errors
    /// A database error.
    pub async fn erase_log_batch(&self, user: UserRef, limit: u32) -> Result<u64, StoreError> {
        // The head is kept (blanked) so the log's position never goes back.
        let removed = both!(
            self,
            query,
            "DELETE FROM chat_log WHERE pos = ANY (ARRAY(
                   (SELECT pos FROM chat_log WHERE sender_role = $1 AND sender_id = $2 LIMIT $3)
                   UNION ALL
                   (SELECT pos FROM chat_log WHERE recipient_role = $1 AND recipient_id = $2 LIMIT $3)))
                 AND pos < (SELECT max(pos) FROM chat_log)",
            "DELETE FROM chat_log WHERE pos IN (
                   SELECT pos FROM (SELECT pos FROM chat_log WHERE sender_role = ?1 AND sender_id = ?2 LIMIT ?3)
                   UNION ALL
                   SELECT pos FROM (SELECT pos FROM chat_log WHERE recipient_role = ?1 AND recipient_id = ?2 LIMIT ?3))
                 AND pos < (SELECT max(pos) FROM chat_log)",
            [user.role.as_str(), user.id, limit_of(limit)],
            execute
        )
        .await?;
        let blanked = both!(
            self,
            query,
            "UPDATE chat_log SET message_id = '', sender_role = '', sender_id = 0, recipient_role = '',
                        recipient_id = 0
                 WHERE pos = (SELECT max(pos) FROM chat_log)
                   AND ((sender_role = $1 AND sender_id = $2) OR (recipient_role = $1 AND recipient_id = $2))",
            "UPDATE chat_log SET message_id = '', sender_role = '', sender_id = 0, recipient_role = '',
                        recipient_id = 0
                 WHERE pos = (SELECT max(pos) FROM chat_log)
                   AND ((sender_role = ?1 AND sender_id = ?2) OR (recipient_role = ?1 AND recipient_id = ?2))",
            [user.role.as_str(), user.id],
            execute
        )
        .await?;
        Ok(removed + blanked)
    }

    /// Removes the message-log inbox rows that name `user` (PostgreSQL: messages committed
    /// but not yet sequenced; SQLite has no inbox); returns how many.
    ///
    /// # Errors
    /// A database error.
    pub async fn erase_inbox(&self, user: UserRef) -> Result<u64, StoreError> {
        dispatch!(
            self,
            postgres
                | s
                | Ok(sqlx::query(
                    "DELETE FROM chat_inbox WHERE (sender_role = $1 AND sender_id = $2)
                OR (recipient_role = $1 AND recipient_id = $2)",
                )
                .bind(user.role.as_str())
                .bind(user.id)
                .execute(s.pool())
                .await?
                .rows_affected()),
            sqlite | _s | Ok(0)
        )
        .await
    }

    /// After an erasure or a purge: makes what was deleted unreadable where the database can.
    /// SQLite (with `secure_delete`, which zeroes deleted rows) moves the write-ahead log
    /// into the file and truncates it, so no earlier page with the text is left in the WAL.
    /// PostgreSQL keeps deleted rows' bytes in its data files until VACUUM lets them be
    /// reused (the operator's part, said in docs/safety.md): nothing is done here.
    ///
    /// # Errors
    /// A database error (the checkpoint could not run: readers held it).
    pub async fn reclaim(&self) -> Result<bool, StoreError> {
        dispatch!(
            self,
            postgres | _s | Ok(true),
            sqlite | s | {
                let (busy, _, _): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(s.pool()).await?;
                Ok(busy == 0)
            }
        )
        .await
    }

    /// Removes the audit entries written before `before` (`CHAT_AUDIT_RETENTION`, `purge
    /// --audit-older-than`); returns how many. The caller records the removal itself.
    ///
    /// # Errors
    /// A database error.
    pub async fn purge_audit(&self, before: Millis) -> Result<u64, StoreError> {
        both!(
            self,
            query,
            "DELETE FROM chat_audit WHERE at < TIMESTAMP '1970-01-01' + $1::int8 * INTERVAL '1 millisecond'",
            "DELETE FROM chat_audit WHERE at < ?1",
            [before],
            execute
        )
        .await
    }

    /// Removes a user of the embedded database's own directory (SQLite: its Teacher or
    /// Student row, their name). PostgreSQL's users are the app's tables: nothing is done
    /// there and `false` comes back.
    ///
    /// # Errors
    /// A database error.
    pub async fn erase_directory_user(&self, user: UserRef) -> Result<bool, StoreError> {
        let sql = match user.role {
            Role::Teacher => r#"DELETE FROM "Teacher" WHERE id = ?1"#,
            Role::Student => r#"DELETE FROM "Student" WHERE id = ?1"#,
        };
        dispatch!(
            self,
            postgres | _s | Ok(false),
            sqlite | s | Ok(sqlx::query(sql).bind(user.id).execute(s.pool()).await?.rows_affected() > 0)
        )
        .await
    }

    /// How many messages were created before `before`, and the oldest and newest of their
    /// `createdAt`.
    ///
    /// # Errors
    /// A database error.
    pub async fn count_older(&self, before: Millis) -> Result<(u64, Option<Millis>, Option<Millis>), StoreError> {
        // Held users' messages are not retention's to remove (`chat-server hold`).
        let held = super::message_not_held();
        let (n, oldest, newest): (i64, Option<i64>, Option<i64>) = both!(
            self,
            query_as,
            &format!(
                r#"SELECT count(*), (EXTRACT(EPOCH FROM min("createdAt")) * 1000)::int8,
                          (EXTRACT(EPOCH FROM max("createdAt")) * 1000)::int8
                   FROM "Message" m
                   WHERE "createdAt" < TIMESTAMP '1970-01-01' + $1::int8 * INTERVAL '1 millisecond' AND {held}"#
            ),
            &format!(
                r#"SELECT count(*), min("createdAt"), max("createdAt") FROM "Message" m
                   WHERE "createdAt" < ?1 AND {held}"#
            ),
            [before],
            fetch_one
        )
        .await?;
        Ok((count(n), oldest, newest))
    }

    /// Deletes at most `limit` of the oldest messages created before `before`; returns how many.
    ///
    /// # Errors
    /// A database error.
    pub async fn purge_batch(&self, before: Millis, limit: u32) -> Result<u64, StoreError> {
        // Held users' messages stay (`chat-server hold`).
        let held = super::message_not_held();
        both!(
            self,
            query,
            &format!(
                r#"DELETE FROM "Message" WHERE id = ANY (ARRAY(
                     SELECT id FROM "Message" m
                     WHERE "createdAt" < TIMESTAMP '1970-01-01' + $1::int8 * INTERVAL '1 millisecond' AND {held}
                     ORDER BY "createdAt" LIMIT $2))"#
            ),
            &format!(
                r#"DELETE FROM "Message" WHERE id IN (
                     SELECT id FROM "Message" m WHERE "createdAt" < ?1 AND {held} ORDER BY "createdAt" LIMIT ?2)"#
            ),
            [before, limit_of(limit)],
            execute
        )
        .await
    }

    /// Examines the `limit` log rows after position `after` and removes those whose message no
    /// longer exists (never the head). A purge walks the log's start with it, window by
    /// window, until a window holds no such row.
    ///
    /// # Errors
    /// A database error.
    pub async fn trim_log(&self, after: u64, limit: u32) -> Result<LogTrim, StoreError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let window: Vec<(i64, bool)> = both!(
            self,
            query_as,
            r#"SELECT l.pos, NOT EXISTS (SELECT 1 FROM "Message" m WHERE m.id = l.message_id)
               FROM chat_log l WHERE l.pos > $1 ORDER BY l.pos LIMIT $2"#,
            r#"SELECT l.pos, NOT EXISTS (SELECT 1 FROM "Message" m WHERE m.id = l.message_id)
               FROM chat_log l WHERE l.pos > ?1 ORDER BY l.pos LIMIT ?2"#,
            [after, limit_of(limit)],
            fetch_all
        )
        .await?;
        let orphans: Vec<i64> = window.iter().filter(|(_, orphan)| *orphan).map(|(pos, _)| *pos).collect();
        let last = window.last().map(|(pos, _)| count(*pos));
        let removed = if orphans.is_empty() {
            0
        } else {
            dispatch!(
                self,
                postgres
                    | s
                    | Ok(sqlx::query(
                        "DELETE FROM chat_log WHERE pos = ANY ($1) AND pos < (SELECT max(pos) FROM chat_log)",
                    )
                    .bind(&orphans)
                    .execute(s.pool())
                    .await?
                    .rows_affected()),
                sqlite
                    | s
                    | Ok(sqlx::query(
                        "DELETE FROM chat_log WHERE pos IN (SELECT value FROM json_each(?1))
                       AND pos < (SELECT max(pos) FROM chat_log)",
                    )
                    .bind(serde_json::to_string(&orphans).unwrap_or_else(|_| "[]".to_owned()))
                    .execute(s.pool())
                    .await?
                    .rows_affected())
            )
            .await?
        };
        Ok(LogTrim { removed, last, orphans: orphans.len() as u64 })
    }

    /// Every audit entry about `user`, oldest first.
    ///
    /// # Errors
    /// A database error.
    pub async fn audit_about(&self, user: UserRef) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = both!(
            self,
            query_as,
            "SELECT id, (EXTRACT(EPOCH FROM at) * 1000)::int8, actor, action, subject_role, subject_id, detail
             FROM chat_audit WHERE subject_role = $1 AND subject_id = $2 ORDER BY id",
            "SELECT id, at, actor, action, subject_role, subject_id, detail
             FROM chat_audit WHERE subject_role = ?1 AND subject_id = ?2 ORDER BY id",
            [user.role.as_str(), user.id],
            fetch_all
        )
        .await?;
        Ok(rows.into_iter().map(to_audit).collect())
    }

    /// Writes an entry to the audit log, dated `at`.
    ///
    /// # Errors
    /// A database error.
    pub async fn write_audit(
        &self,
        at: Millis,
        actor: &str,
        action: &str,
        subject: Option<UserRef>,
        detail: &str,
    ) -> Result<(), StoreError> {
        let role = subject.map(|u| u.role.as_str());
        let id = subject.map(|u| u.id);
        both!(
            self,
            query,
            "INSERT INTO chat_audit (at, actor, action, subject_role, subject_id, detail)
             VALUES (TIMESTAMP '1970-01-01' + $1::int8 * INTERVAL '1 millisecond', $2, $3, $4, $5, $6)",
            "INSERT INTO chat_audit (at, actor, action, subject_role, subject_id, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            [at, actor, action, role, id, detail],
            execute
        )
        .await
        .map(|_| ())
    }
}
