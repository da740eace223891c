//! Running a server: wire the parts together, serve until the shutdown signal, then shut
//! down without losing anything that was acknowledged or accepted.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use chat_protocol::ErrorCode;
use governor::RateLimiter;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::records;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::config::ServeConfig;
use crate::delivery::bus::PendingBus;
use crate::delivery::feed::{self, Feed};
use crate::delivery::hub::Hub;
use crate::delivery::writer;
use crate::metrics::Metrics;
use crate::net::state::{AppState, Shared};
use crate::net::{conn, http, listen};
use crate::store::Store;
use crate::store::users::UserDirectory;

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

/// Serves on `listener` until `shutdown` resolves, then shuts down gracefully:
/// stops accepting, stops reading from clients, commits and acks everything already
/// accepted, and closes every socket with "going away" (1001). The whole shutdown takes at
/// most `limits.shutdown_timeout`: what is not done by then (a stalled database, a client
/// that reads nothing) is dropped, and clients resend what was never acked.
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
    run_announced(listener, config, store, extra, shutdown, || {}).await
}

/// [`run_with`], calling `ready` once everything is up (the database read, the bus joined,
/// the feed started) and connections are about to be served: where `serve` says it listens,
/// so a start that fails (a bus that cannot listen) never first claims to be serving.
///
/// # Errors
/// An IO error of the listener.
pub async fn run_announced(
    listener: TcpListener,
    config: ServeConfig,
    store: Store,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(),
) -> std::io::Result<()> {
    // Every database call is bounded a little past the statement timeout: the backstop for
    // a database that stops answering at all.
    let store = store.with_timeout(config.limits.db_timeout + Duration::from_secs(1));
    let metrics = Metrics::new();
    let pending_bus = config.bus.clone().map(|b| PendingBus::new(b, metrics.clone()));
    let hub = Hub::new(config.limits.presence_grace, metrics.clone(), pending_bus.as_ref().map(PendingBus::sender));
    let bus_health = pending_bus.as_ref().map(PendingBus::health);
    let feed = Feed::default();
    let bus_stop = CancellationToken::new();
    // (The store reads an edited message the listener is told of.)
    let bus_task = match pending_bus {
        None => None,
        Some(pending) => {
            let (bus, task) = pending
                .start(store.clone(), hub.clone(), feed.clone(), bus_stop.clone())
                .await
                .map_err(std::io::Error::other)?;
            feed.set_bus(bus);
            Some(task)
        }
    };
    let feed_stop = CancellationToken::new();
    let (feed_task, feed_started) =
        feed::spawn(feed.clone(), store.clone(), hub.clone(), metrics.clone(), config.log_poll, feed_stop.clone());
    // Accept connections once the feed has its start: a client reconnecting right away then
    // finds what was written while the server was down in its catch-up, not as live messages.
    if tokio::time::timeout(config.limits.db_timeout * 2, feed_started).await.is_err() {
        tracing::warn!("the message log is not answering yet; accepting connections, the feed keeps trying");
    }
    let writer_stop = CancellationToken::new();
    let (writer, writer_task) = writer::spawn(
        store.clone(),
        (feed.clone(), hub.clone()),
        metrics.clone(),
        config.clock.clone(),
        &config.limits,
        writer_stop.clone(),
    );
    let rates = RateLimiter::keyed(conn::quota(config.limits.requests_per_second, config.limits.request_burst));
    let reports = config.safety.report_webhook.clone().map(|url| {
        crate::records::report_hook::ReportHook::start(
            url,
            config.token_secret.clone(),
            store.clone(),
            config.clock.clone(),
            metrics.clone(),
        )
    });
    let state = AppState(Arc::new(Shared {
        reports,
        auth: Auth::with_rules(&config.token_secret, &config.tokens),
        users: UserDirectory::new(store.clone(), Duration::from_secs(60)),
        config,
        store,
        hub: hub.clone(),
        feed,
        writer,
        metrics,
        shutdown: CancellationToken::new(),
        drained: CancellationToken::new(),
        tracker: TaskTracker::new(),
        open: AtomicUsize::new(0),
        pending: Mutex::default(),
        rates,
        bus: bus_health,
    }));

    let app = http::router(state.clone()).merge(extra);
    let http_conns = TaskTracker::new();
    let stopping = state.shutdown.clone();
    let signalled = tokio::spawn(async move {
        shutdown.await;
        stopping.cancel();
    });
    let housekeeping = tokio::spawn(forget_idle_rate_limits(state.clone()));
    let retention = (state.config.retention.is_some() || state.config.audit_retention.is_some()).then(|| {
        tokio::spawn(keep_retention(
            state.store.clone(),
            state.config.clock.clone(),
            state.config.retention,
            state.config.audit_retention,
        ))
    });
    ready();
    listen::accept_loop(listener, app, state.clone(), http_conns.clone()).await;
    signalled.abort();
    housekeeping.abort();
    if let Some(task) = retention {
        task.abort();
    }

    let limits = state.config.limits;
    let deadline = tokio::time::Instant::now() + limits.shutdown_timeout;
    tracing::info!(bound = ?limits.shutdown_timeout, "shutting down: committing accepted messages");
    state.shutdown.cancel();
    writer_stop.cancel();
    let writer_abort = writer_task.abort_handle();
    match tokio::time::timeout_at(deadline, writer_task).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "the writer task failed"),
        Err(_) => {
            tracing::warn!(
                "the writer did not drain before the shutdown bound; unacked sends will be resent by clients"
            );
            writer_abort.abort();
        }
    }
    // The feed's last round delivers what the writer acked while draining to the
    // connections still open here; then the bus says this node's users left.
    feed_stop.cancel();
    if tokio::time::timeout_at(deadline, feed_task).await.is_err() {
        tracing::warn!("the feed did not finish its last round before the shutdown bound");
    }
    state.drained.cancel();
    state.tracker.close();
    http_conns.close();
    let connections = async {
        state.tracker.wait().await;
        http_conns.wait().await;
    };
    if tokio::time::timeout_at(deadline, connections).await.is_err() {
        tracing::warn!("some connections did not close before the shutdown bound; dropping them");
        hub.kill_all(ErrorCode::SHUTTING_DOWN, "the server is shutting down");
    }
    bus_stop.cancel();
    if let Some(task) = bus_task {
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    }
    tracing::info!("shut down");
    Ok(())
}

/// Drops the rate-limit state of users that have been quiet long enough to be back at a
/// full budget, so the map holds only active users.
async fn forget_idle_rate_limits(state: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        state.rates.retain_recent();
        state.rates.shrink_to_fit();
    }
}

/// Purges the messages older than `age` now and then once a day (an hour after a failure),
/// on `clock`, and the audit entries older than `audit_age`. Several nodes may each run it:
/// a batch deletes rows only once, and each node's audit entry counts what it removed.
async fn keep_retention(
    store: Store,
    clock: crate::Clock,
    age: Option<chat_protocol::Millis>,
    audit_age: Option<chat_protocol::Millis>,
) {
    const HOUR: chat_protocol::Millis = 3600 * 1000;
    let days = |age: Option<chat_protocol::Millis>| {
        age.map_or_else(|| "kept".to_owned(), |a| format!("{}d", a / records::DAY_MS))
    };
    let actor = format!("chat-server serve (retention {}, audit {})", days(age), days(audit_age));
    loop {
        let now = clock.now_ms();
        let mut next = now + records::DAY_MS;
        if let Some(age) = age {
            let before = now - age;
            match records::purge(&store, before, false, &actor, now, &mut |_, _| {}).await {
                Ok(report) => tracing::info!(
                    messages = report.messages,
                    log_rows = report.log_rows,
                    "retention: removed the messages created before {}",
                    records::format_time(before)
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "retention: the purge failed; trying again in an hour");
                    next = now + HOUR;
                }
            }
        }
        if let Some(audit_age) = audit_age {
            match records::purge_audit(&store, now - audit_age, &actor, now).await {
                Ok(removed) => tracing::info!(removed, "audit retention: removed the old audit entries"),
                Err(e) => {
                    tracing::warn!(error = %e, "audit retention: the purge failed; trying again in an hour");
                    next = now + HOUR;
                }
            }
        }
        clock.sleep_until(next).await;
    }
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

/// Resolves on Ctrl-C or SIGTERM: the signal `serve` and `demo` shut down gracefully on.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
