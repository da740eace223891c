//! Running a server: wire the parts together, serve until the shutdown signal, then shut
//! down without losing anything that was acknowledged or accepted.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use chat_protocol::ErrorCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::config::ServeConfig;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::state::{AppState, Shared, UserDirectory};
use crate::store::Store;
use crate::{http, writer};

/// The listen backlog. A reconnect storm (every client of a restarted server at once) needs
/// a deep accept queue: with the 128 the default bind gives here, bursts of connections
/// overflowed it and waited out a one-second SYN retransmit.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener with a deep accept queue (and `SO_REUSEADDR`, so a restart can take the
/// port back at once).
///
/// # Errors
/// The bind or listen error.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// How long connection tasks get to finish after the writer drained.
const CONNECTIONS_GRACE: Duration = Duration::from_secs(20);

/// Serves on `listener` until `shutdown` resolves, then shuts down gracefully:
/// stops accepting, stops reading from clients, commits and acks everything already
/// accepted, and closes every socket with "going away" (1001).
///
/// # Errors
/// An IO error of the listener.
pub async fn run(
    listener: TcpListener,
    config: ServeConfig,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_with(listener, config, store, Router::new(), shutdown).await
}

/// [`run`], with more routes beside the server's own (the demo's page and token endpoint).
///
/// # Errors
/// An IO error of the listener.
pub async fn run_with(
    listener: TcpListener,
    config: ServeConfig,
    store: Store,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = Metrics::new();
    let hub = Hub::new(config.limits.presence_grace, metrics.clone());
    let writer_stop = CancellationToken::new();
    let (writer, writer_task) = writer::spawn(
        store.clone(),
        hub.clone(),
        metrics.clone(),
        config.limits.write_queue,
        config.limits.max_batch,
        writer_stop.clone(),
    );
    let state = AppState(Arc::new(Shared {
        auth: Auth::new(&config.token_secret),
        users: UserDirectory::new(store.clone(), Duration::from_secs(60)),
        config,
        store,
        hub: hub.clone(),
        writer,
        metrics,
        shutdown: CancellationToken::new(),
        drained: CancellationToken::new(),
        tracker: TaskTracker::new(),
        open: AtomicUsize::new(0),
    }));

    let app = http::router(state.clone()).merge(extra);
    let stopping = state.shutdown.clone();
    // TCP_NODELAY: a chat frame is small and should leave at once, not wait for the ACK of
    // the previous one (Nagle), which can hold a delivery for up to a delayed-ACK timeout.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
        }
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopping.cancel();
        })
        .await;
    tracing::info!("shutting down: committing accepted messages");
    // Also reached when serving failed: the writer must still drain.
    state.shutdown.cancel();
    writer_stop.cancel();
    if let Err(e) = writer_task.await {
        tracing::error!(error = %e, "the writer task failed");
    }
    state.drained.cancel();
    state.tracker.close();
    if tokio::time::timeout(CONNECTIONS_GRACE, state.tracker.wait()).await.is_err() {
        tracing::warn!("some connections did not close in time; dropping them");
        hub.kill_all(ErrorCode::SHUTTING_DOWN, "the server is shutting down");
    }
    tracing::info!("shut down");
    served
}

/// A server started in the background, for tests and embedding.
#[derive(Debug)]
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Binds `config.bind` and starts serving.
    ///
    /// # Errors
    /// The bind error.
    pub async fn start(config: ServeConfig, store: Store) -> std::io::Result<Running> {
        Running::start_with(config, store, Router::new()).await
    }

    /// Binds `config.bind` and starts serving, with more routes (see [`run_with`]).
    ///
    /// # Errors
    /// The bind error.
    pub async fn start_with(config: ServeConfig, store: Store, extra: Router) -> std::io::Result<Running> {
        let listener = bind(config.bind)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_with(listener, config, store, extra, async move {
            let _sender_dropped_means_stop_too = stopped.await;
        }));
        Ok(Running { addr, stop: Some(stop), task })
    }

    /// The WebSocket URL (`ws://addr/ws`).
    #[must_use]
    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.addr, http::WS_PATH)
    }

    /// The HTTP base URL (`http://addr`).
    #[must_use]
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Shuts down gracefully and waits until it is done.
    ///
    /// # Errors
    /// The server's IO error, or a panic of its task as an IO error.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _receiver_gone_means_already_stopping = stop.send(());
        }
        (&mut self.task).await.map_err(std::io::Error::other)?
    }
}
