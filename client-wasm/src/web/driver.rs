//! The driver: moves bytes and time between the sans-IO session and the browser. It owns
//! the socket, the one armed `setTimeout`, and the calls to the app's `getToken`, and runs
//! every entry point through one non-generic body that pumps the session afterwards.

use alloc::boxed::Box;
use alloc::rc::Weak;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use chat_protocol::{MessageId, RequestId};
use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use super::convert::{get, now};
use super::listeners::Listeners;
use crate::core::{Action, Session, TokenPurpose};

pub(super) struct Socket {
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

pub(super) struct Timer {
    handle: i32,
    _callback: Closure<dyn FnMut()>,
}

pub(super) type Resolvers = (Function, Function);
/// Starts a call: registers its resolvers, or fails at once.
pub(super) type Start = Box<dyn FnOnce(&mut Inner, Resolvers) -> Result<(), JsValue>>;

pub(super) struct Inner {
    pub(super) session: Session,
    pub(super) url: String,
    pub(super) get_token: Function,
    pub(super) socket: Option<Socket>,
    /// Bumped for every socket, so events of a replaced socket are ignored.
    pub(super) generation: u32,
    pub(super) timer: Option<Timer>,
    pub(super) listeners: Listeners,
    pub(super) sends: Vec<(MessageId, Resolvers)>,
    pub(super) requests: Vec<(RequestId, Resolvers)>,
    pub(super) on_online: Option<Closure<dyn FnMut()>>,
    pub(super) on_offline: Option<Closure<dyn FnMut()>>,
    pub(super) me: Weak<RefCell<Inner>>,
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
pub(super) enum Call {
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
    pub(super) fn pump(&mut self) -> Vec<Call> {
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
}

/// Removes and returns the resolvers waiting on `key`.
pub(super) fn take<K: PartialEq>(waiting: &mut Vec<(K, Resolvers)>, key: &K) -> Option<Resolvers> {
    let index = waiting.iter().position(|(k, _)| k == key)?;
    Some(waiting.swap_remove(index).1)
}

/// Runs `f` on the client if it still exists and `generation` is its current socket's.
pub(super) fn with(me: &Weak<RefCell<Inner>>, generation: u32, f: impl FnOnce(&mut Inner)) {
    let mut f = Some(f);
    apply(me, Some(generation), &mut |inner| {
        if let Some(f) = f.take() {
            f(inner);
        }
    });
}

/// Runs `f` on the client if it still exists.
pub(super) fn with_any(me: &Weak<RefCell<Inner>>, f: impl FnOnce(&mut Inner)) {
    let mut f = Some(f);
    apply(me, None, &mut |inner| {
        if let Some(f) = f.take() {
            f(inner);
        }
    });
}

// One non-generic body for every entry point keeps the wasm small.
pub(super) fn apply(me: &Weak<RefCell<Inner>>, generation: Option<u32>, f: &mut dyn FnMut(&mut Inner)) {
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

pub(super) fn run(calls: Vec<Call>) {
    for call in calls {
        match call {
            Call::Invoke(function, argument) => {
                // A throwing app handler must not break the client.
                let _ = function.call1(&JsValue::NULL, &argument);
            }
        }
    }
}
