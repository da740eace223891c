//! Encoding and decoding frames.
//!
//! Decoding checks the input length against the direction's limit before parsing, and
//! postcard reads a string's bytes from the input before allocating, so a frame that
//! claims a 4 GB string fails with [`DecodeError::Truncated`] instead of allocating.
//! Decoding never panics on any input (see the property tests and the fuzz target).

use alloc::vec::Vec;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DecodeError;
use crate::frame::{ClientFrame, ServerFrame};
use crate::limits::{MAX_CLIENT_FRAME_BYTES, MAX_SERVER_FRAME_BYTES};

/// Why a frame could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The encoded frame would exceed the direction's limit, so the peer would refuse it.
    TooLarge {
        /// The encoded length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The serializer failed (not expected for the types of this crate).
    Serialize,
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EncodeError::TooLarge { len, max } => {
                write!(f, "encoded frame of {len} bytes exceeds the limit of {max} bytes")
            }
            EncodeError::Serialize => f.write_str("frame could not be serialized"),
        }
    }
}

impl core::error::Error for EncodeError {}

fn encode_into<T: Serialize>(value: &T, buf: &mut Vec<u8>, max: usize) -> Result<(), EncodeError> {
    let start = buf.len();
    let mut out = core::mem::take(buf);
    out = postcard::to_extend(value, out).map_err(|_| EncodeError::Serialize)?;
    let len = out.len() - start;
    if len > max {
        out.truncate(start);
        *buf = out;
        return Err(EncodeError::TooLarge { len, max });
    }
    *buf = out;
    Ok(())
}

fn decode<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge { len: bytes.len(), max });
    }
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Ok(value),
        Ok(_) => Err(DecodeError::TrailingBytes),
        Err(postcard::Error::DeserializeUnexpectedEnd) => Err(DecodeError::Truncated),
        Err(postcard::Error::DeserializeBadUtf8) => Err(DecodeError::InvalidUtf8),
        Err(_) => Err(DecodeError::Malformed),
    }
}

impl ClientFrame {
    /// Encodes the frame into a new buffer.
    ///
    /// # Errors
    /// [`EncodeError::TooLarge`] if it exceeds [`MAX_CLIENT_FRAME_BYTES`].
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut buf = Vec::new();
        self.encode_into(&mut buf)?;
        Ok(buf)
    }

    /// Appends the encoded frame to `buf` (left unchanged on error).
    ///
    /// # Errors
    /// [`EncodeError::TooLarge`] if it exceeds [`MAX_CLIENT_FRAME_BYTES`].
    pub fn encode_into(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = buf.len();
        crate::encode::client_frame(self, buf);
        let len = buf.len() - start;
        if len > MAX_CLIENT_FRAME_BYTES {
            buf.truncate(start);
            return Err(EncodeError::TooLarge { len, max: MAX_CLIENT_FRAME_BYTES });
        }
        Ok(())
    }

    /// Encodes the frame with serde's derived encoder: what [`ClientFrame::encode`] (the
    /// hand-written one of `crate::encode`) must agree with, kept for the tests that compare them.
    ///
    /// # Errors
    /// [`EncodeError::TooLarge`] if it exceeds [`MAX_CLIENT_FRAME_BYTES`].
    #[doc(hidden)]
    pub fn encode_with_serde(&self) -> Result<Vec<u8>, EncodeError> {
        let mut buf = Vec::new();
        encode_into(self, &mut buf, MAX_CLIENT_FRAME_BYTES)?;
        Ok(buf)
    }

    /// Decodes one client frame, which must span all of `bytes`.
    ///
    /// # Errors
    /// A [`DecodeError`]; never panics.
    pub fn decode(bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
        decode(bytes, MAX_CLIENT_FRAME_BYTES)
    }
}

impl ServerFrame {
    /// Encodes the frame into a new buffer.
    ///
    /// # Errors
    /// [`EncodeError::TooLarge`] if it exceeds [`MAX_SERVER_FRAME_BYTES`].
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut buf = Vec::new();
        self.encode_into(&mut buf)?;
        Ok(buf)
    }

    /// Appends the encoded frame to `buf` (left unchanged on error).
    ///
    /// # Errors
    /// [`EncodeError::TooLarge`] if it exceeds [`MAX_SERVER_FRAME_BYTES`].
    pub fn encode_into(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        encode_into(self, buf, MAX_SERVER_FRAME_BYTES)
    }

    /// Decodes one server frame, which must span all of `bytes`, with the hand-written
    /// decoder of [`crate::decode`] (what serde's derived decoder reads, in less code).
    ///
    /// # Errors
    /// A [`DecodeError`]; never panics.
    pub fn decode(bytes: &[u8]) -> Result<ServerFrame, DecodeError> {
        if bytes.len() > MAX_SERVER_FRAME_BYTES {
            return Err(DecodeError::TooLarge { len: bytes.len(), max: MAX_SERVER_FRAME_BYTES });
        }
        crate::decode::server_frame(bytes)
    }

    /// Decodes one server frame with serde's derived decoder: what [`ServerFrame::decode`]
    /// must agree with, kept for the tests that compare them.
    ///
    /// # Errors
    /// A [`DecodeError`]; never panics.
    #[doc(hidden)]
    pub fn decode_with_serde(bytes: &[u8]) -> Result<ServerFrame, DecodeError> {
        decode(bytes, MAX_SERVER_FRAME_BYTES)
    }
}
