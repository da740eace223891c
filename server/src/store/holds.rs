//! Legal holds (`chat_hold`) on both backends: a held user's messages, the earlier texts of
//! those messages and the reports they are in outlive retention, and `erase` refuses while the
//! hold stands (`records/`). The commands that place, list and release holds audit each change.

use chat_protocol::{Millis, Role, UserRef};

use super::{Store, StoreError, bounded};

/// A hold on a user's records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    /// Whose records are held.
    pub user: UserRef,
    /// Why (a case or request number, as the school wrote it).
    pub reason: String,
    /// Who placed it (as the audit log records the operator).
    pub placed_by: String,
    /// When.
    pub placed_at: Millis,
}

row! {
    /// A hold's columns.
    struct HoldRow {
        user_role: String,
        user_id: i32,
        reason: String,
        placed_by: String,
        placed_at: i64,
    }
}

fn to_hold(row: HoldRow) -> Result<Hold, StoreError> {
    let role = Role::parse(&row.user_role)
        .ok_or_else(|| StoreError::BadRow(format!("hold: unknown role {:?}", row.user_role)))?;
    Ok(Hold {
        user: UserRef::new(role, row.user_id),
        reason: row.reason,
        placed_by: row.placed_by,
        placed_at: row.placed_at,
    })
}

/// The SQL condition that neither of two users, given as the columns naming their roles and ids
/// (e.g. `m."senderRole"`, `m."senderId"`, `m."recipientRole"`, `m."recipientId"`), is held:
/// what retention adds to every delete.
pub(crate) fn not_held(role_a: &str, id_a: &str, role_b: &str, id_b: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM chat_hold h WHERE (h.user_role = {role_a} AND h.user_id = {id_a}) \
         OR (h.user_role = {role_b} AND h.user_id = {id_b}))"
    )
}

/// [`not_held`] for a `"Message"` row aliased `m`.
pub(crate) fn message_not_held() -> String {
    not_held(r#"m."senderRole""#, r#"m."senderId""#, r#"m."recipientRole""#, r#"m."recipientId""#)
}

impl Store {
    /// Places a hold on `user`'s records; `false` when one is already in place (it is left as
    /// it is).
    ///
    /// # Errors
    /// A database error.
    pub async fn place_hold(&self, user: UserRef, reason: &str, by: &str, at: Millis) -> Result<bool, StoreError> {
        let placed = both!(
            self,
            query,
            "INSERT INTO chat_hold (user_role, user_id, reason, placed_by, placed_at)
             VALUES ($1, $2, $3, $4, TIMESTAMP '1970-01-01' + $5::int8 * INTERVAL '1 millisecond')
             ON CONFLICT DO NOTHING",
            "INSERT INTO chat_hold (user_role, user_id, reason, placed_by, placed_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT DO NOTHING",
            [user.role.as_str(), user.id, reason, by, at],
            execute
        )
        .await?;
        Ok(placed > 0)
    }

    /// Every hold in place, oldest first.
    ///
    /// # Errors
    /// A database error.
    pub async fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        let rows: Vec<HoldRow> = both!(
            self,
            query_as,
            "SELECT user_role, user_id, reason, placed_by, (EXTRACT(EPOCH FROM placed_at) * 1000)::int8
             FROM chat_hold ORDER BY placed_at, user_role, user_id",
            "SELECT user_role, user_id, reason, placed_by, placed_at FROM chat_hold ORDER BY placed_at, user_role, user_id",
            [],
            fetch_all
        )
        .await?;
        rows.into_iter().map(to_hold).collect()
    }

    /// The hold on `user`'s records, if there is one.
    ///
    /// # Errors
    /// A database error.
    pub async fn hold_of(&self, user: UserRef) -> Result<Option<Hold>, StoreError> {
        let row: Option<HoldRow> = both!(
            self,
            query_as,
            "SELECT user_role, user_id, reason, placed_by, (EXTRACT(EPOCH FROM placed_at) * 1000)::int8
             FROM chat_hold WHERE user_role = $1 AND user_id = $2",
            "SELECT user_role, user_id, reason, placed_by, placed_at FROM chat_hold WHERE user_role = ?1 AND user_id = ?2",
            [user.role.as_str(), user.id],
            fetch_optional
        )
        .await?;
        row.map(to_hold).transpose()
    }

    /// Releases the hold on `user`'s records; returns it, or `None` when there was none.
    ///
    /// # Errors
    /// A database error.
    pub async fn release_hold(&self, user: UserRef) -> Result<Option<Hold>, StoreError> {
        let row: Option<HoldRow> = both!(
            self,
            query_as,
            "DELETE FROM chat_hold WHERE user_role = $1 AND user_id = $2
             RETURNING user_role, user_id, reason, placed_by, (EXTRACT(EPOCH FROM placed_at) * 1000)::int8",
            "DELETE FROM chat_hold WHERE user_role = ?1 AND user_id = ?2
             RETURNING user_role, user_id, reason, placed_by, placed_at",
            [user.role.as_str(), user.id],
            fetch_optional
        )
        .await?;
        row.map(to_hold).transpose()
    }
}
