//! The `chat-server` binary's subcommands against a real database, as a user runs them.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Output, Stdio};

use chat_protocol::{ClientFrame, PROTOCOL_VERSION, ServerFrame, UserRef};
use chat_server::auth::Auth;
use common::{APP_TABLES, Client, TestDb, now_secs};

const BIN: &str = env!("CARGO_BIN_EXE_chat-server");
const SECRET: &str = "c7e1a9f3b5d2084e6c1a3f5b7d9e2c4a6f8b0d1e3c5a7f9b2d4e6c8a0f1b3d5e";

/// The binary with a clean environment: only what each test sets.
fn cmd(dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir);
    for var in [
        "DATABASE_URL",
        "SOCKET_PORT",
        "NEXT_PUBLIC_SOCKET_URL",
        "CHAT_TOKEN_SECRET",
        "CHAT_HOST",
        "CHAT_APPLY_SCHEMA",
        "CHAT_ALLOWED_ORIGINS",
        "CHAT_OPERATOR",
        "CHAT_RETENTION",
    ] {
        c.env_remove(var);
    }
    c.env("RUST_LOG", "info");
    c
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("chat-cli-{}", common::hex(&rand::random::<[u8; 6]>())));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(c: &mut Command) -> (bool, String) {
    let Output { status, stdout, stderr } = c.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    (status.success(), text)
}

fn mint(user: UserRef) -> String {
    Auth::new(SECRET.as_bytes()).mint(user, now_secs(), now_secs() + 60).unwrap()
}

#[tokio::test]
async fn setup_creates_the_table_and_view_and_is_idempotent() {
    let db = TestDb::with_app_tables().await;
    let dir = tempdir();
    let (ok, out) = run(cmd(&dir).arg("setup").env("DATABASE_URL", &db.url));
    assert!(ok, "{out}");
    assert!(out.contains("created table public.\"Message\""), "{out}");
    assert!(out.contains("created view public.users_view"), "{out}");
    let (ok, out) = run(cmd(&dir).arg("setup").env("DATABASE_URL", &db.url));
    assert!(ok, "{out}");
    assert!(out.contains("already exists"), "{out}");
    let users: Vec<(i32, String, String)> =
        sqlx::query_as("SELECT id, name, role FROM users_view ORDER BY role, id").fetch_all(&db.pool).await.unwrap();
    assert_eq!(users.len(), 5);
    assert_eq!(users[0], (1, "S-Carol".into(), "student".into()));
    assert_eq!(users[3], (1, "T-Alice".into(), "teacher".into()));
}

#[tokio::test]
async fn setup_only_message_and_only_view_do_one_part_each() {
    let db = TestDb::empty().await;
    let dir = tempdir();
    let (ok, out) = run(cmd(&dir).args(["setup", "--only", "message"]).env("DATABASE_URL", &db.url));
    assert!(ok, "{out}");
    assert!(!out.contains("users_view"), "{out}");
    // The view needs the app's tables, and says so.
    let (ok, out) = run(cmd(&dir).args(["setup", "--only", "view"]).env("DATABASE_URL", &db.url));
    assert!(!ok);
    assert!(out.contains("The table 'public.Teacher' does not exist"), "{out}");
    sqlx::raw_sql(APP_TABLES).execute(&db.pool).await.unwrap();
    let (ok, out) = run(cmd(&dir).args(["setup", "--only", "view"]).env("DATABASE_URL", &db.url));
    assert!(ok, "{out}");
    assert!(out.contains("created view"), "{out}");
}

#[tokio::test]
async fn check_db_reports_each_problem_with_its_fix() {
    let db = TestDb::with_app_tables().await;
    let dir = tempdir();
    let (ok, out) = run(cmd(&dir).arg("check-db").env("DATABASE_URL", &db.url));
    assert!(!ok, "{out}");
    assert!(out.contains("(PostgreSQL 1"), "server version: {out}");
    assert!(out.contains("The table 'public.Message' does not exist"), "{out}");
    assert!(out.contains("fix: chat-server setup --only message"), "{out}");
    assert!(out.contains("fix: chat-server setup --only view"), "{out}");
    assert!(out.contains("ok: table public.\"Teacher\" has id and name"), "{out}");
    let (ok, _) = run(cmd(&dir).arg("setup").env("DATABASE_URL", &db.url));
    assert!(ok);
    let (ok, out) = run(cmd(&dir).arg("check-db").env("DATABASE_URL", &db.url));
    assert!(ok, "{out}");
    assert!(out.contains("matches the Prisma model"), "{out}");
}

#[tokio::test]
async fn check_db_explains_an_unreachable_database_and_a_missing_url() {
    let dir = tempdir();
    let (ok, out) = run(cmd(&dir).arg("check-db").env("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nothing"));
    assert!(!ok);
    assert!(out.contains("cannot connect to the database at postgresql://nobody@127.0.0.1:1/nothing"), "{out}");
    assert!(out.contains("Check DATABASE_URL"), "{out}");
    let (ok, out) = run(cmd(&dir).arg("check-db"));
    assert!(!ok);
    assert!(out.contains("DATABASE_URL is not set"), "{out}");
    let (ok, out) = run(cmd(&dir).arg("check-db").env("DATABASE_URL", "mysql://root@localhost/db"));
    assert!(!ok);
    assert!(out.contains("uses the scheme 'mysql'; use your app's PostgreSQL"), "{out}");
}

#[tokio::test]
async fn serve_refuses_to_start_without_the_message_table_and_says_how_to_fix_it() {
    let db = TestDb::with_app_tables().await;
    let dir = tempdir();
    let (ok, out) = run(cmd(&dir)
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("CHAT_TOKEN_SECRET", SECRET)
        .env("SOCKET_PORT", "0"));
    assert!(!ok);
    assert!(out.contains("The table 'public.Message' does not exist"), "{out}");
    assert!(out.contains("chat-server setup"), "{out}");
}

#[tokio::test]
async fn serve_names_the_missing_or_invalid_variable() {
    let db = TestDb::ready().await;
    let dir = tempdir();
    let (ok, out) = run(cmd(&dir).env("DATABASE_URL", &db.url));
    assert!(!ok);
    assert!(out.contains("CHAT_TOKEN_SECRET is not set"), "{out}");
    let (ok, out) =
        run(cmd(&dir).env("DATABASE_URL", &db.url).env("CHAT_TOKEN_SECRET", SECRET).env("SOCKET_PORT", "lots"));
    assert!(!ok);
    assert!(out.contains("SOCKET_PORT") || out.contains("--port"), "{out}");
    let (ok, out) = run(cmd(&dir)
        .env("DATABASE_URL", &db.url)
        .env("CHAT_TOKEN_SECRET", SECRET)
        .env("CHAT_ALLOWED_ORIGINS", "localhost:3000"));
    assert!(!ok);
    assert!(out.contains("CHAT_ALLOWED_ORIGINS"), "{out}");
}

struct Served {
    child: Child,
    addr: String,
    /// The log up to the "listening" line.
    head: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `chat-server` (no subcommand: serve is the default) and waits for its address.
fn serve(dir: &std::path::Path, db_url: &str, extra: &[&str]) -> Served {
    let mut c = cmd(dir);
    c.env("DATABASE_URL", db_url);
    serve_cmd(c, extra)
}

fn serve_cmd(mut c: Command, extra: &[&str]) -> Served {
    let mut child = c
        .args(extra)
        .env("NO_COLOR", "1")
        .env("CHAT_TOKEN_SECRET", SECRET)
        .env("SOCKET_PORT", "0")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    match common::await_listening(stderr) {
        Ok((addr, head)) => Served { child, addr, head },
        Err(log) => panic!("the server did not start:\n{log}"),
    }
}

#[tokio::test]
async fn serve_with_apply_schema_starts_check_reports_it_and_sigterm_stops_it() {
    let db = TestDb::with_app_tables().await;
    let dir = tempdir();
    let mut served = serve(&dir, &db.url, &["--apply-schema"]);
    let url = format!("http://{}", served.addr);
    let (ok, out) = run(cmd(&dir).arg("check").env("NEXT_PUBLIC_SOCKET_URL", &url));
    assert!(ok, "{out}");
    assert!(out.contains(&format!("chat server at {url}: ok")), "{out}");
    assert!(out.contains(&format!("protocol {}", chat_protocol::PROTOCOL_VERSION)), "{out}");
    // SOCKET_PORT alone is used when NEXT_PUBLIC_SOCKET_URL is absent.
    let port = served.addr.rsplit(':').next().unwrap().to_owned();
    let (ok, out) = run(cmd(&dir).arg("check").env("SOCKET_PORT", &port));
    assert!(ok, "{out}");

    // A real client can use it.
    let mut c = Client::open(&format!("ws://{}/ws", served.addr)).await;
    c.send(&ClientFrame::Hello { version: PROTOCOL_VERSION, token: mint(UserRef::teacher(1)) }).await;
    assert!(matches!(c.recv().await, ServerFrame::Welcome { .. }));

    // SIGTERM: a graceful stop, exit status 0, and the client hears "going away".
    let pid = served.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let (_, close) = c.expect_close().await;
    assert_eq!(close, Some(1001));
    let status = served.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn check_says_when_nothing_is_listening() {
    let dir = tempdir();
    let (ok, out) = run(cmd(&dir).arg("check").env("NEXT_PUBLIC_SOCKET_URL", "http://127.0.0.1:1"));
    assert!(!ok);
    assert!(out.contains("not reachable"), "{out}");
    assert!(out.contains("chat-server serve"), "{out}");
}

#[tokio::test]
async fn a_prisma_url_with_schema_and_pool_parameters_works_for_every_command() {
    let db = TestDb::empty().await;
    sqlx::raw_sql(&format!("CREATE SCHEMA chat; SET search_path TO chat; {APP_TABLES}"))
        .execute(&db.pool)
        .await
        .unwrap();
    let url = format!("{}?schema=chat&connection_limit=3&pool_timeout=5&pgbouncer=false", db.url);
    let dir = tempdir();
    let (ok, out) = run(cmd(&dir).arg("setup").env("DATABASE_URL", &url));
    assert!(ok, "{out}");
    assert!(out.contains("created table chat.\"Message\""), "{out}");
    let in_chat: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'chat' AND table_name IN ('Message', 'users_view')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(in_chat, 2);
    let in_public: i64 =
        sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(in_public, 0);
    let (ok, out) = run(cmd(&dir).arg("check-db").env("DATABASE_URL", &url));
    assert!(ok, "{out}");
    assert!(out.contains("schema chat"), "{out}");

    let served = serve(&dir, &url, &[]);
    let mut c = Client::open(&format!("ws://{}/ws", served.addr)).await;
    c.send(&ClientFrame::Hello { version: PROTOCOL_VERSION, token: mint(UserRef::teacher(1)) }).await;
    assert!(matches!(c.recv().await, ServerFrame::Welcome { .. }));
    let (_, ack) = c.send_message(UserRef::student(1), "in schema chat").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }), "{ack:?}");
    let n: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM chat."Message""#).fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn settings_are_read_from_env_files_in_the_working_directory() {
    let db = TestDb::ready().await;
    let dir = tempdir();
    // .env.local wins over .env, as in Next.js.
    std::fs::write(dir.join(".env"), "DATABASE_URL=postgresql://nobody@127.0.0.1:1/wrong\n").unwrap();
    std::fs::write(dir.join(".env.local"), format!("DATABASE_URL={}\n", db.url)).unwrap();
    let (ok, out) = run(cmd(&dir).arg("check-db"));
    assert!(ok, "{out}");
}

#[tokio::test]
async fn without_database_url_serve_uses_an_embedded_sqlite_file_and_says_where() {
    let dir = tempdir();
    // An empty directory of users is explained, then filled with `users add`.
    let (ok, out) = run(cmd(&dir).args(["users", "list"]));
    assert!(ok, "{out}");
    assert!(out.contains("no users in"), "{out}");
    let (ok, out) = run(cmd(&dir).args(["users", "add", "teacher", "Ms. Smith"]));
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "added teacher 1: Ms. Smith");
    let (ok, out) = run(cmd(&dir).args(["users", "add", "student", "Sam"]));
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "added student 1: Sam");
    let (ok, out) = run(cmd(&dir).args(["users", "add", "parent", "Pat"]));
    assert!(!ok, "{out}");
    let (ok, out) = run(cmd(&dir).args(["users", "list"]));
    assert!(ok, "{out}");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["teacher 1\tMs. Smith", "student 1\tSam"]);

    let served = serve_cmd(cmd(&dir), &[]);
    let first = served.head.lines().next().unwrap_or_default();
    let file = std::fs::canonicalize(dir.join("chat.db")).unwrap();
    assert!(
        first.contains(&format!("no DATABASE_URL: using the embedded SQLite database {}", file.display())),
        "{first}"
    );
    assert!(served.head.contains("SQLite"), "{}", served.head);

    // A real client: teacher 1 writes to student 1; the ack means the row is in the file.
    let mut c = Client::open(&format!("ws://{}/ws", served.addr)).await;
    c.send(&ClientFrame::Hello { version: PROTOCOL_VERSION, token: mint(UserRef::teacher(1)) }).await;
    assert!(matches!(c.recv().await, ServerFrame::Welcome { .. }));
    let (_, ack) = c.send_message(UserRef::student(1), "stored in SQLite").await;
    assert!(matches!(ack, ServerFrame::Sent { .. }), "{ack:?}");
    // The demo's token endpoint does not exist outside demo mode.
    let demo = reqwest::get(format!("http://{}/demo/token?role=teacher&id=1", served.addr)).await.unwrap();
    assert_eq!(demo.status(), 404);
    drop(served);

    // check-db reads the same file through a Prisma-style SQLite URL.
    let (ok, out) = run(cmd(&dir).arg("check-db").env("DATABASE_URL", "file:./chat.db"));
    assert!(ok, "{out}");
    assert!(out.contains("1 teachers, 1 students, 1 messages"), "{out}");
    // `users` refuses PostgreSQL, whose users are the app's own tables.
    let (ok, out) = run(cmd(&dir).args(["users", "list"]).env("DATABASE_URL", "postgresql://u@127.0.0.1:1/x"));
    assert!(!ok);
    assert!(out.contains("your app's Teacher and Student"), "{out}");
}

#[tokio::test]
async fn a_sqlite_file_that_is_not_a_database_is_explained() {
    let dir = tempdir();
    std::fs::write(dir.join("chat.db"), "this is not a database, just text that happens to be long enough").unwrap();
    let (ok, out) = run(cmd(&dir).arg("serve").env("CHAT_TOKEN_SECRET", SECRET).env("SOCKET_PORT", "0"));
    assert!(!ok);
    assert!(out.contains("cannot open the SQLite database"), "{out}");
    assert!(out.contains("Set DATABASE_URL to use PostgreSQL"), "{out}");
}

#[tokio::test]
async fn demo_without_the_built_package_says_how_to_build_it() {
    let dir = tempdir();
    let (ok, out) = run(cmd(&dir).args(["demo", "--port", "0", "--sdk-dir", "no-such-dir"]));
    assert!(!ok);
    assert!(out.contains("the browser package is not built"), "{out}");
    assert!(out.contains("bash pkg/build.sh"), "{out}");
}

#[tokio::test]
async fn the_demo_has_its_own_host_setting_and_refuses_requests_for_other_hosts() {
    let dir = tempdir();
    let sdk = dir.join("sdk");
    std::fs::create_dir_all(&sdk).unwrap();
    let modules = ["index.js", "connection.js", "types.js", "outbox.js", "tabs.js", "announce.js", "chat_sdk.js"];
    for file in modules.iter().chain(&["chat_sdk_bg.wasm"]) {
        std::fs::write(sdk.join(file), format!("placeholder {file}")).unwrap();
    }
    let mut c = cmd(&dir);
    // serve's setting: the demo must not pick it up and listen on every interface.
    c.env("CHAT_HOST", "0.0.0.0");
    let database = dir.join("demo.db");
    let args = ["demo", "--port", "0", "--database", database.to_str().unwrap(), "--sdk-dir", sdk.to_str().unwrap()];
    let demo = serve_cmd(c, &args);
    let addr = demo.addr.clone();
    assert!(addr.starts_with("127.0.0.1:"), "CHAT_DEMO_HOST defaults to loopback, CHAT_HOST is ignored: {addr}");
    let http = reqwest::Client::new();
    let token = |host: &str| {
        http.get(format!("http://{addr}/demo/token?role=teacher&id=1")).header(reqwest::header::HOST, host).send()
    };
    // A page on another name that resolves to this machine (DNS rebinding) gets nothing.
    let refused = token("evil.example:4000").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("CHAT_DEMO_ALLOWED_HOSTS"));
    // The demo's own names work.
    for host in ["localhost:4000", addr.as_str()] {
        let ok = token(host).await.unwrap();
        assert_eq!(ok.status(), 200, "{host}");
    }
    // Every module of the package is served as JavaScript; nothing else under /sdk/ is.
    for module in modules {
        let got = http.get(format!("http://{addr}/sdk/{module}")).header(reqwest::header::HOST, "localhost").send();
        let got = got.await.unwrap();
        assert_eq!(got.status(), 200, "{module}");
        assert!(got.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
        assert_eq!(got.text().await.unwrap(), format!("placeholder {module}"));
    }
    let missing = http.get(format!("http://{addr}/sdk/react.js")).header(reqwest::header::HOST, "localhost").send();
    assert_eq!(missing.await.unwrap().status(), 404);
    drop(demo);
}

/// Messages as the app would insert them, `days_old` days before now.
async fn app_messages(db: &TestDb, rows: &[(&str, i32, &str, i32, &str, i64)]) {
    for (sr, si, rr, ri, content, days_old) in rows {
        sqlx::query(
            r#"INSERT INTO "Message" (id, "senderRole", "senderId", "recipientRole", "recipientId", content,
                                      "createdAt", "updatedAt")
               VALUES (gen_random_uuid()::text, $1, $2, $3, $4, $5, now() AT TIME ZONE 'utc' - $6 * INTERVAL '1 day',
                       now() AT TIME ZONE 'utc')"#,
        )
        .bind(sr)
        .bind(si)
        .bind(rr)
        .bind(ri)
        .bind(content)
        .bind(*days_old as f64)
        .execute(&db.pool)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn export_writes_a_users_records_to_a_file_and_records_who_asked() {
    let db = TestDb::ready().await;
    app_messages(
        &db,
        &[
            ("teacher", 1, "student", 1, "Welcome, Carol", 3),
            ("student", 1, "teacher", 1, "Thanks, \"Ms\" Alice", 2),
            ("teacher", 2, "student", 2, "Dan's message", 1),
        ],
    )
    .await;
    let dir = tempdir();
    let out = dir.join("carol.json");
    let export = |c: &mut Command, extra: &[&str]| {
        c.args(["export", "--user", "student:1", "--out", out.to_str().unwrap()])
            .args(extra)
            .env("DATABASE_URL", &db.url)
            .env("CHAT_OPERATOR", "Principal Skinner")
            .output()
            .unwrap()
    };
    let done = export(&mut cmd(&dir), &[]);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    assert!(String::from_utf8_lossy(&done.stderr).contains("exported 2 messages of student:1 (S-Carol) (json)"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let texts: Vec<&str> =
        json["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(texts, ["Welcome, Carol", "Thanks, \"Ms\" Alice"]);
    assert_eq!(json["generatedBy"], "operator Principal Skinner");
    #[cfg(unix)]
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&out).unwrap().permissions()) & 0o777, 0o600);
    // An existing file is not replaced without --force.
    let again = export(&mut cmd(&dir), &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("add --force to replace it"));
    // With --force an existing file is replaced by a new one (owner-only, whatever the old
    // mode was), and a symlink is replaced itself, never written through.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
        let forced = export(&mut cmd(&dir), &["--force"]);
        assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
        assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
        let target = dir.join("someone-elses-file");
        std::fs::write(&target, "not yours").unwrap();
        std::fs::remove_file(&out).unwrap();
        std::os::unix::fs::symlink(&target, &out).unwrap();
        let forced = export(&mut cmd(&dir), &["--force"]);
        assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "not yours", "the symlink was not followed");
        assert!(!std::fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
    // The first export is in the audit log, and so in the next export.
    let (ok, text) =
        run(cmd(&dir).args(["export", "--user", "student:1", "--format", "csv"]).env("DATABASE_URL", &db.url));
    assert!(ok, "{text}");
    assert!(text.contains("createdAt,id,fromRole"), "{text}");
    let (ok, text) = run(cmd(&dir).args(["export", "--user", "student:1"]).env("DATABASE_URL", &db.url));
    assert!(ok, "{text}");
    assert!(text.contains("\"actor\": \"operator Principal Skinner\""), "{text}");
    let audit: Vec<(String, String)> =
        sqlx::query_as("SELECT actor, detail FROM chat_audit ORDER BY id").fetch_all(&db.pool).await.unwrap();
    let forced = if cfg!(unix) { 2 } else { 0 };
    assert_eq!(audit.len(), 3 + forced);
    assert!(audit[0].1.starts_with("exported 2 messages and 0 audit entries of student:1 as json to /"), "{audit:?}");
    assert!(audit[1 + forced].1.ends_with("as csv to standard output"), "{audit:?}");
}

#[tokio::test]
async fn purge_and_erase_count_first_and_delete_only_with_yes() {
    let db = TestDb::ready().await;
    app_messages(
        &db,
        &[
            ("teacher", 1, "student", 1, "old", 400),
            ("teacher", 1, "student", 2, "old too", 380),
            ("teacher", 1, "student", 1, "recent", 2),
            ("student", 2, "teacher", 1, "recent too", 1),
        ],
    )
    .await;
    let dir = tempdir();
    let count = || async { db.message_count().await };
    let (ok, out) = run(cmd(&dir).args(["purge", "--older-than", "365d"]).env("DATABASE_URL", &db.url));
    assert!(!ok);
    assert!(out.contains("would remove 2 messages created before"), "{out}");
    assert!(out.contains("run it again with --yes"), "{out}");
    assert_eq!(count().await, 4);
    let (ok, out) = run(cmd(&dir).args(["purge", "--older-than", "365d", "--dry-run"]).env("DATABASE_URL", &db.url));
    assert!(ok, "{out}");
    assert_eq!(count().await, 4);
    let (ok, out) = run(cmd(&dir).args(["purge", "--older-than", "365d", "--yes"]).env("DATABASE_URL", &db.url));
    assert!(ok, "{out}");
    assert!(out.contains("removed 2 messages created before"), "{out}");
    assert_eq!(count().await, 2);

    let (ok, out) = run(cmd(&dir).args(["erase", "--user", "student:2"]).env("DATABASE_URL", &db.url));
    assert!(!ok);
    assert!(out.contains("would erase 1 messages sent or received by student:2 (S-Dan)"), "{out}");
    assert!(out.contains("erase cannot be undone: run it again with --yes"), "{out}");
    assert_eq!(count().await, 2);
    let (ok, out) = run(cmd(&dir).args(["erase", "--user", "student:2", "--yes"]).env("DATABASE_URL", &db.url));
    assert!(ok, "{out}");
    assert!(out.contains("erased 1 messages"), "{out}");
    assert!(out.contains("their Student row and their sign-in belong to your app"), "{out}");
    assert_eq!(count().await, 1);
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM chat_audit ORDER BY id").fetch_all(&db.pool).await.unwrap();
    assert_eq!(actions, ["purge", "erase"]);
}

/// `hold add|list|release` as an operator runs them: a held student's old messages survive
/// `purge --yes`, `erase` refuses naming the hold, and after the release both work; every step is
/// in the audit log, with who and why.
#[tokio::test]
async fn a_legal_hold_from_the_command_line_stops_purge_and_erase_until_released() {
    let db = TestDb::ready().await;
    app_messages(&db, &[("teacher", 1, "student", 1, "held", 400), ("teacher", 1, "student", 2, "not held", 400)])
        .await;
    let dir = tempdir();
    let hold = |args: &[&str]| {
        let mut c = cmd(&dir);
        c.arg("hold").args(args).env("DATABASE_URL", &db.url).env("CHAT_OPERATOR", "dpo");
        run(&mut c)
    };
    let (ok, out) = hold(&["add", "--user", "student:1", "--reason", "  "]);
    assert!(!ok && out.contains("give the hold a --reason"), "{out}");
    let (ok, out) = hold(&["add", "--user", "student:1", "--reason", "case 2026-14"]);
    assert!(ok, "{out}");
    assert!(out.contains("placed a legal hold on the records of student:1 (1 messages)"), "{out}");
    let (ok, out) = hold(&["add", "--user", "student:1", "--reason", "again"]);
    assert!(!ok && out.contains("already under a legal hold placed by operator dpo"), "{out}");
    let (ok, out) = hold(&["list"]);
    assert!(ok && out.contains("student:1\tplaced ") && out.contains("by operator dpo\treason: case 2026-14"), "{out}");

    let (ok, out) = run(cmd(&dir).args(["purge", "--older-than", "365d", "--yes"]).env("DATABASE_URL", &db.url));
    assert!(ok, "{out}");
    assert!(out.contains("removed 1 messages created before"), "{out}");
    assert_eq!(db.message_count().await, 1, "the held student's message stays");
    let (ok, out) = run(cmd(&dir).args(["erase", "--user", "student:1", "--yes"]).env("DATABASE_URL", &db.url));
    assert!(!ok);
    assert!(out.contains("student:1 is under a legal hold placed by operator dpo"), "{out}");
    assert!(out.contains("chat-server hold release --user student:1"), "{out}");
    assert_eq!(db.message_count().await, 1);

    let (ok, out) = hold(&["release", "--user", "student:1", "--reason", "the case closed"]);
    assert!(ok && out.contains("released the legal hold on the records of student:1"), "{out}");
    let (ok, out) = hold(&["release", "--user", "student:1", "--reason", "again"]);
    assert!(!ok && out.contains("is not under a legal hold"), "{out}");
    let (ok, out) = hold(&["list"]);
    assert!(ok && out.contains("no legal holds"), "{out}");
    let (ok, out) = run(cmd(&dir).args(["erase", "--user", "student:1", "--yes"]).env("DATABASE_URL", &db.url));
    assert!(ok, "{out}");
    assert_eq!(db.message_count().await, 0);
    let audit: Vec<(String, String, String)> =
        sqlx::query_as("SELECT action, actor, detail FROM chat_audit ORDER BY id").fetch_all(&db.pool).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(actions, ["hold", "purge", "hold-release", "erase"], "{audit:?}");
    assert_eq!(audit[0].1, "operator dpo");
    assert!(audit[2].2.contains("released because: the case closed"), "{audit:?}");
}

#[tokio::test]
async fn records_commands_refuse_ambiguous_input() {
    let db = TestDb::ready().await;
    let dir = tempdir();
    let cases: [(&[&str], &str); 6] = [
        (&["export", "--user", "1"], "an id alone is ambiguous"),
        (&["erase", "--user", "parent:1", "--yes"], "'parent' is not a role"),
        (&["purge", "--older-than", "365", "--yes"], "give a whole number of days or weeks"),
        (&["purge", "--older-than", "1y", "--yes"], "e.g. 365d or 52w"),
        (&["export", "--user", "student:1", "--out", "carol.txt"], "cannot tell the format"),
        (&["erase", "--user", "student:99", "--yes"], "has no messages and is not in users_view"),
    ];
    for (args, expected) in cases {
        let (ok, out) = run(cmd(&dir).args(args).env("DATABASE_URL", &db.url));
        assert!(!ok, "{args:?}: {out}");
        assert!(out.contains(expected), "{args:?}: {out}");
    }
    // Destructive commands need the database said explicitly.
    let (ok, out) = run(cmd(&dir).args(["purge", "--older-than", "365d", "--yes"]));
    assert!(!ok);
    assert!(out.contains("DATABASE_URL is not set"), "{out}");
}

/// `CHAT_MODERATION_RULES` as an operator uses it: a broken file stops `serve` at start with
/// what is wrong; with a good one, SIGHUP reads the file again (a broken version leaves the
/// rules in force and the log says why).
#[cfg(unix)]
#[test]
fn moderation_rules_are_checked_at_start_and_read_again_on_sighup() {
    use std::io::{BufRead, BufReader};
    let dir = tempdir();
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, "[[rule]]\nname = \"threats\"\naction = \"ban\"\nwords = [\"kill you\"]\n").unwrap();
    let (ok, out) = run(cmd(&dir).arg("serve").env("CHAT_TOKEN_SECRET", SECRET).env("CHAT_MODERATION_RULES", &rules));
    assert!(!ok);
    assert!(out.contains("rules.toml are not valid") && out.contains("unknown variant `ban`"), "{out}");

    std::fs::write(&rules, "[[rule]]\nname = \"threats\"\naction = \"block\"\nwords = [\"kill you\"]\n").unwrap();
    let child = cmd(&dir)
        .arg("serve")
        .env("NO_COLOR", "1")
        .env("CHAT_TOKEN_SECRET", SECRET)
        .env("SOCKET_PORT", "0")
        .env("CHAT_MODERATION_RULES", &rules)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Killed when the test ends, whichever way it ends.
    let mut served = Served { child, addr: String::new(), head: String::new() };
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = served.child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    let mut wait_for = |wanted: &str| loop {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no {wanted:?} in:\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if line.contains(wanted) {
            return line;
        }
    };
    let loaded = wait_for("moderation rules loaded");
    assert!(loaded.contains("patterns=1"), "{loaded}");
    wait_for("listening");
    let pid = served.child.id().to_string();
    let hup = || assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    std::fs::write(&rules, "[[rule]]\nname = \"x\"\naction = \"block\"\npatterns = [\"(\"]\n").unwrap();
    hup();
    let kept = wait_for("the rules in force stay");
    assert!(kept.contains("not a regular expression"), "{kept}");
    std::fs::write(&rules, "[[rule]]\nname = \"t\"\naction = \"block\"\nwords = [\"kill you\", \"hurt you\"]\n")
        .unwrap();
    hup();
    let again = wait_for("moderation rules read again");
    assert!(again.contains("patterns=2"), "{again}");
    drop(served);
}
