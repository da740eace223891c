//! The browser transport and the JavaScript API (`ChatClient`), exported with wasm-bindgen.
//!
//! The sans-IO [`Session`] does the work; this module only moves bytes between it and a
//! `WebSocket`, keeps one `setTimeout` armed for [`Session::poll_timeout`], calls the
//! app's `getToken`, and turns events into promise resolutions and listener calls.
//! Every closure handed to the browser is owned here and unregistered on drop (never
//! leaked with `forget`), except one-shot promise callbacks, which free themselves.
//! JavaScript callbacks are invoked only after the internal borrow is released, so a
//! handler may call back into the client.

use alloc::boxed::Box;
use alloc::rc::{Rc, Weak};
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use chat_protocol::{
    Conversation, Cursor, ErrorCode, MessageId, Millis, RequestId, Role, ServerFrame, StoredMessage, UserRef,
};
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::core::{Action, Event, Request, Session, Timings, TokenPurpose};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** A user: role and id together (teacher 1 and student 1 are different people). */
export interface UserRef { role: "teacher" | "student"; id: number }
/** A position in a conversation: a message's createdAt (ms since the epoch) and id. */
export interface Cursor { at: number; id: string }
/** A stored message. */
export interface Message {
  id: string;
  from: UserRef;
  to: UserRef;
  content: string;
  /** When the server stored it, ms since the epoch. */
  createdAt: number;
  /** Whether the recipient has read it. */
  read: boolean;
}
/** One conversation of the list. */
export interface Conversation { peer: UserRef; peerName: string; last: Message; unread: number }
/** A page of history, newest first; pass `next` as `before` for the older page. */
export interface HistoryPage { messages: Message[]; next: Cursor | null }
export interface HistoryOptions { before?: Cursor | null; limit?: number }
export type Status = "idle" | "connecting" | "open" | "reconnecting" | "unauthorized" | "closed";
export interface ChatClientOptions {
  /** The chat server: NEXT_PUBLIC_SOCKET_URL as written (http://localhost:4000), or a ws(s):// URL. */
  url: string;
  /** Returns a fresh token from your app; called on every (re)connect and before expiry. */
  getToken: () => Promise<string>;
}
export interface ChatEventMap {
  /** A message to or from this user. `live` is false for messages caught up after a disconnect. */
  message: { message: Message; live: boolean };
  /** `reader` read `peer`'s messages up to `upTo`. */
  read: { reader: UserRef; peer: UserRef; upTo: Cursor };
  typing: { from: UserRef; on: boolean };
  presence: { user: UserRef; online: boolean };
  /** The connection status changed; `code` is the protocol error code of a server close. */
  status: { status: Status; code?: number };
  /** A catch-up after a reconnect finished: how many messages were new, and fresh unread counts. */
  caughtUp: { count: number; conversations: Conversation[] | null };
}
/** Errors carry the protocol's stable error code. */
export interface ChatError extends Error { code: number; codeName: string; retryable: boolean }
export interface ChatClient {
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ChatEventMap>(event: K, handler: (event: ChatEventMap[K]) => void): () => void;
}
"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "ChatClientOptions")]
    pub type ChatClientOptions;
    #[wasm_bindgen(typescript_type = "UserRef")]
    pub type JsUserRef;
    #[wasm_bindgen(typescript_type = "UserRef[]")]
    pub type JsUserRefs;
    #[wasm_bindgen(typescript_type = "Cursor")]
    pub type JsCursor;
    #[wasm_bindgen(typescript_type = "HistoryOptions")]
    pub type JsHistoryOptions;
    #[wasm_bindgen(typescript_type = "Promise<Message>")]
    pub type PromiseMessage;
    #[wasm_bindgen(typescript_type = "Promise<HistoryPage>")]
    pub type PromiseHistory;
    #[wasm_bindgen(typescript_type = "Promise<Conversation[]>")]
    pub type PromiseConversations;
    #[wasm_bindgen(typescript_type = "Promise<number>")]
    pub type PromiseNumber;
    #[wasm_bindgen(typescript_type = "Promise<void>")]
    pub type PromiseVoid;
    #[wasm_bindgen(typescript_type = "Promise<UserRef[]>")]
    pub type PromiseUsers;
    #[wasm_bindgen(typescript_type = "Status")]
    pub type JsStatus;
    #[wasm_bindgen(typescript_type = "UserRef | undefined")]
    pub type JsMaybeUser;
}

fn now() -> Millis {
    js_sys::Date::now() as Millis
}

fn set(target: &Object, key: &str, value: &JsValue) {
    // Setting a property on a plain object we created cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

fn get(source: &JsValue, key: &str) -> JsValue {
    Reflect::get(source, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A JavaScript `Error` carrying the protocol code.
fn chat_error(code: ErrorCode, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    set(&error, "code", &JsValue::from(code.0));
    set(&error, "codeName", &JsValue::from_str(code.name()));
    set(&error, "retryable", &JsValue::from_bool(code.is_retryable()));
    error.into()
}

fn user_to_js(user: UserRef) -> JsValue {
    let o = Object::new();
    set(&o, "role", &JsValue::from_str(user.role.as_str()));
    set(&o, "id", &JsValue::from(user.id));
    o.into()
}

fn user_from_js(value: &JsValue) -> Result<UserRef, JsValue> {
    let role = get(value, "role").as_string().and_then(|r| Role::parse(&r));
    let id = get(value, "id").as_f64();
    match (role, id) {
        (Some(role), Some(id)) if id.fract() == 0.0 && id >= f64::from(i32::MIN) && id <= f64::from(i32::MAX) => {
            Ok(UserRef::new(role, id as i32))
        }
        _ => Err(chat_error(ErrorCode::BAD_USER_ID, "a user is { role: \"teacher\" | \"student\", id: number }")),
    }
}

fn cursor_to_js(cursor: Cursor) -> JsValue {
    let o = Object::new();
    set(&o, "at", &JsValue::from_f64(cursor.at as f64));
    set(&o, "id", &JsValue::from_str(cursor.id.hyphenated().as_str()));
    o.into()
}

fn cursor_from_js(value: &JsValue) -> Result<Cursor, JsValue> {
    let at = get(value, "at").as_f64();
    let id = get(value, "id").as_string().and_then(|s| MessageId::parse(&s));
    match (at, id) {
        (Some(at), Some(id)) => Ok(Cursor { at: at as Millis, id }),
        _ => Err(chat_error(ErrorCode::BAD_MESSAGE_ID, "a cursor is { at: number, id: string }")),
    }
}

fn message_to_js(m: &StoredMessage) -> JsValue {
    let o = Object::new();
    set(&o, "id", &JsValue::from_str(m.id.hyphenated().as_str()));
    set(&o, "from", &user_to_js(m.from));
    set(&o, "to", &user_to_js(m.to));
    set(&o, "content", &JsValue::from_str(&m.content));
    set(&o, "createdAt", &JsValue::from_f64(m.created_at as f64));
    set(&o, "read", &JsValue::from_bool(m.read));
    o.into()
}

fn messages_to_js(messages: &[StoredMessage]) -> JsValue {
    messages.iter().map(message_to_js).collect::<Array>().into()
}

fn conversation_to_js(c: &Conversation) -> JsValue {
    let o = Object::new();
    set(&o, "peer", &user_to_js(c.peer));
    set(&o, "peerName", &JsValue::from_str(&c.peer_name));
    set(&o, "last", &message_to_js(&c.last));
    set(&o, "unread", &JsValue::from(c.unread));
    o.into()
}

/// Converts a request's answer into what its promise resolves with.
fn answer_to_js(frame: &ServerFrame) -> JsValue {
    match frame {
        ServerFrame::History { messages, next, .. } => {
            let o = Object::new();
            set(&o, "messages", &messages_to_js(messages));
            set(&o, "next", &next.map_or(JsValue::NULL, cursor_to_js));
            o.into()
        }
        ServerFrame::Conversations { conversations, .. } => {
            conversations.iter().map(conversation_to_js).collect::<Array>().into()
        }
        ServerFrame::MarkedRead { count, .. } => JsValue::from(*count),
        ServerFrame::Watching { online, .. } => online.iter().map(|u| user_to_js(*u)).collect::<Array>().into(),
        _ => JsValue::UNDEFINED,
    }
}

struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        // Closing an already closed socket is harmless.
        let _ = self.ws.close();
    }
}

struct Timer {
    handle: i32,
    _callback: Closure<dyn FnMut()>,
}

type Resolvers = (Function, Function);
/// Starts a call: registers its resolvers, or fails at once.
type Start = Box<dyn FnOnce(&mut Inner, Resolvers) -> Result<(), JsValue>>;

struct Inner {
    session: Session,
    url: String,
    get_token: Function,
    socket: Option<Socket>,
    /// Bumped for every socket, so events of a replaced socket are ignored.
    generation: u32,
    timer: Option<Timer>,
    listeners: Vec<(u32, String, Function)>,
    next_listener: u32,
    sends: Vec<(MessageId, Resolvers)>,
    requests: Vec<(RequestId, Resolvers)>,
    on_online: Option<Closure<dyn FnMut()>>,
    on_offline: Option<Closure<dyn FnMut()>>,
    me: Weak<RefCell<Inner>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(window) = web_sys::window() {
            if let Some(timer) = self.timer.take() {
                window.clear_timeout_with_handle(timer.handle);
            }
            if let Some(on_online) = self.on_online.take() {
                let _ = window.remove_event_listener_with_callback("online", on_online.as_ref().unchecked_ref());
            }
            if let Some(on_offline) = self.on_offline.take() {
                let _ = window.remove_event_listener_with_callback("offline", on_offline.as_ref().unchecked_ref());
            }
        }
    }
}

/// A JavaScript call to make once the internal borrow is released.
enum Call {
    Invoke(Function, JsValue),
}

impl Inner {
    fn open_socket(&mut self) {
        self.socket = None;
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        let ws = match WebSocket::new(&self.url) {
            Ok(ws) => ws,
            Err(_) => {
                self.session.handle_close(now(), None);
                return;
            }
        };
        ws.set_binary_type(BinaryType::Arraybuffer);
        let me = self.me.clone();
        let on_open = Closure::<dyn FnMut()>::new({
            let me = me.clone();
            move || with(&me, generation, |inner| inner.session.handle_open(now()))
        });
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new({
            let me = me.clone();
            move |event: MessageEvent| {
                let data = event.data();
                if data.is_instance_of::<js_sys::ArrayBuffer>() {
                    let bytes = Uint8Array::new(&data).to_vec();
                    with(&me, generation, |inner| inner.session.handle_frame(now(), &bytes));
                }
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            let code = event.code();
            with(&me, generation, |inner| {
                inner.socket = None;
                inner.session.handle_close(now(), Some(code));
            });
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.socket = Some(Socket { ws, _on_open: on_open, _on_message: on_message, _on_close: on_close });
    }

    fn fetch_token(&mut self, purpose: TokenPurpose) {
        let outcome = self.get_token.call0(&JsValue::NULL);
        let promise = match outcome {
            Ok(value) => Promise::resolve(&value),
            Err(_) => {
                self.session.handle_token_error(now(), purpose);
                return;
            }
        };
        let ok = self.me.clone();
        let failed = self.me.clone();
        let on_ok = Closure::once_into_js(move |token: JsValue| {
            with_any(&ok, |inner| match token.as_string() {
                Some(token) => inner.session.handle_token(now(), purpose, token),
                None => inner.session.handle_token_error(now(), purpose),
            });
        });
        let on_err = Closure::once_into_js(move |_error: JsValue| {
            with_any(&failed, |inner| inner.session.handle_token_error(now(), purpose));
        });
        // `then` through Reflect: the self-freeing one-shot functions need no owner.
        if let Ok(then) = get(&promise, "then").dyn_into::<Function>() {
            let _ = then.call2(&promise, &on_ok, &on_err);
        }
    }

    /// Applies the session's outputs; returns the JavaScript calls to make afterwards.
    fn pump(&mut self) -> Vec<Call> {
        let mut calls = Vec::new();
        loop {
            let mut progressed = false;
            while let Some(action) = self.session.poll_action() {
                progressed = true;
                match action {
                    Action::FetchToken(purpose) => self.fetch_token(purpose),
                    Action::Open => self.open_socket(),
                    Action::Close(code) => {
                        if let Some(socket) = self.socket.take() {
                            let _ = socket.ws.close_with_code(code);
                        }
                    }
                }
            }
            while let Some(bytes) = self.session.poll_transmit() {
                progressed = true;
                if let Some(socket) = &self.socket
                    && socket.ws.send_with_u8_array(&bytes).is_err()
                {
                    self.socket = None;
                    self.session.handle_close(now(), None);
                }
            }
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                self.route(event, &mut calls);
            }
            if !progressed {
                break;
            }
        }
        self.arm_timer();
        calls
    }

    fn arm_timer(&mut self) {
        let Some(window) = web_sys::window() else {
            return;
        };
        if let Some(timer) = self.timer.take() {
            window.clear_timeout_with_handle(timer.handle);
        }
        let Some(at) = self.session.poll_timeout() else {
            return;
        };
        let delay = (at - now()).clamp(0, i64::from(i32::MAX)) as i32;
        let me = self.me.clone();
        let callback = Closure::<dyn FnMut()>::new(move || {
            with_any(&me, |inner| {
                inner.timer = None;
                inner.session.handle_timeout(now());
            });
        });
        if let Ok(handle) =
            window.set_timeout_with_callback_and_timeout_and_arguments_0(callback.as_ref().unchecked_ref(), delay)
        {
            self.timer = Some(Timer { handle, _callback: callback });
        }
    }

    fn emit(&self, name: &str, payload: &JsValue, calls: &mut Vec<Call>) {
        for (_, event, handler) in &self.listeners {
            if event == name {
                calls.push(Call::Invoke(handler.clone(), payload.clone()));
            }
        }
    }

    fn route(&mut self, event: Event, calls: &mut Vec<Call>) {
        match event {
            Event::Sent(message) => {
                if let Some((resolve, _)) = take(&mut self.sends, &message.id) {
                    calls.push(Call::Invoke(resolve, message_to_js(&message)));
                }
            }
            Event::SendFailed { id, code, message } => {
                if let Some((_, reject)) = take(&mut self.sends, &id) {
                    calls.push(Call::Invoke(reject, chat_error(code, &message)));
                }
            }
            Event::Response { req, frame } => {
                if let Some((resolve, _)) = take(&mut self.requests, &req) {
                    calls.push(Call::Invoke(resolve, answer_to_js(&frame)));
                }
            }
            Event::RequestFailed { req, code, message } => {
                if let Some((_, reject)) = take(&mut self.requests, &req) {
                    calls.push(Call::Invoke(reject, chat_error(code, &message)));
                }
            }
            Event::Message { message, live } => {
                let o = Object::new();
                set(&o, "message", &message_to_js(&message));
                set(&o, "live", &JsValue::from_bool(live));
                self.emit("message", &o, calls);
            }
            Event::Read { reader, peer, up_to } => {
                let o = Object::new();
                set(&o, "reader", &user_to_js(reader));
                set(&o, "peer", &user_to_js(peer));
                set(&o, "upTo", &cursor_to_js(up_to));
                self.emit("read", &o, calls);
            }
            Event::Typing { from, on } => {
                let o = Object::new();
                set(&o, "from", &user_to_js(from));
                set(&o, "on", &JsValue::from_bool(on));
                self.emit("typing", &o, calls);
            }
            Event::Presence { user, online } => {
                let o = Object::new();
                set(&o, "user", &user_to_js(user));
                set(&o, "online", &JsValue::from_bool(online));
                self.emit("presence", &o, calls);
            }
            Event::Status(status) => {
                let o = Object::new();
                set(&o, "status", &JsValue::from_str(status.as_str()));
                self.emit("status", &o, calls);
            }
            Event::Disconnected { code: Some(code) } => {
                let o = Object::new();
                set(&o, "status", &JsValue::from_str(self.session.status().as_str()));
                set(&o, "code", &JsValue::from(code.0));
                self.emit("status", &o, calls);
            }
            Event::CaughtUp { count, conversations } => {
                let o = Object::new();
                set(&o, "count", &JsValue::from(count));
                let list =
                    conversations.map_or(JsValue::NULL, |c| c.iter().map(conversation_to_js).collect::<Array>().into());
                set(&o, "conversations", &list);
                self.emit("caughtUp", &o, calls);
            }
            Event::Welcome { .. } | Event::Disconnected { code: None } => {}
        }
    }
}

/// Removes and returns the resolvers waiting on `key`.
fn take<K: PartialEq>(waiting: &mut Vec<(K, Resolvers)>, key: &K) -> Option<Resolvers> {
    let index = waiting.iter().position(|(k, _)| k == key)?;
    Some(waiting.swap_remove(index).1)
}

/// Runs `f` on the client if it still exists and `generation` is its current socket's.
fn with(me: &Weak<RefCell<Inner>>, generation: u32, f: impl FnOnce(&mut Inner)) {
    let mut f = Some(f);
    apply(me, Some(generation), &mut |inner| {
        if let Some(f) = f.take() {
            f(inner);
        }
    });
}

/// Runs `f` on the client if it still exists.
fn with_any(me: &Weak<RefCell<Inner>>, f: impl FnOnce(&mut Inner)) {
    let mut f = Some(f);
    apply(me, None, &mut |inner| {
        if let Some(f) = f.take() {
            f(inner);
        }
    });
}

// One non-generic body for every entry point keeps the wasm small.
fn apply(me: &Weak<RefCell<Inner>>, generation: Option<u32>, f: &mut dyn FnMut(&mut Inner)) {
    let Some(rc) = me.upgrade() else { return };
    let calls = {
        let Ok(mut inner) = rc.try_borrow_mut() else {
            return;
        };
        if generation.is_some_and(|g| g != inner.generation) {
            return;
        }
        f(&mut inner);
        inner.pump()
    };
    run(calls);
}

fn run(calls: Vec<Call>) {
    for call in calls {
        match call {
            Call::Invoke(function, argument) => {
                // A throwing app handler must not break the client.
                let _ = function.call1(&JsValue::NULL, &argument);
            }
        }
    }
}

/// The chat client. See the `chat-sdk` README for a Next.js example.
#[wasm_bindgen]
pub struct ChatClient {
    inner: Rc<RefCell<Inner>>,
}

#[wasm_bindgen]
impl ChatClient {
    /// Creates a client; call `connect()` to start.
    #[wasm_bindgen(constructor)]
    pub fn new(options: ChatClientOptions) -> Result<ChatClient, JsValue> {
        let url = get(&options, "url").as_string().unwrap_or_default();
        let url = crate::url::websocket_url(&url).map_err(|why| chat_error(ErrorCode::BAD_FRAME, why))?;
        let get_token = get(&options, "getToken").dyn_into::<Function>().map_err(|_| {
            chat_error(ErrorCode::UNAUTHORIZED, "options.getToken must be a function returning a token")
        })?;
        let mut seed = [0u8; 8];
        if let Some(crypto) = web_sys::window().and_then(|w| w.crypto().ok()) {
            let _ = crypto.get_random_values_with_u8_array(&mut seed);
        }
        let seed = u64::from_le_bytes(seed) ^ (now() as u64);
        let inner = Rc::new_cyclic(|me| {
            RefCell::new(Inner {
                session: Session::new(Timings::default(), seed),
                url,
                get_token,
                socket: None,
                generation: 0,
                timer: None,
                listeners: Vec::new(),
                next_listener: 0,
                sends: Vec::new(),
                requests: Vec::new(),
                on_online: None,
                on_offline: None,
                me: me.clone(),
            })
        });
        // Reconnect at once when the browser comes back online.
        let weak = Rc::downgrade(&inner);
        let on_online = Closure::<dyn FnMut()>::new(move || with_any(&weak, |i| i.session.handle_online(now())));
        if let Some(window) = web_sys::window() {
            let _ = window.add_event_listener_with_callback("online", on_online.as_ref().unchecked_ref());
        }
        let weak = Rc::downgrade(&inner);
        let on_offline = Closure::<dyn FnMut()>::new(move || with_any(&weak, |i| i.session.handle_offline(now())));
        if let Some(window) = web_sys::window() {
            let _ = window.add_event_listener_with_callback("offline", on_offline.as_ref().unchecked_ref());
        }
        inner.borrow_mut().on_online = Some(on_online);
        inner.borrow_mut().on_offline = Some(on_offline);
        Ok(ChatClient { inner })
    }

    fn act(&self, f: impl FnOnce(&mut Inner)) {
        with_any(&Rc::downgrade(&self.inner), f);
    }

    /// Connects (and keeps reconnecting until `close()` or an `unauthorized` refusal).
    pub fn connect(&self) {
        self.act(|i| i.session.connect(now()));
    }

    /// Closes the connection for good; pending calls reject with `client_closed`.
    pub fn close(&self) {
        self.act(|i| i.session.close(now()));
    }

    /// The connection status.
    #[wasm_bindgen(getter)]
    pub fn status(&self) -> JsStatus {
        JsValue::from_str(self.inner.borrow().session.status().as_str()).unchecked_into()
    }

    /// Who the server says this client is, once connected.
    #[wasm_bindgen(getter)]
    pub fn user(&self) -> JsMaybeUser {
        self.inner.borrow().session.user().map_or(JsValue::UNDEFINED, user_to_js).unchecked_into()
    }

    /// Sends a message. Resolves with the stored message once the server committed it;
    /// queued while offline; rejects only on a permanent error.
    pub fn send(&self, to: JsUserRef, content: String) -> PromiseMessage {
        let to = user_from_js(&to);
        self.promise(Box::new(move |inner, resolvers| {
            let id = inner.session.send(now(), to?, content).map_err(|code| chat_error(code, code.name()))?;
            inner.sends.push((id, resolvers));
            Ok(())
        }))
        .unchecked_into()
    }

    /// A page of the conversation with `peer`, newest first.
    pub fn history(&self, peer: JsUserRef, options: Option<JsHistoryOptions>) -> PromiseHistory {
        let peer = user_from_js(&peer);
        let options: JsValue = options.map_or(JsValue::UNDEFINED, Into::into);
        let before = get(&options, "before");
        let before =
            if before.is_undefined() || before.is_null() { Ok(None) } else { cursor_from_js(&before).map(Some) };
        let limit = get(&options, "limit").as_f64().map_or(50, |l| l.clamp(0.0, 65_535.0) as u16);
        let request = peer.and_then(|peer| Ok(Request::History { peer, before: before?, limit }));
        self.request(request).unchecked_into()
    }

    /// Every conversation of this user, most recent first, with unread counts.
    pub fn conversations(&self) -> PromiseConversations {
        self.request(Ok(Request::Conversations)).unchecked_into()
    }

    /// Marks `peer`'s messages up to `upTo` as read; resolves with how many changed.
    #[wasm_bindgen(js_name = markRead)]
    pub fn mark_read(&self, peer: JsUserRef, up_to: JsCursor) -> PromiseNumber {
        let peer = user_from_js(&peer);
        let up_to = cursor_from_js(&up_to);
        let request = peer.and_then(|peer| Ok(Request::MarkRead { peer, up_to: up_to? }));
        self.request(request).unchecked_into()
    }

    /// Tells `peer` this user started or stopped typing.
    #[wasm_bindgen(js_name = setTyping)]
    pub fn set_typing(&self, peer: JsUserRef, on: bool) -> PromiseVoid {
        let peer = user_from_js(&peer);
        self.request(peer.map(|peer| Request::Typing { peer, on })).unchecked_into()
    }

    /// Follows the presence of `users` (replacing the previous list); resolves with those online.
    #[wasm_bindgen(js_name = watchPresence)]
    pub fn watch_presence(&self, users: JsUserRefs) -> PromiseUsers {
        let users: Result<Vec<UserRef>, JsValue> =
            Array::from(&users.into()).iter().map(|u| user_from_js(&u)).collect();
        self.request(users.map(|users| Request::WatchPresence { users })).unchecked_into()
    }

    /// Subscribes `handler` to `event`; returns a function that unsubscribes.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, event: String, handler: Function) -> Function {
        let id = {
            let mut inner = self.inner.borrow_mut();
            inner.next_listener = inner.next_listener.wrapping_add(1);
            let id = inner.next_listener;
            inner.listeners.push((id, event, handler));
            id
        };
        let weak = Rc::downgrade(&self.inner);
        Closure::once_into_js(move || {
            if let Some(rc) = weak.upgrade()
                && let Ok(mut inner) = rc.try_borrow_mut()
            {
                inner.listeners.retain(|(l, _, _)| *l != id);
            }
        })
        .unchecked_into()
    }

    fn request(&self, request: Result<Request, JsValue>) -> Promise {
        self.promise(Box::new(move |inner, resolvers| {
            let req = inner.session.request(now(), request?).map_err(|code| chat_error(code, code.name()))?;
            inner.requests.push((req, resolvers));
            Ok(())
        }))
    }

    fn promise(&self, start: Start) -> Promise {
        let mut start = Some(start);
        let weak = Rc::downgrade(&self.inner);
        Promise::new(&mut |resolve: Function, reject: Function| {
            let Some(start) = start.take() else { return };
            let mut failed = None;
            with_any(&weak, |inner| {
                if let Err(e) = start(inner, (resolve.clone(), reject.clone())) {
                    failed = Some(e);
                }
            });
            if let Some(error) = failed {
                let _ = reject.call1(&JsValue::NULL, &error);
            }
        })
    }
}

impl core::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ChatClient")
    }
}
