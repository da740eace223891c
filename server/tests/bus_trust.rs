//! The bus is a trust boundary, tried as an attacker would against the real binary: a
//! database role with LOGIN only, or anyone who reaches NATS, listens for message text and
//! publishes forged, replayed and altered payloads; nothing is read, delivered or moved.
//! Then NATS as operators secure it: each way of authenticating against a real nats-server,
//! and a refused node that keeps answering `/healthz` while `/readyz` says why.
//!
//! NATS must answer at 127.0.0.1:4222 and `nats-server` must be on PATH (scripts/test.sh
//! sees to both).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chat_protocol::{ClientFrame, ServerFrame, UserRef};
use common::{Node, TestDb, wait_online};
use futures_util::StreamExt as _;
use rstest::rstest;

const T1: UserRef = UserRef::teacher(1);
const S1: UserRef = UserRef::student(1);
const BUS_KEY: &str = "3f1c9a0b7e5d2c4f8a6b1e0d9c7f5a3b2e4d6c8f0a1b3c5d7e9f1a2b4c6d8e0f";

/// The node's own views of itself, for these tests.
trait Probe {
    async fn ready_becomes(&self, status: u16) -> String;
    async fn rejected(&self) -> u64;
}

/// A node of `bus`, with the tests' cluster key and `env`.
fn start(db: &TestDb, bus: &str, env: &[(&str, &str)]) -> Node {
    let mut all = vec![("CHAT_BUS", bus), ("CHAT_BUS_KEY", BUS_KEY)];
    all.extend_from_slice(env);
    Node::serve(&db.url, &all)
}

impl Probe for Node {
    /// Waits until `/readyz` answers `status` (each answer is an event: the node's own view).
    async fn ready_becomes(&self, status: u16) -> String {
        for _ in 0..300 {
            let (s, body) = self.get("/readyz").await;
            if s == status {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("/readyz never answered {status}: {:?}", self.get("/readyz").await);
    }

    async fn rejected(&self) -> u64 {
        let (_, text) = self.get("/metrics").await;
        text.lines()
            .filter(|l| l.starts_with("chat_bus_rejected_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    }
}

/// What an attacker does with what the bus carries: listen, and publish.
enum Attacker {
    /// A database role with LOGIN and nothing else (refused on "Message").
    Postgres { listener: sqlx::postgres::PgListener, pool: sqlx::PgPool, role: String, admin: sqlx::PgPool },
    /// A NATS client without credentials, subscribed to everything.
    Nats { client: async_nats::Client, all: async_nats::Subscriber },
}

impl Attacker {
    async fn join(db: &TestDb, kind: &str) -> Attacker {
        if kind == "postgres" {
            let role = format!("chat_attacker_{}", common::hex(&rand::random::<[u8; 4]>()));
            sqlx::query(&format!("CREATE ROLE {role} LOGIN")).execute(&db.pool).await.unwrap();
            let mut url = url::Url::parse(&db.url).unwrap();
            url.set_username(&role).unwrap();
            let pool = sqlx::PgPool::connect(url.as_str()).await.unwrap();
            // The role really is refused on the messages themselves.
            let denied = sqlx::query(r#"SELECT content FROM "Message""#).fetch_all(&pool).await;
            assert!(denied.unwrap_err().to_string().contains("permission denied"));
            let mut listener = sqlx::postgres::PgListener::connect(url.as_str()).await.unwrap();
            // Today's channel and the one an earlier version used.
            listener.listen_all(["chat_bus.public", "chat_log.public", "chat_events.public"]).await.unwrap();
            Attacker::Postgres { listener, pool, role, admin: db.pool.clone() }
        } else {
            let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
            let all = client.subscribe("chat.>").await.unwrap();
            client.flush().await.unwrap();
            Attacker::Nats { client, all }
        }
    }

    /// Everything overheard so far (raw, and base64-decoded where it decodes).
    async fn overheard(&mut self) -> Vec<(String, Vec<u8>)> {
        let mut heard = Vec::new();
        loop {
            let next = match self {
                Attacker::Postgres { listener, .. } => {
                    match tokio::time::timeout(Duration::from_millis(300), listener.recv()).await {
                        Ok(n) => {
                            let n = n.unwrap();
                            Some((n.channel().to_owned(), n.payload().as_bytes().to_vec()))
                        }
                        Err(_) => None,
                    }
                }
                Attacker::Nats { all, .. } => {
                    match tokio::time::timeout(Duration::from_millis(300), all.next()).await {
                        Ok(m) => {
                            let m = m.unwrap();
                            Some((m.subject.to_string(), m.payload.to_vec()))
                        }
                        Err(_) => None,
                    }
                }
            };
            match next {
                Some(h) => heard.push(h),
                None => return heard,
            }
        }
    }

    async fn publish(&self, channel: &str, payload: &[u8]) {
        match self {
            Attacker::Postgres { pool, .. } => {
                // NOTIFY carries text: a binary payload goes as the bus's base64 would.
                let text = match std::str::from_utf8(payload) {
                    Ok(t) => t.to_owned(),
                    Err(_) => chat_server::testing::notify_text(payload),
                };
                sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(text).execute(pool).await.unwrap();
            }
            Attacker::Nats { client, .. } => {
                client.publish(channel.to_owned(), payload.to_vec().into()).await.unwrap();
                client.flush().await.unwrap();
            }
        }
    }

    async fn leave(self) {
        if let Attacker::Postgres { pool, role, admin, listener } = self {
            drop(listener);
            pool.close().await;
            sqlx::query(&format!("DROP ROLE IF EXISTS {role}")).execute(&admin).await.unwrap();
        }
    }
}

#[rstest]
#[tokio::test]
async fn overheard_bus_traffic_carries_no_text_and_forged_or_replayed_payloads_change_nothing(
    #[values("postgres", "nats")] kind: &str,
) {
    let db = TestDb::ready().await;
    let bus = if kind == "postgres" { "postgres" } else { "nats://127.0.0.1:4222" };
    let (channel, old_channels) = if kind == "postgres" {
        ("chat_bus.public".to_owned(), vec!["chat_log.public".to_owned(), "chat_events.public".to_owned()])
    } else {
        let base = format!("chat.{}.public", db.name);
        (format!("{base}.bus"), vec![format!("{base}.log"), format!("{base}.events")])
    };
    let mut attacker = Attacker::join(&db, kind).await;
    let a = start(&db, bus, &[]);
    let b = start(&db, bus, &[]);
    // Protocol 4 (every message from the log, with its position) and 5 (at commit, from the
    // commit notice, then the position).
    let (mut student, start) = a.connect_positions(S1, 4).await;
    let (mut current, _) = a.connect(S1).await;
    let (mut teacher, _) = b.connect(T1).await;
    wait_online(&mut student, T1).await;

    // 1. Listening: real traffic crosses, and none of it shows the text.
    let (real, _) = teacher.send_message(S1, "the secret word is marmalade").await;
    let (frame, _) = student.recv_until(|f| matches!(f, ServerFrame::MessageAt { .. })).await;
    let ServerFrame::MessageAt { message, position: first } = frame else { unreachable!() };
    assert_eq!((message.id, first), (real, start + 1));
    let (frame, _) = current.recv_until(|f| matches!(f, ServerFrame::Message { .. })).await;
    assert!(matches!(frame, ServerFrame::Message { message } if message.id == real));
    let (frame, _) = current.recv_until(|f| matches!(f, ServerFrame::Position { .. })).await;
    assert_eq!(frame, ServerFrame::Position { position: first });
    let heard = attacker.overheard().await;
    assert!(!heard.is_empty(), "the attacker hears the bus (the test would prove nothing otherwise)");
    let b64 = |bytes: &[u8]| {
        use base64::Engine as _;
        std::str::from_utf8(bytes).ok().and_then(|t| base64::engine::general_purpose::STANDARD_NO_PAD.decode(t).ok())
    };
    for (on, payload) in &heard {
        let decoded = b64(payload).unwrap_or_default();
        for bytes in [payload.as_slice(), decoded.as_slice()] {
            assert!(!bytes.windows(9).any(|w| w == b"marmalade"), "text overheard on {on}");
            let id = real.hyphenated();
            assert!(!bytes.windows(36).any(|w| w == id.as_str().as_bytes()), "a message id overheard on {on}");
        }
    }

    // 2. Publishing: the payloads of the original finding, on today's channel and the old
    // ones; a real payload replayed; a real payload altered; garbage; presence of many users.
    let now = chat_server::now_ms();
    let forged = |pos: u64| {
        format!(r#"4242:[[{pos},"0190f3c2-7d4e-7a1b-8c3d-5e6f7a8b9c0d","teacher",2,"student",1,"FORGED",{now},false]]"#)
    };
    for on in std::iter::once(&channel).chain(&old_channels) {
        attacker.publish(on, forged(first + 1).as_bytes()).await;
        attacker.publish(on, forged(1_000_000_000_000).as_bytes()).await;
        attacker.publish(on, b"\x01\x02 not a bus payload").await;
    }
    for (on, payload) in heard.iter().filter(|(on, _)| *on == channel) {
        let mut raw = b64(payload).unwrap_or_else(|| payload.clone());
        attacker.publish(on, &raw).await;
        let last = raw.len() - 1;
        raw[last] ^= 0x20;
        attacker.publish(on, &raw).await;
    }
    for _ in 0..20 {
        let mut blob = vec![0x01];
        blob.extend((0..4_000).map(|_| rand::random::<u8>()));
        attacker.publish(&channel, &blob).await;
    }

    // The next real message takes the next real position, and arrives live.
    let (after, _) = teacher.send_message(S1, "after the attack").await;
    let (frame, skipped) = student.recv_until(|f| matches!(f, ServerFrame::MessageAt { .. })).await;
    let ServerFrame::MessageAt { message, position } = frame else { unreachable!() };
    assert_eq!((message.id, position), (after, first + 1), "nothing forged took a position");
    assert!(
        skipped.iter().all(|f| !matches!(f, ServerFrame::Message { .. } | ServerFrame::MessageAt { .. })),
        "{skipped:?}"
    );
    let (frame, skipped) =
        current.recv_until(|f| matches!(f, ServerFrame::Message { .. } | ServerFrame::MessageAt { .. })).await;
    assert!(matches!(&frame, ServerFrame::Message { message } if message.id == after), "{frame:?}");
    assert!(
        skipped.iter().all(|f| matches!(f, ServerFrame::Position { .. } | ServerFrame::Presence { .. })),
        "nothing forged: {skipped:?}"
    );
    // A new connection is told the real position; its catch-up has the two real messages.
    let (mut fresh, position) = a.connect(S1).await;
    assert_eq!(position, first + 1);
    let req = fresh.req();
    fresh.send(&ClientFrame::CatchUp { req, after: start, limit: 100 }).await;
    let (page, _) = fresh.recv_until(|f| matches!(f, ServerFrame::CatchUpPage { .. })).await;
    let ServerFrame::CatchUpPage { messages, .. } = page else { unreachable!() };
    assert_eq!(messages.iter().map(|m| m.id).collect::<Vec<_>>(), vec![real, after]);
    // Each node counted what it refused (and said so in its log, once a minute a reason).
    let mut counted = 0;
    for _ in 0..100 {
        counted = a.rejected().await;
        if counted >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(counted >= 20, "{}", a.get("/metrics").await.1);
    // The nodes still hear each other: typing crosses.
    let req = teacher.req();
    teacher.send(&ClientFrame::Typing { req, peer: S1, on: true }).await;
    student.recv_until(|f| matches!(f, ServerFrame::Typing { from, on: true } if *from == T1)).await;
    attacker.leave().await;
}

/// A nats-server of the test's own on a free port, with extra arguments.
struct Nats {
    child: Child,
    port: u16,
    _dir: Option<std::path::PathBuf>,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self._dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Nats {
    fn start(args: &[&str]) -> Nats {
        Nats::start_in(None, args)
    }

    fn start_in(dir: Option<std::path::PathBuf>, args: &[&str]) -> Nats {
        let port = free_port();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on PATH (scripts/test.sh installs it)");
        // Answering TCP is the server's own signal that it listens.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Nats { child, port, _dir: dir }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("chat-nats-{}", common::hex(&rand::random::<[u8; 6]>())));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Two nodes on one authenticated NATS: both ready, and a message's typing crosses.
async fn crosses(db: &TestDb, bus: &str, env: &[(&str, &str)]) {
    let a = start(db, bus, env);
    let b = start(db, bus, env);
    a.ready_becomes(200).await;
    b.ready_becomes(200).await;
    let (mut student, _) = a.connect(S1).await;
    let (mut teacher, _) = b.connect(T1).await;
    wait_online(&mut student, T1).await;
    let req = teacher.req();
    teacher.send(&ClientFrame::Typing { req, peer: S1, on: true }).await;
    student.recv_until(|f| matches!(f, ServerFrame::Typing { from, on: true } if *from == T1)).await;
}

#[tokio::test]
async fn nats_user_and_password_from_the_url_or_settings_and_a_refusal_readyz_explains() {
    let db = TestDb::ready().await;
    let nats = Nats::start(&["--user", "chat", "--pass", "pa55-w0rd"]);
    let with_creds = format!("nats://chat:pa55-w0rd@127.0.0.1:{}", nats.port);
    crosses(&db, &with_creds, &[]).await;
    crosses(&db, &nats.url(), &[("CHAT_NATS_USER", "chat"), ("CHAT_NATS_PASSWORD", "pa55-w0rd")]).await;

    // Wrong credentials: the node serves (healthz, WebSockets), /readyz says what is wrong.
    let refused = start(&db, &format!("nats://chat:wrong@127.0.0.1:{}", nats.port), &[]);
    let (status, health) = refused.get("/healthz").await;
    assert_eq!(status, 200, "{health}");
    let body = refused.ready_becomes(503).await;
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["bus"], "down", "{body}");
    let mut body = body;
    for _ in 0..100 {
        if body.contains("authorization") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        body = refused.get("/readyz").await.1;
    }
    assert!(body.contains("authorization") && body.contains("CHAT_NATS_USER"), "{body}");
    assert!(!body.contains("wrong"), "the password is never shown: {body}");
    let (mut c, _) = refused.connect(S1).await;
    let (id, ack) = c.send_message(T1, "still served").await;
    assert!(matches!(ack, ServerFrame::Sent { id: i, .. } if i == id), "{ack:?}");
}

#[tokio::test]
async fn nats_token_and_nkey() {
    let db = TestDb::ready().await;
    let nats = Nats::start(&["--auth", "t0ken-for-chat"]);
    crosses(&db, &format!("nats://t0ken-for-chat@127.0.0.1:{}", nats.port), &[]).await;
    crosses(&db, &nats.url(), &[("CHAT_NATS_TOKEN", "t0ken-for-chat")]).await;

    let user = nkeys::KeyPair::new_user();
    let dir = temp_dir();
    let conf = dir.join("nats.conf");
    std::fs::write(&conf, format!("authorization {{ users = [ {{ nkey: {} }} ] }}\n", user.public_key())).unwrap();
    let nats = Nats::start_in(Some(dir), &["-c", conf.to_str().unwrap()]);
    let seed = user.seed().unwrap();
    crosses(&db, &nats.url(), &[("CHAT_NATS_NKEY", &seed)]).await;
    // Another user's seed is refused.
    let other = nkeys::KeyPair::new_user().seed().unwrap();
    let refused = start(&db, &nats.url(), &[("CHAT_NATS_NKEY", &other)]);
    let body = refused.ready_becomes(503).await;
    assert!(!body.contains(&other), "{body}");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `dir`.
fn pki(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "chat test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let leaf = |names: Vec<String>, purpose: ExtendedKeyUsagePurpose, name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
    };
    leaf(vec!["127.0.0.1".into(), "localhost".into()], ExtendedKeyUsagePurpose::ServerAuth, "server");
    leaf(Vec::new(), ExtendedKeyUsagePurpose::ClientAuth, "node");
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
}

#[tokio::test]
async fn nats_over_tls_with_a_client_certificate() {
    let db = TestDb::ready().await;
    let dir = temp_dir();
    pki(&dir);
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let conf = dir.join("nats.conf");
    std::fs::write(
        &conf,
        format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n}}\n",
            path("server.pem"),
            path("server-key.pem"),
            path("ca.pem")
        ),
    )
    .unwrap();
    let nats = Nats::start_in(Some(dir.clone()), &["-c", conf.to_str().unwrap()]);
    let url = format!("tls://127.0.0.1:{}", nats.port);
    let (ca, cert, key) = (path("ca.pem"), path("node.pem"), path("node-key.pem"));
    crosses(&db, &url, &[("CHAT_NATS_TLS_CA", &ca), ("CHAT_NATS_TLS_CERT", &cert), ("CHAT_NATS_TLS_KEY", &key)]).await;
    // Without its certificate the server refuses the node; /readyz says the bus is down.
    let refused = start(&db, &url, &[("CHAT_NATS_TLS_CA", &ca)]);
    let body = refused.ready_becomes(503).await;
    assert!(body.contains("\"bus\":\"down\""), "{body}");
}

/// A NATS JWT (`ed25519-nkey`) over `claims`, signed by `signer`.
fn nats_jwt(mut claims: serde_json::Value, signer: &nkeys::KeyPair) -> String {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    claims["iat"] = serde_json::json!(chat_server::now_ms() / 1000);
    claims["iss"] = serde_json::json!(signer.public_key());
    claims["jti"] = serde_json::json!(common::hex(&rand::random::<[u8; 16]>()).to_uppercase());
    let signing_input =
        format!("{}.{}", b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#), b64(claims.to_string().as_bytes()));
    let signature = signer.sign(signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64(&signature))
}

#[tokio::test]
async fn nats_creds_file_in_operator_mode() {
    let db = TestDb::ready().await;
    let (operator, account, user) =
        (nkeys::KeyPair::new_operator(), nkeys::KeyPair::new_account(), nkeys::KeyPair::new_user());
    let unlimited = serde_json::json!({ "subs": -1, "data": -1, "payload": -1 });
    let operator_jwt = nats_jwt(
        serde_json::json!({ "name": "school", "sub": operator.public_key(), "nats": { "type": "operator", "version": 2 } }),
        &operator,
    );
    let account_jwt = nats_jwt(
        serde_json::json!({ "name": "chat", "sub": account.public_key(), "nats": {
            "limits": { "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true,
                        "conn": -1, "leaf": -1 },
            "default_permissions": { "pub": {}, "sub": {} }, "type": "account", "version": 2 } }),
        &operator,
    );
    let mut user_claims = serde_json::json!({ "name": "chat-server", "sub": user.public_key(), "nats": {
        "pub": {}, "sub": {}, "type": "user", "version": 2 } });
    for (k, v) in unlimited.as_object().unwrap() {
        user_claims["nats"][k] = v.clone();
    }
    let user_jwt = nats_jwt(user_claims, &account);
    let dir = temp_dir();
    let conf = dir.join("nats.conf");
    std::fs::write(
        &conf,
        format!(
            "operator: {operator_jwt}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {account_jwt}\n}}\n",
            account.public_key()
        ),
    )
    .unwrap();
    let creds = dir.join("chat.creds");
    std::fs::write(
        &creds,
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            user.seed().unwrap()
        ),
    )
    .unwrap();
    let nats = Nats::start_in(Some(dir.clone()), &["-c", conf.to_str().unwrap()]);
    crosses(&db, &nats.url(), &[("CHAT_NATS_CREDS", creds.to_str().unwrap())]).await;
    // Without credentials the operator-mode server refuses the node.
    let refused = start(&db, &nats.url(), &[]);
    let body = refused.ready_becomes(503).await;
    assert!(body.contains("\"bus\":\"down\""), "{body}");
}
