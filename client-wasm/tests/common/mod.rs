//! Shared by the native SDK tests: a real server on a fresh database, and SDK clients
//! whose token provider mints tokens the way the app would.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chat_client::core::{Event, Status, Timings};
use chat_client::native::{Client, TokenProvider};
use chat_protocol::UserRef;
use chat_server::auth::Auth;
use chat_server::testing::HasStore;
use chat_server::{Running, ServeConfig};
use tokio::sync::mpsc::UnboundedReceiver;

pub const SECRET: &[u8] = b"a4c6e8f0b2d4f6a8c0e2b4d6f8a1c3e5b7d9f1a3c5e7b9d2f4a6c8e0b3d5f7a9";

pub fn now_secs() -> i64 {
    chat_server::now_ms() / 1000
}

/// Short backoffs, so reconnects in tests take milliseconds.
pub fn fast() -> Timings {
    Timings { backoff_base: 100, backoff_cap: 1_000, ..Timings::default() }
}

/// A token provider for `user` that counts its calls; tokens live `ttl` seconds.
pub fn provider(user: UserRef, ttl: i64, calls: Arc<AtomicUsize>) -> TokenProvider {
    Arc::new(move || {
        calls.fetch_add(1, Ordering::SeqCst);
        let token = Auth::new(SECRET).mint(user, now_secs(), now_secs() + ttl).unwrap();
        Box::pin(async move { Ok(token) })
    })
}

/// A provider whose tokens are minted at `clock`'s time (the server checks them on its own
/// clock, so a test that moves the server's clock mints on it, as an app on the same time would).
pub fn provider_on(user: UserRef, ttl: i64, clock: chat_server::Clock) -> TokenProvider {
    Arc::new(move || {
        let now = clock.now_ms() / 1000;
        let token = Auth::new(SECRET).mint(user, now, now + ttl).unwrap();
        Box::pin(async move { Ok(token) })
    })
}

pub async fn server(db: &impl HasStore) -> Running {
    server_at(db, "127.0.0.1:0").await
}

/// A server on `addr` (a restart can take the same port back); generous rate limits and a
/// short presence grace period.
pub async fn server_at(db: &impl HasStore, addr: &str) -> Running {
    server_with(db, |c| c.bind = addr.parse().unwrap()).await
}

/// A server as [`server`] gives, then changed by `tweak`.
pub async fn server_with(db: &impl HasStore, tweak: impl FnOnce(&mut ServeConfig)) -> Running {
    let mut config = ServeConfig::for_tests(SECRET);
    config.limits.requests_per_second = 100_000;
    config.limits.request_burst = 100_000;
    config.limits.presence_grace = Duration::from_millis(500);
    tweak(&mut config);
    Running::start(config, db.store()).await.unwrap()
}

/// A client for `user`, open, with its event receiver.
pub async fn client_with(server: &Running, user: UserRef, timings: Timings) -> (Client, UnboundedReceiver<Event>) {
    let (c, events) = Client::start(&server.http_url(), provider(user, 3600, Arc::default()), timings).unwrap();
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), c.wait_for(Status::Open)).await.unwrap(), Status::Open);
    (c, events)
}

/// The next event matching `wanted`, skipping others.
pub async fn next_event(events: &mut UnboundedReceiver<Event>, mut wanted: impl FnMut(&Event) -> bool) -> Event {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("an event in time");
        let e = e.expect("the client is running");
        if wanted(&e) {
            return e;
        }
    }
}
