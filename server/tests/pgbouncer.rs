//! Behind PgBouncer in transaction pooling mode, where many schools' PostgreSQL sits: a
//! real `pgbouncer` (`pool_mode = transaction`, a pool smaller than the nodes' so every
//! statement may land on another server connection) in front of the test database, and
//! the real binary. With `pgbouncer=true` in DATABASE_URL (as Prisma writes it) and the
//! bus's LISTEN on a direct URL (CHAT_BUS_DATABASE_URL), two nodes deliver across each
//! other; without the direct URL the node refuses to start and says why.
//!
//! The test needs the `pgbouncer` binary (Debian's package; `scripts/test.sh` installs it).
//! Without it the test says so and passes, unless CHAT_REQUIRE_PGBOUNCER is set (the suite
//! sets it).

#![allow(clippy::unwrap_used)]
// A skipped test says so on stderr.
#![allow(clippy::print_stderr)]

mod common;

use std::process::{Child, Command, Stdio};

use chat_protocol::{ClientFrame, ServerFrame, UserRef};
use common::{Node, TestDb};

const T1: UserRef = UserRef::teacher(1);
const S1: UserRef = UserRef::student(1);
const BUS_KEY: &str = "3f1c9a0b7e5d2c4f8a6b1e0d9c7f5a3b2e4d6c8f0a1b3c5d7e9f1a2b4c6d8e0f";

/// A running pgbouncer in transaction pooling mode in front of one test database.
struct Bouncer {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Bouncer {
    /// Starts pgbouncer for `db`; `None` (said on stderr) when it is not installed and not required.
    fn start(db: &TestDb) -> Option<Bouncer> {
        // Debian puts it in /usr/sbin, which a user's PATH may lack.
        let bin = ["pgbouncer", "/usr/sbin/pgbouncer"]
            .into_iter()
            .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()));
        let Some(bin) = bin else {
            assert!(
                std::env::var_os("CHAT_REQUIRE_PGBOUNCER").is_none(),
                "pgbouncer is not installed (apt-get install pgbouncer; scripts/test.sh does)"
            );
            eprintln!("SKIPPED: pgbouncer is not installed (apt-get install pgbouncer; scripts/test.sh does)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("chat-pgbouncer-{}", common::hex(&rand::random::<[u8; 6]>())));
        std::fs::create_dir_all(&dir).unwrap();
        let url = url::Url::parse(&db.url).unwrap();
        let (host, pg_port) = (url.host_str().unwrap().to_owned(), url.port().unwrap_or(5432));
        let user = if url.username().is_empty() { "postgres" } else { url.username() };
        std::fs::write(dir.join("users.txt"), format!("\"{user}\" \"\"\n")).unwrap();
        std::fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\n{name} = host={host} port={pg_port} dbname={name} user={user}\n\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {users}\npool_mode = transaction\n\
                 default_pool_size = 3\nmax_client_conn = 500\nserver_reset_query =\n\
                 ignore_startup_parameters = extra_float_digits\n",
                name = db.name,
                users = dir.join("users.txt").display(),
            ),
        )
        .unwrap();
        let mut cmd = Command::new(bin);
        // pgbouncer refuses to run as root: as root, it runs as postgres.
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if root {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            cmd.args(["-u", "postgres"]);
        }
        let mut child =
            cmd.arg(dir.join("pgbouncer.ini")).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        // Ready when it says it listens (its log goes to stderr in the foreground).
        let stderr = child.stderr.take().unwrap();
        match common::await_line(stderr, |l| l.contains("listening on 127.0.0.1")) {
            Ok(_) => Some(Bouncer { child, port, dir }),
            Err(log) => panic!("pgbouncer did not start: {log}"),
        }
    }

    /// The database's URL through PgBouncer, as Prisma writes it for one.
    fn url(&self, db: &TestDb) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}?pgbouncer=true", self.port, db.name)
    }
}

/// Two nodes whose pools go through PgBouncer in transaction mode, each listening on a direct
/// URL: messages cross both ways, live and in catch-up, with history, edits and read receipts
/// (many statements over three server connections shared by both nodes: a prepared statement
/// or a session setting relied on across statements would fail here).
#[tokio::test]
async fn two_nodes_behind_pgbouncer_in_transaction_mode_deliver_with_a_direct_listen_url() {
    let db = TestDb::ready().await;
    let Some(bouncer) = Bouncer::start(&db) else { return };
    let via = bouncer.url(&db);
    let env = [("CHAT_BUS", "postgres"), ("CHAT_BUS_KEY", BUS_KEY), ("CHAT_BUS_DATABASE_URL", db.url.as_str())];
    let a = Node::serve(&via, &env);
    let b = Node::serve(&via, &env);
    let (mut teacher, _) = a.connect(T1).await;
    let (mut student, start) = b.connect(S1).await;
    let mut sent = Vec::new();
    for i in 0..40 {
        let (id, ack) = teacher.send_message(S1, &format!("through the pooler {i}")).await;
        assert!(matches!(ack, ServerFrame::Sent { .. }), "{ack:?}");
        sent.push(id);
    }
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let (frame, _) =
            student.recv_until(|f| matches!(f, ServerFrame::Message { .. } | ServerFrame::MessageAt { .. })).await;
        if let ServerFrame::Message { message } | ServerFrame::MessageAt { message, .. } = frame {
            got.push(message.id);
        }
    }
    assert_eq!(got, sent, "each once, in order");
    // The other way, and the reads: history, the catch-up from the start, a read receipt, an edit.
    let (reply, ack) = student.send_message(T1, "got them").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }), "{ack:?}");
    let (frame, _) = teacher.recv_until(|f| matches!(f, ServerFrame::Message { message } if message.id == reply)).await;
    assert!(matches!(frame, ServerFrame::Message { .. }));
    let req = student.req();
    student.send(&ClientFrame::History { req, peer: T1, before: None, limit: 100 }).await;
    let (frame, _) = student.recv_until(|f| f.request_id() == Some(req)).await;
    let ServerFrame::History { messages, .. } = frame else { panic!("{frame:?}") };
    assert_eq!(messages.len(), 41);
    let req = student.req();
    student.send(&ClientFrame::CatchUp { req, after: start, limit: 100 }).await;
    let (frame, _) = student.recv_until(|f| f.request_id() == Some(req)).await;
    let ServerFrame::CatchUpPage { messages, .. } = frame else { panic!("{frame:?}") };
    assert_eq!(messages.len(), 41, "every message since the start, gap-free");
    let req = student.req();
    student.send(&ClientFrame::MarkRead { req, peer: T1, up_to: messages[39].cursor() }).await;
    let (frame, _) = student.recv_until(|f| f.request_id() == Some(req)).await;
    assert!(matches!(frame, ServerFrame::MarkedRead { count: 40, .. }), "{frame:?}");
    let req = teacher.req();
    teacher.send(&ClientFrame::Edit { req, id: sent[0], content: "edited through the pooler".into() }).await;
    let (frame, _) = teacher.recv_until(|f| f.request_id() == Some(req)).await;
    assert!(matches!(frame, ServerFrame::Done { .. }), "{frame:?}");
    let (frame, _) = student.recv_until(|f| matches!(f, ServerFrame::Changed { .. })).await;
    assert!(matches!(frame, ServerFrame::Changed { message, .. } if message.content == "edited through the pooler"));
    drop(bouncer);
}

/// Without CHAT_BUS_DATABASE_URL, LISTEN would go through the pooler and the node would
/// never hear the others: it refuses to start, and says what to set. So it does when the URL
/// given for LISTEN goes through the pooler too, and when DATABASE_URL does not say
/// `pgbouncer=true`.
#[tokio::test]
async fn behind_pgbouncer_without_a_direct_listen_url_the_node_says_what_to_set() {
    let db = TestDb::ready().await;
    let Some(bouncer) = Bouncer::start(&db) else { return };
    let env = [("CHAT_BUS", "postgres"), ("CHAT_BUS_KEY", BUS_KEY)];
    // Told by the URL (pgbouncer=true): refused before connecting.
    let Err(log) = Node::try_serve(&bouncer.url(&db), &env) else { panic!("the node started") };
    assert!(log.contains("CHAT_BUS_DATABASE_URL") && log.contains("PgBouncer"), "{log}");
    // The "direct" URL goes through the pooler too: the node finds out, as its LISTEN hears nothing.
    let pooled_listen = bouncer.url(&db).replace("?pgbouncer=true", "");
    let env = [("CHAT_BUS", "postgres"), ("CHAT_BUS_KEY", BUS_KEY), ("CHAT_BUS_DATABASE_URL", pooled_listen.as_str())];
    let Err(log) = Node::try_serve(&bouncer.url(&db), &env) else { panic!("the node started") };
    assert!(log.contains("does not hear notifications") && log.contains("CHAT_BUS_DATABASE_URL"), "{log}");
}

/// A DATABASE_URL through PgBouncer without `pgbouncer=true`: the node says to add it.
#[tokio::test]
async fn a_url_through_pgbouncer_without_the_flag_is_explained() {
    let db = TestDb::ready().await;
    let Some(bouncer) = Bouncer::start(&db) else { return };
    let unflagged = bouncer.url(&db).replace("?pgbouncer=true", "");
    let Err(log) = Node::try_serve(&unflagged, &[]) else { panic!("the node started") };
    assert!(log.contains("pgbouncer=true"), "{log}");
}
