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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MessageId(pub [u8; 16]);

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
        let mut out = [0u8; 16];
        let mut nibbles = bytes.iter().enumerate().filter_map(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c == b'-' { None } else { Some(None) }
            } else {
                Some(hex_value(c))
            }
        });
        for slot in &mut out {
            let hi = nibbles.next()??;
            let lo = nibbles.next()??;
            *slot = (hi << 4) | lo;
        }
        // A misplaced hyphen shows up as a `Some(None)` above or as a leftover item here.
        if bytes[8] != b'-' || bytes[13] != b'-' || bytes[18] != b'-' || bytes[23] != b'-' {
            return None;
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
        Cursor {
            at,
            id: MessageId::NIL,
        }
    }
}
