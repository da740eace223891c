//! Identities and positions: who a frame is about and where in a conversation it points.
//!
//! A user is always a (role, id) pair. Teacher ids and student ids are separate sequences
//! in the host app's database and overlap (teacher 1 and student 1 both exist), so an id
//! alone never identifies anyone.

use serde::{Deserialize, Serialize};

/// A client-chosen request id, echoed by the server in the answer to that request.
pub type RequestId = u32;

/// A point in time as integer milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

/// The two kinds of user in a school app. Stored as `'teacher'` / `'student'` in the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A teacher (the `"Teacher"` table).
    Teacher,
    /// A student (the `"Student"` table).
    Student,
}

impl Role {
    /// The string stored in the `senderRole` / `recipientRole` columns and in `users_view.role`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Teacher => "teacher",
            Role::Student => "student",
        }
    }

    /// Parses the database / token spelling (`"teacher"` or `"student"`, exactly).
    #[must_use]
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "teacher" => Some(Role::Teacher),
            "student" => Some(Role::Student),
            _ => None,
        }
    }
}

/// A user: role and id together. Never compare or look up users by id alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UserRef {
    /// Which table the id belongs to.
    pub role: Role,
    /// The primary key in that table (`SERIAL`, so positive).
    pub id: i32,
}

impl UserRef {
    /// A user reference.
    #[must_use]
    pub const fn new(role: Role, id: i32) -> Self {
        UserRef { role, id }
    }

    /// A teacher by id.
    #[must_use]
    pub const fn teacher(id: i32) -> Self {
        UserRef::new(Role::Teacher, id)
    }

    /// A student by id.
    #[must_use]
    pub const fn student(id: i32) -> Self {
        UserRef::new(Role::Student, id)
    }
}

/// A message id: a 16-byte UUID chosen by the sending client, so that a resend after a
/// lost connection is recognisably the same message and is stored once.
///
/// In the database it is the `Message.id` TEXT column in the lowercase hyphenated form
/// Prisma's `uuid()` writes (`"3f2b…-…"`), see [`MessageId::hyphenated`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub [u8; 16]);

// Hand-written instead of derived: the same wire form as `[u8; 16]` (a 16-tuple of bytes,
// i.e. 16 raw bytes in postcard), but a loop where serde's array impl unrolls 16 steps,
// which keeps the browser bundle smaller. The golden vectors pin the bytes.
impl Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(16)?;
        for byte in &self.0 {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl<'de> serde::de::Visitor<'de> for Bytes {
            type Value = MessageId;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("16 bytes")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<MessageId, A::Error> {
                let mut out = [0u8; 16];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = seq.next_element()?.ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(MessageId(out))
            }
        }
        deserializer.deserialize_tuple(16, Bytes)
    }
}

impl MessageId {
    /// The all-zero UUID. It is never a valid message id; as a cursor component it sorts
    /// before every real id, which makes `Cursor { at, id: NIL }` mean "from `at` on".
    pub const NIL: MessageId = MessageId([0; 16]);

    /// A version-4 (random) UUID from 16 random bytes supplied by the caller.
    #[must_use]
    pub const fn new_v4(mut random: [u8; 16]) -> Self {
        random[6] = (random[6] & 0x0f) | 0x40;
        random[8] = (random[8] & 0x3f) | 0x80;
        MessageId(random)
    }

    /// A version-7 (time-ordered) UUID: `unix_ms` in the first 48 bits, then a 12-bit
    /// `counter`, then 62 bits from `random`. See [`IdGenerator`], which picks the counter
    /// so that ids from one client sort in the order they were made.
    #[must_use]
    pub const fn new_v7(unix_ms: u64, counter: u16, random: [u8; 8]) -> Self {
        let ms = unix_ms.to_be_bytes();
        MessageId([
            ms[2],
            ms[3],
            ms[4],
            ms[5],
            ms[6],
            ms[7],
            0x70 | ((counter >> 8) as u8 & 0x0f),
            counter as u8,
            0x80 | (random[0] & 0x3f),
            random[1],
            random[2],
            random[3],
            random[4],
            random[5],
            random[6],
            random[7],
        ])
    }

    /// Whether this is the nil UUID.
    #[must_use]
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    /// The lowercase hyphenated text form, e.g. `"67e55044-10b1-426f-9247-bb680e5fe0c8"`.
    #[must_use]
    pub fn hyphenated(&self) -> HyphenatedId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut pos = 0;
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                pos += 1;
            }
            out[pos] = HEX[usize::from(byte >> 4)];
            out[pos + 1] = HEX[usize::from(byte & 0x0f)];
            pos += 2;
        }
        HyphenatedId(out)
    }

    /// Parses the hyphenated text form (either case). Returns `None` for anything else.
    #[must_use]
    pub fn parse(s: &str) -> Option<MessageId> {
        let bytes = s.as_bytes();
        if bytes.len() != 36 {
            return None;
        }
        // One pass over the text: a hyphen where one belongs, a hex digit everywhere else.
        let mut out = [0u8; 16];
        let mut n = 0;
        for (i, &c) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return None;
                }
            } else {
                out[n / 2] = out[n / 2] << 4 | hex_value(c)?;
                n += 1;
            }
        }
        Some(MessageId(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The 36-byte text form of a [`MessageId`], kept on the stack.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HyphenatedId([u8; 36]);

impl HyphenatedId {
    /// The text, e.g. `"67e55044-10b1-426f-9247-bb680e5fe0c8"`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits and hyphens are ever written into the array.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl core::fmt::Debug for HyphenatedId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::fmt::Display for HyphenatedId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A position in the total order of stored messages: `(createdAt, id)`.
///
/// Two messages can share a millisecond, so the id breaks ties; ordering by the pair
/// gives pages that neither skip nor repeat rows while new messages arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cursor {
    /// The message's `createdAt`, in milliseconds since the epoch.
    pub at: Millis,
    /// The message's id.
    pub id: MessageId,
}

impl Cursor {
    /// The cursor just before every message stored at or after `at`.
    #[must_use]
    pub const fn from_time(at: Millis) -> Self {
        Cursor { at, id: MessageId::NIL }
    }
}

/// Makes message ids that sort in the order they were made (UUIDv7 with a counter).
///
/// Messages are ordered by `(createdAt, id)`. A burst of sends (say, an outbox flushed
/// after a reconnect) can be stored within one millisecond; with time-ordered ids from
/// this generator they still read in the order the user wrote them. Sans-IO: the caller
/// passes the clock and the random bytes in.
#[derive(Clone, Debug, Default)]
pub struct IdGenerator {
    last_ms: u64,
    counter: u16,
}

impl IdGenerator {
    /// A generator that has made no id yet.
    #[must_use]
    pub const fn new() -> Self {
        IdGenerator { last_ms: 0, counter: 0 }
    }

    /// The next id, given the current time and 8 random bytes. Strictly greater than every
    /// id this generator made before, even if the clock goes backwards.
    pub fn next(&mut self, now_ms: u64, random: [u8; 8]) -> MessageId {
        if now_ms > self.last_ms {
            self.last_ms = now_ms;
            self.counter = 0;
        } else if self.counter >= 0x0fff {
            // 4096 ids in one millisecond: borrow the next millisecond.
            self.last_ms += 1;
            self.counter = 0;
        } else {
            self.counter += 1;
        }
        MessageId::new_v7(self.last_ms, self.counter, random)
    }
}
