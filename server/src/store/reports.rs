//! Reports (`chat_report`) on both backends: storing one (once per reporter and message),
//! the per-user count, the webhook's outbox (claim, mark taken, retry later), and what the
//! records commands read and delete of them.

use chat_protocol::{MessageId, Millis, Role, UserRef};

use super::{Store, StoreError, bounded};

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

row! {
    /// A report's columns.
    struct ReportRow {
        id: i64,
        at: i64,
        message_id: String,
        reporter_role: String,
        reporter_id: i32,
        reported_role: String,
        reported_id: i32,
        reason: String,
        content: String,
    }
}

row! {
    /// A pending report: the report, then how many times the webhook was tried.
    struct PendingRow {
        report: ReportRow,
        attempts: i32,
    }
}

/// A report the webhook has yet to take, and how many times it was tried (this one included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingReport {
    /// The report.
    pub report: ReportEntry,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

fn to_report(row: ReportRow) -> Result<ReportEntry, StoreError> {
    let ReportRow {
        id,
        at,
        message_id,
        reporter_role: rr,
        reporter_id: ri,
        reported_role: dr,
        reported_id: di,
        reason,
        content,
    } = row;
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
    /// Stores a report; returns its number, or `None` when `reporter` reported this message
    /// already (one report per reporter and message). `pending`: the webhook is to post it
    /// (it is taken from the table by [`Store::claim_reports`]).
    ///
    /// # Errors
    /// A database error.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_report(
        &self,
        at: Millis,
        id: MessageId,
        reporter: UserRef,
        reported: UserRef,
        reason: &str,
        content: &str,
        pending: bool,
    ) -> Result<Option<i64>, StoreError> {
        let id = id.hyphenated();
        both!(
            self,
            query_scalar,
            "INSERT INTO chat_report (at, message_id, reporter_role, reporter_id, reported_role, reported_id, reason,
                                      content, webhook_pending)
             SELECT TIMESTAMP '1970-01-01' + $1::int8 * INTERVAL '1 millisecond', $2, $3, $4, $5, $6, $7, $8, $9
             WHERE NOT EXISTS (SELECT 1 FROM chat_report WHERE message_id = $2 AND reporter_role = $3
                                 AND reporter_id = $4)
             RETURNING id",
            "INSERT INTO chat_report (at, message_id, reporter_role, reporter_id, reported_role, reported_id, reason,
                                      content, webhook_pending)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
             WHERE NOT EXISTS (SELECT 1 FROM chat_report WHERE message_id = ?2 AND reporter_role = ?3
                                 AND reporter_id = ?4)
             RETURNING id",
            [
                at,
                id.as_str(),
                reporter.role.as_str(),
                reporter.id,
                reported.role.as_str(),
                reported.id,
                reason,
                content,
                pending
            ],
            fetch_optional
        )
        .await
    }

    /// How many reports `reporter` made since `since`.
    ///
    /// # Errors
    /// A database error.
    pub async fn reports_since(&self, reporter: UserRef, since: Millis) -> Result<i64, StoreError> {
        both!(
            self,
            query_scalar,
            "SELECT count(*) FROM (SELECT 1 FROM chat_report WHERE reporter_role = $1 AND reporter_id = $2
               AND at >= TIMESTAMP '1970-01-01' + $3::int8 * INTERVAL '1 millisecond' LIMIT 1000) r",
            "SELECT count(*) FROM (SELECT 1 FROM chat_report WHERE reporter_role = ?1 AND reporter_id = ?2
               AND at >= ?3 LIMIT 1000)",
            [reporter.role.as_str(), reporter.id, since],
            fetch_one
        )
        .await
    }

    /// Takes up to `limit` reports the webhook has yet to post and whose next attempt is due
    /// at `now`, oldest first, and holds them until `hold_until` (so another node does not
    /// post them meanwhile; if this node dies, they are due again then). Counts the attempt.
    ///
    /// # Errors
    /// A database error.
    pub async fn claim_reports(
        &self,
        now: Millis,
        hold_until: Millis,
        limit: i64,
    ) -> Result<Vec<PendingReport>, StoreError> {
        let rows: Vec<PendingRow> = both!(
            self,
            query_as,
            "UPDATE chat_report SET webhook_attempts = webhook_attempts + 1,
                    webhook_next = TIMESTAMP '1970-01-01' + $2::int8 * INTERVAL '1 millisecond'
             WHERE id IN (SELECT id FROM chat_report WHERE webhook_pending
                            AND (webhook_next IS NULL
                                 OR webhook_next <= TIMESTAMP '1970-01-01' + $1::int8 * INTERVAL '1 millisecond')
                          ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING id, (EXTRACT(EPOCH FROM at) * 1000)::int8, message_id, reporter_role, reporter_id,
                       reported_role, reported_id, reason, content, webhook_attempts",
            "UPDATE chat_report SET webhook_attempts = webhook_attempts + 1, webhook_next = ?2
             WHERE id IN (SELECT id FROM chat_report WHERE webhook_pending
                            AND (webhook_next IS NULL OR webhook_next <= ?1) ORDER BY id LIMIT ?3)
             RETURNING id, at, message_id, reporter_role, reporter_id, reported_role, reported_id, reason, content,
                       webhook_attempts",
            [now, hold_until, limit],
            fetch_all
        )
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for PendingRow { report, attempts } in rows {
            out.push(PendingReport { report: to_report(report)?, attempts });
        }
        out.sort_by_key(|p| p.report.id);
        Ok(out)
    }

    /// The webhook took report `id`.
    ///
    /// # Errors
    /// A database error.
    pub async fn report_posted(&self, id: i64) -> Result<(), StoreError> {
        both!(
            self,
            query,
            "UPDATE chat_report SET webhook_pending = false WHERE id = $1",
            "UPDATE chat_report SET webhook_pending = 0 WHERE id = ?1",
            [id],
            execute
        )
        .await?;
        Ok(())
    }

    /// The webhook did not take report `id`: try again at `next`.
    ///
    /// # Errors
    /// A database error.
    pub async fn report_retry_at(&self, id: i64, next: Millis) -> Result<(), StoreError> {
        both!(
            self,
            query,
            "UPDATE chat_report SET webhook_next = TIMESTAMP '1970-01-01' + $2::int8 * INTERVAL '1 millisecond'
             WHERE id = $1",
            "UPDATE chat_report SET webhook_next = ?2 WHERE id = ?1",
            [id, next],
            execute
        )
        .await?;
        Ok(())
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

    /// Removes the reports made before `before`; returns how many.
    ///
    /// # Errors
    /// A database error.
    pub async fn purge_reports(&self, before: Millis) -> Result<u64, StoreError> {
        // The reports of a held user, made or about them, stay (`chat-server hold`).
        let held = super::not_held("reporter_role", "reporter_id", "reported_role", "reported_id");
        both!(
            self,
            query,
            &format!("DELETE FROM chat_report WHERE at < TIMESTAMP '1970-01-01' + $1::int8 * INTERVAL '1 millisecond' AND {held}"),
            &format!("DELETE FROM chat_report WHERE at < ?1 AND {held}"),
            [before],
            execute
        )
        .await
    }
}
