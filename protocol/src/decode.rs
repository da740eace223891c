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
    let mut r = Reader { rest: bytes, error: None };
    let frame = r.frame();
    match r.error {
        Some(error) => Err(error),
        None if !r.rest.is_empty() => Err(DecodeError::TrailingBytes),
        None => Ok(frame),
    }
}

/// Reads with a sticky error: the first failure is kept and empties the input, so every
/// later read fails too (its error ignored) and returns a default; the frame built from
/// those defaults is dropped by `server_frame`. No read returns early, so the code has no
/// early exits (and no drops of half-built frames) per field: a third of the size.
struct Reader<'a> {
    rest: &'a [u8],
    error: Option<DecodeError>,
}

impl<'a> Reader<'a> {
    fn fail(&mut self, error: DecodeError) {
        self.error.get_or_insert(error);
        self.rest = &[];
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        if n > self.rest.len() {
            self.fail(DecodeError::Truncated);
        }
        let (head, rest) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = rest;
        head
    }

    fn byte(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    /// A varint of an unsigned type of `bits` bits.
    fn varint(&mut self, bits: u32) -> u64 {
        let max_bytes = bits.div_ceil(7);
        let max_last = (1u8 << (bits % 7)) - 1;
        let mut out = 0u64;
        for i in 0..max_bytes {
            let b = self.byte();
            out |= u64::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                if i == max_bytes - 1 && b > max_last {
                    self.fail(DecodeError::Malformed);
                }
                return out;
            }
        }
        self.fail(DecodeError::Malformed);
        0
    }

    fn u16(&mut self) -> u16 {
        // In range: `varint` refused anything wider.
        self.varint(16) as u16
    }

    fn u32(&mut self) -> u32 {
        self.varint(32) as u32
    }

    fn u64(&mut self) -> u64 {
        self.varint(64)
    }

    fn len(&mut self) -> usize {
        self.varint(usize::BITS) as usize
    }

    fn i32(&mut self) -> i32 {
        let n = self.u32();
        ((n >> 1) as i32) ^ -((n & 1) as i32)
    }

    fn i64(&mut self) -> i64 {
        let n = self.u64();
        ((n >> 1) as i64) ^ -((n & 1) as i64)
    }

    /// A byte that must be 0 or 1 (a `bool`, an `Option`'s tag).
    fn bool(&mut self) -> bool {
        match self.byte() {
            0 => false,
            1 => true,
            _ => {
                self.fail(DecodeError::Malformed);
                false
            }
        }
    }

    fn string(&mut self) -> String {
        let n = self.len();
        let bytes = self.take(n);
        match core::str::from_utf8(bytes) {
            Ok(s) => String::from(s),
            Err(_) => {
                self.fail(DecodeError::InvalidUtf8);
                String::new()
            }
        }
    }

    fn option<T>(&mut self, read: fn(&mut Self) -> T) -> Option<T> {
        if self.bool() { Some(read(self)) } else { None }
    }

    fn vec<T>(&mut self, read: fn(&mut Self) -> T) -> Vec<T> {
        let n = self.len();
        // Grown as elements arrive (not allocated up front): a length claiming more than the
        // frame holds fails as truncated without allocating for it, and the loop ends at the
        // first failure. (No `with_capacity` per element type: smaller in the browser bundle.)
        let mut out = Vec::new();
        while out.len() < n && self.error.is_none() {
            out.push(read(self));
        }
        out
    }

    fn user(&mut self) -> UserRef {
        let role = match self.u32() {
            0 => Role::Teacher,
            1 => Role::Student,
            _ => {
                self.fail(DecodeError::Malformed);
                Role::Teacher
            }
        };
        UserRef::new(role, self.i32())
    }

    fn id(&mut self) -> MessageId {
        let mut out = [0u8; 16];
        let bytes = self.take(16);
        if let Some(head) = out.get_mut(..bytes.len()) {
            head.copy_from_slice(bytes);
        }
        MessageId(out)
    }

    fn cursor(&mut self) -> Cursor {
        Cursor { at: self.i64(), id: self.id() }
    }

    fn code(&mut self) -> ErrorCode {
        ErrorCode(self.u16())
    }

    fn message(&mut self) -> StoredMessage {
        StoredMessage {
            id: self.id(),
            from: self.user(),
            to: self.user(),
            content: self.string(),
            created_at: self.i64(),
            read: self.bool(),
        }
    }

    fn conversation(&mut self) -> Conversation {
        Conversation { peer: self.user(), peer_name: self.string(), last: self.message(), unread: self.u32() }
    }

    fn revision(&mut self) -> Revision {
        Revision { at: self.i64(), deleted: self.bool(), before: self.string() }
    }

    fn window(&mut self) -> (i64, i64) {
        (self.i64(), self.i64())
    }

    fn limits(&mut self) -> Limits {
        Limits {
            max_frame_bytes: self.u32(),
            max_content_bytes: self.u32(),
            max_history_page: self.u16(),
            max_watch_list: self.u16(),
            requests_per_second: self.u32(),
            request_burst: self.u32(),
            idle_timeout_ms: self.u32(),
        }
    }

    /// The variants in declaration order (postcard's index); fields in declaration order
    /// (Rust evaluates a struct expression's fields in the order written).
    fn frame(&mut self) -> ServerFrame {
        match self.u32() {
            0 => ServerFrame::Welcome {
                user: self.user(),
                name: self.string(),
                server_time: self.i64(),
                token_expires_at: self.i64(),
                limits: self.limits(),
            },
            1 => ServerFrame::Sent { req: self.u32(), id: self.id(), created_at: self.i64() },
            2 => ServerFrame::Error { req: self.u32(), code: self.code(), message: self.string() },
            3 => ServerFrame::Message { message: self.message() },
            4 => ServerFrame::History {
                req: self.u32(),
                peer: self.user(),
                messages: self.vec(Self::message),
                next: self.option(Self::cursor),
            },
            5 => ServerFrame::Conversations { req: self.u32(), conversations: self.vec(Self::conversation) },
            6 => ServerFrame::Read { reader: self.user(), peer: self.user(), up_to: self.cursor() },
            7 => ServerFrame::Typing { from: self.user(), on: self.bool() },
            8 => ServerFrame::Presence { user: self.user(), online: self.bool() },
            9 => ServerFrame::Pong { req: self.u32(), server_time: self.i64() },
            10 => ServerFrame::Fatal { code: self.code(), message: self.string() },
            11 => ServerFrame::Done { req: self.u32() },
            12 => ServerFrame::Watching { req: self.u32(), online: self.vec(Self::user) },
            13 => ServerFrame::TokenRefreshed { req: self.u32(), expires_at: self.i64() },
            14 => ServerFrame::MarkedRead { req: self.u32(), count: self.u32() },
            15 => ServerFrame::SyncPage { req: self.u32(), messages: self.vec(Self::message), more: self.bool() },
            16 => ServerFrame::ConversationsPage {
                req: self.u32(),
                conversations: self.vec(Self::conversation),
                next: self.option(Self::cursor),
            },
            17 => ServerFrame::MessageAt { message: self.message(), position: self.u64() },
            18 => ServerFrame::CatchUpPage {
                req: self.u32(),
                messages: self.vec(Self::message),
                last: self.u64(),
                more: self.bool(),
            },
            19 => ServerFrame::Position { position: self.u64() },
            20 => ServerFrame::Blocks { req: self.u32(), users: self.vec(Self::user) },
            21 => ServerFrame::Changed { message: self.message(), deleted: self.bool() },
            22 => ServerFrame::QuietHours { windows: self.vec(Self::window) },
            23 => ServerFrame::Revisions { req: self.u32(), revisions: self.vec(Self::revision) },
            _ => {
                self.fail(DecodeError::Malformed);
                ServerFrame::Done { req: 0 }
            }
        }
    }
}
