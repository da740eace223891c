//! The chat wire protocol: every frame the server and its clients exchange.
//!
//! This crate is shared, byte for byte, by the server (`server/`) and the client SDK
//! (`client-wasm/`, native and in the browser). It is `no_std` + `alloc` and does no IO:
//! it reads no clock, draws no random numbers and knows nothing of sockets, axum, sqlx
//! or the browser. Callers pass bytes in and get typed frames out, and the other way round.
//!
//! Layout:
//! - [`ids`]: who and what frames talk about: [`Role`], [`UserRef`], [`MessageId`], [`Cursor`].
//! - [`frame`]: [`ClientFrame`] (client -> server) and [`ServerFrame`] (server -> client).
//! - [`error`]: [`ErrorCode`], the stable numeric codes both ends report, and [`DecodeError`].
//! - [`limits`]: the limits in force as named constants, and the validation both ends run.
//! - [`codec`]: [`ClientFrame::decode`] and friends, with the size checks done before any parsing.
//!
//! On the wire each frame is one binary WebSocket message holding one postcard-encoded
//! [`ClientFrame`] or [`ServerFrame`]. Postcard encodes enum variants by index, so every
//! enum here is append-only: new variants go at the end, existing ones never move. The
//! golden vectors in `tests/golden.rs` fail when that rule is broken.
#![no_std]
#![warn(missing_docs)]

extern crate alloc;

pub mod codec;
mod decode;
mod encode;
pub mod error;
pub mod frame;
pub mod ids;
pub mod limits;

pub use codec::EncodeError;
pub use error::{DecodeError, ErrorCode};
pub use frame::{ClientFrame, Conversation, Revision, ServerFrame, StoredMessage};
pub use ids::{Cursor, HyphenatedId, IdGenerator, MessageId, Millis, RequestId, Role, UserRef};
pub use limits::{
    Limits, MAX_BLOCKS, MAX_CLIENT_FRAME_BYTES, MAX_CONTENT_BYTES, MAX_CONVERSATIONS_PAGE, MAX_HISTORY_PAGE,
    MAX_NAME_BYTES, MAX_PAGE_BYTES, MAX_REASON_BYTES, MAX_REVISIONS, MAX_SERVER_FRAME_BYTES, MAX_SYNC_PAGE,
    MAX_TOKEN_BYTES, MAX_WATCH_LIST, PageBudget, validate_content, validate_message_id, validate_page_limit,
    validate_user,
};

/// The protocol version this crate speaks. A client states it in its hello; the server
/// refuses a version it does not support with [`ErrorCode::UNSUPPORTED_VERSION`].
///
/// Version 2 added `ConversationsPage` (the conversation list in pages) and packs every
/// page by bytes ([`MAX_PAGE_BYTES`]); version 1 clients are still served. Version 3
/// added the message log's positions (`MessageAt`, `CatchUp`, `CatchUpPage`, `Position`):
/// a catch-up by log position has no gap whichever node wrote a message and however the
/// nodes' clocks differ; version 1 and 2 clients still get `Message` and `Sync`. Version 4
/// added safety: `Block`, `Blocks`, `Report`, `SuperviseConversations`, `SuperviseHistory`, `Edit`,
/// `Delete`, `Changed`, `QuietHours`, `SuperviseRevisions` and `Revisions`, and the codes `blocked`, `reply_only` and
/// `unknown_message` (older clients see them as codes they do not know). Version 5 lets a
/// live message arrive before its log position is known: the server sends `Message` the
/// moment it committed, and `Position` frames at any time after the first (each says every
/// message of the user up to it has been sent); version 3 and 4 clients still get every
/// live message as `MessageAt`, in log order.
pub const PROTOCOL_VERSION: u16 = 5;

/// The oldest client protocol version this crate's server side still accepts.
pub const MIN_SUPPORTED_VERSION: u16 = 1;

/// Whether a client speaking `version` can talk to a server built from this crate.
#[must_use]
pub const fn is_supported_version(version: u16) -> bool {
    version >= MIN_SUPPORTED_VERSION && version <= PROTOCOL_VERSION
}
