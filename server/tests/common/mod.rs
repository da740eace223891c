//! Test harness: a fresh database per test (PostgreSQL or SQLite), a real server on a real socket,
//! and a small WebSocket client speaking the protocol's frames.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use chat_protocol::{ClientFrame, ErrorCode, MessageId, PROTOCOL_VERSION, ServerFrame, UserRef};
use chat_server::auth::Auth;
use chat_server::{Running, ServeConfig, db::DbTarget};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &[u8] = b"5d1e8a3c9f0b7e2d4c6a1f8e3b5d7c9a2e4f6b8d0c1a3e5f7b9d2c4e6a8f0b1d";

#[allow(unused_imports)]
pub use chat_server::testing::{APP_TABLES, Backend, HasStore, TestDb, TestStore, admin_url, hex};

/// A time-ordered id, as the SDK makes them: ids made one after the other sort in order.
pub fn new_id() -> MessageId {
    static GENERATOR: std::sync::Mutex<chat_protocol::IdGenerator> =
        std::sync::Mutex::new(chat_protocol::IdGenerator::new());
    let now = u64::try_from(chat_server::now_ms()).unwrap();
    GENERATOR.lock().unwrap().next(now, rand::random())
}

pub fn now_secs() -> i64 {
    chat_server::now_ms() / 1000
}

pub fn token(user: UserRef) -> String {
    Auth::new(SECRET).mint(user, now_secs(), now_secs() + 3600).unwrap()
}

pub fn parse_db(url: &str) -> DbTarget {
    DbTarget::parse(url).unwrap()
}

pub async fn start(db: &impl HasStore) -> Running {
    start_with(db, |_| {}).await
}

pub async fn start_with(db: &impl HasStore, tweak: impl FnOnce(&mut ServeConfig)) -> Running {
    let mut config = ServeConfig::for_tests(SECRET);
    tweak(&mut config);
    Running::start(config, db.store()).await.unwrap()
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw protocol client.
pub struct Client {
    pub ws: Ws,
    next_req: u32,
}

pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    pub fn from_ws(ws: Ws) -> Client {
        Client { ws, next_req: 1 }
    }

    pub async fn open(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("connects");
        Client { ws, next_req: 1 }
    }

    pub async fn try_open(url: &str) -> Result<Client, tungstenite::Error> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(Client { ws, next_req: 1 })
    }

    pub async fn open_with_origin(url: &str, origin: &str) -> Result<Client, tungstenite::Error> {
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("Origin", origin.parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Client { ws, next_req: 1 })
    }

    /// Connects and says hello as `user` in protocol 2 (live messages as `Message`, as
    /// most of these tests read them), without waiting for the answer.
    pub async fn hello(server: &Running, user: UserRef) -> Client {
        let mut c = Client::open(&server.ws_url()).await;
        c.send(&ClientFrame::Hello { version: 2, token: token(user) }).await;
        c
    }

    /// Connects and authenticates in the current protocol (log positions); returns the
    /// client and the position the server gave after the welcome.
    pub async fn login_current(server: &Running, user: UserRef) -> (Client, u64) {
        Client::login_positions(server, user, PROTOCOL_VERSION).await
    }

    /// [`Client::login_current`] in protocol `version` (3 or later).
    pub async fn login_positions(server: &Running, user: UserRef, version: u16) -> (Client, u64) {
        let mut c = Client::open(&server.ws_url()).await;
        c.send(&ClientFrame::Hello { version, token: token(user) }).await;
        match c.recv().await {
            ServerFrame::Welcome { user: who, .. } => assert_eq!(who, user),
            other => panic!("expected welcome, got {other:?}"),
        }
        match c.recv().await {
            ServerFrame::Position { position } => (c, position),
            other => panic!("expected the log position, got {other:?}"),
        }
    }

    /// Connects and authenticates; panics unless welcomed.
    pub async fn login(server: &Running, user: UserRef) -> Client {
        let mut c = Client::hello(server, user).await;
        match c.recv().await {
            ServerFrame::Welcome { user: who, .. } => assert_eq!(who, user),
            other => panic!("expected welcome, got {other:?}"),
        }
        c
    }

    pub fn req(&mut self) -> u32 {
        self.next_req += 1;
        self.next_req
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        self.ws.send(Message::Binary(frame.encode().unwrap().into())).await.unwrap();
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.unwrap();
    }

    /// The next protocol frame; panics on timeout or close.
    pub async fn recv(&mut self) -> ServerFrame {
        loop {
            let msg = tokio::time::timeout(RECV_TIMEOUT, self.ws.next())
                .await
                .expect("a frame within the timeout")
                .expect("the socket is open")
                .expect("no socket error");
            match msg {
                Message::Binary(b) => {
                    return ServerFrame::decode(&b).expect("a valid server frame");
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a binary frame, got {other:?}"),
            }
        }
    }

    /// Frames until one matches `pred`, which is returned; the others are returned too.
    pub async fn recv_until(&mut self, mut pred: impl FnMut(&ServerFrame) -> bool) -> (ServerFrame, Vec<ServerFrame>) {
        let mut skipped = Vec::new();
        loop {
            let f = self.recv().await;
            if pred(&f) {
                return (f, skipped);
            }
            skipped.push(f);
        }
    }

    /// Sends a message and waits for its ack (or error), returning it.
    pub async fn send_message(&mut self, to: UserRef, content: &str) -> (MessageId, ServerFrame) {
        let id = new_id();
        let req = self.req();
        self.send(&ClientFrame::Send { req, id, to, content: content.into() }).await;
        let (answer, _) = self.recv_until(|f| f.request_id() == Some(req)).await;
        (id, answer)
    }

    /// Reads until the server closes: the fatal frame if one came, and the close code.
    pub async fn expect_close(&mut self) -> (Option<ServerFrame>, Option<u16>) {
        let mut fatal = None;
        loop {
            let next = tokio::time::timeout(RECV_TIMEOUT, self.ws.next()).await.expect("the server closes in time");
            match next {
                Some(Ok(Message::Binary(b))) => {
                    let f = ServerFrame::decode(&b).expect("a valid server frame");
                    if matches!(f, ServerFrame::Fatal { .. }) {
                        fatal = Some(f);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return (fatal, frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return (fatal, None),
            }
        }
    }

    /// Expects the server to close with `code`, after a fatal frame carrying it.
    pub async fn expect_fatal(&mut self, code: ErrorCode) {
        let (fatal, close) = self.expect_close().await;
        match fatal {
            Some(ServerFrame::Fatal { code: got, .. }) => assert_eq!(got, code, "fatal frame code"),
            other => panic!("expected a fatal frame with {code}, got {other:?}"),
        }
        assert_eq!(close, Some(code.close_code()), "close code for {code}");
    }
}

pub fn close_code_of(code: CloseCode) -> u16 {
    u16::from(code)
}

/// Reads a process's stderr until a line matches `wanted`, and keeps reading to the end on a
/// thread (so the process never blocks on a full pipe). Returns that line and the log up to
/// it, or the whole log if the process ended first (or 30 s passed: the log so far).
#[allow(dead_code)]
pub fn await_line(
    stderr: std::process::ChildStderr,
    wanted: impl Fn(&str) -> bool + Send + 'static,
) -> Result<(String, String), String> {
    use std::io::{BufRead, BufReader};
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            log.push_str(&line);
            log.push('\n');
            if wanted(&line)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(Ok((line, log.clone())));
            }
        }
        if let Some(tx) = tx {
            let _ = tx.send(Err(log));
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| Err("no answer within 30 s".to_owned()))
}

/// Reads a `chat-server serve` process's stderr until it says where it listens
/// ([`await_line`]). Returns the address and the log up to that line, or the whole log if the
/// process ended first.
#[allow(dead_code)]
pub fn await_listening(stderr: std::process::ChildStderr) -> Result<(String, String), String> {
    let (line, log) = await_line(stderr, |l| l.contains("listening on ws://"))?;
    let rest = line.split("listening on ws://").nth(1).unwrap_or_default();
    Ok((rest.split('/').next().unwrap_or_default().to_owned(), log))
}

/// A `chat-server serve` process (the real binary) on a port of its choosing, with the test
/// secret and `env` added; killed when dropped.
pub struct Node {
    pub child: std::process::Child,
    pub addr: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// Starts the binary on `db_url` and returns once it says where it listens (it accepts
    /// from then on: connections wait in the backlog until it serves).
    pub fn serve(db_url: &str, env: &[(&str, &str)]) -> Node {
        Node::try_serve(db_url, env).unwrap_or_else(|log| panic!("the node did not start:\n{log}"))
    }

    /// [`Node::serve`], or the node's whole log when it ended instead of serving.
    pub fn try_serve(db_url: &str, env: &[(&str, &str)]) -> Result<Node, String> {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"));
        cmd.arg("serve")
            .env("DATABASE_URL", db_url)
            .env("SOCKET_PORT", "0")
            .env("CHAT_TOKEN_SECRET", std::str::from_utf8(SECRET).unwrap())
            .env("CHAT_ALLOWED_ORIGINS", "*")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        match await_listening(stderr) {
            Ok((addr, _)) => Ok(Node { child, addr }),
            Err(log) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(log)
            }
        }
    }

    /// Connects `user` in the current protocol; returns the client and its position.
    pub async fn connect(&self, user: UserRef) -> (Client, u64) {
        self.connect_positions(user, PROTOCOL_VERSION).await
    }

    /// [`Node::connect`] in protocol `version` (3 or later).
    pub async fn connect_positions(&self, user: UserRef, version: u16) -> (Client, u64) {
        let mut c = Client::open(&format!("ws://{}/ws", self.addr)).await;
        c.send(&ClientFrame::Hello { version, token: token(user) }).await;
        assert!(matches!(c.recv().await, ServerFrame::Welcome { .. }));
        let ServerFrame::Position { position } = c.recv().await else { panic!("position") };
        (c, position)
    }

    /// A GET on the node's HTTP side: the status and the body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{}{path}", self.addr)).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// Watches `user` and waits until it is reported online (now or later).
pub async fn wait_online(c: &mut Client, user: UserRef) {
    let req = c.req();
    c.send(&ClientFrame::WatchPresence { req, users: vec![user] }).await;
    let (frame, _) = c.recv_until(|f| matches!(f, ServerFrame::Watching { .. })).await;
    let ServerFrame::Watching { online, .. } = frame else { unreachable!() };
    if !online.contains(&user) {
        c.recv_until(|f| matches!(f, ServerFrame::Presence { user: u, online: true } if *u == user)).await;
    }
}
