//! Accepting TCP connections and serving HTTP/1.1 on them, with the limits `axum::serve`
//! does not set: a deadline for request headers, a budget of unauthenticated connections
//! (in all and per IP address), and a bounded graceful shutdown.
//!
//! Every accepted connection takes a [`PendingSlot`] before a byte is read. A plain HTTP
//! request (`/healthz`...) holds it until the connection closes; a WebSocket upgrade hands
//! it to the socket's task, which gives it up once the hello is accepted. So half-sent
//! requests and sockets that never say hello are counted, timed out, and kept apart from
//! the authenticated connections real users hold.

use std::convert::Infallible;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::net::state::{AppState, PendingRefusal, PendingSlot};

/// How long an HTTP connection may take to finish its request once shutdown started.
const HTTP_GRACE: Duration = Duration::from_secs(1);
/// How long writing a refusal to a connection over budget may take.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);

/// What a request learns about its connection (a request extension).
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    slot: Arc<Mutex<Option<PendingSlot>>>,
}

impl Peer {
    /// Takes the connection's unauthenticated slot (a WebSocket upgrade moves it to the
    /// socket's task).
    pub(crate) fn take_slot(&self) -> Option<PendingSlot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Accepts connections until the server starts shutting down. Connection tasks are
/// tracked by `conns` so shutdown can wait for them (within a bound).
pub(crate) async fn accept_loop(listener: TcpListener, app: Router, state: AppState, conns: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = state.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, addr) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors or a connection reset before accept: not fatal.
                // Pause briefly so a full descriptor table does not spin the loop.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        // TCP_NODELAY: a chat frame is small and should leave at once, not wait for the ACK
        // of the previous one (Nagle), which can hold a delivery for a delayed-ACK timeout.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
        match PendingSlot::take(&state, addr.ip()) {
            Ok(slot) => {
                conns.spawn(serve_connection(tcp, slot, app.clone(), state.clone()));
            }
            Err(refusal) => {
                let (reason, status) = match refusal {
                    PendingRefusal::Full => ("pending_full", "503 Service Unavailable"),
                    PendingRefusal::PerIp => ("per_ip", "429 Too Many Requests"),
                };
                state.metrics.refused(reason);
                tracing::debug!(ip = %addr.ip(), reason, "refused a connection over the unauthenticated budget");
                tokio::spawn(refuse(tcp, status));
            }
        }
    }
}

/// Answers a connection over budget with a plain HTTP error and closes it, without reading
/// its request (the client may retry after a second).
async fn refuse(mut tcp: TcpStream, status: &'static str) {
    let body = "too many connections are waiting to authenticate; retry shortly\n";
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        tcp.write_all(response.as_bytes()).await?;
        tcp.shutdown().await
    };
    let _best_effort = tokio::time::timeout(REFUSAL_WRITE, write).await;
}

async fn serve_connection(tcp: TcpStream, slot: PendingSlot, app: Router, state: AppState) {
    let peer = Peer { slot: Arc::new(Mutex::new(Some(slot))) };
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(peer.clone());
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.oneshot(request.map(Body::new)).await.unwrap_or_else(|e| match e {})) }
    });
    let mut builder = http1::Builder::new();
    // The header deadline also closes idle keep-alive connections: hyper starts it whenever
    // it waits for the next request's head.
    builder.timer(TokioTimer::new()).header_read_timeout(state.config.limits.header_timeout);
    let conn = builder.serve_connection(TokioIo::new(tcp), service).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "an HTTP connection ended with an error");
            }
        }
        () = state.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            // A request still arriving (or never arriving) must not hold the shutdown.
            let _bounded = tokio::time::timeout(HTTP_GRACE, conn).await;
        }
    }
}
