//! Browser tests: the real `ChatClient` (as JavaScript sees it) in headless Chromium,
//! against a real chat-server started by `pkg/test/harness.mjs` (see scripts/test.sh).
//! The harness URL is given at compile time in `CHAT_TEST_HARNESS`.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::cell::RefCell;
use std::rc::Rc;

use chat_client::web::{ChatClient, ChatClientOptions, JsUserRef};
use js_sys::{Function, Object, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const HARNESS: &str = match option_env!("CHAT_TEST_HARNESS") {
    Some(url) => url,
    None => "http://127.0.0.1:9",
};

fn js(args: &str, body: &str) -> Function {
    Function::new_with_args(args, body)
}

async fn call(f: &Function, args: &[JsValue]) -> JsValue {
    let array: js_sys::Array = args.iter().collect();
    let promise: js_sys::Promise = f.apply(&JsValue::NULL, &array).unwrap().unchecked_into();
    JsFuture::from(promise).await.unwrap()
}

async fn fetch_json(path: &str, method: &str) -> JsValue {
    let f = js(
        "url, method",
        "return fetch(url, { method }).then(r => r.ok ? r.text() : Promise.reject(r.status)).then(t => { try { return JSON.parse(t) } catch { return t } })",
    );
    call(&f, &[format!("{HARNESS}{path}").into(), method.into()]).await
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap()
}

fn user(role: &str, id: i32) -> JsUserRef {
    let o = Object::new();
    Reflect::set(&o, &"role".into(), &role.into()).unwrap();
    Reflect::set(&o, &"id".into(), &id.into()).unwrap();
    o.unchecked_into()
}

/// A client for `role`/`id` whose getToken asks the harness, as an app's route would.
async fn client(role: &str, id: i32) -> ChatClient {
    let config = fetch_json("/config", "GET").await;
    let options = Object::new();
    Reflect::set(&options, &"url".into(), &get(&config, "http")).unwrap();
    let get_token = js("", &format!("return fetch('{HARNESS}/token?role={role}&id={id}').then(r => r.text())"));
    Reflect::set(&options, &"getToken".into(), &get_token).unwrap();
    let client = ChatClient::new(options.unchecked_into::<ChatClientOptions>()).unwrap();
    client.connect();
    wait_status(&client, "open").await;
    client
}

/// The payloads of one event, as they arrive, and a way to wait for one.
struct Events {
    seen: Rc<RefCell<Vec<JsValue>>>,
    /// Resolves the pending wait, if any, at the next payload.
    wake: Rc<RefCell<Option<Function>>>,
}

impl Events {
    /// Waits for a payload for which `wanted` holds (one that already arrived counts). Driven
    /// by the event itself; the 15 s bound only turns a hang into a failure.
    async fn until(&self, what: &str, wanted: impl Fn(&JsValue) -> bool) -> JsValue {
        loop {
            if let Some(found) = self.seen.borrow().iter().find(|e| wanted(e)) {
                return found.clone();
            }
            let wake = self.wake.clone();
            let next = js_sys::Promise::new(&mut |resolve, _reject| *wake.borrow_mut() = Some(resolve));
            let guard = js("", "return new Promise((_, reject) => setTimeout(() => reject('timed out'), 15000))");
            let guard: js_sys::Promise = guard.call0(&JsValue::NULL).unwrap().unchecked_into();
            let race = js_sys::Promise::race(&js_sys::Array::of2(&next, &guard));
            if JsFuture::from(race).await.is_err() {
                panic!("{what} never happened");
            }
        }
    }
}

/// Collects the payloads of `event`.
fn collect(client: &ChatClient, event: &str) -> Events {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let wake: Rc<RefCell<Option<Function>>> = Rc::new(RefCell::new(None));
    let (sink, waker) = (seen.clone(), wake.clone());
    let handler = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        sink.borrow_mut().push(e);
        if let Some(resolve) = waker.borrow_mut().take() {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    client.on(event.into(), handler.as_ref().unchecked_ref::<Function>().clone());
    // The test outlives nothing: keep the handler for the page's lifetime.
    handler.forget();
    Events { seen, wake }
}

async fn wait_status(client: &ChatClient, wanted: &str) {
    let statuses = collect(client, "status");
    if JsValue::from(client.status()).as_string().as_deref() == Some(wanted) {
        return;
    }
    statuses.until(&format!("status {wanted}"), |e| get(e, "status").as_string().as_deref() == Some(wanted)).await;
}

async fn wait_for_message(inbox: &Events, id: &str) -> JsValue {
    inbox.until(&format!("message {id}"), |e| get(&get(e, "message"), "id").as_string().as_deref() == Some(id)).await
}

#[wasm_bindgen_test]
async fn connect_send_and_receive_in_the_browser() {
    let teacher = client("teacher", 1).await;
    let student = client("student", 1).await;
    let inbox = collect(&student, "message");

    let sent = JsFuture::from(js_sys::Promise::from(JsValue::from(teacher.send(
        user("student", 1),
        "hello from Chromium".into(),
        None,
    ))))
    .await
    .unwrap();
    assert_eq!(get(&sent, "content").as_string().unwrap(), "hello from Chromium");
    assert_eq!(get(&get(&sent, "from"), "role").as_string().unwrap(), "teacher");
    let id = get(&sent, "id").as_string().unwrap();
    let event = wait_for_message(&inbox, &id).await;
    assert!(get(&event, "live").as_bool().unwrap());

    // A refusal rejects with an Error carrying the stable code.
    let refused =
        JsFuture::from(js_sys::Promise::from(JsValue::from(student.send(user("student", 2), "psst".into(), None))))
            .await;
    let error = refused.unwrap_err();
    assert_eq!(get(&error, "codeName").as_string().unwrap(), "not_allowed");
    assert_eq!(get(&error, "code").as_f64().unwrap(), 31.0);
    teacher.close();
    student.close();
}

#[wasm_bindgen_test]
async fn the_server_restarts_and_goes_away_the_client_reconnects_delivers_queued_sends_and_catches_up() {
    let teacher = client("teacher", 2).await;
    let student = client("student", 2).await;
    let inbox = collect(&student, "message");
    let statuses = collect(&teacher, "status");

    fetch_json("/restart", "POST").await;
    // Sent while the server was away (or just back): queued, then committed once.
    let sent = JsFuture::from(js_sys::Promise::from(JsValue::from(teacher.send(
        user("student", 2),
        "after the restart".into(),
        None,
    ))))
    .await
    .unwrap();
    let id = get(&sent, "id").as_string().unwrap();
    wait_for_message(&inbox, &id).await;
    let names: Vec<String> = statuses.seen.borrow().iter().filter_map(|s| get(s, "status").as_string()).collect();
    assert!(names.iter().any(|s| s == "reconnecting"), "{names:?}");
    assert_eq!(names.last().map(String::as_str), Some("open"), "{names:?}");
    teacher.close();
    student.close();

    after_an_outage_the_browser_catches_up_on_every_missed_message_once().await;
}

/// Runs after the restart test inside it: both disturb the one server, so they must not
/// overlap with each other (wasm-bindgen-test may interleave async tests).
async fn after_an_outage_the_browser_catches_up_on_every_missed_message_once() {
    let teacher = client("teacher", 1).await;
    let student = client("student", 3).await;
    let inbox = collect(&student, "message");
    let caught_up = collect(&student, "caughtUp");
    let sent =
        JsFuture::from(js_sys::Promise::from(JsValue::from(teacher.send(user("student", 3), "before".into(), None))))
            .await
            .unwrap();
    wait_for_message(&inbox, &get(&sent, "id").as_string().unwrap()).await;
    teacher.close();

    // The server goes away; meanwhile 300 messages are written by someone else.
    fetch_json("/stop", "POST").await;
    wait_status(&student, "reconnecting").await;
    fetch_json("/inject?from=teacher:1&to=student:3&n=300", "POST").await;
    fetch_json("/start", "POST").await;

    let done = caught_up.until("caughtUp", |_| true).await;
    assert_eq!(get(&done, "count").as_f64().unwrap(), 300.0);
    let conversations = js_sys::Array::from(&get(&done, "conversations"));
    assert!(conversations.length() >= 1);
    let missed: Vec<String> = inbox
        .seen
        .borrow()
        .iter()
        .filter(|e| !get(e, "live").as_bool().unwrap())
        .map(|e| get(&get(e, "message"), "content").as_string().unwrap())
        .collect();
    assert_eq!(missed.len(), 300, "each missed message exactly once");
    let expected: Vec<String> = (1..=300).map(|i| format!("offline {i}")).collect();
    assert_eq!(missed, expected, "in order");
    student.close();
}

#[wasm_bindgen_test]
fn options_of_the_wrong_shape_throw_a_type_error() {
    let options = |url: &JsValue, get_token: &JsValue| {
        let o = Object::new();
        Reflect::set(&o, &"url".into(), url).unwrap();
        Reflect::set(&o, &"getToken".into(), get_token).unwrap();
        o.unchecked_into::<ChatClientOptions>()
    };
    let token = js("", "return 't'");
    for (url, get_token, says) in [
        (JsValue::from("not a url"), JsValue::from(&token), "URL"),
        (JsValue::from("ftp://example.com"), JsValue::from(&token), "http://"),
        (JsValue::from("http://localhost:4000"), JsValue::UNDEFINED, "getToken"),
        (JsValue::from("http://localhost:4000"), JsValue::from("a token"), "getToken"),
    ] {
        let error = ChatClient::new(options(&url, &get_token)).expect_err("refused");
        assert!(error.is_instance_of::<js_sys::TypeError>(), "{error:?}");
        let message = get(&error, "message").as_string().unwrap();
        assert!(message.contains(says), "{message}");
        assert!(get(&error, "code").is_undefined(), "no wire error code on a TypeError");
    }
}
