//! The chat server: a WebSocket server that persists messages to the school app's own
//! PostgreSQL (the `Message` table Prisma reads) and delivers them live.
//!
//! Layout, following the life of a message:
//! - [`cli`]: the `chat-server` command line (serve, demo, setup, check, check-db, users,
//!   export, purge, erase).
//! - [`config`], [`db`]: validated settings; the Prisma-style `DATABASE_URL`.
//! - [`schema`]: the SQL in `migrations/postgres/`, applied and inspected.
//! - `listen`: the accept loop: header deadline, unauthenticated budget (in all, per IP).
//! - `http`: the routes; `/ws` upgrades to a WebSocket handled by `conn`.
//! - `conn`: one connection: the hello (`handshake`), then its requests (`requests`);
//!   frames out through its outbox, written by its `pump`.
//! - `state`: what connections share; the slots that count connections.
//! - `users`: the user directory (`users_view` behind a cache).
//! - `writer`: group commit: sends queue up, are stored in batches, acked after commit.
//! - `hub`: who is connected; delivery to a user's connections; presence.
//! - [`store`]: the storage seam: PostgreSQL (the app's database) or an embedded SQLite file.
//! - [`clock`]: the wall clock (injectable, for tests).
//! - [`records`]: safety and compliance for operators: export, purge (retention), erase,
//!   and the audit log they write. [`safety`]: reports offered to the app's webhook.
//! - `metrics`: the Prometheus metrics of `/metrics`.
//! - `demo`: `chat-server demo`, the built-in page and its demo-only token endpoint.
//! - [`auth`]: HS256 tokens minted by the app.
//! - [`server`]: wiring, graceful shutdown.

pub mod auth;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod config;
mod conn;
pub mod db;
pub(crate) mod demo;
pub(crate) mod feed;
pub(crate) mod http;
pub(crate) mod hub;
mod listen;
pub(crate) mod metrics;
pub mod records;
pub mod safety;
pub mod schema;
pub mod server;
mod state;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod users;
pub(crate) mod writer;

pub use clock::Clock;
pub use config::ServeConfig;
pub use server::{Running, run, run_announced, run_with};
pub use store::Store;

/// The git commit this binary was built from ("unknown" outside a checkout).
pub const COMMIT: &str = env!("CHAT_BUILD_COMMIT");

/// What `chat-server --version` prints after the name: the version, the protocol versions
/// it speaks, and the commit.
#[must_use]
pub fn version_line() -> &'static str {
    static LINE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{} (protocol {}{}, commit {COMMIT})",
            env!("CARGO_PKG_VERSION"),
            if chat_protocol::MIN_SUPPORTED_VERSION == chat_protocol::PROTOCOL_VERSION {
                String::new()
            } else {
                format!("{}-", chat_protocol::MIN_SUPPORTED_VERSION)
            },
            chat_protocol::PROTOCOL_VERSION,
        )
    });
    &LINE
}

/// The current time in milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> chat_protocol::Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
