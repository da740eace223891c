//! `chat-bench`: a load generator for `chat-server`, speaking the real protocol over real
//! WebSockets. Each scenario prints one JSON object on stdout (and a human line on stderr).
//!
//! Counting is honest: a message counts once it was acked to its sender and received by its
//! recipient, and the run ends by checking the database row count against the acks.
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chat_protocol::{ClientFrame, Cursor, IdGenerator, PROTOCOL_VERSION, ServerFrame, UserRef};
use clap::{Args, Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::net::TcpSocket;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{WebSocketStream, client_async};

#[derive(Parser, Debug)]
#[command(name = "chat-bench", about = "Load scenarios against a running chat-server")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// The server's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:4000/ws", global = true)]
    url: String,
    /// The HS256 secret the server verifies tokens with.
    #[arg(long, env = "CHAT_TOKEN_SECRET", global = true, hide_env_values = true)]
    secret: Option<String>,
    /// The server's database, to check the row count at the end.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// How many 127.0.0.x source addresses to spread connections over. 1 (the default) lets
    /// the kernel pick the port at connect, which is much faster than binding first; more are
    /// needed only past ~28,000 connections (the ephemeral port range per address pair).
    #[arg(long, default_value_t = 1, global = true)]
    source_ips: u8,
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

type Ws = WebSocketStream<tokio::net::TcpStream>;

struct Env {
    common: Common,
    server: SocketAddr,
    secret: Vec<u8>,
    next_ip: AtomicU64,
    epoch: Instant,
    /// Per-run random bits for message ids.
    salt: u64,
}

impl Env {
    fn token(&self, user: UserRef) -> Result<String> {
        #[derive(serde::Serialize)]
        struct Claims {
            role: &'static str,
            id: i32,
            exp: u64,
        }
        let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() + 3600;
        Ok(jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &Claims { role: user.role.as_str(), id: user.id, exp },
            &jsonwebtoken::EncodingKey::from_secret(&self.secret),
        )?)
    }

    /// Connects from the next 127.0.0.x source address and says hello.
    async fn connect(&self, user: UserRef) -> Result<Ws> {
        let socket = TcpSocket::new_v4()?;
        if self.common.source_ips > 1 {
            // Binding before connecting makes the kernel search for a port free for every
            // destination, which gets slow with thousands of sockets: only when needed.
            let n = self.next_ip.fetch_add(1, Ordering::Relaxed);
            let ip = Ipv4Addr::new(127, 0, 0, 1 + (n % u64::from(self.common.source_ips)) as u8);
            socket.bind(SocketAddr::new(IpAddr::V4(ip), 0))?;
        }
        let stream = socket.connect(self.server).await.context("connecting")?;
        stream.set_nodelay(true)?;
        let (mut ws, _) = client_async(self.common.url.as_str(), stream).await.context("handshake")?;
        let hello = ClientFrame::Hello { version: PROTOCOL_VERSION, token: self.token(user)? };
        ws.send(Message::Binary(hello.encode()?.into())).await?;
        match next_frame(&mut ws).await? {
            ServerFrame::Welcome { .. } => Ok(ws),
            other => bail!("expected a welcome, got {other:?}"),
        }
    }

    fn micros(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Wall-clock milliseconds for message ids: ids must be unique across runs against the
    /// same database (a repeated id from the same sender is, correctly, stored once).
    fn unix_ms(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}

async fn next_frame(ws: &mut Ws) -> Result<ServerFrame> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => return Ok(ServerFrame::decode(&b)?),
            Some(Ok(Message::Close(f))) => bail!("closed: {f:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended"),
        }
    }
}

fn resolve(url: &str) -> Result<SocketAddr> {
    let rest = url.strip_prefix("ws://").context("only ws:// URLs")?;
    let host = rest.split('/').next().unwrap_or_default();
    use std::net::ToSocketAddrs;
    host.to_socket_addrs()?.next().context("the URL's host does not resolve")
}

struct Latencies(Mutex<Histogram<u64>>);

impl Latencies {
    fn new() -> Result<Self> {
        Ok(Latencies(Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?)))
    }
    async fn record(&self, micros: u64) {
        let _ = self.0.lock().await.record(micros.max(1));
    }
    async fn summary(&self) -> serde_json::Value {
        let h = self.0.lock().await;
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        json!({ "p50_ms": ms(0.5), "p95_ms": ms(0.95), "p99_ms": ms(0.99), "max_ms": h.max() as f64 / 1000.0, "count": h.len() })
    }
}

/// Reads a student's connection until `stop`, counting messages and recording latency.
fn spawn_receiver(
    env: Arc<Env>,
    mut ws: Ws,
    received: Arc<AtomicU64>,
    latencies: Arc<Latencies>,
    stop: Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stop.notified() => return,
                frame = next_frame(&mut ws) => match frame {
                    Ok(ServerFrame::Message { message }) => {
                        if let Some(sent) = message.content.strip_prefix("b:").and_then(|t| t.parse::<u64>().ok()) {
                            latencies.record(env.micros().saturating_sub(sent)).await;
                        }
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                },
            }
        }
    })
}

/// Students 1..=pairs, each connection counting its messages and recording their latency.
struct Receivers {
    received: Arc<AtomicU64>,
    latencies: Arc<Latencies>,
    stop: Arc<tokio::sync::Notify>,
}

impl Receivers {
    async fn start(env: &Arc<Env>, pairs: u32) -> Result<Receivers> {
        let r = Receivers {
            received: Arc::new(AtomicU64::new(0)),
            latencies: Arc::new(Latencies::new()?),
            stop: Arc::new(tokio::sync::Notify::new()),
        };
        for i in 1..=pairs {
            let ws = env.connect(UserRef::student(i as i32)).await?;
            spawn_receiver(env.clone(), ws, r.received.clone(), r.latencies.clone(), r.stop.clone());
        }
        Ok(r)
    }

    /// Waits (at most 10 s) until `total` messages arrived, then stops the receivers.
    async fn finish(&self, total: u64) -> u64 {
        let until = Instant::now() + Duration::from_secs(10);
        while self.received.load(Ordering::Relaxed) < total && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop.notify_waiters();
        self.received.load(Ordering::Relaxed)
    }
}

async fn row_count(env: &Env) -> Result<Option<i64>> {
    let Some(url) = env.common.database_url.as_deref() else { return Ok(None) };
    let pool = sqlx::PgPool::connect(url).await?;
    let n: i64 =
        sqlx::query_scalar(r#"SELECT count(*) FROM "Message" WHERE content LIKE 'b:%'"#).fetch_one(&pool).await?;
    pool.close().await;
    Ok(Some(n))
}

async fn throughput(env: Arc<Env>, pairs: u32, inflight: u32, seconds: u64) -> Result<serde_json::Value> {
    let before = row_count(&env).await?;
    let acked = Arc::new(AtomicU64::new(0));
    let receivers = Receivers::start(&env, pairs).await?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut senders = Vec::new();
    for i in 1..=pairs {
        let mut ws = env.connect(UserRef::teacher(i as i32)).await?;
        let env = env.clone();
        let acked = acked.clone();
        senders.push(tokio::spawn(async move {
            let mut ids = IdGenerator::new();
            let mut req = 0u32;
            let mut outstanding = 0u32;
            let mut send_one = |req: &mut u32| {
                *req += 1;
                let id = ids.next(env.unix_ms(), (u64::from(*req) ^ (u64::from(i) << 32) ^ env.salt).to_le_bytes());
                ClientFrame::Send {
                    req: *req,
                    id,
                    to: UserRef::student(i as i32),
                    content: format!("b:{}", env.micros()),
                }
            };
            for _ in 0..inflight {
                let frame = send_one(&mut req);
                ws.feed(Message::Binary(frame.encode()?.into())).await?;
                outstanding += 1;
            }
            ws.flush().await?;
            while outstanding > 0 {
                match next_frame(&mut ws).await? {
                    ServerFrame::Sent { .. } => {
                        acked.fetch_add(1, Ordering::Relaxed);
                        outstanding -= 1;
                        if Instant::now() < deadline {
                            let frame = send_one(&mut req);
                            ws.send(Message::Binary(frame.encode()?.into())).await?;
                            outstanding += 1;
                        }
                    }
                    ServerFrame::Error { code, message, .. } => bail!("send refused: {code} {message}"),
                    _ => {}
                }
            }
            anyhow::Ok(())
        }));
    }
    for s in senders {
        s.await??;
    }
    let send_elapsed = started.elapsed().as_secs_f64();
    let total = acked.load(Ordering::Relaxed);
    let delivered = receivers.finish(total).await;
    let stored = match (before, row_count(&env).await?) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    if let Some(stored) = stored
        && stored != total as i64
    {
        bail!("{total} acked but {stored} rows stored");
    }
    let counted = total.min(delivered);
    Ok(json!({
        "scenario": "throughput", "pairs": pairs, "inflight": inflight, "seconds": send_elapsed,
        "acked": total, "delivered": delivered, "stored": stored,
        "msgs_per_sec": counted as f64 / send_elapsed,
        "latency": receivers.latencies.summary().await,
    }))
}

async fn hold_idle(env: &Arc<Env>, n: u32) -> Result<Vec<Ws>> {
    let mut conns = Vec::with_capacity(n as usize);
    let mut batch = Vec::new();
    for i in 0..n {
        let env = env.clone();
        // Idle users: students 1..=1000 and teachers 1..=1000, several connections each.
        let user = if i % 2 == 0 {
            UserRef::student((i / 2 % 1000) as i32 + 1)
        } else {
            UserRef::teacher((i / 2 % 1000) as i32 + 1)
        };
        batch.push(tokio::spawn(async move { env.connect(user).await }));
        if batch.len() == 256 {
            for c in batch.drain(..) {
                conns.push(c.await??);
            }
        }
    }
    for c in batch {
        conns.push(c.await??);
    }
    Ok(conns)
}

/// Keeps idle connections alive (the server closes silent ones) until dropped: each pings
/// every 15 s, spread evenly over the period as independent clients' heartbeats are. (An
/// earlier version pinged all of them in one burst, a load no real population makes, and
/// that burst alone put milliseconds on the latency scenario's p99.)
fn keep_alive(conns: Vec<Ws>) -> tokio::task::JoinHandle<()> {
    const PERIOD: Duration = Duration::from_secs(15);
    const GROUP: usize = 16;
    tokio::spawn(async move {
        let mut conns = conns;
        if conns.is_empty() {
            return;
        }
        let groups = conns.len().div_ceil(GROUP);
        let mut tick = tokio::time::interval(PERIOD / u32::try_from(groups).unwrap_or(u32::MAX));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            for group in conns.chunks_mut(GROUP) {
                tick.tick().await;
                for ws in group {
                    let _ = ws.send(Message::Ping(Vec::new().into())).await;
                }
            }
        }
    })
}

async fn latency(env: Arc<Env>, rate: u32, pairs: u32, idle: u32, seconds: u64) -> Result<serde_json::Value> {
    let idle_conns = hold_idle(&env, idle).await?;
    let idle_task = keep_alive(idle_conns);
    let receivers = Receivers::start(&env, pairs).await?;
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for i in 1..=pairs {
        let ws = env.connect(UserRef::teacher(i as i32)).await?;
        let (sink, mut stream) = ws.split();
        let (acked, errors) = (acked.clone(), errors.clone());
        tokio::spawn(async move {
            while let Some(Ok(Message::Binary(b))) = stream.next().await {
                match ServerFrame::decode(&b) {
                    Ok(ServerFrame::Sent { .. }) => acked.fetch_add(1, Ordering::Relaxed),
                    Ok(ServerFrame::Error { .. }) => errors.fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
            }
        });
        senders.push(sink);
    }
    let total = u64::from(rate) * seconds;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let started = tokio::time::Instant::now();
    let mut ids = IdGenerator::new();
    for n in 0..total {
        tokio::time::sleep_until(started + interval * n as u32).await;
        let i = (n % u64::from(pairs)) as usize;
        let id = ids.next(env.unix_ms(), (n ^ env.salt).to_le_bytes());
        let frame = ClientFrame::Send {
            req: n as u32 + 1,
            id,
            to: UserRef::student(i as i32 + 1),
            content: format!("b:{}", env.micros()),
        };
        senders[i].send(Message::Binary(frame.encode()?.into())).await?;
    }
    let delivered = receivers.finish(total).await;
    // Acks travel on other connections than deliveries: wait for the last ones too.
    let until = Instant::now() + Duration::from_secs(10);
    while acked.load(Ordering::Relaxed) + errors.load(Ordering::Relaxed) < total && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    idle_task.abort();
    Ok(json!({
        "scenario": "latency", "rate": rate, "pairs": pairs, "idle": idle, "sent": total,
        "acked": acked.load(Ordering::Relaxed), "errors": errors.load(Ordering::Relaxed),
        "delivered": delivered, "latency": receivers.latencies.summary().await,
    }))
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
}

async fn idle(env: Arc<Env>, connections: u32, pid: u32) -> Result<serde_json::Value> {
    let before = rss_kib(pid)?;
    let started = Instant::now();
    let conns = hold_idle(&env, connections).await?;
    let opened = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid)?;
    let per_conn = (after.saturating_sub(before)) as f64 * 1024.0 / f64::from(connections);
    drop(conns);
    Ok(json!({
        "scenario": "idle", "connections": connections, "open_seconds": opened,
        "rss_before_kib": before, "rss_after_kib": after, "bytes_per_connection": per_conn,
    }))
}

/// Sends `messages` (recipient, content) from `sender`, `inflight` unacked at a time, and
/// returns once every one was acked (that is, committed).
async fn send_all(env: &Env, sender: UserRef, messages: Vec<(UserRef, String)>, inflight: usize) -> Result<u64> {
    let mut ws = env.connect(sender).await?;
    let mut ids = IdGenerator::new();
    let mut pending = messages.into_iter().enumerate();
    let mut outstanding = 0usize;
    let mut acked = 0u64;
    loop {
        while outstanding < inflight {
            let Some((n, (to, content))) = pending.next() else { break };
            let req = n as u32 + 1;
            let id = ids
                .next(env.unix_ms(), (u64::from(req) ^ (u64::from(sender.id as u32) << 32) ^ env.salt).to_le_bytes());
            ws.feed(Message::Binary(ClientFrame::Send { req, id, to, content }.encode()?.into())).await?;
            outstanding += 1;
        }
        ws.flush().await?;
        if outstanding == 0 {
            return Ok(acked);
        }
        match next_frame(&mut ws).await? {
            ServerFrame::Sent { .. } => {
                acked += 1;
                outstanding -= 1;
            }
            ServerFrame::Error { code, message, .. } => bail!("send refused: {code} {message}"),
            _ => {}
        }
    }
}

/// Reconnects as `user` and pages through `Sync` from `after` until nothing more is missed;
/// returns when it re-authenticated, when it was caught up, and how many tagged messages came.
async fn reconnect_and_sync(env: &Env, user: UserRef, after: Cursor, tag: &str) -> Result<(Instant, Instant, u64)> {
    let mut ws = env.connect(user).await?;
    let welcomed = Instant::now();
    let mut after = after;
    let mut got = 0u64;
    for req in 1.. {
        let sync = ClientFrame::Sync { req, after, limit: chat_protocol::MAX_SYNC_PAGE };
        ws.send(Message::Binary(sync.encode()?.into())).await?;
        let (messages, more) = loop {
            match next_frame(&mut ws).await? {
                ServerFrame::SyncPage { req: r, messages, more } if r == req => break (messages, more),
                ServerFrame::Error { code, message, .. } => bail!("sync refused: {code} {message}"),
                _ => {}
            }
        };
        got += messages.iter().filter(|m| m.content.starts_with(tag)).count() as u64;
        if let Some(last) = messages.last() {
            after = last.cursor();
        }
        if !more {
            break;
        }
    }
    Ok((welcomed, Instant::now(), got))
}

async fn storm(env: Arc<Env>, connections: u32, missed: u32, concurrency: usize) -> Result<serde_json::Value> {
    // The storm's clients: students 1..=1000, several connections (tabs) each.
    let students = connections.clamp(1, 1000);
    let users: Vec<UserRef> = (0..connections).map(|i| UserRef::student((i % students) as i32 + 1)).collect();
    let mut conns = Vec::with_capacity(users.len());
    for chunk in users.chunks(256) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&u| {
                let env = env.clone();
                tokio::spawn(async move { env.connect(u).await })
            })
            .collect();
        for t in tasks {
            conns.push(t.await??);
        }
    }
    // Everyone drops at once (a server restart, a network blip).
    drop(conns);
    let dropped_at = env.unix_ms() as i64;

    // While they are away, `missed` messages reach them from 50 teachers; acked means committed.
    let tag = format!("s:{:x}:", env.salt);
    let mut expected = vec![0u64; students as usize];
    let mut per_teacher: Vec<Vec<(UserRef, String)>> = vec![Vec::new(); 50];
    for n in 0..missed {
        let student = n % students;
        expected[student as usize] += 1;
        per_teacher[(n % 50) as usize].push((UserRef::student(student as i32 + 1), format!("{tag}{n}")));
    }
    let sending = Instant::now();
    let mut senders = Vec::new();
    for (t, batch) in per_teacher.into_iter().enumerate() {
        let env = env.clone();
        senders.push(tokio::spawn(async move { send_all(&env, UserRef::teacher(t as i32 + 1), batch, 64).await }));
    }
    let mut acked = 0;
    for s in senders {
        acked += s.await??;
    }
    let send_seconds = sending.elapsed().as_secs_f64();

    // Everyone comes back at once and catches up from just before the drop (the SDK syncs
    // from its last seen message minus a margin; the margin here is a second).
    let after = Cursor::from_time(dropped_at - 1000);
    let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let started = Instant::now();
    let tasks: Vec<_> = users
        .iter()
        .map(|&user| {
            let (env, gate, tag) = (env.clone(), gate.clone(), tag.clone());
            tokio::spawn(async move {
                let _slot = gate.acquire_owned().await?;
                reconnect_and_sync(&env, user, after, &tag).await
            })
        })
        .collect();
    let (mut last_welcome, mut last_caught_up) = (started, started);
    let (mut delivered, mut lost, mut duplicated) = (0u64, 0u64, 0u64);
    for (task, user) in tasks.into_iter().zip(&users) {
        let (welcomed, caught_up, got) = task.await??;
        last_welcome = last_welcome.max(welcomed);
        last_caught_up = last_caught_up.max(caught_up);
        let want = expected[user.id as usize - 1];
        delivered += got;
        lost += want.saturating_sub(got);
        duplicated += got.saturating_sub(want);
    }
    Ok(json!({
        "scenario": "storm", "connections": connections, "missed": missed, "acked_while_away": acked,
        "send_seconds": send_seconds,
        "reconnect_seconds": (last_welcome - started).as_secs_f64(),
        "caught_up_seconds": (last_caught_up - started).as_secs_f64(),
        "delivered_in_catch_up": delivered, "lost": lost, "duplicated": duplicated,
    }))
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let secret = cli.common.secret.clone().context("set CHAT_TOKEN_SECRET (or --secret)")?;
    let env = Arc::new(Env {
        server: resolve(&cli.common.url)?,
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
        Scenario::Throughput { pairs, inflight, seconds } => throughput(env, pairs, inflight, seconds).await?,
        Scenario::Latency { rate, pairs, idle: n, seconds } => latency(env, rate, pairs, n, seconds).await?,
        Scenario::Idle { connections, server_pid } => idle(env, connections, server_pid).await?,
        Scenario::Storm { connections, missed, concurrency } => storm(env, connections, missed, concurrency).await?,
    };
    eprintln!("{result}");
    println!("{result}");
    Ok(())
}
