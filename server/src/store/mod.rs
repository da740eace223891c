//! The storage seam: everything the server reads from and writes to its database.
//!
//! [`Store`] is an enum over backends so the hot paths stay statically dispatched:
//! PostgreSQL (the app's own database, for real deployments) and SQLite (an embedded
//! file, for a start with nothing installed). Both speak in protocol values only: ids,
//! users, millisecond timestamps, cursors. Nothing here delivers frames: the writer and
//! the hub do that with what the store returns, so delivery is not welded to any backend.

mod postgres;
mod sqlite;

pub use postgres::{CONVERSATIONS_SQL, HISTORY_SQL, PgStore, SYNC_SQL};
pub use sqlite::{DirectoryUser, SqliteStore};

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
    /// Another sender owns this id.
    Conflict,
    /// Not stored now (the id already existed), but whose it is could not be read: the
    /// sender should retry, and will then get `Duplicate` or `Conflict`.
    Unresolved,
}

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
    /// Looks a user up in `users_view` by role and id; returns the display name.
    ///
    /// # Errors
    /// A database error.
    pub async fn find_user(&self, user: UserRef) -> Result<Option<String>, StoreError> {
        match self {
            Store::Postgres(s) => s.find_user(user).await,
            Store::Sqlite(s) => s.find_user(user).await,
        }
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
        match self {
            Store::Postgres(s) => s.insert_batch(batch, created_at).await,
            Store::Sqlite(s) => s.insert_batch(batch, created_at).await,
        }
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
        match self {
            Store::Postgres(s) => s.history(me, peer, before, limit).await,
            Store::Sqlite(s) => s.history(me, peer, before, limit).await,
        }
    }

    /// Messages to or from `me` strictly after `after`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// A database error.
    pub async fn sync(&self, me: UserRef, after: Cursor, limit: u16) -> Result<Vec<StoredMessage>, StoreError> {
        match self {
            Store::Postgres(s) => s.sync(me, after, limit).await,
            Store::Sqlite(s) => s.sync(me, after, limit).await,
        }
    }

    /// Every conversation of `me`, most recent first.
    ///
    /// # Errors
    /// A database error.
    pub async fn conversations(&self, me: UserRef) -> Result<Vec<Conversation>, StoreError> {
        match self {
            Store::Postgres(s) => s.conversations(me).await,
            Store::Sqlite(s) => s.conversations(me).await,
        }
    }

    /// Marks what `peer` sent `me` up to `up_to` as read; returns how many rows changed.
    ///
    /// # Errors
    /// A database error.
    pub async fn mark_read(&self, me: UserRef, peer: UserRef, up_to: Cursor, now: Millis) -> Result<u32, StoreError> {
        match self {
            Store::Postgres(s) => s.mark_read(me, peer, up_to, now).await,
            Store::Sqlite(s) => s.mark_read(me, peer, up_to, now).await,
        }
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// A database error.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Postgres(s) => s.ping().await,
            Store::Sqlite(s) => s.ping().await,
        }
    }
}

/// A conversation row as both backends select it: the last message's columns, then the
/// peer's name and the unread count.
type ConversationRow = (String, String, i32, String, i32, String, i64, bool, String, i64);

fn to_conversation(me: UserRef, row: ConversationRow) -> Result<Conversation, StoreError> {
    let (id, sr, si, rr, ri, content, at, read, peer_name, unread) = row;
    let last = to_message((id, sr, si, rr, ri, content, at, read))?;
    Ok(Conversation { peer: last.peer_of(me), peer_name, last, unread: u32::try_from(unread).unwrap_or(u32::MAX) })
}

/// A message row as both backends select it: id, sender role and id, recipient role and
/// id, content, `createdAt` in milliseconds, `isRead`.
type MessageRow = (String, String, i32, String, i32, String, i64, bool);

fn to_message(row: MessageRow) -> Result<StoredMessage, StoreError> {
    let (id, sender_role, sender_id, recipient_role, recipient_id, content, created_at, read) = row;
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
