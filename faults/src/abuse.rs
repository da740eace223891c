//! Misbehaving clients, run beside real users: floods, clients that never read, half-sent
//! HTTP requests, garbage frames, and a fuzzer sending random and mutated valid frames.
//! They connect from 127.0.0.2 and up, as other machines would, so per-address limits apply
//! to them and not to the real users on 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chat_protocol::{ClientFrame, Cursor, MessageId, PROTOCOL_VERSION, UserRef};
use chat_server::auth::Auth;
use futures_util::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, client_async};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How many of each kind of abuser, and what they are allowed to use.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    pub flooders: u32,
    pub non_readers: u32,
    pub half_open: u32,
    pub garbage: u32,
    pub fuzzers: u32,
}

/// Counters of what the abusers did.
#[derive(Debug, Default)]
pub struct Counts {
    /// Abusive frames and requests written to the server's sockets (garbage, fuzzed,
    /// floods, half requests); a throttled flooder's frames may still sit in socket buffers.
    pub bad_inputs: AtomicU64,
    /// Connections the abusers opened.
    pub connections: AtomicU64,
    /// Connections the server closed or refused.
    pub closed_by_server: AtomicU64,
}

pub struct Abusers {
    stop: Arc<AtomicBool>,
    tasks: JoinSet<()>,
    pub counts: Arc<Counts>,
}

async fn tcp(source: u8, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, source)), 0))?;
    socket.connect(server).await
}

async fn ws(source: u8, server: SocketAddr) -> Option<Ws> {
    let stream = tcp(source, server).await.ok()?;
    let url = format!("ws://{server}/ws");
    client_async(url, MaybeTlsStream::Plain(stream)).await.ok().map(|(ws, _)| ws)
}

async fn hello(ws: &mut Ws, token: String) -> bool {
    let frame = ClientFrame::Hello { version: PROTOCOL_VERSION, token };
    let Ok(bytes) = frame.encode() else { return false };
    if ws.send(Message::Binary(bytes.into())).await.is_err() {
        return false;
    }
    matches!(ws.next().await, Some(Ok(Message::Binary(_))))
}

/// Some valid frames to mutate.
fn seeds(peer: UserRef) -> Vec<Vec<u8>> {
    let id = MessageId::new_v7(1, 2, [3; 8]);
    let frames = [
        ClientFrame::Send { req: 1, id, to: peer, content: "hello there".into() },
        ClientFrame::History { req: 2, peer, before: Some(Cursor::from_time(5)), limit: 50 },
        ClientFrame::ConversationsPage { req: 3, before: None, limit: 20 },
        ClientFrame::MarkRead { req: 4, peer, up_to: Cursor { at: 1, id } },
        ClientFrame::WatchPresence { req: 5, users: vec![peer, UserRef::teacher(2)] },
        ClientFrame::Sync { req: 6, after: Cursor::from_time(0), limit: 200 },
        ClientFrame::Typing { req: 7, peer, on: true },
        ClientFrame::RefreshToken { req: 8, token: "x.y.z".into() },
    ];
    frames.iter().filter_map(|f| f.encode().ok()).collect()
}

fn mutate(rng: &mut impl Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    match rng.random_range(0..5) {
        0 => {
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..bytes.len());
                bytes[i] = rng.random();
            }
        }
        1 => bytes.truncate(rng.random_range(0..bytes.len())),
        2 => bytes.extend((0..rng.random_range(1..64)).map(|_| rng.random::<u8>())),
        3 => {
            // A varint length that claims far more than follows.
            let i = rng.random_range(0..bytes.len());
            bytes.splice(i..i, [0xff, 0xff, 0xff, 0xff, 0x0f]);
        }
        _ => bytes = (0..rng.random_range(0..256)).map(|_| rng.random::<u8>()).collect(),
    }
    bytes
}

impl Abusers {
    /// Starts them against `server`; abuser users are students `first_user..`.
    pub fn start(server: SocketAddr, secret: &[u8], first_user: i32, mix: Mix) -> Abusers {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let mut tasks = JoinSet::new();
        let auth = Auth::new(secret);
        let token = move |id: i32| {
            let now = chat_server::now_ms() / 1000;
            auth.mint(UserRef::student(id), now, now + 3600).unwrap_or_default()
        };
        let mut user = first_user;
        let mut next_user = || {
            user += 1;
            user
        };
        let source = |n: u32| 2 + u8::try_from(n % 8).unwrap_or(0);

        for n in 0..mix.flooders {
            // Authenticated, then requests as fast as the socket takes them, answers ignored
            // but read (a flood, not a non-reader).
            let (stop, counts, token) = (Arc::clone(&stop), Arc::clone(&counts), token(next_user()));
            tasks.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Some(mut ws) = ws(source(n), server).await else { continue };
                    counts.connections.fetch_add(1, Ordering::Relaxed);
                    if !hello(&mut ws, token.clone()).await {
                        counts.closed_by_server.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let (mut tx, mut rx) = ws.split();
                    let reader = tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
                    let mut req = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        req = req.wrapping_add(1);
                        let frame = ClientFrame::Ping { req };
                        let Ok(bytes) = frame.encode() else { break };
                        if tx.send(Message::Binary(bytes.into())).await.is_err() {
                            counts.closed_by_server.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        counts.bad_inputs.fetch_add(1, Ordering::Relaxed);
                    }
                    reader.abort();
                }
            });
        }
        for n in 0..mix.non_readers {
            // Authenticated, asks for the largest pages it may, never reads an answer.
            let (stop, counts, token) = (Arc::clone(&stop), Arc::clone(&counts), token(next_user()));
            tasks.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Some(mut ws) = ws(source(n + 3), server).await else { continue };
                    counts.connections.fetch_add(1, Ordering::Relaxed);
                    if !hello(&mut ws, token.clone()).await {
                        continue;
                    }
                    let mut req = 0u32;
                    loop {
                        req = req.wrapping_add(1);
                        let frame = ClientFrame::Sync { req, after: Cursor::from_time(0), limit: 200 };
                        let Ok(bytes) = frame.encode() else { break };
                        let sent = tokio::time::timeout(Duration::from_secs(5), ws.send(Message::Binary(bytes.into())));
                        match sent.await {
                            Ok(Ok(())) => {
                                counts.bad_inputs.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                counts.closed_by_server.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                        }
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                    }
                }
            });
        }
        for n in 0..mix.half_open {
            // Half an HTTP request, then silence; again whenever the server hangs up.
            let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
            tasks.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut tcp) = tcp(source(n + 5), server).await else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    counts.connections.fetch_add(1, Ordering::Relaxed);
                    let _ = tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: chat\r\nUpgrade: websocket\r\nX-Slow: ").await;
                    counts.bad_inputs.fetch_add(1, Ordering::Relaxed);
                    let mut buf = [0u8; 512];
                    loop {
                        tokio::select! {
                            read = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf) => {
                                if matches!(read, Ok(0) | Err(_)) {
                                    counts.closed_by_server.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                            }
                            () = tokio::time::sleep(Duration::from_millis(200)) => {
                                if stop.load(Ordering::Relaxed) {
                                    return;
                                }
                            }
                        }
                    }
                }
            });
        }
        for n in 0..mix.garbage {
            // Random bytes as the first frame, or text frames, from fresh connections.
            let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
            tasks.spawn(async move {
                let mut rng = rand::rngs::StdRng::from_os_rng();
                while !stop.load(Ordering::Relaxed) {
                    let Some(mut ws) = ws(source(n + 1), server).await else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    counts.connections.fetch_add(1, Ordering::Relaxed);
                    let junk: Vec<u8> = (0..rng.random_range(0..2048)).map(|_| rng.random::<u8>()).collect();
                    let message = if rng.random_bool(0.2) {
                        Message::Text("{\"type\":\"hello\"}".into())
                    } else {
                        Message::Binary(junk.into())
                    };
                    let _ = ws.send(message).await;
                    counts.bad_inputs.fetch_add(1, Ordering::Relaxed);
                    while let Some(Ok(m)) = ws.next().await {
                        if matches!(m, Message::Close(_)) {
                            counts.closed_by_server.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            });
        }
        for n in 0..mix.fuzzers {
            // Authenticated, then mutated valid frames until the server closes; again.
            let (stop, counts, token) = (Arc::clone(&stop), Arc::clone(&counts), token(next_user()));
            tasks.spawn(async move {
                let seeds = seeds(UserRef::teacher(1));
                let mut rng = rand::rngs::StdRng::from_os_rng();
                while !stop.load(Ordering::Relaxed) {
                    let Some(mut ws) = ws(source(n + 2), server).await else { continue };
                    counts.connections.fetch_add(1, Ordering::Relaxed);
                    if !hello(&mut ws, token.clone()).await {
                        continue;
                    }
                    let (mut tx, mut rx) = ws.split();
                    let reader = tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
                    while !stop.load(Ordering::Relaxed) {
                        let seed = &seeds[rng.random_range(0..seeds.len())];
                        // Valid frames too, so the fuzzer gets past decoding into handling.
                        let bytes = if rng.random_bool(0.5) { seed.clone() } else { mutate(&mut rng, seed) };
                        counts.bad_inputs.fetch_add(1, Ordering::Relaxed);
                        if tx.send(Message::Binary(bytes.into())).await.is_err() {
                            counts.closed_by_server.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    reader.abort();
                }
            });
        }
        Abusers { stop, tasks, counts }
    }

    pub async fn stop(mut self) -> Arc<Counts> {
        self.stop.store(true, Ordering::Relaxed);
        // Abusers blocked on a socket the server never answers are not waited for.
        let _ =
            tokio::time::timeout(Duration::from_secs(10), async { while self.tasks.join_next().await.is_some() {} })
                .await;
        self.tasks.abort_all();
        self.counts
    }
}
