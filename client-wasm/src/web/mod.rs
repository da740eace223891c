//! The browser side of the SDK, as small as it can be: the sans-IO [`Session`] exported to
//! JavaScript with wasm-bindgen as `Core`, taking and giving only numbers, strings and bytes.
//!
//! Everything that touches the browser (the `WebSocket`, the one `setTimeout`, the app's
//! `getToken`, the `online`/`offline` events, promises and listeners) is the package's
//! TypeScript (`pkg/src/connection.ts`), which feeds the core each input with the time and
//! then drains it: [`Core::action`] (open, close, fetch a token), [`Core::transmit`] (frames
//! to write), [`Core::event`] (what the app hears, as JSON text: see [`crate::json`]) and
//! [`Core::deadline`]. An earlier design did that IO here through web-sys and built every
//! event object field by field across the boundary; moving it to TypeScript halved the
//! bundle (BENCHMARKS.md, "Browser bundle").
//!
//! Users cross as `[role, id]` pairs of little-endian 32-bit integers (role 0 teacher, 1
//! student), text as UTF-8 bytes: byte arrays only, one copy routine in the glue; calls that
//! fail at once return the negated protocol error code.

use alloc::string::String;
use alloc::vec::Vec;

use chat_protocol::{ClientFrame, Cursor, ErrorCode, MAX_CONVERSATIONS_PAGE, MessageId, RequestId, Role, UserRef};
use wasm_bindgen::prelude::*;

use crate::core::{Action, Session, Timings, TokenPurpose};

/// Text the package passes as UTF-8 bytes (`TextEncoder`'s, so always valid): bytes cross
/// with the glue's array copy, which the frames need anyway, instead of its string encoder.
fn utf8(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.and_then(|bytes| String::from_utf8(bytes).ok())
}

/// The request kind that is a send (`Core::request`), after the 13 of `KINDS` in `connection.ts`.
pub const SEND: u32 = 13;

/// The session, for the package's TypeScript.
#[wasm_bindgen]
pub struct Core {
    session: Session,
}

/// Milliseconds since the epoch, as JavaScript's `Date.now()` gives them.
#[allow(clippy::cast_possible_truncation)]
fn ms(now: f64) -> i64 {
    now as i64
}

/// A call's arguments as the package passes them, read with a sticky error (as the frame
/// decoder reads: the first bad one is kept, later reads give defaults, no early exits).
struct Args<'a> {
    /// Users as 8 bytes each: role then id, little-endian `i32`s (role 0 teacher, 1 student).
    users: &'a [u8],
    error: Option<ErrorCode>,
}

impl Args<'_> {
    fn fail(&mut self, code: ErrorCode) {
        self.error.get_or_insert(code);
    }

    /// The `k`th user.
    fn user(&mut self, k: usize) -> UserRef {
        match self.users.get(8 * k..8 * k + 8) {
            Some(&[role, 0, 0, 0, a, b, c, d]) if role < 2 => {
                let id = i32::from_le_bytes([a, b, c, d]);
                UserRef::new(if role == 1 { Role::Student } else { Role::Teacher }, id)
            }
            _ => {
                self.fail(ErrorCode::BAD_USER_ID);
                UserRef::new(Role::Teacher, 0)
            }
        }
    }

    fn id(&mut self, id: Option<&str>) -> MessageId {
        id.and_then(MessageId::parse).unwrap_or_else(|| {
            self.fail(ErrorCode::BAD_MESSAGE_ID);
            MessageId([0; 16])
        })
    }

    /// A cursor from its parts; `None` when `id` is absent.
    #[allow(clippy::cast_possible_truncation)]
    fn cursor(&mut self, at: f64, id: Option<&str>) -> Option<Cursor> {
        id.map(|id| Cursor { at: at as i64, id: self.id(Some(id)) })
    }

    /// The request of kind `kind` (the order of `KINDS` in the package's `connection.ts`), as
    /// the frame it is sent as.
    // Not inlined: 46 B less gzip.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn frame(
        &mut self,
        req: RequestId,
        kind: u32,
        id: Option<&str>,
        at: f64,
        text: Option<String>,
        n: u32,
    ) -> ClientFrame {
        use ClientFrame as F;
        let flag = n != 0;
        let limit = u16::try_from(n).unwrap_or(u16::MAX);
        match kind {
            0 => F::History { req, peer: self.user(0), before: self.cursor(at, id), limit },
            1 => F::ConversationsPage { req, before: None, limit: MAX_CONVERSATIONS_PAGE },
            2 => F::MarkRead { req, peer: self.user(0), up_to: Cursor { at: at as i64, id: self.id(id) } },
            3 => F::Typing { req, peer: self.user(0), on: flag },
            4 => {
                // A loop over `push` (instantiated already) rather than `collect`: 0.1 KB less.
                let mut users = Vec::new();
                for k in 0..self.users.len() / 8 {
                    users.push(self.user(k));
                }
                F::WatchPresence { req, users }
            }
            5 => F::Block { req, user: self.user(0), blocked: flag },
            6 => F::Blocks { req },
            7 => F::Report { req, id: self.id(id), reason: text.unwrap_or_default() },
            8 => F::Edit { req, id: self.id(id), content: text.unwrap_or_default() },
            9 => F::Delete { req, id: self.id(id) },
            10 => F::SuperviseConversations { req, student: self.user(0), before: None, limit: MAX_CONVERSATIONS_PAGE },
            11 => F::SuperviseRevisions { req, student: self.user(0), id: self.id(id) },
            12 => F::SuperviseHistory {
                req,
                student: self.user(0),
                peer: self.user(1),
                before: self.cursor(at, id),
                limit,
            },
            _ => {
                self.fail(ErrorCode::BAD_FRAME);
                F::Ping { req }
            }
        }
    }
}

#[wasm_bindgen]
impl Core {
    /// A session; `seed` (two random 32-bit halves) seeds its message ids and backoff jitter.
    #[wasm_bindgen(constructor)]
    #[must_use]
    pub fn new(seed_low: u32, seed_high: u32) -> Core {
        Core { session: Session::new(Timings::default(), u64::from(seed_high) << 32 | u64::from(seed_low)) }
    }

    /// One of the inputs that carry only the time and at most one number `n`, by number
    /// (`Input` in `connection.ts`): 0 connect (and keep reconnecting until a close or an
    /// `unauthorized` refusal), 1 close for good (pending calls fail with `client_closed`),
    /// 2 the socket opened, 3 the socket closed (`n` its close code, -1 without one), 4 the
    /// armed timer fired, 5 the browser went online, 6 offline, 7 continue from log position
    /// `n`, where another client of this user left off (see `resumeFrom` in the package). One
    /// entry point for the eight keeps the glue and the wasm small.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub fn input(&mut self, now: f64, what: u32, n: f64) {
        let (now, s) = (ms(now), &mut self.session);
        match what {
            0 => s.connect(now),
            1 => s.close(now),
            2 => s.handle_open(now),
            3 => s.handle_close(now, u16::try_from(n as i32).ok()),
            4 => s.handle_timeout(now),
            5 => s.handle_online(now),
            6 => s.handle_offline(now),
            _ => s.resume_from(n.max(0.0) as u64),
        }
    }

    /// A binary frame arrived.
    pub fn frame(&mut self, now: f64, bytes: &[u8]) {
        self.session.handle_frame(ms(now), bytes);
    }

    /// The app's token for `purpose` (0 connect, 1 refresh), or `undefined` when `getToken` failed.
    pub fn token(&mut self, now: f64, purpose: u32, token: Option<Vec<u8>>) {
        let purpose = if purpose == 0 { TokenPurpose::Connect } else { TokenPurpose::Refresh };
        match utf8(token) {
            Some(token) => self.session.handle_token(ms(now), purpose, token),
            None => self.session.handle_token_error(ms(now), purpose),
        }
    }

    /// A fresh message id (a UUIDv7 string).
    #[wasm_bindgen(js_name = newMessageId)]
    pub fn new_message_id(&mut self, now: f64) -> String {
        self.session.new_message_id(ms(now)).hyphenated().as_str().into()
    }

    /// Starts a request of kind `kind` (see `frame` above for the arguments each takes): its
    /// id, or the negated error code of a request refused at once. Kind [`SEND`] queues a send
    /// of `text` to the first user with message id `id` instead, and gives 0 (its answer is
    /// the `sent` or `sendFailed` event with that id). One entry point for both: one wrapper
    /// less in the glue and in the wasm.
    #[allow(clippy::too_many_arguments)]
    pub fn request(
        &mut self,
        now: f64,
        kind: u32,
        users: &[u8],
        id: Option<Vec<u8>>,
        at: f64,
        text: Option<Vec<u8>>,
        n: u32,
    ) -> f64 {
        let (id, text) = (utf8(id), utf8(text));
        let mut args = Args { users, error: None };
        if kind == SEND {
            let (to, id) = (args.user(0), args.id(id.as_deref()));
            let sent = match args.error {
                Some(code) => Err(code),
                None => self.session.send_with_id(ms(now), id, to, text.unwrap_or_default()).map(|_| ()),
            };
            return sent.map_or_else(|code| -f64::from(code.0), |()| 0.0);
        }
        let started = self.session.request_frame(ms(now), |req| {
            let frame = args.frame(req, kind, id.as_deref(), at, text, n);
            args.error.map_or(Ok(frame), Err)
        });
        match started {
            Ok(req) => req.into(),
            Err(code) => -f64::from(code.0),
        }
    }

    /// The next thing to do: -1 nothing, 0 open the socket, 1 fetch a token to connect, 2 fetch
    /// one to refresh, 1000 + code: close the socket with that close code.
    pub fn action(&mut self) -> i32 {
        match self.session.poll_action() {
            None => -1,
            Some(Action::Open) => 0,
            Some(Action::FetchToken(TokenPurpose::Connect)) => 1,
            Some(Action::FetchToken(TokenPurpose::Refresh)) => 2,
            Some(Action::Close(code)) => 1000 + i32::from(code),
        }
    }

    /// The next frame to write to the socket.
    pub fn transmit(&mut self) -> Option<Vec<u8>> {
        self.session.poll_transmit()
    }

    /// The next event for the app, as JSON text (`crate::json`).
    pub fn event(&mut self) -> Option<String> {
        while let Some(event) = self.session.poll_event() {
            let status = self.session.status().as_str();
            if let Some(json) = crate::json::event(&event, status, self.session.position().unwrap_or(0)) {
                return Some(json);
            }
        }
        None
    }

    /// When to call `timeout` next (ms since the epoch), or -1. (This and the two below take
    /// `&mut self` though they only read: wasm-bindgen's shared borrow is a second borrow
    /// check in the wasm, 48 B gzip.)
    #[allow(clippy::cast_precision_loss)]
    #[must_use]
    pub fn deadline(&mut self) -> f64 {
        self.session.poll_timeout().map_or(-1.0, |at| at as f64)
    }

    /// The connection status, by number: its place in `STATUSES` in `connection.ts` (idle,
    /// connecting, open, reconnecting, unauthorized, closed).
    #[must_use]
    pub fn status(&mut self) -> u8 {
        self.session.status() as u8
    }

    /// Who the server says this client is, once welcomed, as one number: `2 * id + role`
    /// (role 0 teacher, 1 student), or `NaN` before.
    #[must_use]
    pub fn user(&mut self) -> f64 {
        self.session.user().map_or(f64::NAN, |u| 2.0 * f64::from(u.id) + f64::from(u8::from(u.role == Role::Student)))
    }
}

/// A protocol error code's name (`not_allowed`) and whether it is worth retrying, as
/// `name` or `name!` (retryable): for errors the package raises itself.
#[wasm_bindgen(js_name = errorName)]
#[must_use]
pub fn error_name(code: u16) -> String {
    let code = ErrorCode(code);
    let mut name = String::from(code.name());
    if code.is_retryable() {
        // A `str`, not the `char` clippy prefers: `push(char)` encodes it (24 B gzip more).
        #[allow(clippy::single_char_add_str)]
        name.push_str("!");
    }
    name
}

impl core::fmt::Debug for Core {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Core")
    }
}
