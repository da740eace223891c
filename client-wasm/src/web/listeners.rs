//! What the app hears: the session's events become promise resolutions (sends, requests)
//! and calls of the listeners registered with `on(event, handler)`.

use alloc::string::String;
use alloc::vec::Vec;

use js_sys::{Array, Function, Object};
use wasm_bindgen::prelude::*;

use super::convert::{answer_to_js, chat_error, conversation_to_js, cursor_to_js, message_to_js, set, user_to_js};
use super::driver::{Call, Inner, take};
use crate::core::Event;

/// The app's listeners, by event name, each with the id its unsubscribe function removes.
#[derive(Default)]
pub(super) struct Listeners {
    list: Vec<(u32, String, Function)>,
    next: u32,
}

impl Listeners {
    /// Adds `handler` for `event`; returns its id.
    pub(super) fn add(&mut self, event: String, handler: Function) -> u32 {
        self.next = self.next.wrapping_add(1);
        self.list.push((self.next, event, handler));
        self.next
    }

    pub(super) fn remove(&mut self, id: u32) {
        self.list.retain(|(l, _, _)| *l != id);
    }

    /// Queues a call of every listener of `name` with `payload`.
    fn emit(&self, name: &str, payload: &JsValue, calls: &mut Vec<Call>) {
        for (_, event, handler) in &self.list {
            if event == name {
                calls.push(Call::Invoke(handler.clone(), payload.clone()));
            }
        }
    }
}

impl Inner {
    /// Turns one session event into the JavaScript calls it causes.
    pub(super) fn route(&mut self, event: Event, calls: &mut Vec<Call>) {
        match event {
            // The same id may have been queued twice (restored after a reload): every caller hears.
            Event::Sent(message) => {
                while let Some((resolve, _)) = take(&mut self.sends, &message.id) {
                    calls.push(Call::Invoke(resolve, message_to_js(&message)));
                }
            }
            Event::SendFailed { id, code, message } => {
                while let Some((_, reject)) = take(&mut self.sends, &id) {
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
            Event::Message { message, live, quiet } => {
                let o = Object::new();
                set(&o, "message", &message_to_js(&message));
                set(&o, "live", &JsValue::from_bool(live));
                set(&o, "quiet", &JsValue::from_bool(quiet));
                // The session's position (not the message's): every message up to it has been
                // reported, so another tab can resume from it.
                #[allow(clippy::cast_precision_loss)]
                let position = self.session.position().unwrap_or(0) as f64;
                set(&o, "position", &JsValue::from_f64(position));
                self.listeners.emit("message", &o, calls);
            }
            Event::Read { reader, peer, up_to } => {
                let o = Object::new();
                set(&o, "reader", &user_to_js(reader));
                set(&o, "peer", &user_to_js(peer));
                set(&o, "upTo", &cursor_to_js(up_to));
                self.listeners.emit("read", &o, calls);
            }
            Event::Typing { from, on } => {
                let o = Object::new();
                set(&o, "from", &user_to_js(from));
                set(&o, "on", &JsValue::from_bool(on));
                self.listeners.emit("typing", &o, calls);
            }
            Event::Presence { user, online } => {
                let o = Object::new();
                set(&o, "user", &user_to_js(user));
                set(&o, "online", &JsValue::from_bool(online));
                self.listeners.emit("presence", &o, calls);
            }
            Event::Changed { message, deleted } => {
                let o = Object::new();
                set(&o, "message", &message_to_js(&message));
                set(&o, "deleted", &JsValue::from_bool(deleted));
                self.listeners.emit("changed", &o, calls);
            }
            Event::Status(status) => {
                let o = Object::new();
                set(&o, "status", &JsValue::from_str(status.as_str()));
                self.listeners.emit("status", &o, calls);
            }
            Event::Disconnected { code: Some(code) } => {
                let o = Object::new();
                set(&o, "status", &JsValue::from_str(self.session.status().as_str()));
                set(&o, "code", &JsValue::from(code.0));
                self.listeners.emit("status", &o, calls);
            }
            Event::CaughtUp { count, conversations } => {
                let o = Object::new();
                set(&o, "count", &JsValue::from(count));
                let list =
                    conversations.map_or(JsValue::NULL, |c| c.iter().map(conversation_to_js).collect::<Array>().into());
                set(&o, "conversations", &list);
                self.listeners.emit("caughtUp", &o, calls);
            }
            Event::Welcome { .. } | Event::Disconnected { code: None } => {}
        }
    }
}
