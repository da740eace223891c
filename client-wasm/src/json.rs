//! The session's events as JSON text, for the browser: the wasm hands each event to
//! JavaScript as one string and `JSON.parse` (native, fast) builds the objects. Building
//! them from Rust instead (a `Reflect::set` across the boundary per field) took a third of
//! the bundle; this writer is a few hundred bytes.
//!
//! The shapes are the package's TypeScript types (`pkg/src/types.ts`); every event object
//! carries its kind in `t`. Compiled on every target, so its tests run natively too.

use alloc::string::String;
use alloc::vec::Vec;

use chat_protocol::{Conversation, Cursor, ErrorCode, ServerFrame, StoredMessage, UserRef};

use crate::core::{Event, Status};

/// A JSON text under construction.
struct Json(Vec<u8>);

impl Json {
    fn raw(&mut self, s: &str) -> &mut Self {
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    /// A JSON string: quotes, backslashes and control characters escaped, the rest as is
    /// (JSON text is UTF-8). Every byte escaped is ASCII, so the text between two of them is
    /// copied as a whole (no per-character encoding: smaller, and faster).
    fn string(&mut self, s: &str) -> &mut Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.0.push(b'"');
        let mut from = 0;
        for (i, &b) in s.as_bytes().iter().enumerate() {
            if b < 0x20 || b == b'"' || b == b'\\' {
                self.0.extend_from_slice(&s.as_bytes()[from..i]);
                self.0.push(b'\\');
                match b {
                    b'"' | b'\\' => self.0.push(b),
                    _ => {
                        self.0.extend_from_slice(b"u00");
                        self.0.push(HEX[usize::from(b >> 4)]);
                        self.0.push(HEX[usize::from(b & 15)]);
                    }
                }
                from = i + 1;
            }
        }
        self.0.extend_from_slice(&s.as_bytes()[from..]);
        self.0.push(b'"');
        self
    }

    /// An integer (every number of the protocol is one, and within 2^53 where it matters).
    fn int(&mut self, n: i64) -> &mut Self {
        if n < 0 {
            self.0.push(b'-');
        }
        let mut n = n.unsigned_abs();
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.0.extend_from_slice(&digits[i..]);
        self
    }

    fn bool(&mut self, b: bool) -> &mut Self {
        self.raw(if b { "true" } else { "false" })
    }

    /// `,"key":` (or `"key":` right after an opening brace).
    fn key(&mut self, key: &str) -> &mut Self {
        if !self.0.ends_with(b"{") {
            self.0.push(b',');
        }
        self.string(key).raw(":")
    }

    fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) -> &mut Self {
        self.0.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            each(self, item);
        }
        self.raw("]")
    }

    fn user(&mut self, user: UserRef) -> &mut Self {
        self.raw("{").key("role").string(user.role.as_str()).key("id").int(user.id.into()).raw("}")
    }

    fn cursor(&mut self, cursor: &Cursor) -> &mut Self {
        self.raw("{").key("at").int(cursor.at).key("id").string(cursor.id.hyphenated().as_str()).raw("}")
    }

    fn message(&mut self, m: &StoredMessage) -> &mut Self {
        self.raw("{").key("id").string(m.id.hyphenated().as_str());
        self.key("from").user(m.from).key("to").user(m.to);
        self.key("content").string(&m.content).key("createdAt").int(m.created_at).key("read").bool(m.read).raw("}")
    }

    fn conversation(&mut self, c: &Conversation) -> &mut Self {
        self.raw("{").key("peer").user(c.peer).key("peerName").string(&c.peer_name);
        self.key("last").message(&c.last).key("unread").int(c.unread.into()).raw("}")
    }

    fn conversations(&mut self, list: &[Conversation]) -> &mut Self {
        self.list(list, |j, c| {
            j.conversation(c);
        })
    }

    fn users(&mut self, users: &[UserRef]) -> &mut Self {
        self.list(users, |j, u| {
            j.user(*u);
        })
    }

    /// `{code, codeName, retryable, message}`: what the package turns into a `ChatError`.
    fn error(&mut self, code: ErrorCode, message: &str) -> &mut Self {
        self.raw("{").key("code").int(code.0.into()).key("codeName").string(code.name());
        self.key("retryable").bool(code.is_retryable()).key("message").string(message).raw("}")
    }

    /// What a request's promise resolves with.
    fn answer(&mut self, frame: &ServerFrame) -> &mut Self {
        match frame {
            ServerFrame::History { messages, next, .. } => {
                self.raw("{").key("messages").list(messages, |j, m| {
                    j.message(m);
                });
                self.key("next");
                match next {
                    Some(cursor) => self.cursor(cursor),
                    None => self.raw("null"),
                }
                .raw("}")
            }
            ServerFrame::Conversations { conversations, .. } => self.conversations(conversations),
            ServerFrame::MarkedRead { count, .. } => self.int((*count).into()),
            ServerFrame::Watching { online: users, .. } | ServerFrame::Blocks { users, .. } => self.users(users),
            ServerFrame::Revisions { revisions, .. } => self.list(revisions, |j, r| {
                j.raw("{").key("at").int(r.at).key("deleted").bool(r.deleted).key("before").string(&r.before).raw("}");
            }),
            _ => self.raw("null"),
        }
    }
}

/// One event as a JSON object with its kind in `t`, or `None` for the events the app does
/// not hear (`Welcome`, a close without a code). `status` is the session's status now (a
/// close's event reports it) and `position` its log position (a message's event carries it:
/// every message up to it has been reported, so another tab can resume from it).
#[must_use]
#[allow(clippy::cast_possible_wrap)]
pub fn event(event: &Event, status: &str, position: u64) -> Option<String> {
    let mut j = Json(Vec::with_capacity(128));
    j.raw("{");
    match event {
        Event::Sent(message) => j.key("t").string("sent").key("message").message(message),
        Event::SendFailed { id, code, message } => j
            .key("t")
            .string("sendFailed")
            .key("id")
            .string(id.hyphenated().as_str())
            .key("error")
            .error(*code, message),
        Event::Response { req, frame } => {
            j.key("t").string("response").key("req").int((*req).into()).key("value").answer(frame)
        }
        Event::RequestFailed { req, code, message } => {
            j.key("t").string("requestFailed").key("req").int((*req).into()).key("error").error(*code, message)
        }
        Event::Message { message, live, quiet } => {
            j.key("t").string("message").key("message").message(message).key("live").bool(*live);
            j.key("quiet").bool(*quiet).key("position").int(position as i64)
        }
        Event::Read { reader, peer, up_to } => {
            j.key("t").string("read").key("reader").user(*reader).key("peer").user(*peer).key("upTo").cursor(up_to)
        }
        Event::Typing { from, on } => j.key("t").string("typing").key("from").user(*from).key("on").bool(*on),
        Event::Presence { user, online } => {
            j.key("t").string("presence").key("user").user(*user).key("online").bool(*online)
        }
        Event::Changed { message, deleted } => {
            j.key("t").string("changed").key("message").message(message).key("deleted").bool(*deleted)
        }
        Event::Status(status) => j.key("t").string("status").key("status").string(status.as_str()),
        Event::Refused { code, reason } => j
            .key("t")
            .string("status")
            .key("status")
            .string(Status::Refused.as_str())
            .key("code")
            .int(code.0.into())
            .key("reason")
            .string(reason),
        Event::Disconnected { code: Some(code) } => {
            j.key("t").string("status").key("status").string(status).key("code").int(code.0.into())
        }
        Event::CaughtUp { count, conversations } => {
            j.key("t").string("caughtUp").key("count").int((*count).into()).key("conversations");
            match conversations {
                Some(list) => j.conversations(list),
                None => j.raw("null"),
            }
        }
        Event::Welcome { .. } | Event::Disconnected { code: None } => return None,
    };
    j.raw("}");
    // Always UTF-8: the text is `&str`s cut only next to the ASCII bytes escaped, and ASCII.
    String::from_utf8(j.0).ok()
}

// Natively (serde_json and proptest are native dev-dependencies); tests/web.rs parses it in the browser.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use alloc::vec;

    use chat_protocol::{MessageId, Role};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::core::Status;

    fn message(content: &str) -> StoredMessage {
        StoredMessage {
            id: MessageId([7; 16]),
            from: UserRef::new(Role::Teacher, 1),
            to: UserRef::new(Role::Student, -2),
            content: content.into(),
            created_at: 1_764_000_000_123,
            read: false,
        }
    }

    fn parse(event: &Event) -> Value {
        serde_json::from_str(&super::event(event, "reconnecting", 42).expect("an app event")).expect("valid JSON")
    }

    #[test]
    fn a_message_event_has_the_package_shape() {
        let got = parse(&Event::Message { message: message("hi"), live: true, quiet: false });
        assert_eq!(
            got,
            json!({
                "t": "message", "live": true, "quiet": false, "position": 42,
                "message": {
                    "id": "07070707-0707-0707-0707-070707070707",
                    "from": { "role": "teacher", "id": 1 }, "to": { "role": "student", "id": -2 },
                    "content": "hi", "createdAt": 1_764_000_000_123_i64, "read": false,
                },
            })
        );
    }

    #[test]
    fn answers_errors_and_statuses_have_the_package_shape() {
        let history = ServerFrame::History {
            req: 3,
            peer: UserRef::new(Role::Teacher, 1),
            messages: vec![message("a")],
            next: Some(message("a").cursor()),
        };
        let got = parse(&Event::Response { req: 3, frame: history });
        assert_eq!(got["req"], 3);
        assert_eq!(got["value"]["messages"][0]["content"], "a");
        assert_eq!(got["value"]["next"]["id"], "07070707-0707-0707-0707-070707070707");
        let got = parse(&Event::RequestFailed { req: 9, code: ErrorCode::NOT_ALLOWED, message: "no".into() });
        assert_eq!(got["error"], json!({ "code": 31, "codeName": "not_allowed", "retryable": false, "message": "no" }));
        let got = parse(&Event::Disconnected { code: Some(ErrorCode::NOT_ALLOWED) });
        assert_eq!(got, json!({ "t": "status", "status": "reconnecting", "code": 31 }));
        assert_eq!(parse(&Event::Status(Status::Open)), json!({ "t": "status", "status": "open" }));
        let got = parse(&Event::Refused { code: ErrorCode::ORIGIN_NOT_ALLOWED, reason: "origin \"x\"".into() });
        assert_eq!(got, json!({ "t": "status", "status": "refused", "code": 14, "reason": "origin \"x\"" }));
        let got = parse(&Event::CaughtUp { count: 0, conversations: None });
        assert_eq!(got, json!({ "t": "caughtUp", "count": 0, "conversations": null }));
        assert!(super::event(&Event::Disconnected { code: None }, "open", 0).is_none());
    }

    #[test]
    fn integers_at_the_edges() {
        for n in [0, 9, 10, -1, i64::MAX, i64::MIN, 9_007_199_254_740_993] {
            let mut j = Json(Vec::new());
            j.int(n);
            assert_eq!(j.0, n.to_string().as_bytes());
        }
    }

    proptest! {
        /// Any text survives the trip: quotes, backslashes, control characters, any Unicode.
        #[test]
        fn any_content_round_trips_through_json(content in any::<String>()) {
            let got = parse(&Event::Changed { message: message(&content), deleted: false });
            prop_assert_eq!(got["message"]["content"].as_str(), Some(content.as_str()));
        }
    }
}
