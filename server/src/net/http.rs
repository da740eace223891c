//! The HTTP surface: the WebSocket endpoint and the operational endpoints.
//!
//! - `GET /ws`: the WebSocket upgrade (browser origins checked against the allow list).
//! - `GET /healthz`: alive, version, connection count (JSON).
//! - `GET /readyz`: whether the database answers, the writer commits and the bus (if any) is
//!   connected (JSON, 503 when not, with what is wrong).
//! - `GET /metrics`: Prometheus text format.

use axum::Extension;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chat_protocol::{ErrorCode, MAX_CLIENT_FRAME_BYTES, MAX_SERVER_FRAME_BYTES, PROTOCOL_VERSION};
use serde::Serialize;

use crate::delivery::writer::WriterState;
use crate::net::conn;
use crate::net::listen::Peer;
use crate::net::state::AppState;

/// tungstenite's write buffer: frames collect here until this many bytes, then go out.
const WRITE_BUFFER_BYTES: usize = 8 * 1024;

/// The most the write buffer may hold. tungstenite refuses a frame that would take the
/// buffer past this, and drops the connection, so it must exceed the largest frame a server
/// produces plus a full buffer and a frame header. (The pump writes one frame at a time and
/// waits for the socket, so the buffer never holds more than that.)
pub(crate) const MAX_WRITE_BUFFER_BYTES: usize = MAX_SERVER_FRAME_BYTES + WRITE_BUFFER_BYTES + 64;

// Checked when compiling: the largest frame (with its header, 14 bytes at most) fits after a
// full write buffer. `protocol/tests/decode.rs` checks every kind of frame against the limit.
const _: () = assert!(MAX_WRITE_BUFFER_BYTES >= MAX_SERVER_FRAME_BYTES + 14 + WRITE_BUFFER_BYTES);

/// The path of the WebSocket endpoint.
pub(crate) const WS_PATH: &str = "/ws";

/// The router of a server with this state.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route(WS_PATH, get(upgrade))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn upgrade(
    State(state): State<AppState>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Browsers always send Origin on a WebSocket handshake; refusing unknown ones stops
    // another site's page from opening a socket in a user's name (cross-site WebSocket
    // hijacking). Non-browser clients send no Origin and authenticate by token alone.
    // A refused page is still upgraded, then closed at once with `origin_not_allowed` and a
    // sentence naming the origin and the setting: a browser cannot see an HTTP 403 on the
    // upgrade (only "closed"), so the SDK would show "reconnecting" forever. Nothing is read
    // from such a socket: no frame of it is ever looked at, no token checked.
    let refused = headers.get(header::ORIGIN).and_then(|origin| {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        (!state.config.origins.allows(&origin)).then(|| origin.chars().take(120).collect::<String>())
    });
    if let Some(origin) = &refused {
        tracing::info!(origin, "refused a WebSocket from an origin that is not allowed");
    }
    if state.shutdown.is_cancelled() {
        state.metrics.refused("shutting_down");
        return (StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down\n").into_response();
    }
    let Some(slot) = peer.take_slot() else {
        // A second upgrade on one connection cannot happen in HTTP/1.1; refuse it anyway.
        return (StatusCode::BAD_REQUEST, "one WebSocket per connection\n").into_response();
    };
    if let Some(origin) = refused {
        state.metrics.error(ErrorCode::ORIGIN_NOT_ALLOWED);
        let why = format!(
            "this page's origin {origin} is not in CHAT_ALLOWED_ORIGINS; add it to the chat server's \
             CHAT_ALLOWED_ORIGINS (comma-separated) and restart it"
        );
        return ws.on_upgrade(move |socket| async move {
            conn::refuse(socket, ErrorCode::ORIGIN_NOT_ALLOWED, &why).await;
            drop(slot);
        });
    }
    let tracker = state.tracker.clone();
    // Small buffers: tungstenite's defaults reserve 128 KiB per connection up front, and our
    // frames are small (BENCHMARKS.md has the per-connection memory). Larger frames just take
    // more reads. Messages are allowed past the protocol limit here so that the connection can
    // answer an oversized frame with frame_too_large instead of a reset.
    ws.read_buffer_size(1024)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(MAX_CLIENT_FRAME_BYTES * 2)
        .max_frame_size(MAX_CLIENT_FRAME_BYTES * 2)
        .on_upgrade(move |socket| tracker.track_future(conn::serve(socket, state, slot)))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    commit: &'static str,
    protocol: u16,
    connections: i64,
}

async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: if state.shutdown.is_cancelled() { "shutting_down" } else { "ok" },
        version: env!("CARGO_PKG_VERSION"),
        commit: crate::COMMIT,
        protocol: PROTOCOL_VERSION,
        connections: state.metrics.connections(),
    })
}

#[derive(Serialize)]
struct Ready {
    database: &'static str,
    writer: &'static str,
    /// `ok`, `down`, or `none` (a single node).
    bus: &'static str,
    /// What is wrong with the bus, when it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    bus_problem: Option<String>,
}

/// How long the readiness check waits for the database's answer.
const READY_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

async fn readyz(State(state): State<AppState>) -> Response {
    let db_timeout = state.config.limits.db_timeout;
    let database = match tokio::time::timeout(READY_PING_TIMEOUT.min(db_timeout), state.store.ping()).await {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            "unreachable"
        }
        Err(_) => {
            tracing::warn!("readiness check: the database did not answer in time");
            "unreachable"
        }
    };
    let writer = state.writer.state(db_timeout);
    // A node cut off from the bus still delivers (the feed polls the log), but other nodes'
    // typing, presence and wake-ups do not reach it: not ready, and the reason is said.
    let (bus, bus_problem) = match &state.bus {
        None => ("none", None),
        Some(health) if health.is_up() => ("ok", None),
        Some(health) => ("down", Some(health.problem().unwrap_or_else(|| "not connected yet".to_owned()))),
    };
    let ready = database == "ok" && writer == WriterState::Ok && bus != "down" && !state.shutdown.is_cancelled();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Ready { database, writer: writer.as_str(), bus, bus_problem })).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
        .into_response()
}
