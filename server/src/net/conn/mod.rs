//! One WebSocket connection: the hello handshake (`handshake`), then a reader loop that
//! answers requests (`requests`), and a writer task, the pump, that drains the
//! connection's outbound queue to the socket (`pump`).
//!
//! The reader never writes to the socket itself after the welcome: every frame goes
//! through the bounded [`Outbox`], so replies, deliveries and presence notices share one
//! ordered queue and one backpressure rule.

mod connection;
mod handshake;
mod pump;
mod requests;
mod safety;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::Bytes;
use chat_protocol::{ErrorCode, ServerFrame, UserRef};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use governor::Quota;
use tokio::time::timeout;

use crate::delivery::outbox::Outbox;
use crate::net::state::{AppState, ConnectionSlot, PendingSlot};
use connection::Connection;
use handshake::{Refusal, handshake};

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

/// How long the final frames of a closing connection may take to write.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection waits at shutdown for the writer to commit what it accepted.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest a connection over its request budget stops being read before its next
/// request is looked at.
const MAX_THROTTLE: Duration = Duration::from_secs(2);

/// The quiet hours frame for `user`: students on protocol 4 or later, where the school has
/// quiet hours; from two days back (a catch-up marks last night's messages) to eight ahead
/// (past any token's life: a refresh sends it again).
pub(super) fn quiet_hours(state: &AppState, user: UserRef, version: u16) -> Option<ServerFrame> {
    const DAY: i64 = 24 * 3600 * 1000;
    let hours = state.config.safety.quiet_hours.as_ref()?;
    if user.role != chat_protocol::Role::Student || version < 4 {
        return None;
    }
    let now = state.config.clock.now_ms();
    Some(ServerFrame::QuietHours { windows: hours.windows(now - 2 * DAY, now + 8 * DAY) })
}

/// Closes a just-upgraded WebSocket the server will not serve, with `code` and `message`,
/// reading nothing from it.
pub(crate) async fn refuse(socket: WebSocket, code: ErrorCode, message: &str) {
    let (mut sink, _stream) = socket.split();
    close_with(&mut sink, code, message).await;
}

/// Serves one upgraded WebSocket until it closes. `pending` is the connection's slot among
/// the unauthenticated ones; it is given up once the hello is accepted.
pub(crate) async fn serve(socket: WebSocket, state: AppState, pending: PendingSlot) {
    let (mut sink, mut stream) = socket.split();
    let who = match handshake(&mut stream, &state).await {
        Ok(who) => who,
        Err(Refusal::Quiet) => return,
        Err(Refusal::Fatal(code, message)) => {
            state.metrics.error(code);
            tracing::debug!(code = code.name(), %message, "connection refused at hello");
            close_with(&mut sink, code, &message).await;
            return;
        }
    };
    drop(pending);
    let Some(slot) = ConnectionSlot::take(&state) else {
        state.metrics.error(ErrorCode::SERVER_FULL);
        close_with(
            &mut sink,
            ErrorCode::SERVER_FULL,
            "the server holds its maximum number of connections; retry later",
        )
        .await;
        return;
    };

    let limits = &state.config.limits;
    let positions = who.version >= 3;
    let (outbox, rx, queue, control) =
        Outbox::new(state.hub.next_id(), who.user, who.version, limits.outbound_bytes, state.metrics.clone());
    // Read before registering: every message after it reaches this connection live (or
    // came before it, which the app's first history and conversation requests show).
    let position = state.feed.position();
    // Registered before the welcome is written but the queue is only drained after it, so
    // the first frame a client sees is always the welcome.
    if let Err(code) = state.hub.register(&outbox, limits.max_connections_per_user) {
        state.metrics.error(code);
        let why = format!(
            "this user already has {} open connections (tabs, devices), the most allowed; close one",
            limits.max_connections_per_user
        );
        close_with(&mut sink, code, &why).await;
        return;
    }
    let welcome = ServerFrame::Welcome {
        user: who.user,
        name: who.name.to_string(),
        server_time: state.config.clock.now_ms(),
        token_expires_at: who.expires_at,
        limits: limits.announced(),
    };
    let mut greeting = vec![welcome];
    if positions {
        greeting.push(ServerFrame::Position { position });
    }
    greeting.extend(quiet_hours(&state, who.user, who.version));
    for frame in &greeting {
        if send_frame(&mut sink, frame).await.is_err() {
            state.hub.unregister(&outbox);
            return;
        }
    }
    state.metrics.connection_opened();
    tracing::debug!(user = ?who.user, conn = outbox.id(), "connection authenticated");

    let pump = tokio::spawn(pump::pump(sink, rx, queue, Arc::clone(&control), limits.write_stall_timeout));
    let mut conn = Connection {
        state: state.clone(),
        me: who.user,
        outbox,
        token_expires_at: who.expires_at,
        watching: Vec::new(),
        peers: std::collections::HashMap::new(),
        supervision: who.supervision.clone(),
        version: who.version,
    };
    conn.read_loop(&mut stream).await;
    conn.close(&control).await;
    if timeout(DRAIN_TIMEOUT + CLOSE_WRITE_TIMEOUT * 2, pump).await.is_err() {
        tracing::warn!(conn = conn.outbox.id(), "socket writer did not finish in time");
    }
    drop(slot);
}

/// The request budget of one user: `per_second` sustained, `burst` at once.
pub(crate) fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(per_second).max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

async fn send_frame(sink: &mut Sink, frame: &ServerFrame) -> Result<(), axum::Error> {
    match frame.encode() {
        Ok(bytes) => sink.send(Message::Binary(Bytes::from(bytes))).await,
        Err(e) => {
            tracing::error!(error = %e, "a server frame could not be encoded");
            Ok(())
        }
    }
}

/// Sends a fatal frame naming `code`, then closes with close code `4000 + code`.
async fn close_with(sink: &mut Sink, code: ErrorCode, message: &str) {
    let work = async {
        let _ = send_frame(sink, &ServerFrame::Fatal { code, message: message.to_owned() }).await;
        // Close reasons are limited to 123 bytes; the code name always fits.
        let close = CloseFrame { code: code.close_code(), reason: code.name().into() };
        let _ = sink.send(Message::Close(Some(close))).await;
    };
    let _ = timeout(CLOSE_WRITE_TIMEOUT, work).await;
}
