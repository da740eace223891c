//! The limits both ends enforce, and the validation functions that enforce them.
//!
//! The client runs the same checks before sending, so an invalid request fails at once
//! with the same code the server would have answered.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::frame::ClientFrame;
use crate::ids::{MessageId, UserRef};

/// The largest client frame, in bytes. Checked before any decoding.
pub const MAX_CLIENT_FRAME_BYTES: usize = 32 * 1024;

/// The largest server frame, in bytes (a full page of maximum-length messages fits).
pub const MAX_SERVER_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// The longest message content, in UTF-8 bytes.
pub const MAX_CONTENT_BYTES: usize = 16 * 1024;

/// The longest auth token, in bytes.
pub const MAX_TOKEN_BYTES: usize = 4 * 1024;

/// The largest history page.
pub const MAX_HISTORY_PAGE: u16 = 100;

/// The largest catch-up (sync) page.
pub const MAX_SYNC_PAGE: u16 = 200;

/// The most users one connection may watch the presence of.
pub const MAX_WATCH_LIST: usize = 256;

/// The limits a server announces in its welcome. A server may be stricter than the
/// protocol's constants, never looser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// The largest client frame accepted, in bytes.
    pub max_frame_bytes: u32,
    /// The longest content accepted, in UTF-8 bytes.
    pub max_content_bytes: u32,
    /// The largest history page.
    pub max_history_page: u16,
    /// The longest presence watch list.
    pub max_watch_list: u16,
    /// Sustained requests per second allowed per connection.
    pub requests_per_second: u32,
    /// Requests allowed in a burst above the sustained rate.
    pub request_burst: u32,
    /// The connection is closed after this long without any frame from the client.
    pub idle_timeout_ms: u32,
}

impl Limits {
    /// The protocol's own limits, with the given flow-control settings.
    #[must_use]
    pub const fn protocol(requests_per_second: u32, request_burst: u32, idle_timeout_ms: u32) -> Self {
        Limits {
            max_frame_bytes: MAX_CLIENT_FRAME_BYTES as u32,
            max_content_bytes: MAX_CONTENT_BYTES as u32,
            max_history_page: MAX_HISTORY_PAGE,
            max_watch_list: MAX_WATCH_LIST as u16,
            requests_per_second,
            request_burst,
            idle_timeout_ms,
        }
    }
}

/// Checks message content: not empty or whitespace-only, at most [`MAX_CONTENT_BYTES`],
/// and no NUL (PostgreSQL `TEXT` cannot store it).
///
/// # Errors
/// [`ErrorCode::CONTENT_EMPTY`], [`ErrorCode::CONTENT_TOO_LONG`] or [`ErrorCode::CONTENT_INVALID`].
pub fn validate_content(content: &str) -> Result<(), ErrorCode> {
    if content.len() > MAX_CONTENT_BYTES {
        return Err(ErrorCode::CONTENT_TOO_LONG);
    }
    if content.trim().is_empty() {
        return Err(ErrorCode::CONTENT_EMPTY);
    }
    if content.contains('\0') {
        return Err(ErrorCode::CONTENT_INVALID);
    }
    Ok(())
}

/// Checks a message id: the nil UUID is never a message.
///
/// # Errors
/// [`ErrorCode::BAD_MESSAGE_ID`].
pub fn validate_message_id(id: &MessageId) -> Result<(), ErrorCode> {
    if id.is_nil() { Err(ErrorCode::BAD_MESSAGE_ID) } else { Ok(()) }
}

/// Checks a user reference: ids are `SERIAL` keys, so positive.
///
/// # Errors
/// [`ErrorCode::BAD_USER_ID`].
pub fn validate_user(user: &UserRef) -> Result<(), ErrorCode> {
    if user.id > 0 { Ok(()) } else { Err(ErrorCode::BAD_USER_ID) }
}

/// Checks a page size against its maximum: 1..=max.
///
/// # Errors
/// [`ErrorCode::BAD_LIMIT`].
pub fn validate_page_limit(limit: u16, max: u16) -> Result<(), ErrorCode> {
    if limit == 0 || limit > max { Err(ErrorCode::BAD_LIMIT) } else { Ok(()) }
}

fn validate_token(token: &str) -> Result<(), ErrorCode> {
    if token.len() > MAX_TOKEN_BYTES { Err(ErrorCode::TOKEN_TOO_LONG) } else { Ok(()) }
}

impl ClientFrame {
    /// Runs every check the protocol defines for this frame. The server runs it on every
    /// decoded frame; the client runs it before sending.
    ///
    /// # Errors
    /// The code of the first failed check.
    pub fn validate(&self) -> Result<(), ErrorCode> {
        match self {
            ClientFrame::Hello { token, .. } | ClientFrame::RefreshToken { token, .. } => validate_token(token),
            ClientFrame::Send { id, to, content, .. } => {
                validate_message_id(id)?;
                validate_user(to)?;
                validate_content(content)
            }
            ClientFrame::History { peer, limit, .. } => {
                validate_user(peer)?;
                validate_page_limit(*limit, MAX_HISTORY_PAGE)
            }
            ClientFrame::MarkRead { peer, up_to, .. } => {
                validate_user(peer)?;
                validate_message_id(&up_to.id)
            }
            ClientFrame::Typing { peer, .. } => validate_user(peer),
            ClientFrame::WatchPresence { users, .. } => {
                if users.len() > MAX_WATCH_LIST {
                    return Err(ErrorCode::WATCH_LIST_TOO_LONG);
                }
                users.iter().try_for_each(validate_user)
            }
            ClientFrame::Sync { limit, .. } => validate_page_limit(*limit, MAX_SYNC_PAGE),
            ClientFrame::Conversations { .. } | ClientFrame::Ping { .. } => Ok(()),
        }
    }
}
