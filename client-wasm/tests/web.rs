//! Browser tests of the exported core (`chat_client::web::Core`) in headless Chromium: the
//! session driven through the calls the package's TypeScript makes, its events parsed by the
//! browser's own `JSON.parse`. The IO around it (socket, timer, tokens, tabs, storage) is
//! the package's TypeScript, tested end to end against a real server by Playwright
//! (`pkg/test/consumer.mjs`, run by `scripts/browser-tests.sh`).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, missing_docs)]

use chat_client::web::{Core, SEND, error_name};
use chat_protocol::{ClientFrame, Limits, MessageId, Role, ServerFrame, StoredMessage, UserRef};
use js_sys::{JSON, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const T0: f64 = 1_764_000_000_000.0;
const ME: UserRef = UserRef::new(Role::Student, 3);

fn get(v: &JsValue, path: &str) -> JsValue {
    path.split('.').fold(v.clone(), |v, key| Reflect::get(&v, &key.into()).unwrap())
}

/// Every event the core has, parsed by the browser.
fn events(core: &mut Core) -> Vec<JsValue> {
    core::iter::from_fn(|| core.event()).map(|json| JSON::parse(&json).expect("the browser parses it")).collect()
}

/// Users as the package passes them: `[role, id]` pairs as little-endian `i32`s.
fn users(pairs: &[i32]) -> Vec<u8> {
    pairs.iter().flat_map(|n| n.to_le_bytes()).collect()
}

/// Text as the package passes it: UTF-8 bytes.
fn text(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

fn transmitted(core: &mut Core) -> Vec<ClientFrame> {
    core::iter::from_fn(|| core.transmit()).map(|bytes| ClientFrame::decode(&bytes).unwrap()).collect()
}

/// A core taken through connect, token, open and welcome, as the package drives it.
fn welcomed() -> Core {
    let mut core = Core::new(1, 2);
    core.input(T0, 0, 0.0);
    assert_eq!(core.action(), 1, "fetch a token to connect");
    core.token(T0, 0, text("tok"));
    assert_eq!(core.action(), 0, "open the socket");
    assert_eq!(core.action(), -1);
    core.input(T0, 2, 0.0);
    assert!(matches!(transmitted(&mut core)[..], [ClientFrame::Hello { .. }]));
    let welcome = ServerFrame::Welcome {
        user: ME,
        name: "Ann".into(),
        server_time: 0,
        token_expires_at: 0,
        limits: Limits::protocol(30, 60, 60_000),
    };
    core.frame(T0, &welcome.encode().unwrap());
    assert_eq!(core.status(), 2, "open");
    assert_eq!(core.user(), 7.0, "2 * id + role (student)");
    core
}

#[wasm_bindgen_test]
fn a_message_of_any_text_reaches_javascript_intact() {
    let mut core = welcomed();
    events(&mut core);
    let content = "quotes \" and \\ backslashes, a\nnewline, a tab\t, NUL \u{0}, \u{7f}, é, 你好, 🧑‍🏫, \u{2028}";
    let message = StoredMessage {
        id: MessageId([9; 16]),
        from: UserRef::new(Role::Teacher, 1),
        to: ME,
        content: content.into(),
        created_at: 1_764_000_000_123,
        read: false,
    };
    core.frame(T0, &ServerFrame::Message { message }.encode().unwrap());
    let got = events(&mut core);
    assert_eq!(got.len(), 1);
    assert_eq!(get(&got[0], "t").as_string().unwrap(), "message");
    assert_eq!(get(&got[0], "message.content").as_string().unwrap(), content);
    assert_eq!(get(&got[0], "message.from.role").as_string().unwrap(), "teacher");
    assert_eq!(get(&got[0], "message.createdAt").as_f64().unwrap(), 1_764_000_000_123.0);
    assert_eq!(get(&got[0], "message.id").as_string().unwrap(), "09090909-0909-0909-0909-090909090909");
    assert_eq!(get(&got[0], "live").as_bool(), Some(true));
}

#[wasm_bindgen_test]
fn sends_and_requests_go_out_and_their_answers_come_back() {
    let mut core = welcomed();
    let id = core.new_message_id(T0);
    assert_eq!(core.request(T0, SEND, &users(&[0, 1]), text(&id), 0.0, text("hi"), 0), 0.0);
    let sent = transmitted(&mut core);
    assert!(matches!(&sent[..], [ClientFrame::Send { content, .. }] if content == "hi"), "{sent:?}");

    let req = core.request(T0, 4, &users(&[0, 1, 1, 2]), None, 0.0, None, 0);
    assert!(req >= 0.0);
    let sent = transmitted(&mut core);
    let [ClientFrame::WatchPresence { req: r, users }] = &sent[..] else { panic!("{sent:?}") };
    assert_eq!(users, &[UserRef::new(Role::Teacher, 1), UserRef::new(Role::Student, 2)]);
    core.frame(T0, &ServerFrame::Watching { req: *r, online: vec![UserRef::new(Role::Teacher, 1)] }.encode().unwrap());
    let got = events(&mut core);
    let answer = got.iter().find(|e| get(e, "t").as_string().as_deref() == Some("response")).expect("an answer");
    assert_eq!(get(answer, "req").as_f64(), Some(req));
    assert_eq!(get(answer, "value.0.role").as_string().unwrap(), "teacher");
}

#[wasm_bindgen_test]
fn what_is_refused_at_once_comes_back_as_a_negated_code() {
    let mut core = welcomed();
    let id = core.new_message_id(T0);
    // Role -1: the package passes it for anything that is not a user.
    assert_eq!(core.request(T0, SEND, &users(&[-1, 0]), text(&id), 0.0, text("hi"), 0), -24.0);
    assert_eq!(core.request(T0, SEND, &users(&[0, 1]), text("not a uuid"), 0.0, text("hi"), 0), -23.0);
    assert_eq!(core.request(T0, 9, &users(&[]), text("nope"), 0.0, None, 0), -23.0);
    assert_eq!(core.request(T0, 2, &users(&[0, 1]), None, 0.0, None, 0), -23.0, "markRead needs a cursor");
    assert!(transmitted(&mut core).is_empty(), "nothing refused goes out");
    assert_eq!(error_name(24), "bad_user_id");
    assert_eq!(error_name(40), "rate_limited!", "retryable codes say so");
}

#[wasm_bindgen_test]
fn a_close_and_the_timer_take_the_core_to_reconnecting() {
    let mut core = welcomed();
    events(&mut core);
    core.input(T0 + 1.0, 3, 1006.0);
    let got = events(&mut core);
    assert!(got.iter().any(|e| get(e, "status").as_string().as_deref() == Some("reconnecting")), "{got:?}");
    let at = core.deadline();
    assert!(at > T0, "a reconnect is scheduled");
    core.input(at, 4, 0.0);
    assert_eq!(core.action(), 1, "a fresh token for the new connection");
}

/// The wasm's linear memory, in bytes (it only ever grows, by 64 KiB pages).
fn memory_bytes() -> f64 {
    get(&wasm_bindgen::memory(), "buffer.byteLength").as_f64().unwrap()
}

/// A live message at log position `n`, with an id that grows with `n` (as UUIDv7s do).
fn live(n: u64) -> Vec<u8> {
    let message = StoredMessage {
        id: MessageId(u128::from(n).to_be_bytes()),
        from: UserRef::new(Role::Teacher, 1),
        to: ME,
        content: "a message of some length, as a teacher would write it to a student".repeat(1 + (n % 4) as usize),
        created_at: 1_764_000_000_000 + i64::try_from(n).unwrap(),
        read: false,
    };
    ServerFrame::MessageAt { message, position: n }.encode().unwrap()
}

/// The browser core's memory is bounded: a long session (more messages than the dedup set
/// keeps, a history page now and then, repeats dropped) grows the wasm memory while the dedup
/// set fills, and not at all after. The allocator's free list and the set's trimming are what
/// this tries to break. The time each half took is printed (for BENCHMARKS.md; never asserted).
#[wasm_bindgen_test]
fn memory_stays_bounded_over_a_long_session() {
    let mut core = welcomed();
    events(&mut core);
    let half = |core: &mut Core, from: u64, to: u64| {
        let started = js_sys::Date::now();
        let mut delivered = 0;
        for n in from..to {
            core.frame(T0, &live(n));
            if n % 7 == 0 {
                core.frame(T0, &live(n - 3)); // a repeat: dropped
            }
            if n % 500 == 0 {
                let req = core.request(T0, 0, &users(&[0, 1]), None, 0.0, None, 50);
                let messages = (n - 50..n).map(|k| match ServerFrame::decode(&live(k)).unwrap() {
                    ServerFrame::MessageAt { message, .. } => message,
                    other => panic!("{other:?}"),
                });
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let history = ServerFrame::History {
                    req: req as u32,
                    peer: UserRef::new(Role::Teacher, 1),
                    messages: messages.collect(),
                    next: None,
                };
                transmitted(core);
                core.frame(T0, &history.encode().unwrap());
            }
            while let Some(json) = core.event() {
                delivered += usize::from(json.starts_with("{\"t\":\"message\""));
            }
        }
        let ms = js_sys::Date::now() - started;
        wasm_bindgen_test::console_log!("{} messages in {ms} ms; wasm memory {} B", to - from, memory_bytes());
        delivered
    };
    // More than twice the dedup set's capacity (10,000 ids, up to 20,000) in each half.
    assert_eq!(half(&mut core, 100, 30_100), 30_000, "each message once, repeats dropped");
    let filled = memory_bytes();
    assert_eq!(half(&mut core, 30_100, 60_100), 30_000);
    assert_eq!(memory_bytes(), filled, "the second 30,000 messages grew the memory");
}
