//! Values to and from JavaScript: users, cursors, messages, conversations, errors.

use chat_protocol::{Conversation, Cursor, ErrorCode, MessageId, Millis, Role, ServerFrame, StoredMessage, UserRef};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

pub(super) fn now() -> Millis {
    js_sys::Date::now() as Millis
}

pub(super) fn set(target: &Object, key: &str, value: &JsValue) {
    // Setting a property on a plain object we created cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

pub(super) fn get(source: &JsValue, key: &str) -> JsValue {
    Reflect::get(source, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// A JavaScript `Error` carrying the protocol code.
pub(super) fn chat_error(code: ErrorCode, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    set(&error, "code", &JsValue::from(code.0));
    set(&error, "codeName", &JsValue::from_str(code.name()));
    set(&error, "retryable", &JsValue::from_bool(code.is_retryable()));
    error.into()
}

pub(super) fn user_to_js(user: UserRef) -> JsValue {
    let o = Object::new();
    set(&o, "role", &JsValue::from_str(user.role.as_str()));
    set(&o, "id", &JsValue::from(user.id));
    o.into()
}

pub(super) fn user_from_js(value: &JsValue) -> Result<UserRef, JsValue> {
    let role = get(value, "role").as_string().and_then(|r| Role::parse(&r));
    let id = get(value, "id").as_f64();
    match (role, id) {
        (Some(role), Some(id)) if id.fract() == 0.0 && id >= f64::from(i32::MIN) && id <= f64::from(i32::MAX) => {
            Ok(UserRef::new(role, id as i32))
        }
        _ => Err(chat_error(ErrorCode::BAD_USER_ID, "a user is { role: \"teacher\" | \"student\", id: number }")),
    }
}

pub(super) fn cursor_to_js(cursor: Cursor) -> JsValue {
    let o = Object::new();
    set(&o, "at", &JsValue::from_f64(cursor.at as f64));
    set(&o, "id", &JsValue::from_str(cursor.id.hyphenated().as_str()));
    o.into()
}

pub(super) fn cursor_from_js(value: &JsValue) -> Result<Cursor, JsValue> {
    let at = get(value, "at").as_f64();
    let id = get(value, "id").as_string().and_then(|s| MessageId::parse(&s));
    match (at, id) {
        (Some(at), Some(id)) => Ok(Cursor { at: at as Millis, id }),
        _ => Err(chat_error(ErrorCode::BAD_MESSAGE_ID, "a cursor is { at: number, id: string }")),
    }
}

pub(super) fn message_to_js(m: &StoredMessage) -> JsValue {
    let o = Object::new();
    set(&o, "id", &JsValue::from_str(m.id.hyphenated().as_str()));
    set(&o, "from", &user_to_js(m.from));
    set(&o, "to", &user_to_js(m.to));
    set(&o, "content", &JsValue::from_str(&m.content));
    set(&o, "createdAt", &JsValue::from_f64(m.created_at as f64));
    set(&o, "read", &JsValue::from_bool(m.read));
    o.into()
}

pub(super) fn messages_to_js(messages: &[StoredMessage]) -> JsValue {
    messages.iter().map(message_to_js).collect::<Array>().into()
}

pub(super) fn conversation_to_js(c: &Conversation) -> JsValue {
    let o = Object::new();
    set(&o, "peer", &user_to_js(c.peer));
    set(&o, "peerName", &JsValue::from_str(&c.peer_name));
    set(&o, "last", &message_to_js(&c.last));
    set(&o, "unread", &JsValue::from(c.unread));
    o.into()
}

/// Converts a request's answer into what its promise resolves with.
pub(super) fn answer_to_js(frame: &ServerFrame) -> JsValue {
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
        ServerFrame::Watching { online, .. } | ServerFrame::Blocks { users: online, .. } => {
            online.iter().map(|u| user_to_js(*u)).collect::<Array>().into()
        }
        ServerFrame::Revisions { revisions, .. } => revisions
            .iter()
            .map(|r| {
                let o = Object::new();
                #[allow(clippy::cast_precision_loss)]
                set(&o, "at", &JsValue::from_f64(r.at as f64));
                set(&o, "deleted", &JsValue::from_bool(r.deleted));
                set(&o, "before", &JsValue::from_str(&r.before));
                JsValue::from(o)
            })
            .collect::<Array>()
            .into(),
        _ => JsValue::UNDEFINED,
    }
}

/// A JavaScript `TypeError`: the app passed something of the wrong shape (options, not
/// input a server would judge).
pub(super) fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}
