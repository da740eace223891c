//! The chat server: a WebSocket server that persists messages to the school app's own
//! PostgreSQL (the `Message` table Prisma reads) and delivers them live.
//!
//! Layout, in the direction a message travels:
//! - [`cli`]: the `chat-server` command line (serve, demo, setup, check, check-db, users,
//!   export, purge, erase); [`config`]: validated settings.
//! - `net`: the network side: the accept loop (`listen`), the routes (`http`), what
//!   connections share (`state`), and one connection (`conn`: the hello, its requests, the
//!   pump that writes its frames).
//! - `delivery`: from an accepted send to every connection that should have it: group
//!   commit (`writer`), the registry of connections and their queues (`hub`), the feed that
//!   follows the message log (`feed`), and the bus between nodes ([`bus`]).
//! - [`store`]: the storage seam: PostgreSQL (the app's database) or an embedded SQLite
//!   file; with it the Prisma-style `DATABASE_URL` ([`db`]), the SQL applied and inspected
//!   ([`schema`]), and the user directory.
//! - [`records`]: safety and compliance for operators: export, purge (retention), erase,
//!   the audit log they write, and reports offered to the app's webhook
//!   ([`records::report_hook`]).
//! - [`clock`]: the wall clock (injectable, for tests); [`auth`]: HS256 tokens minted by the
//!   app; `metrics`: the Prometheus metrics of `/metrics`; `demo`: `chat-server demo`.
//! - [`server`]: wiring, graceful shutdown.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub(crate) mod delivery;
pub(crate) mod demo;
pub(crate) mod metrics;
pub mod moderation;
mod net;
pub mod records;
pub mod server;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use clock::Clock;
pub use config::ServeConfig;
pub use delivery::bus;
pub use server::{Running, run, run_announced, run_with};
pub use store::Store;
pub use store::{db, schema};

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
