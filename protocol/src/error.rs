//! Stable error codes and the decode error.
//!
//! An [`ErrorCode`] is a plain number on the wire, so a client built against an older
//! version of this crate still decodes codes it does not know. Codes are never reused.

use serde::{Deserialize, Serialize};

/// A stable numeric error code, carried by `ServerFrame::Error` (a request failed; the
/// connection stays open) and `ServerFrame::Fatal` (the server closes the connection).
///
/// When the server closes a connection because of a code, the WebSocket close code is
/// [`ErrorCode::close_code`] (`4000 + code`), so even a client that missed the fatal frame
/// learns why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub u16);

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $text:literal;)*) => {
        impl ErrorCode {
            $($(#[$doc])* pub const $name: ErrorCode = ErrorCode($value);)*

            /// Every code this version of the protocol defines.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];

            /// The code's stable snake_case name, e.g. `"content_empty"`, or `"unknown"`.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self.0 {
                    $($value => $text,)*
                    _ => "unknown",
                }
            }
        }
    };
}

codes! {
    // The frame itself is unusable: fatal.
    /// The bytes are not a frame of this protocol (including a text WebSocket message).
    BAD_FRAME = 1, "bad_frame";
    /// The frame is larger than the limit in force.
    FRAME_TOO_LARGE = 2, "frame_too_large";
    /// A string in the frame is not valid UTF-8.
    INVALID_UTF8 = 3, "invalid_utf8";
    /// The client's protocol version is not supported by this server.
    UNSUPPORTED_VERSION = 4, "unsupported_version";
    /// The first frame of a connection must be a hello.
    HELLO_REQUIRED = 5, "hello_required";
    /// No hello arrived in time.
    HELLO_TIMEOUT = 6, "hello_timeout";
    /// A second hello on an authenticated connection.
    ALREADY_AUTHENTICATED = 7, "already_authenticated";

    // Authentication.
    /// The token is malformed, forged, uses another algorithm, or lacks required claims.
    UNAUTHORIZED = 10, "unauthorized";
    /// The token has expired.
    TOKEN_EXPIRED = 11, "token_expired";
    /// The token names a user that does not exist in `users_view`.
    UNKNOWN_USER = 12, "unknown_user";
    /// A refreshed token names a different user than the connection's.
    IDENTITY_CHANGED = 13, "identity_changed";
    /// The browser page's origin is not one the server allows (`CHAT_ALLOWED_ORIGINS`): no
    /// token or retry helps; the server's settings must change.
    ORIGIN_NOT_ALLOWED = 14, "origin_not_allowed";

    // Request validation: the request is refused, the connection stays open.
    /// The content is empty or only whitespace.
    CONTENT_EMPTY = 20, "content_empty";
    /// The content is longer than the limit (in UTF-8 bytes).
    CONTENT_TOO_LONG = 21, "content_too_long";
    /// The content holds a character that cannot be stored (NUL).
    CONTENT_INVALID = 22, "content_invalid";
    /// The message id is the nil UUID.
    BAD_MESSAGE_ID = 23, "bad_message_id";
    /// A user id is not positive.
    BAD_USER_ID = 24, "bad_user_id";
    /// A page size is zero or above the limit.
    BAD_LIMIT = 25, "bad_limit";
    /// The presence watch list is longer than the limit.
    WATCH_LIST_TOO_LONG = 26, "watch_list_too_long";
    /// The token is longer than the limit.
    TOKEN_TOO_LONG = 27, "token_too_long";

    // Semantics.
    /// The recipient does not exist in `users_view`.
    UNKNOWN_RECIPIENT = 30, "unknown_recipient";
    /// The policy does not let these two users talk (e.g. student to student).
    NOT_ALLOWED = 31, "not_allowed";
    /// The message id is already stored for another sender.
    ID_CONFLICT = 32, "id_conflict";
    /// A user cannot message themself.
    SELF_MESSAGE = 33, "self_message";
    /// One of the two users has blocked the other (a teacher's block is a mute).
    BLOCKED = 34, "blocked";
    /// The policy lets this user reply to the other but not start the conversation: the
    /// other (e.g. the teacher) writes first.
    REPLY_ONLY = 35, "reply_only";
    /// No message with this id was sent to this user (what a report must name).
    UNKNOWN_MESSAGE = 36, "unknown_message";
    /// The school's moderation rules refuse this text; the message says why, in words the UI shows.
    CONTENT_BLOCKED = 37, "content_blocked";

    // Flow control.
    /// Too many requests; slow down and retry.
    RATE_LIMITED = 40, "rate_limited";
    /// The client did not read its frames fast enough and was disconnected.
    SLOW_CONSUMER = 41, "slow_consumer";
    /// The server holds its maximum number of connections.
    SERVER_FULL = 42, "server_full";
    /// Nothing was heard from the client for too long.
    IDLE_TIMEOUT = 43, "idle_timeout";
    /// This user already holds the most connections (tabs, devices) one user may open.
    TOO_MANY_CONNECTIONS = 44, "too_many_connections";

    // Server side.
    /// Something failed inside the server (e.g. the database); retry later.
    INTERNAL = 50, "internal";
    /// The server is shutting down; reconnect (to it or another instance).
    SHUTTING_DOWN = 51, "shutting_down";
    /// The server's write queue is full; retry shortly.
    OVERLOADED = 52, "overloaded";
    /// The database is unreachable or stalled; the request was not done. Retry shortly.
    UNAVAILABLE = 53, "unavailable";

    // Raised by clients themselves, never sent by the server.
    /// The request got no answer in time.
    REQUEST_TIMEOUT = 60, "request_timeout";
    /// Reserved; neither this server nor the SDK raises it (a request made before a
    /// disconnect waits for the next connection, or fails with `request_timeout`). Kept so
    /// the number is never given another meaning.
    CONNECTION_CLOSED = 61, "connection_closed";
    /// The client was closed by the application.
    CLIENT_CLOSED = 62, "client_closed";
}

/// The first WebSocket close code used for protocol error codes (`4000 + code`).
pub const CLOSE_CODE_BASE: u16 = 4000;

impl ErrorCode {
    /// The WebSocket close code that carries this error (`4000 + code`, in the private range).
    #[must_use]
    pub const fn close_code(self) -> u16 {
        if self.0 < 1000 { CLOSE_CODE_BASE + self.0 } else { CLOSE_CODE_BASE }
    }

    /// The error code a WebSocket close code carries, if it is one of ours.
    #[must_use]
    pub const fn from_close_code(code: u16) -> Option<ErrorCode> {
        if code > CLOSE_CODE_BASE && code < CLOSE_CODE_BASE + 1000 {
            Some(ErrorCode(code - CLOSE_CODE_BASE))
        } else {
            None
        }
    }

    /// Whether the same request may succeed if tried again later unchanged.
    #[must_use]
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::RATE_LIMITED
                | ErrorCode::SLOW_CONSUMER
                | ErrorCode::SERVER_FULL
                | ErrorCode::IDLE_TIMEOUT
                | ErrorCode::INTERNAL
                | ErrorCode::SHUTTING_DOWN
                | ErrorCode::OVERLOADED
                | ErrorCode::UNAVAILABLE
                | ErrorCode::TOO_MANY_CONNECTIONS
                | ErrorCode::REQUEST_TIMEOUT
                | ErrorCode::CONNECTION_CLOSED
                | ErrorCode::HELLO_TIMEOUT
        )
    }

    /// Whether a connection closed with this code means the credentials are no good, so
    /// reconnecting with the same token is pointless.
    #[must_use]
    pub const fn is_auth_failure(self) -> bool {
        matches!(
            self,
            ErrorCode::UNAUTHORIZED | ErrorCode::TOKEN_EXPIRED | ErrorCode::UNKNOWN_USER | ErrorCode::IDENTITY_CHANGED
        )
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why bytes could not be decoded into a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input is longer than the frame limit; nothing was parsed.
    TooLarge {
        /// The input's length in bytes.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The input ends in the middle of a frame.
    Truncated,
    /// A string is not valid UTF-8.
    InvalidUtf8,
    /// The input is not a frame of this protocol (unknown variant, bad varint, ...).
    Malformed,
    /// A whole frame was decoded but bytes are left over.
    TrailingBytes,
}

impl DecodeError {
    /// The error code reported to the peer for this decode failure.
    #[must_use]
    pub const fn code(self) -> ErrorCode {
        match self {
            DecodeError::TooLarge { .. } => ErrorCode::FRAME_TOO_LARGE,
            DecodeError::InvalidUtf8 => ErrorCode::INVALID_UTF8,
            DecodeError::Truncated | DecodeError::Malformed | DecodeError::TrailingBytes => ErrorCode::BAD_FRAME,
        }
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max} bytes")
            }
            DecodeError::Truncated => f.write_str("frame ends unexpectedly"),
            DecodeError::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            DecodeError::Malformed => f.write_str("bytes are not a frame of this protocol"),
            DecodeError::TrailingBytes => f.write_str("bytes left over after the frame"),
        }
    }
}

impl core::error::Error for DecodeError {}
