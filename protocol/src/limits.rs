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

/// The largest server frame, in bytes. Pages are packed to [`MAX_PAGE_BYTES`] (see
/// [`PageBudget`]), so the largest page is that plus one item and a small header: every
/// frame a server produces fits, with room to spare.
pub const MAX_SERVER_FRAME_BYTES: usize = 1024 * 1024;

/// The byte budget of one page (history, catch-up, conversation list): a server stops
/// adding items once the next would pass it, and says there is more. A page always holds
/// at least one item, so a page can exceed this by at most one item.
pub const MAX_PAGE_BYTES: usize = 512 * 1024;

/// The longest display name sent, in UTF-8 bytes; longer names (the app's own table has
/// no limit) are cut at a character boundary.
pub const MAX_NAME_BYTES: usize = 256;

/// The longest message content, in UTF-8 bytes.
pub const MAX_CONTENT_BYTES: usize = 16 * 1024;

/// The longest reason a report may give, in UTF-8 bytes.
pub const MAX_REASON_BYTES: usize = 1024;

/// The longest auth token, in bytes.
pub const MAX_TOKEN_BYTES: usize = 4 * 1024;

/// The largest history page.
pub const MAX_HISTORY_PAGE: u16 = 100;

/// The largest catch-up (sync) page.
pub const MAX_SYNC_PAGE: u16 = 200;

/// The largest conversation-list page.
pub const MAX_CONVERSATIONS_PAGE: u16 = 100;

/// The most users one connection may watch the presence of.
pub const MAX_WATCH_LIST: usize = 256;

/// The most users one user may have blocked at once (so `Blocks` fits one frame).
pub const MAX_BLOCKS: usize = 1000;

/// The most earlier texts of one message a `Revisions` answer carries (the newest ones;
/// exports have them all), so it fits one frame.
pub const MAX_REVISIONS: usize = 32;

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

/// Checks message content: at most [`MAX_CONTENT_BYTES`]; not empty, whitespace-only or
/// made only of invisible characters (zero-width spaces and joiners, word joiner, BOM,
/// soft hyphen...); and free of characters that cannot be stored or that make text lie
/// about itself:
/// - NUL (PostgreSQL `TEXT` cannot store it);
/// - control characters other than tab, line feed and carriage return, C0 and C1
///   (ESC starts terminal escape sequences, which a staff member reading an export or a
///   log in a terminal would have executed);
/// - the bidirectional embedding, override and isolate controls U+202A–U+202E and
///   U+2066–U+2069 ("Trojan Source": text that displays differently from what it says).
///   Right-to-left languages do not need them: the Unicode bidi algorithm orders Arabic
///   and Hebrew text by itself.
///
/// Such content is refused, never silently changed: the sender sees why at once.
///
/// # Errors
/// [`ErrorCode::CONTENT_EMPTY`], [`ErrorCode::CONTENT_TOO_LONG`] or [`ErrorCode::CONTENT_INVALID`].
pub fn validate_content(content: &str) -> Result<(), ErrorCode> {
    if content.len() > MAX_CONTENT_BYTES {
        return Err(ErrorCode::CONTENT_TOO_LONG);
    }
    let mut visible = false;
    for c in content.chars() {
        if is_forbidden(c) {
            return Err(ErrorCode::CONTENT_INVALID);
        }
        visible |= !c.is_whitespace() && !is_invisible(c);
    }
    if visible { Ok(()) } else { Err(ErrorCode::CONTENT_EMPTY) }
}

/// Characters refused anywhere in content (see [`validate_content`]), as inclusive ranges.
const FORBIDDEN: &[(u32, u32)] = &[(0, 8), (0xb, 0xc), (0xe, 0x1f), (0x7f, 0x9f), (0x202a, 0x202e), (0x2066, 0x2069)];

/// Characters that render as nothing: content made only of these (and whitespace) is empty.
const INVISIBLE: &[(u32, u32)] = &[
    (0xad, 0xad),
    (0x34f, 0x34f),
    (0x61c, 0x61c),
    (0x115f, 0x1160),
    (0x17b4, 0x17b5),
    (0x180b, 0x180f),
    (0x200b, 0x200f),
    (0x2060, 0x2064),
    (0x206a, 0x206f),
    (0x3164, 0x3164),
    (0xfe00, 0xfe0f),
    (0xfeff, 0xfeff),
    (0xffa0, 0xffa0),
    (0x1d173, 0x1d17a),
    (0xe0000, 0xe007f),
    (0xe0100, 0xe01ef),
];

/// Whether `c` falls in one of `ranges`. (A table rather than a `match`: the browser SDK
/// runs this too, and a loop over data is smaller than a tree of comparisons.)
fn in_ranges(c: char, ranges: &[(u32, u32)]) -> bool {
    let c = u32::from(c);
    ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi)
}

fn is_forbidden(c: char) -> bool {
    in_ranges(c, FORBIDDEN)
}

fn is_invisible(c: char) -> bool {
    in_ranges(c, INVISIBLE)
}

/// Packs a page by bytes: a server adds items while [`PageBudget::admit`] says yes and
/// reports "more" at the first no. The first item is always admitted, so every page makes
/// progress; the rest must keep the page within [`MAX_PAGE_BYTES`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PageBudget {
    used: usize,
    items: usize,
}

impl PageBudget {
    /// An empty page.
    #[must_use]
    pub const fn new() -> Self {
        PageBudget { used: 0, items: 0 }
    }

    /// Whether an item of (at most) `len` encoded bytes still fits; if so it is counted.
    pub fn admit(&mut self, len: usize) -> bool {
        if self.items > 0 && self.used.saturating_add(len) > MAX_PAGE_BYTES {
            return false;
        }
        self.used = self.used.saturating_add(len);
        self.items += 1;
        true
    }
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
            ClientFrame::Sync { limit, .. } | ClientFrame::CatchUp { limit, .. } => {
                validate_page_limit(*limit, MAX_SYNC_PAGE)
            }
            ClientFrame::ConversationsPage { limit, before, .. } => {
                if let Some(cursor) = before {
                    validate_message_id(&cursor.id)?;
                }
                validate_page_limit(*limit, MAX_CONVERSATIONS_PAGE)
            }
            ClientFrame::Block { user, .. } => validate_user(user),
            ClientFrame::Edit { id, content, .. } => {
                validate_message_id(id)?;
                validate_content(content)
            }
            ClientFrame::Delete { id, .. } => validate_message_id(id),
            ClientFrame::SuperviseRevisions { student, id, .. } => {
                validate_user(student)?;
                validate_message_id(id)
            }
            ClientFrame::SuperviseConversations { student, before, limit, .. } => {
                validate_user(student)?;
                if let Some(cursor) = before {
                    validate_message_id(&cursor.id)?;
                }
                validate_page_limit(*limit, MAX_CONVERSATIONS_PAGE)
            }
            ClientFrame::SuperviseHistory { student, peer, limit, .. } => {
                validate_user(student)?;
                validate_user(peer)?;
                validate_page_limit(*limit, MAX_HISTORY_PAGE)
            }
            ClientFrame::Report { id, reason, .. } => {
                validate_message_id(id)?;
                if reason.len() > MAX_REASON_BYTES {
                    return Err(ErrorCode::CONTENT_TOO_LONG);
                }
                validate_content(reason)
            }
            ClientFrame::Conversations { .. } | ClientFrame::Ping { .. } | ClientFrame::Blocks { .. } => Ok(()),
        }
    }
}
