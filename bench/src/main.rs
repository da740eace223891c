//! `chat-bench`: a load generator for `chat-server`, speaking the real protocol over real
//! WebSockets. Each scenario prints one JSON object on stdout (and a human line on stderr).
//!
//! Counting is honest: a message counts once it was acked to its sender and received by its
//! recipient, and the run ends by checking the database row count against the acks.
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

mod env;
mod idle;
mod latency;
mod stats;
mod storm;
mod throughput;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use anyhow::{Context, Result};

use clap::{Args, Parser, Subcommand};

use env::{Env, resolve};

#[derive(Parser, Debug)]
#[command(name = "chat-bench", about = "Load scenarios against a running chat-server")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct Common {
    /// The server's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:4000/ws", global = true)]
    pub(crate) url: String,
    /// The HS256 secret the server verifies tokens with.
    #[arg(long, env = "CHAT_TOKEN_SECRET", global = true, hide_env_values = true)]
    pub(crate) secret: Option<String>,
    /// The server's database, to check the row count at the end.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// A second node of the same deployment (`CHAT_BUS`): the recipients (students) and half
    /// of the idle connections connect there, so every message crosses nodes.
    #[arg(long, global = true)]
    pub(crate) peer_url: Option<String>,
    /// How many 127.0.0.x source addresses to spread connections over. 1 (the default) lets
    /// the kernel pick the port at connect, which is much faster than binding first; more are
    /// needed only past ~28,000 connections (the ephemeral port range per address pair).
    #[arg(long, default_value_t = 1, global = true)]
    pub(crate) source_ips: u8,
    /// The protocol version to speak (default: this build's newest). An A/B against an
    /// older server build passes the newest that build speaks.
    #[arg(long, default_value_t = chat_protocol::PROTOCOL_VERSION, global = true)]
    pub(crate) protocol: u16,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Teacher->student pairs sending as fast as acks allow (`inflight` unacked sends each).
    Throughput {
        #[arg(long, default_value_t = 50)]
        pairs: u32,
        #[arg(long, default_value_t = 8)]
        inflight: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// A fixed message rate over `pairs` pairs while `idle` authenticated connections are held.
    Latency {
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        #[arg(long, default_value_t = 100)]
        pairs: u32,
        #[arg(long, default_value_t = 10_000)]
        idle: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Open `connections` authenticated idle connections and report the server's RSS per connection.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        connections: u32,
        /// The server's process id (RSS is read from /proc/PID/status).
        #[arg(long)]
        server_pid: u32,
    },
    /// Connect `connections` clients, drop them all at once, send them `missed` messages while
    /// they are away, then reconnect them all at once and catch each one up.
    Storm {
        #[arg(long, default_value_t = 5_000)]
        connections: u32,
        #[arg(long, default_value_t = 10_000)]
        missed: u32,
        /// Handshakes in flight at once while reconnecting (clients' reconnect jitter).
        #[arg(long, default_value_t = 512)]
        concurrency: usize,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let secret = cli.common.secret.clone().context("set CHAT_TOKEN_SECRET (or --secret)")?;
    let env = Arc::new(Env {
        server: resolve(&cli.common.url)?,
        peer: cli.common.peer_url.as_deref().map(resolve).transpose()?,
        common: cli.common,
        secret: secret.into_bytes(),
        next_ip: AtomicU64::new(0),
        epoch: Instant::now(),
        salt: {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::process::id())
        },
    });
    let result = match cli.scenario {
        Scenario::Throughput { pairs, inflight, seconds } => {
            throughput::throughput(env, pairs, inflight, seconds).await?
        }
        Scenario::Latency { rate, pairs, idle: n, seconds } => latency::latency(env, rate, pairs, n, seconds).await?,
        Scenario::Idle { connections, server_pid } => idle::idle(env, connections, server_pid).await?,
        Scenario::Storm { connections, missed, concurrency } => {
            storm::storm(env, connections, missed, concurrency).await?
        }
    };
    eprintln!("{result}");
    println!("{result}");
    Ok(())
}
