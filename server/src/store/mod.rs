//! The storage seam: everything the server reads from and writes to its database.
//!
//! [`Store`] is an enum over backends so the hot paths stay statically dispatched:
//! PostgreSQL (the app's own database, for real deployments) and SQLite (an embedded
//! file, for a start with nothing installed). Both speak in protocol values only: ids,
//! users, millisecond timestamps, cursors. Nothing here delivers frames: the writer and
//! the hub do that with what the store returns, so delivery is not welded to any backend.

/// Runs a paged query the way both backends do (only their SQL differs): `user`'s role and
/// id first, then the other binds in order, then the page size; yields the rows.
macro_rules! fetch_page {
    ($sql:expr, $pool:expr, $user:expr, [$($bind:expr),*], $limit:expr) => {
        sqlx::query_as($sql)
            .bind($user.role.as_str())
            .bind($user.id)
            $(.bind($bind))*
            .bind(i64::from($limit))
            .fetch_all($pool)
            .await?
    };
}

/// The one way a [`Store`] call reaches its backend, under the store's timeout: `$body` with
/// `$s` bound to the backend's own store (`PgStore` or `SqliteStore`: the same tokens compile
/// against each), or one body per backend where they differ. Yields a future of the body's
/// `Result`. Every database call of the store goes through it (or through `both!`, which is
/// this with the SQL picked per backend).
macro_rules! dispatch {
    ($store:expr, |$s:ident| $body:expr) => {
        dispatch!($store, postgres | $s | $body, sqlite | $s | $body)
    };
    ($store:expr, postgres |$p:pat_param| $pg:expr, sqlite |$l:pat_param| $lite:expr) => {
        bounded($store.timeout(), async {
            match $store {
                Store::Postgres($p) => $pg,
                Store::Sqlite($l) => $lite,
            }
        })
    };
}

/// [`dispatch!`] of one statement whose SQL differs by backend and nothing else: `$pg` on
/// PostgreSQL or `$lite` on SQLite with the same binds, through `$run` (`fetch_one`,
/// `fetch_all`, ...; `execute` gives the rows affected).
macro_rules! both {
    ($store:expr, query, $pg:expr, $lite:expr, [$($bind:expr),*], execute) => {
        dispatch!(
            $store,
            postgres |s| Ok(sqlx::query($pg)$(.bind($bind))*.execute(s.pool()).await?.rows_affected()),
            sqlite |s| Ok(sqlx::query($lite)$(.bind($bind))*.execute(s.pool()).await?.rows_affected())
        )
    };
    ($store:expr, $kind:ident, $pg:expr, $lite:expr, [$($bind:expr),*], $run:ident) => {
        dispatch!(
            $store,
            postgres |s| Ok(sqlx::$kind($pg)$(.bind($bind))*.$run(s.pool()).await?),
            sqlite |s| Ok(sqlx::$kind($lite)$(.bind($bind))*.$run(s.pool()).await?)
        )
    };
}

#[macro_use]
mod rows;
pub mod db;
mod holds;
mod pg_db;
mod postgres;
mod records;
mod reports;
mod safety;
pub mod schema;
mod sqlite;
pub(crate) mod users;

pub use holds::Hold;
use holds::{message_not_held, not_held};
pub use pg_db::{PgDb, PgTx};
pub use postgres::{CATCH_UP_SQL, CONVERSATIONS_SQL, HISTORY_SQL, PgStore, SYNC_SQL};
pub use records::{AuditEntry, LogTrim, RecordedMessage};
pub use reports::{PendingReport, ReportEntry};
pub use safety::{BlockState, MAX_EDITS, Revised, RevisionEntry};
pub use sqlite::{DirectoryUser, SqliteStore};

pub(crate) use rows::{AnyRow, ReadRow};
use std::future::Future;
use std::time::Duration;

use chat_protocol::{Conversation, Cursor, MessageId, Millis, Role, StoredMessage, UserRef};

/// A message accepted from a connection, not yet stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    /// The client-chosen id.
    pub id: MessageId,
    /// The authenticated sender.
    pub from: UserRef,
    /// The recipient.
    pub to: UserRef,
    /// The validated content.
    pub content: String,
}

/// What is already stored under an id a send reuses: a resend must match it in every
/// respect to count as the same message.
#[derive(Debug)]
struct Resent {
    from: UserRef,
    to: UserRef,
    content: String,
}

impl NewMessage {
    /// Whether `other` is this message again (a resend under the same id), not another one.
    fn is_resent_as(&self, other: &NewMessage) -> bool {
        self.from == other.from && self.to == other.to && self.content == other.content
    }
}

impl Resent {
    fn is_same(&self, m: &NewMessage) -> bool {
        self.from == m.from && self.to == m.to && self.content == m.content
    }
}

/// What happened to one message of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored now, with this `createdAt`.
    Stored {
        /// The stored `createdAt`.
        created_at: Millis,
    },
    /// The same sender had already stored this id: nothing stored, the original ack applies.
    Duplicate {
        /// The original `createdAt`.
        created_at: Millis,
    },
    /// Another sender owns this id, or the same sender stored another message (recipient
    /// or content) under it.
    Conflict,
    /// Not stored now (the id already existed), but whose it is could not be read: the
    /// sender should retry, and will then get `Duplicate` or `Conflict`.
    Unresolved,
}

/// A cursor after every message: "before" it is "from the newest".
const NEWEST: Cursor = Cursor { at: Millis::MAX, id: MessageId([0xff; 16]) };

/// Errors of the storage layer. Their text is logged, never sent to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A row could not be turned into a protocol value.
    #[error("unreadable row: {0}")]
    BadRow(String),
    /// The embedded database's schema could not be brought up to date.
    #[error("the database schema could not be applied: {0}")]
    Schema(String),
    /// The database did not answer in time.
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    /// The records may not be changed this way now (a legal hold stands); the sentence says
    /// why and what to do.
    #[error("{0}")]
    Refused(String),
}

impl StoreError {
    /// Whether the database is unreachable, stalled or out of space rather than the request
    /// being wrong: the same request should work once it is back (`unavailable`).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Timeout(_) => true,
            StoreError::Database(e) => match e {
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
                sqlx::Error::Database(db) => {
                    let code = db.code().unwrap_or_default();
                    // PostgreSQL: 08 connection exceptions, 57 operator intervention (statement
                    // timeout 57014, admin shutdown 57P01, cannot connect now 57P03), 53 out of
                    // resources (disk full 53100), 55P03 lock not available. SQLite: 5 busy,
                    // 6 locked, 10 I/O error, 13 full (extended codes keep the low byte).
                    code.starts_with("08")
                        || code.starts_with("57")
                        || code.starts_with("53")
                        || code == "55P03"
                        || code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13))
                }
                _ => false,
            },
            StoreError::BadRow(_) | StoreError::Schema(_) | StoreError::Refused(_) => false,
        }
    }
}

/// Runs a database call with a deadline: the backstop behind PostgreSQL's own
/// `statement_timeout`, for a database that stops answering at all (a cut network).
async fn bounded<T>(limit: Duration, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(limit, call).await.unwrap_or(Err(StoreError::Timeout(limit)))
}

/// A storage backend.
#[derive(Clone, Debug)]
pub enum Store {
    /// The app's PostgreSQL.
    Postgres(PgStore),
    /// The embedded SQLite file.
    Sqlite(SqliteStore),
}

impl Store {
    /// The same store, with every call bounded by `limit` (default 10 s).
    #[must_use]
    pub fn with_timeout(self, limit: Duration) -> Store {
        match self {
            Store::Postgres(mut s) => {
                s.timeout = limit;
                Store::Postgres(s)
            }
            Store::Sqlite(mut s) => {
                s.timeout = limit;
                Store::Sqlite(s)
            }
        }
    }

    fn timeout(&self) -> Duration {
        match self {
            Store::Postgres(s) => s.timeout,
            Store::Sqlite(s) => s.timeout,
        }
    }

    /// Looks a user up in `users_view` by role and id; returns the display name.
    ///
    /// # Errors
    /// A database error.
    pub async fn find_user(&self, user: UserRef) -> Result<Option<String>, StoreError> {
        dispatch!(self, |s| s.find_user(user).await).await
    }

    /// Stores a batch atomically, all with `created_at`. The outcome at index `i` belongs
    /// to `batch[i]`. Resends (same id, same sender) store nothing.
    ///
    /// # Errors
    /// A database error: then nothing of the batch is stored (unless the database committed
    /// and its answer was lost, which a resend with the same ids resolves).
    pub async fn insert_batch(
        &self,
        batch: &[&NewMessage],
        created_at: Millis,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        dispatch!(self, |s| s.insert_batch(batch, created_at).await).await
    }

    /// A page of the conversation between `me` and `peer`, newest first, strictly before
    /// `before` (from the newest when `None`).
    ///
    /// # Errors
    /// A database error.
    pub async fn history(
        &self,
        me: UserRef,
        peer: UserRef,
        before: Option<Cursor>,
        limit: u16,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let before = before.unwrap_or(NEWEST);
        dispatch!(self, |s| s.history(me, peer, before, limit).await).await
    }

    /// Messages to or from `me` strictly after `after`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// A database error.
    pub async fn sync(&self, me: UserRef, after: Cursor, limit: u16) -> Result<Vec<StoredMessage>, StoreError> {
        dispatch!(self, |s| s.sync(me, after, limit).await).await
    }

    /// The conversations of `me`, most recent first: those whose last message is strictly
    /// before `before` (all when `None`), at most `limit`.
    ///
    /// # Errors
    /// A database error.
    pub async fn conversations(
        &self,
        me: UserRef,
        before: Option<Cursor>,
        limit: u16,
    ) -> Result<Vec<Conversation>, StoreError> {
        let before = before.unwrap_or(NEWEST);
        dispatch!(self, |s| s.conversations(me, before, limit).await).await
    }

    /// Marks what `peer` sent `me` up to `up_to` as read; returns how many rows changed.
    ///
    /// # Errors
    /// A database error.
    pub async fn mark_read(&self, me: UserRef, peer: UserRef, up_to: Cursor, now: Millis) -> Result<u32, StoreError> {
        dispatch!(self, |s| s.mark_read(me, peer, up_to, now).await).await
    }

    /// Moves the messages committed since the last call into the message log and returns
    /// them in log order (PostgreSQL: `chat_log_sequence`; SQLite numbers rows as they are
    /// inserted, so this reads the log after `after`). `wait`: wait for a sequencer running
    /// on another node instead of leaving the rows to it. At most `limit` messages a call: a
    /// full page means more may be waiting. The database tells nobody: the caller tells the
    /// other nodes, over the bus, sealed ([`crate::delivery::bus`]).
    ///
    /// # Errors
    /// A database error.
    pub async fn sequence(&self, after: u64, wait: bool, limit: u16) -> Result<Vec<Logged>, StoreError> {
        dispatch!(self, postgres | s | s.sequence(wait, limit).await, sqlite | s | s.log_after(after, limit).await)
            .await
    }

    /// Whether the log is numbered by a sequencer that [`Store::sequence`] runs (PostgreSQL:
    /// several writers, the app among them), rather than as rows are inserted (SQLite: one
    /// writer), where "sequencing" only reads the log.
    #[must_use]
    pub fn sequences(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// The PostgreSQL database behind this store, for what shares it beyond the store (the
    /// bus's LISTEN and NOTIFY); `None` on SQLite.
    #[must_use]
    pub fn postgres(&self) -> Option<&PgDb> {
        match self {
            Store::Postgres(s) => Some(s.pool()),
            Store::Sqlite(_) => None,
        }
    }

    /// Whether the app's user directory lives in this store (SQLite: `users` manages it; on
    /// PostgreSQL it is the app's own tables, read through `users_view`).
    #[must_use]
    pub fn keeps_users(&self) -> bool {
        matches!(self, Store::Sqlite(_))
    }

    /// The logged messages after position `after`, in log order, at most `limit`.
    ///
    /// # Errors
    /// A database error.
    pub async fn log_after(&self, after: u64, limit: u16) -> Result<Vec<Logged>, StoreError> {
        dispatch!(self, |s| s.log_after(after, limit).await).await
    }

    /// Vacuums the message log's inbox (PostgreSQL; nothing on SQLite). The inbox is a queue:
    /// every row is deleted a moment after its insert, and an index scan over rows deleted
    /// but not vacuumed slows each sequencing round (7 ms at the 90th percentile with 2.6
    /// million, where autovacuum was off). Skips when another vacuum of it is running.
    ///
    /// # Errors
    /// A database error (for example a role that does not own the table).
    pub async fn vacuum_inbox(&self) -> Result<(), StoreError> {
        dispatch!(self, postgres | s | s.vacuum_inbox().await, sqlite | _ | Ok(())).await
    }

    /// The last position of the message log (0 when it is empty).
    ///
    /// # Errors
    /// A database error.
    pub async fn log_head(&self) -> Result<u64, StoreError> {
        dispatch!(self, |s| s.log_head().await).await
    }

    /// The messages sent to or by `me` after log position `after`, in log order, at most
    /// `limit`. A log row whose message was deleted since comes back as `None` (its position
    /// still counts: a catch-up moves past it).
    ///
    /// # Errors
    /// A database error.
    pub async fn catch_up(&self, me: UserRef, after: u64, limit: u16) -> Result<Vec<LoggedRow>, StoreError> {
        dispatch!(self, |s| s.catch_up(me, after, limit).await).await
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// A database error.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, |s| s.ping().await).await
    }
}

/// A message with its position in the message log.
pub type Logged = (u64, StoredMessage);

/// A log position and its message, `None` when the message was deleted since it was logged.
pub type LoggedRow = (u64, Option<StoredMessage>);

row! {
    /// A log row as both backends select it: the position, then a message row.
    struct LogRow {
        pos: i64,
        message: MessageRow,
    }
}

row! {
    /// A catch-up row: the position, whether its message still exists, then a message row
    /// (empty when it does not).
    struct CatchUpRow {
        pos: i64,
        present: bool,
        message: MessageRow,
    }
}

fn to_logged(row: LogRow) -> Result<Logged, StoreError> {
    Ok((u64::try_from(row.pos).unwrap_or(0), to_message(row.message)?))
}

fn to_logged_row(row: CatchUpRow) -> Result<LoggedRow, StoreError> {
    let pos = u64::try_from(row.pos).unwrap_or(0);
    if !row.present {
        return Ok((pos, None));
    }
    Ok((pos, Some(to_message(row.message)?)))
}

row! {
    /// A conversation row as both backends select it: the last message's columns, then the
    /// peer's name and the unread count.
    struct ConversationRow {
        last: MessageRow,
        peer_name: String,
        unread: i64,
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary.
pub fn cut_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

fn to_conversation(me: UserRef, row: ConversationRow) -> Result<Conversation, StoreError> {
    let ConversationRow { last, mut peer_name, unread } = row;
    cut_at_char(&mut peer_name, chat_protocol::MAX_NAME_BYTES);
    let last = to_message(last)?;
    Ok(Conversation { peer: last.peer_of(me), peer_name, last, unread: u32::try_from(unread).unwrap_or(u32::MAX) })
}

row! {
    /// A message row as both backends select it: id, sender role and id, recipient role and
    /// id, content, `createdAt` in milliseconds, `isRead`.
    struct MessageRow {
        id: String,
        sender_role: String,
        sender_id: i32,
        recipient_role: String,
        recipient_id: i32,
        content: String,
        created_at: i64,
        read: bool,
    }
}

fn to_message(row: MessageRow) -> Result<StoredMessage, StoreError> {
    let MessageRow { id, sender_role, sender_id, recipient_role, recipient_id, mut content, created_at, read } = row;
    if content.len() > chat_protocol::MAX_CONTENT_BYTES {
        // Only rows the app wrote itself can be this long (the server refuses them): send
        // the start, so every frame stays within its bound. The row is left as it is.
        tracing::warn!(
            id,
            len = content.len(),
            "a stored message is longer than the protocol allows; sending its start"
        );
        cut_at_char(&mut content, chat_protocol::MAX_CONTENT_BYTES - "…".len());
        content.push('…');
    }
    let bad = |what: &str| StoreError::BadRow(format!("message {id:?}: {what}"));
    Ok(StoredMessage {
        id: MessageId::parse(&id).ok_or_else(|| bad("id is not a UUID"))?,
        from: UserRef::new(Role::parse(&sender_role).ok_or_else(|| bad("unknown senderRole"))?, sender_id),
        to: UserRef::new(Role::parse(&recipient_role).ok_or_else(|| bad("unknown recipientRole"))?, recipient_id),
        content,
        created_at,
        read,
    })
}
