//! What every scenario shares: the run's settings, connecting as a user, reading frames,
//! idle connections, and the database's row count.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chat_protocol::{ClientFrame, ServerFrame, UserRef};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{WebSocketStream, client_async};

use crate::Common;

pub(crate) type Ws = WebSocketStream<tokio::net::TcpStream>;

pub(crate) struct Env {
    pub(crate) common: Common,
    pub(crate) server: SocketAddr,
    /// The second node (`--peer-url`), if any.
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) secret: Vec<u8>,
    pub(crate) next_ip: AtomicU64,
    pub(crate) epoch: Instant,
    /// Per-run random bits for message ids.
    pub(crate) salt: u64,
}

impl Env {
    pub(crate) fn token(&self, user: UserRef) -> Result<String> {
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

    /// Connects to the server (the first node) and says hello.
    pub(crate) async fn connect(&self, user: UserRef) -> Result<Ws> {
        self.connect_at(self.server, &self.common.url, user).await
    }

    /// Connects a recipient: to the second node when there is one (every message crosses
    /// nodes), else to the server.
    pub(crate) async fn connect_recipient(&self, user: UserRef) -> Result<Ws> {
        match (self.peer, self.common.peer_url.as_deref()) {
            (Some(peer), Some(url)) => self.connect_at(peer, url, user).await,
            _ => self.connect(user).await,
        }
    }

    /// Connects from the next 127.0.0.x source address and says hello.
    async fn connect_at(&self, server: SocketAddr, url: &str, user: UserRef) -> Result<Ws> {
        let socket = TcpSocket::new_v4()?;
        if self.common.source_ips > 1 {
            // Binding before connecting makes the kernel search for a port free for every
            // destination, which gets slow with thousands of sockets: only when needed.
            let n = self.next_ip.fetch_add(1, Ordering::Relaxed);
            let ip = Ipv4Addr::new(127, 0, 0, 1 + (n % u64::from(self.common.source_ips)) as u8);
            socket.bind(SocketAddr::new(IpAddr::V4(ip), 0))?;
        }
        let stream = socket.connect(server).await.context("connecting")?;
        stream.set_nodelay(true)?;
        let (mut ws, _) = client_async(url, stream).await.context("handshake")?;
        let hello = ClientFrame::Hello { version: self.common.protocol, token: self.token(user)? };
        ws.send(Message::Binary(hello.encode()?.into())).await?;
        match next_frame(&mut ws).await? {
            ServerFrame::Welcome { .. } => Ok(ws),
            other => bail!("expected a welcome, got {other:?}"),
        }
    }

    pub(crate) fn micros(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Wall-clock milliseconds for message ids: ids must be unique across runs against the
    /// same database (a repeated id from the same sender is, correctly, stored once).
    pub(crate) fn unix_ms(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}

pub(crate) async fn next_frame(ws: &mut Ws) -> Result<ServerFrame> {
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

pub(crate) fn resolve(url: &str) -> Result<SocketAddr> {
    let rest = url.strip_prefix("ws://").context("only ws:// URLs")?;
    let host = rest.split('/').next().unwrap_or_default();
    use std::net::ToSocketAddrs;
    host.to_socket_addrs()?.next().context("the URL's host does not resolve")
}

pub(crate) async fn row_count(env: &Env) -> Result<Option<i64>> {
    let Some(url) = env.common.database_url.as_deref() else { return Ok(None) };
    let pool = sqlx::PgPool::connect(url).await?;
    let n: i64 =
        sqlx::query_scalar(r#"SELECT count(*) FROM "Message" WHERE content LIKE 'b:%'"#).fetch_one(&pool).await?;
    pool.close().await;
    Ok(Some(n))
}

pub(crate) async fn hold_idle(env: &Arc<Env>, n: u32) -> Result<Vec<Ws>> {
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
        // With two nodes, half of them on each.
        batch.push(tokio::spawn(async move {
            if i % 4 < 2 { env.connect(user).await } else { env.connect_recipient(user).await }
        }));
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
pub(crate) fn keep_alive(conns: Vec<Ws>) -> tokio::task::JoinHandle<()> {
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
