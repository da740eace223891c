//! Blocks (`chat_block`) and revisions (`chat_revision`) on both backends, and what the records
//! commands read and delete of them. `both!` (in `store/mod.rs`) keeps one query per call: the SQL differs only
//! in its placeholders (`$1` or `?1`) and in how time is stored.

use chat_protocol::{MessageId, Millis, Role, StoredMessage, UserRef};

use super::{MessageRow, Store, StoreError, bounded, to_message};

/// Blocks between two users, seen from the first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockState {
    /// The first user blocked the second.
    pub mine: bool,
    /// The second user blocked the first.
    pub theirs: bool,
}

/// Edits a message may have at most (a deletion is always allowed after them): the
/// supervisor's view of its earlier texts ([`chat_protocol::MAX_REVISIONS`]) then holds
/// every one.
pub const MAX_EDITS: usize = chat_protocol::MAX_REVISIONS - 1;

/// What [`Store::revise`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revised {
    /// The message as it is now.
    Changed(StoredMessage),
    /// The user sent no such message.
    NotYours,
    /// It was edited [`MAX_EDITS`] times already.
    TooMany,
}

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

    /// The users with a block between them and `me`, either way (at most 10,000).
    ///
    /// # Errors
    /// A database error.
    pub async fn block_partners(&self, me: UserRef) -> Result<std::collections::HashSet<UserRef>, StoreError> {
        let rows: Vec<(String, i32)> = both!(
            self,
            query_as,
            "(SELECT blocked_role, blocked_id FROM chat_block WHERE blocker_role = $1 AND blocker_id = $2 LIMIT 10000)
             UNION
             (SELECT blocker_role, blocker_id FROM chat_block WHERE blocked_role = $1 AND blocked_id = $2 LIMIT 10000)",
            "SELECT * FROM (SELECT blocked_role, blocked_id FROM chat_block WHERE blocker_role = ?1 AND blocker_id = ?2
                            LIMIT 10000)
             UNION
             SELECT * FROM (SELECT blocker_role, blocker_id FROM chat_block WHERE blocked_role = ?1 AND blocked_id = ?2
                            LIMIT 10000)",
            [me.role.as_str(), me.id],
            fetch_all
        )
        .await?;
        Ok(rows.into_iter().filter_map(|(r, i)| Some(UserRef::new(Role::parse(&r)?, i))).collect())
    }

    /// Whether `from` has written to `to` (so `to` may reply where only one side may start a
    /// conversation); a message `from` deleted does not count (it is no longer there to
    /// reply to).
    ///
    /// # Errors
    /// A database error.
    pub async fn has_written(&self, from: UserRef, to: UserRef) -> Result<bool, StoreError> {
        let found: Option<i32> = both!(
            self,
            query_scalar,
            r#"SELECT 1 FROM "Message" WHERE "senderRole" = $1 AND "senderId" = $2
               AND "recipientRole" = $3 AND "recipientId" = $4 AND content <> '' LIMIT 1"#,
            r#"SELECT 1 FROM "Message" WHERE "senderRole" = ?1 AND "senderId" = ?2
               AND "recipientRole" = ?3 AND "recipientId" = ?4 AND content <> '' LIMIT 1"#,
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
    /// `now`, keeping the text it had in `chat_revision` (`kind`: `edit` or `delete`, with
    /// the message's conversation and creation time), in one transaction. An edit past
    /// [`MAX_EDITS`] earlier texts is refused (a deletion never is).
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
    ) -> Result<Revised, StoreError> {
        let id = id.hyphenated();
        let (role, uid) = (me.role.as_str(), me.id);
        let cap = i64::try_from(MAX_EDITS).unwrap_or(i64::MAX);
        let edit = kind == "edit";
        let row: Result<MessageRow, Revised> = dispatch!(
            self,
            postgres | s | {
                let mut tx = s.pool().begin().await?;
                let old: Option<(String, String, i32, i64)> = sqlx::query_as(
                    r#"SELECT content, "recipientRole", "recipientId",
                                  (SELECT count(*) FROM chat_revision r WHERE r.message_id = m.id
                                     AND r.sender_role = m."senderRole" AND r.sender_id = m."senderId")
                           FROM "Message" m WHERE id = $1 AND "senderRole" = $2 AND "senderId" = $3
                           FOR UPDATE"#,
                )
                .bind(id.as_str())
                .bind(role)
                .bind(uid)
                .fetch_optional(&mut tx)
                .await?;
                let Some((old, to_role, to_id, earlier)) = old else { return Ok(Err(Revised::NotYours)) };
                if edit && earlier >= cap {
                    return Ok(Err(Revised::TooMany));
                }
                sqlx::query(
                    r#"INSERT INTO chat_revision (message_id, at, kind, content, sender_role, sender_id,
                                                      recipient_role, recipient_id, message_created)
                           SELECT $1, TIMESTAMP '1970-01-01' + $2::int8 * INTERVAL '1 millisecond', $3, $4, $5, $6,
                                  $7, $8, "createdAt"
                           FROM "Message" WHERE id = $1"#,
                )
                .bind(id.as_str())
                .bind(now)
                .bind(kind)
                .bind(&old)
                .bind(role)
                .bind(uid)
                .bind(&to_role)
                .bind(to_id)
                .execute(&mut tx)
                .await?;
                let row = sqlx::query_as(&format!(
                    r#"UPDATE "Message" SET content = $2,
                               "updatedAt" = TIMESTAMP '1970-01-01' + $3::int8 * INTERVAL '1 millisecond'
                           WHERE id = $1 RETURNING {PG_MESSAGE}"#
                ))
                .bind(id.as_str())
                .bind(content)
                .bind(now)
                .fetch_one(&mut tx)
                .await?;
                tx.commit().await?;
                Ok(Ok(row))
            },
            sqlite | s | {
                let mut tx = s.pool().begin().await?;
                let old: Option<(String, String, i32, i64)> = sqlx::query_as(
                    r#"SELECT content, "recipientRole", "recipientId",
                                  (SELECT count(*) FROM chat_revision r WHERE r.message_id = m.id
                                     AND r.sender_role = m."senderRole" AND r.sender_id = m."senderId")
                           FROM "Message" m WHERE id = ?1 AND "senderRole" = ?2 AND "senderId" = ?3"#,
                )
                .bind(id.as_str())
                .bind(role)
                .bind(uid)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((old, to_role, to_id, earlier)) = old else { return Ok(Err(Revised::NotYours)) };
                if edit && earlier >= cap {
                    return Ok(Err(Revised::TooMany));
                }
                sqlx::query(
                    r#"INSERT INTO chat_revision (message_id, at, kind, content, sender_role, sender_id,
                                                      recipient_role, recipient_id, message_created)
                           SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "createdAt" FROM "Message" WHERE id = ?1"#,
                )
                .bind(id.as_str())
                .bind(now)
                .bind(kind)
                .bind(&old)
                .bind(role)
                .bind(uid)
                .bind(&to_role)
                .bind(to_id)
                .execute(&mut *tx)
                .await?;
                let row = sqlx::query_as(&format!(
                    r#"UPDATE "Message" SET content = ?2, "updatedAt" = ?3 WHERE id = ?1 RETURNING {LITE_MESSAGE}"#
                ))
                .bind(id.as_str())
                .bind(content)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Ok(row))
            }
        )
        .await?;
        match row {
            Ok(row) => Ok(Revised::Changed(to_message(row)?)),
            Err(outcome) => Ok(outcome),
        }
    }

    /// The edits and deletions of the messages `user` sent or received, oldest first.
    ///
    /// # Errors
    /// A database error.
    pub async fn revisions_about(&self, user: UserRef) -> Result<Vec<RevisionEntry>, StoreError> {
        let rows: Vec<(String, i64, String, String)> = both!(
            self,
            query_as,
            // By the conversation each revision names, not by the message's id: a message the
            // app deleted still has its earlier texts listed, and a reused id does not bring
            // another conversation's.
            r#"SELECT r.message_id, (EXTRACT(EPOCH FROM r.at) * 1000)::int8, r.kind, r.content
               FROM chat_revision r
               WHERE (r.sender_role = $1 AND r.sender_id = $2) OR (r.recipient_role = $1 AND r.recipient_id = $2)
               ORDER BY r.id"#,
            r#"SELECT r.message_id, r.at, r.kind, r.content
               FROM chat_revision r
               WHERE (r.sender_role = ?1 AND r.sender_id = ?2) OR (r.recipient_role = ?1 AND r.recipient_id = ?2)
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

    /// The newest `limit` earlier texts of `message` (its id, in its conversation), oldest
    /// first.
    ///
    /// # Errors
    /// A database error.
    pub async fn revisions_of(&self, message: &StoredMessage, limit: usize) -> Result<Vec<RevisionEntry>, StoreError> {
        let id = message.id.hyphenated();
        let (from, to) = (message.from, message.to);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(String, i64, String, String)> = both!(
            self,
            query_as,
            "SELECT message_id, at_ms, kind, content FROM (
               SELECT r.id, r.message_id, (EXTRACT(EPOCH FROM r.at) * 1000)::int8 AS at_ms, r.kind, r.content
               FROM chat_revision r WHERE r.message_id = $1 AND r.sender_role = $3 AND r.sender_id = $4
                 AND r.recipient_role = $5 AND r.recipient_id = $6
               ORDER BY r.id DESC LIMIT $2) newest
             ORDER BY id",
            "SELECT message_id, at, kind, content FROM (
               SELECT id, message_id, at, kind, content FROM chat_revision WHERE message_id = ?1
                 AND sender_role = ?3 AND sender_id = ?4 AND recipient_role = ?5 AND recipient_id = ?6
               ORDER BY id DESC LIMIT ?2)
             ORDER BY id",
            [id.as_str(), limit, from.role.as_str(), from.id, to.role.as_str(), to.id],
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
            // The revisions name their conversation (those of messages the app deleted
            // too); rows from before that column are found through their messages.
            r#"DELETE FROM chat_revision WHERE (sender_role = $1 AND sender_id = $2)
                 OR (recipient_role = $1 AND recipient_id = $2)
                 OR (sender_role IS NULL AND message_id IN (
                   SELECT id FROM "Message" WHERE ("senderRole" = $1 AND "senderId" = $2)
                      OR ("recipientRole" = $1 AND "recipientId" = $2)))"#,
            r#"DELETE FROM chat_revision WHERE (sender_role = ?1 AND sender_id = ?2)
                 OR (recipient_role = ?1 AND recipient_id = ?2)
                 OR (sender_role IS NULL AND message_id IN (
                   SELECT id FROM "Message" WHERE ("senderRole" = ?1 AND "senderId" = ?2)
                      OR ("recipientRole" = ?1 AND "recipientId" = ?2)))"#,
            [user.role.as_str(), user.id],
            execute
        )
        .await
    }

    /// Removes the earlier texts of the messages written before `before` (whenever they were
    /// edited: a purged message keeps no text anywhere), and any revision made before it;
    /// returns how many.
    ///
    /// # Errors
    /// A database error.
    pub async fn purge_revisions(&self, before: Millis) -> Result<u64, StoreError> {
        // The earlier texts of a held user's messages stay (`chat-server hold`).
        let held = super::not_held("sender_role", "sender_id", "recipient_role", "recipient_id");
        both!(
            self,
            query,
            &format!(
                "DELETE FROM chat_revision
                 WHERE (message_created < TIMESTAMP '1970-01-01' + $1::int8 * INTERVAL '1 millisecond'
                        OR at < TIMESTAMP '1970-01-01' + $1::int8 * INTERVAL '1 millisecond') AND {held}"
            ),
            &format!("DELETE FROM chat_revision WHERE (message_created < ?1 OR at < ?1) AND {held}"),
            [before],
            execute
        )
        .await
    }
}
