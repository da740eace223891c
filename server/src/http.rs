//! The HTTP surface: the WebSocket endpoint and the operational endpoints.
//!
//! - `GET /ws`: the WebSocket upgrade (browser origins checked against the allow list).
//! - `GET /healthz`: alive, version, connection count (JSON).
//! - `GET /readyz`: whether the database answers (JSON, 503 when not).
//! - `GET /metrics`: Prometheus text format.

use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chat_protocol::{MAX_CLIENT_FRAME_BYTES, PROTOCOL_VERSION};
use serde::Serialize;

use crate::conn;
use crate::state::{AppState, ConnectionSlot};

/// The path of the WebSocket endpoint.
pub const WS_PATH: &str = "/ws";

/// The router of a server with this state.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route(WS_PATH, get(upgrade))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn upgrade(State(state): State<AppState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    // Browsers always send Origin on a WebSocket handshake; refusing unknown ones stops
    // another site's page from opening a socket in a user's name (cross-site WebSocket
    // hijacking). Non-browser clients send no Origin and authenticate by token alone.
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !state.config.origins.allows(origin) {
            tracing::info!(origin, "refused a WebSocket from an origin that is not allowed");
            return (
                StatusCode::FORBIDDEN,
                format!("origin {origin} is not allowed; add it to CHAT_ALLOWED_ORIGINS on the chat server\n"),
            )
                .into_response();
        }
    }
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down\n").into_response();
    }
    let slot = ConnectionSlot::take(&state);
    let tracker = state.tracker.clone();
    // Small buffers: tungstenite's defaults reserve 128 KiB per connection up front, and our
    // frames are small. A 1 KiB read buffer measured 7.0 KiB of RSS per idle connection at
    // 19,000 connections (10.1 KiB with 4 KiB); larger frames just take more reads. Messages are allowed past the protocol limit here so that the
    // connection can answer an oversized frame with frame_too_large instead of a reset.
    ws.read_buffer_size(1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(MAX_CLIENT_FRAME_BYTES * 2)
        .max_frame_size(MAX_CLIENT_FRAME_BYTES * 2)
        .on_upgrade(move |socket| tracker.track_future(conn::serve(socket, state, slot)))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    protocol: u16,
    connections: i64,
}

async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: if state.shutdown.is_cancelled() { "shutting_down" } else { "ok" },
        version: env!("CARGO_PKG_VERSION"),
        protocol: PROTOCOL_VERSION,
        connections: state.metrics.connections(),
    })
}

#[derive(Serialize)]
struct Ready {
    database: &'static str,
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(Ready { database: "ok" }).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(Ready { database: "unreachable" })).into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.render())
        .into_response()
}
