//! The chat client SDK.
