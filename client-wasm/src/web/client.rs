//! The exported `ChatClient`: the JavaScript API. Each method checks its arguments, then
//! hands the session a call through the driver.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use chat_protocol::{ErrorCode, MessageId, UserRef};
use js_sys::{Array, Function, Promise};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use super::convert::{chat_error, cursor_from_js, get, now, type_error, user_from_js, user_to_js};
use super::driver::{Inner, Start, with_any};
use super::listeners::Listeners;
use super::types::*;
use crate::core::{Request, Session, Timings};

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
        let url = crate::url::websocket_url(&url).map_err(type_error)?;
        let get_token = get(&options, "getToken")
            .dyn_into::<Function>()
            .map_err(|_| type_error("options.getToken must be a function returning a token (or a promise of one)"))?;
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
                listeners: Listeners::default(),
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
    /// queued while offline; rejects only on a permanent error. `id` (from `newMessageId()`,
    /// or restored from storage after a reload) names it; a new one is made when omitted.
    pub fn send(&self, to: JsUserRef, content: String, id: Option<String>) -> PromiseMessage {
        let to = user_from_js(&to);
        let id = id.map(|id| {
            MessageId::parse(&id).ok_or_else(|| chat_error(ErrorCode::BAD_MESSAGE_ID, "a message id is a UUID string"))
        });
        self.promise(Box::new(move |inner, resolvers| {
            let to = to?;
            let sent = match id {
                Some(id) => inner.session.send_with_id(now(), id?, to, content),
                None => inner.session.send(now(), to, content),
            };
            let id = sent.map_err(|code| chat_error(code, code.name()))?;
            inner.sends.push((id, resolvers));
            Ok(())
        }))
        .unchecked_into()
    }

    /// Continues where another client of this user left off (a tab taking over the connection):
    /// the first connection catches up on everything logged after `position` (the `position`
    /// of that client's last `message` event). Before `connect()`.
    #[wasm_bindgen(js_name = resumeFrom)]
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub fn resume_from(&self, position: f64) {
        self.inner.borrow_mut().session.resume_from(position.max(0.0) as u64);
    }

    /// A fresh message id, to store a message durably before `send(to, content, id)`.
    #[wasm_bindgen(js_name = newMessageId)]
    pub fn new_message_id(&self) -> String {
        self.inner.borrow_mut().session.new_message_id(now()).hyphenated().as_str().into()
    }

    /// A page of the conversation with `peer`, newest first.
    pub fn history(&self, peer: JsUserRef, options: Option<JsHistoryOptions>) -> PromiseHistory {
        let peer = user_from_js(&peer);
        let (before, limit) = history_options(options);
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

    /// Blocks `user`, or lifts the block (`blocked` false): neither can then message or type
    /// to the other. A teacher's block is a mute.
    pub fn block(&self, user: JsUserRef, blocked: bool) -> PromiseVoid {
        let user = user_from_js(&user);
        self.request(user.map(|user| Request::Block { user, blocked })).unchecked_into()
    }

    /// The users this user has blocked.
    pub fn blocks(&self) -> PromiseUsers {
        self.request(Ok(Request::Blocks)).unchecked_into()
    }

    /// Reports a message this user received to the school's staff, with a reason.
    pub fn report(&self, id: String, reason: String) -> PromiseVoid {
        let id = MessageId::parse(&id).ok_or_else(|| type_error("report: the id is not a message id (a UUID)"));
        self.request(id.map(|id| Request::Report { id, reason })).unchecked_into()
    }

    /// Replaces the text of a message this user sent (within the server's edit window).
    #[wasm_bindgen(js_name = editMessage)]
    pub fn edit_message(&self, id: String, content: String) -> PromiseVoid {
        let id = MessageId::parse(&id).ok_or_else(|| type_error("editMessage: the id is not a message id (a UUID)"));
        self.request(id.map(|id| Request::Edit { id, content })).unchecked_into()
    }

    /// Deletes (unsends) a message this user sent (within the server's edit window).
    #[wasm_bindgen(js_name = deleteMessage)]
    pub fn delete_message(&self, id: String) -> PromiseVoid {
        let id = MessageId::parse(&id).ok_or_else(|| type_error("deleteMessage: the id is not a message id (a UUID)"));
        self.request(id.map(|id| Request::Delete { id })).unchecked_into()
    }

    /// A supervisor reads `student`'s conversation list (read-only; the server audits it).
    #[wasm_bindgen(js_name = superviseConversations)]
    pub fn supervise_conversations(&self, student: JsUserRef) -> PromiseConversations {
        let student = user_from_js(&student);
        self.request(student.map(|student| Request::SuperviseConversations { student })).unchecked_into()
    }

    /// A supervisor reads the earlier texts of a message of `student`'s: `[{ at, deleted, before }]`.
    #[wasm_bindgen(js_name = superviseRevisions)]
    pub fn supervise_revisions(&self, student: JsUserRef, id: String) -> PromiseRevisions {
        let student = user_from_js(&student);
        let id =
            MessageId::parse(&id).ok_or_else(|| type_error("superviseRevisions: the id is not a message id (a UUID)"));
        self.request(student.and_then(|student| Ok(Request::SuperviseRevisions { student, id: id? }))).unchecked_into()
    }

    /// A supervisor reads a page of `student`'s conversation with `peer`, newest first.
    #[wasm_bindgen(js_name = superviseHistory)]
    pub fn supervise_history(
        &self,
        student: JsUserRef,
        peer: JsUserRef,
        options: Option<JsHistoryOptions>,
    ) -> PromiseHistory {
        let student = user_from_js(&student);
        let peer = user_from_js(&peer);
        let (before, limit) = history_options(options);
        let request =
            student.and_then(|student| Ok(Request::SuperviseHistory { student, peer: peer?, before: before?, limit }));
        self.request(request).unchecked_into()
    }

    /// Subscribes `handler` to `event`; returns a function that unsubscribes.
    #[wasm_bindgen(skip_typescript)]
    pub fn on(&self, event: String, handler: Function) -> Function {
        let id = self.inner.borrow_mut().listeners.add(event, handler);
        let weak = Rc::downgrade(&self.inner);
        Closure::once_into_js(move || {
            if let Some(rc) = weak.upgrade()
                && let Ok(mut inner) = rc.try_borrow_mut()
            {
                inner.listeners.remove(id);
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

/// `{ before?, limit? }` of a history request: the cursor (if any) and the page size (50).
fn history_options(options: Option<JsHistoryOptions>) -> (Result<Option<chat_protocol::Cursor>, JsValue>, u16) {
    let options: JsValue = options.map_or(JsValue::UNDEFINED, Into::into);
    let before = get(&options, "before");
    let before = if before.is_undefined() || before.is_null() { Ok(None) } else { cursor_from_js(&before).map(Some) };
    let limit = get(&options, "limit").as_f64().map_or(50, |l| l.clamp(0.0, 65_535.0) as u16);
    (before, limit)
}

impl core::fmt::Debug for ChatClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ChatClient")
    }
}
