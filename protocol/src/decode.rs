//! A hand-written decoder for [`ServerFrame`]: the bytes serde's derived `Deserialize`
//! reads over postcard, read the same way, with the same results and the same errors (the
//! property tests compare the two on every kind of frame and on random and mutated
//! bytes), in a fraction of the code. Every client decodes every frame with it; in the
//! browser SDK serde's derived decoder (a visitor per variant and struct, and an instance
//! of the sequence reader per field type) was the largest single item of the wasm.
//!
//! postcard's format, as read here: integers wider than a byte are LEB128 varints of at
//! most `ceil(bits / 7)` bytes (the last one within the type's range), signed ones
//! zigzagged; `bool` and `Option`'s tag are one byte, 0 or 1; a length is a varint of the
//! platform's `usize`; strings are UTF-8 after their length; an enum is its variant's
//! index (a `u32` varint) and then its fields; structs, tuples and arrays are their
//! fields in order.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{DecodeError, ErrorCode};
use crate::frame::{Conversation, Revision, ServerFrame, StoredMessage};
use crate::ids::{Cursor, MessageId, Role, UserRef};
use crate::limits::Limits;

type Result<T> = core::result::Result<T, DecodeError>;

/// Decodes one server frame spanning all of `bytes` (the length limit is the caller's).
pub(crate) fn server_frame(bytes: &[u8]) -> Result<ServerFrame> {
    let mut r = Reader { rest: bytes };
    let frame = r.frame()?;
    if r.rest.is_empty() { Ok(frame) } else { Err(DecodeError::TrailingBytes) }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8> {
        let (&first, rest) = self.rest.split_first().ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(first)
    }

    /// A varint of an unsigned type of `bits` bits.
    fn varint(&mut self, bits: u32) -> Result<u64> {
        let max_bytes = bits.div_ceil(7);
        let max_last = (1u8 << (bits % 7)) - 1;
        let mut out = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            out |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                return if i == max_bytes - 1 && b > max_last { Err(DecodeError::Malformed) } else { Ok(out) };
            }
        }
        Err(DecodeError::Malformed)
    }

    fn u16(&mut self) -> Result<u16> {
        // In range: `varint` refused anything wider.
        self.varint(16).map(|v| v as u16)
    }

    fn u32(&mut self) -> Result<u32> {
        self.varint(32).map(|v| v as u32)
    }

    fn u64(&mut self) -> Result<u64> {
        self.varint(64)
    }

    fn len(&mut self) -> Result<usize> {
        self.varint(usize::BITS).map(|v| v as usize)
    }

    fn i32(&mut self) -> Result<i32> {
        let n = self.u32()?;
        Ok(((n >> 1) as i32) ^ -((n & 1) as i32))
    }

    fn i64(&mut self) -> Result<i64> {
        let n = self.u64()?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    fn bool(&mut self) -> Result<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Malformed),
        }
    }

    fn string(&mut self) -> Result<String> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        core::str::from_utf8(bytes).map(String::from).map_err(|_| DecodeError::InvalidUtf8)
    }

    fn option<T>(&mut self, read: fn(&mut Self) -> Result<T>) -> Result<Option<T>> {
        match self.byte()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            _ => Err(DecodeError::Malformed),
        }
    }

    fn vec<T>(&mut self, read: fn(&mut Self) -> Result<T>) -> Result<Vec<T>> {
        let n = self.len()?;
        // Every element takes a byte at least: a length claiming more fails as truncated
        // without allocating for it.
        let mut out = Vec::with_capacity(n.min(self.rest.len()));
        for _ in 0..n {
            out.push(read(self)?);
        }
        Ok(out)
    }

    fn user(&mut self) -> Result<UserRef> {
        let role = match self.u32()? {
            0 => Role::Teacher,
            1 => Role::Student,
            _ => return Err(DecodeError::Malformed),
        };
        Ok(UserRef::new(role, self.i32()?))
    }

    fn id(&mut self) -> Result<MessageId> {
        let mut out = [0u8; 16];
        out.copy_from_slice(self.take(16)?);
        Ok(MessageId(out))
    }

    fn cursor(&mut self) -> Result<Cursor> {
        Ok(Cursor { at: self.i64()?, id: self.id()? })
    }

    fn code(&mut self) -> Result<ErrorCode> {
        self.u16().map(ErrorCode)
    }

    fn message(&mut self) -> Result<StoredMessage> {
        Ok(StoredMessage {
            id: self.id()?,
            from: self.user()?,
            to: self.user()?,
            content: self.string()?,
            created_at: self.i64()?,
            read: self.bool()?,
        })
    }

    fn conversation(&mut self) -> Result<Conversation> {
        Ok(Conversation { peer: self.user()?, peer_name: self.string()?, last: self.message()?, unread: self.u32()? })
    }

    fn revision(&mut self) -> Result<Revision> {
        Ok(Revision { at: self.i64()?, deleted: self.bool()?, before: self.string()? })
    }

    fn window(&mut self) -> Result<(i64, i64)> {
        Ok((self.i64()?, self.i64()?))
    }

    fn limits(&mut self) -> Result<Limits> {
        Ok(Limits {
            max_frame_bytes: self.u32()?,
            max_content_bytes: self.u32()?,
            max_history_page: self.u16()?,
            max_watch_list: self.u16()?,
            requests_per_second: self.u32()?,
            request_burst: self.u32()?,
            idle_timeout_ms: self.u32()?,
        })
    }

    /// The variants in declaration order (postcard's index); fields in declaration order.
    fn frame(&mut self) -> Result<ServerFrame> {
        Ok(match self.u32()? {
            0 => ServerFrame::Welcome {
                user: self.user()?,
                name: self.string()?,
                server_time: self.i64()?,
                token_expires_at: self.i64()?,
                limits: self.limits()?,
            },
            1 => ServerFrame::Sent { req: self.u32()?, id: self.id()?, created_at: self.i64()? },
            2 => ServerFrame::Error { req: self.u32()?, code: self.code()?, message: self.string()? },
            3 => ServerFrame::Message { message: self.message()? },
            4 => ServerFrame::History {
                req: self.u32()?,
                peer: self.user()?,
                messages: self.vec(Self::message)?,
                next: self.option(Self::cursor)?,
            },
            5 => ServerFrame::Conversations { req: self.u32()?, conversations: self.vec(Self::conversation)? },
            6 => ServerFrame::Read { reader: self.user()?, peer: self.user()?, up_to: self.cursor()? },
            7 => ServerFrame::Typing { from: self.user()?, on: self.bool()? },
            8 => ServerFrame::Presence { user: self.user()?, online: self.bool()? },
            9 => ServerFrame::Pong { req: self.u32()?, server_time: self.i64()? },
            10 => ServerFrame::Fatal { code: self.code()?, message: self.string()? },
            11 => ServerFrame::Done { req: self.u32()? },
            12 => ServerFrame::Watching { req: self.u32()?, online: self.vec(Self::user)? },
            13 => ServerFrame::TokenRefreshed { req: self.u32()?, expires_at: self.i64()? },
            14 => ServerFrame::MarkedRead { req: self.u32()?, count: self.u32()? },
            15 => ServerFrame::SyncPage { req: self.u32()?, messages: self.vec(Self::message)?, more: self.bool()? },
            16 => ServerFrame::ConversationsPage {
                req: self.u32()?,
                conversations: self.vec(Self::conversation)?,
                next: self.option(Self::cursor)?,
            },
            17 => ServerFrame::MessageAt { message: self.message()?, position: self.u64()? },
            18 => ServerFrame::CatchUpPage {
                req: self.u32()?,
                messages: self.vec(Self::message)?,
                last: self.u64()?,
                more: self.bool()?,
            },
            19 => ServerFrame::Position { position: self.u64()? },
            20 => ServerFrame::Blocks { req: self.u32()?, users: self.vec(Self::user)? },
            21 => ServerFrame::Changed { message: self.message()?, deleted: self.bool()? },
            22 => ServerFrame::QuietHours { windows: self.vec(Self::window)? },
            23 => ServerFrame::Revisions { req: self.u32()?, revisions: self.vec(Self::revision)? },
            _ => return Err(DecodeError::Malformed),
        })
    }
}
