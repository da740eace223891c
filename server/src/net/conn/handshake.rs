//! The hello: the first frame must be a hello with a supported version and a valid token
//! naming a user who exists; anything else is refused with a reason.

use std::sync::Arc;

use axum::extract::ws::Message;
use chat_protocol::{
    ClientFrame, ErrorCode, MAX_CLIENT_FRAME_BYTES, MIN_SUPPORTED_VERSION, Millis, PROTOCOL_VERSION, UserRef,
    is_supported_version,
};
use futures_util::StreamExt;
use tokio::time::timeout;

use super::Stream;
use crate::net::state::AppState;

/// Who a connection belongs to, once its hello was accepted.
pub(super) struct Authenticated {
    pub(super) user: UserRef,
    pub(super) name: Arc<str>,
    pub(super) expires_at: Millis,
    /// The protocol version the client speaks.
    pub(super) version: u16,
    /// Whose conversations the token lets this teacher read as a supervisor.
    pub(super) supervision: crate::auth::Supervision,
}

pub(super) enum Refusal {
    /// The client went away; nothing to say.
    Quiet,
    /// Tell the client why, then close.
    Fatal(ErrorCode, String),
}

pub(super) async fn handshake(stream: &mut Stream, state: &AppState) -> Result<Authenticated, Refusal> {
    let first = match timeout(state.config.limits.hello_timeout, stream.next()).await {
        Err(_) => {
            return Err(Refusal::Fatal(ErrorCode::HELLO_TIMEOUT, "no hello arrived in time".into()));
        }
        Ok(None | Some(Ok(Message::Close(_)))) => return Err(Refusal::Quiet),
        Ok(Some(Err(e))) => return Err(socket_error(&e)),
        Ok(Some(Ok(message))) => message,
    };
    let bytes = match first {
        Message::Binary(bytes) => bytes,
        Message::Text(_) => return Err(text_frame()),
        Message::Ping(_) | Message::Pong(_) => {
            return Err(Refusal::Fatal(ErrorCode::HELLO_REQUIRED, "the first frame must be a hello".into()));
        }
        Message::Close(_) => return Err(Refusal::Quiet),
    };
    let frame = ClientFrame::decode(&bytes).map_err(|e| Refusal::Fatal(e.code(), e.to_string()))?;
    let ClientFrame::Hello { version, token } = frame else {
        return Err(Refusal::Fatal(ErrorCode::HELLO_REQUIRED, "the first frame must be a hello".into()));
    };
    if !is_supported_version(version) {
        return Err(Refusal::Fatal(ErrorCode::UNSUPPORTED_VERSION, version_mismatch(version)));
    }
    if token.len() > chat_protocol::MAX_TOKEN_BYTES {
        return Err(Refusal::Fatal(ErrorCode::TOKEN_TOO_LONG, "the token is too long".into()));
    }
    let verified = state
        .auth
        .verify(&token, state.config.clock.now_ms())
        .map_err(|(code, why)| Refusal::Fatal(code, why.into()))?;
    match state.users.name(verified.user).await {
        Ok(Some(name)) => Ok(Authenticated {
            user: verified.user,
            name,
            expires_at: verified.expires_at,
            version,
            supervision: verified.supervision,
        }),
        Ok(None) => Err(Refusal::Fatal(
            ErrorCode::UNKNOWN_USER,
            format!("no {} with id {} exists in users_view", verified.user.role.as_str(), verified.user.id),
        )),
        Err(e) => {
            tracing::error!(error = %e, "looking up a user at hello failed");
            Err(Refusal::Fatal(ErrorCode::INTERNAL, "the server could not check the user; retry".into()))
        }
    }
}

fn text_frame() -> Refusal {
    Refusal::Fatal(ErrorCode::BAD_FRAME, "text frames are not part of the protocol; send binary frames".into())
}

pub(super) fn socket_error(e: &axum::Error) -> Refusal {
    let text = e.to_string();
    // tungstenite reports an over-long message as a capacity error; everything else means
    // the transport broke and there is nobody left to tell.
    if text.contains("Space limit exceeded") || text.contains("too long") || text.contains("Capacity") {
        Refusal::Fatal(ErrorCode::FRAME_TOO_LARGE, format!("frames are limited to {MAX_CLIENT_FRAME_BYTES} bytes"))
    } else {
        Refusal::Quiet
    }
}

/// What to tell an SDK whose protocol this server does not speak: both sides' versions and
/// which package to upgrade. (chat-sdk and chat-server are released together, with the same
/// version number.)
pub(super) fn version_mismatch(sdk_protocol: u16) -> String {
    let server = env!("CARGO_PKG_VERSION");
    let speaks = if MIN_SUPPORTED_VERSION == PROTOCOL_VERSION {
        format!("protocol {PROTOCOL_VERSION}")
    } else {
        format!("protocols {MIN_SUPPORTED_VERSION} to {PROTOCOL_VERSION}")
    };
    if sdk_protocol > PROTOCOL_VERSION {
        format!(
            "this chat-sdk speaks protocol {sdk_protocol}, newer than chat-server {server} ({speaks}): upgrade chat-server \
             to the same version as chat-sdk"
        )
    } else {
        format!(
            "this chat-sdk speaks protocol {sdk_protocol}, older than chat-server {server} accepts ({speaks}): upgrade \
             chat-sdk to {server}"
        )
    }
}
