//! `chat-faults`: the fault suite. Real users (the SDK's native client) send through a real
//! `chat-server` process while the suite kills it, restarts or stalls its database, cuts
//! its connections, fills its disk, and floods it with misbehaving clients. Every scenario
//! ends by counting: every acked message stored exactly once and delivered to its
//! recipient's app exactly once, or the scenario fails.
//!
//! Each scenario prints one JSON line on stdout (the figures RELIABILITY.md reports) and a
//! human line on stderr. `--smoke` runs every scenario for seconds (CI); without it they run
//! for minutes. Exit status 1 when any promise was broken.
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs, unreachable_pub)]

mod abuse;
mod load;
mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chat_protocol::MessageId;
use clap::Parser;
use serde_json::{Value, json};

use crate::load::Load;
use crate::server::Server;

#[derive(Parser, Debug)]
#[command(name = "chat-faults", about = "Fault injection against a real chat-server under real load")]
struct Cli {
    /// The `chat-server` binary to test (a release build).
    #[arg(long)]
    server_bin: PathBuf,
    /// A PostgreSQL URL where the suite may create and drop databases.
    #[arg(long, env = "TEST_DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    admin_url: String,
    /// The command that controls PostgreSQL, to which `stop` and `start` are appended (e.g.
    /// `pg_ctlcluster 15 main`); the pg-restart scenario is skipped when empty.
    #[arg(long, default_value = "")]
    pg_control: String,
    /// Seconds-long runs of every scenario, for CI.
    #[arg(long)]
    smoke: bool,
    /// Run only these scenarios (comma-separated): kill9, pg-restart, stall, cut, disk-full, abuse.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where temporary databases and logs go.
    #[arg(long, default_value = "target/faults")]
    work_dir: PathBuf,
}

const SECRET: &str = "fault-suite-secret-fault-suite-secret!";

/// The scale of one run.
#[derive(Clone, Copy, Debug)]
struct Scale {
    pairs: u32,
    per_user: u32,
    kills: u32,
    between_faults: Duration,
    stall: Duration,
    quiet: Duration,
    abusive: Duration,
}

impl Scale {
    fn new(smoke: bool) -> Scale {
        if smoke {
            Scale {
                pairs: 5,
                per_user: 5,
                kills: 1,
                between_faults: Duration::from_secs(2),
                stall: Duration::from_secs(2),
                quiet: Duration::from_secs(4),
                abusive: Duration::from_secs(6),
            }
        } else {
            Scale {
                pairs: 25,
                per_user: 10,
                kills: 5,
                between_faults: Duration::from_secs(6),
                stall: Duration::from_secs(20),
                quiet: Duration::from_secs(60),
                abusive: Duration::from_secs(180),
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// A database for one scenario, with `users` teachers and `users` students.
struct Db {
    backend: Backend,
    url: String,
    admin: Option<(String, String)>,
}

impl Db {
    async fn create(cli: &Cli, backend: Backend, dir: &Path, users: u32) -> Result<Db> {
        match backend {
            Backend::Postgres => {
                let name = format!("chat_faults_{}_{}", std::process::id(), rand::random::<u32>());
                let admin = sqlx::PgPool::connect(&cli.admin_url).await.context("the PostgreSQL admin URL")?;
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await?;
                admin.close().await;
                let mut url = url_with_db(&cli.admin_url, &name)?;
                let pool = sqlx::PgPool::connect(&url).await?;
                sqlx::raw_sql(&format!(
                    r#"CREATE TABLE "Teacher" (id SERIAL PRIMARY KEY, name TEXT NOT NULL);
                       CREATE TABLE "Student" (id SERIAL PRIMARY KEY, name TEXT NOT NULL);
                       INSERT INTO "Teacher" (name) SELECT 'Teacher ' || g FROM generate_series(1, {users}) g;
                       INSERT INTO "Student" (name) SELECT 'Student ' || g FROM generate_series(1, {users}) g;"#
                ))
                .execute(&pool)
                .await?;
                pool.close().await;
                url.push_str("?connection_limit=8");
                Ok(Db { backend, url, admin: Some((cli.admin_url.clone(), name)) })
            }
            Backend::Sqlite => {
                let path = dir.join("chat.db");
                Ok(Db { backend, url: format!("sqlite:{}", path.display()), admin: None })
            }
        }
    }

    /// SQLite: the server creates the schema; the users go in once it has.
    async fn add_sqlite_users(&self, users: u32) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        let pool = sqlx::SqlitePool::connect(&self.url).await?;
        sqlx::raw_sql(&format!(
            r#"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {users})
               INSERT INTO "Teacher" (name) SELECT 'Teacher ' || n FROM g;
               WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {users})
               INSERT INTO "Student" (name) SELECT 'Student ' || n FROM g;"#
        ))
        .execute(&pool)
        .await?;
        pool.close().await;
        Ok(())
    }

    /// How many of `ids` the database holds.
    async fn count(&self, ids: &[MessageId]) -> Result<u64> {
        let texts: Vec<String> = ids.iter().map(|id| id.hyphenated().as_str().to_owned()).collect();
        let n: i64 = match self.backend {
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(self.url.split('?').next().unwrap_or(&self.url)).await?;
                let n = sqlx::query_scalar(r#"SELECT count(*) FROM "Message" WHERE id = ANY($1)"#)
                    .bind(&texts)
                    .fetch_one(&pool)
                    .await?;
                pool.close().await;
                n
            }
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.url).await?;
                let n = sqlx::query_scalar(
                    r#"SELECT count(*) FROM "Message" WHERE id IN (SELECT value FROM json_each(?1))"#,
                )
                .bind(serde_json::to_string(&texts)?)
                .fetch_one(&pool)
                .await?;
                pool.close().await;
                n
            }
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn drop_it(self) {
        if let Some((admin, name)) = self.admin
            && let Ok(pool) = sqlx::PgPool::connect(&admin).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&pool).await;
            pool.close().await;
        }
    }

    async fn pg_pool(&self) -> Result<sqlx::PgPool> {
        Ok(sqlx::PgPool::connect(self.url.split('?').next().unwrap_or(&self.url)).await?)
    }
}

fn url_with_db(admin: &str, db: &str) -> Result<String> {
    let mut url = url::Url::parse(admin)?;
    url.set_path(&format!("/{db}"));
    Ok(url.to_string())
}

/// One scenario's setting: a database, a server on it, and real users connected.
struct Stage {
    db: Db,
    server: Server,
    load: Load,
}

async fn stage(cli: &Cli, backend: Backend, scenario: &str, scale: Scale, env: &[(&str, &str)]) -> Result<Stage> {
    let dir = cli.work_dir.join(format!("{scenario}-{}", backend.name()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    stage_in(cli, backend, &dir, &dir.join("server.log"), scale, env).await
}

async fn stage_in(
    cli: &Cli,
    backend: Backend,
    dir: &Path,
    log: &Path,
    scale: Scale,
    env: &[(&str, &str)],
) -> Result<Stage> {
    let users = scale.pairs + 64;
    let db = Db::create(cli, backend, dir, users).await?;
    let mut vars =
        vec![("DATABASE_URL".to_owned(), db.url.clone()), ("CHAT_TOKEN_SECRET".to_owned(), SECRET.to_owned())];
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut server = Server::new(cli.server_bin.clone(), server::free_port()?, log.to_owned(), vars);
    server.start(&["--apply-schema"]).await?;
    db.add_sqlite_users(users).await?;
    let load = Load::connect(&server.http_url(), SECRET.as_bytes(), scale.pairs).await?;
    Ok(Stage { db, server, load })
}

/// Ends a scenario: stops the load, waits for every acked message to arrive, counts.
async fn settle(
    mut stage: Stage,
    name: &str,
    backend: Backend,
    extra: Value,
    started: Instant,
) -> Result<(Value, bool)> {
    stage.load.stop().await;
    let reopened = stage.load.all_open(Duration::from_secs(60)).await;
    let converged = stage.load.converge(Duration::from_secs(60)).await;
    let acked = stage.load.acked_ids();
    let stored = stage.db.count(&acked).await?;
    let tally = stage.load.tally(stored);
    let ((ack50, ack99), (del50, del99)) = stage.load.latencies();
    let panics = stage.server.panics_logged();
    let alive = stage.server.alive();
    let shutdown = stage.server.terminate()?;
    let sent = stage.load.sent.load(std::sync::atomic::Ordering::Relaxed);
    stage.load.close();
    stage.db.drop_it().await;
    let ok = tally.lost == 0 && tally.duplicated == 0 && panics == 0 && converged && reopened && alive;
    let mut report = json!({
        "scenario": name,
        "backend": backend.name(),
        "ok": ok,
        "seconds": started.elapsed().as_secs_f64().round(),
        "sent": sent,
        "acked": tally.acked,
        "stored_of_acked": stored,
        "delivered": tally.delivered,
        "lost": tally.lost,
        "duplicated": tally.duplicated,
        "failed_permanently": tally.failed,
        "all_clients_reconnected": reopened,
        "ack_ms": { "p50": ack50, "p99": ack99 },
        "delivery_ms": { "p50": del50, "p99": del99 },
        "panics": panics,
        "server_alive_at_end": alive,
        "sigterm_shutdown_ms": shutdown.as_millis(),
    });
    if let (Value::Object(report), Value::Object(extra)) = (&mut report, extra) {
        report.extend(extra);
    }
    eprintln!(
        "{} {name} [{}]: acked {} stored {} lost {} duplicated {} panics {} ({}s)",
        if ok { "PASS" } else { "FAIL" },
        backend.name(),
        tally.acked,
        stored,
        tally.lost,
        tally.duplicated,
        panics,
        started.elapsed().as_secs()
    );
    Ok((report, ok))
}

/// `kill -9` under load, `kills` times, restarting at once each time.
async fn kill9(cli: &Cli, backend: Backend, scale: Scale) -> Result<(Value, bool)> {
    let started = Instant::now();
    let mut s = stage(cli, backend, "kill9", scale, &[]).await?;
    s.load.start_sending(scale.per_user, 4, 64);
    let mut downtime = Vec::new();
    for _ in 0..scale.kills {
        tokio::time::sleep(scale.between_faults).await;
        s.server.kill9()?;
        let down = Instant::now();
        s.server.start(&[]).await?;
        downtime.push(down.elapsed().as_millis());
    }
    tokio::time::sleep(scale.between_faults).await;
    let extra = json!({ "kills": scale.kills, "restart_ms": downtime });
    settle(s, "kill9", backend, extra, started).await
}

/// PostgreSQL stopped under load and started again: the server stays up, says it is not
/// ready while the database is gone, refuses sends with a retryable error (the SDK keeps
/// them), and carries on by itself once the database is back.
async fn pg_restart(cli: &Cli, scale: Scale) -> Result<(Value, bool)> {
    let started = Instant::now();
    let mut s = stage(cli, Backend::Postgres, "pg-restart", scale, &[("CHAT_DB_TIMEOUT", "2")]).await?;
    s.load.start_sending(scale.per_user, 4, 64);
    tokio::time::sleep(scale.between_faults).await;
    let errors_before = s.server.metric("chat_errors_total{code=\"unavailable\"").await;
    pg_control(&cli.pg_control, "stop").await?;
    let down = Instant::now();
    // The database is gone: readiness must say so (waited for, not timed).
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let noticed = async {
        loop {
            let status =
                http.get(format!("{}/readyz", s.server.http_url())).send().await.map_or(0, |r| r.status().as_u16());
            if status == 503 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let reported = tokio::time::timeout(Duration::from_secs(30), noticed).await.is_ok();
    let noticed_after = down.elapsed();
    tokio::time::sleep(scale.stall.min(Duration::from_secs(10))).await;
    let alive_while_down = s.server.alive();
    let errors_while_down = s.server.metric("chat_errors_total{code=\"unavailable\"").await - errors_before;
    pg_control(&cli.pg_control, "start").await?;
    let downtime = down.elapsed();
    let back = async {
        while s.server.ready_status().await != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let recovered = tokio::time::timeout(Duration::from_secs(60), back).await.is_ok();
    let ready_again_after = down.elapsed();
    tokio::time::sleep(scale.between_faults).await;
    let extra = json!({
        "database_down_s": (downtime.as_secs_f64() * 10.0).round() / 10.0,
        "readyz_503_after_ms": noticed_after.as_millis(),
        "ready_again_after_s": (ready_again_after.as_secs_f64() * 10.0).round() / 10.0,
        "server_stayed_up": alive_while_down,
        "unavailable_answers_while_down": errors_while_down,
    });
    let (report, ok) = settle(s, "pg-restart", Backend::Postgres, extra, started).await?;
    Ok((report, ok && reported && recovered && alive_while_down))
}

/// Runs `<control> <verb>` off the async threads (a stop waits for PostgreSQL to shut down).
async fn pg_control(control: &str, verb: &str) -> Result<()> {
    let mut parts = control.split_whitespace().map(str::to_owned);
    let program = parts.next().context("--pg-control is empty")?;
    let mut args: Vec<String> = parts.collect();
    args.push(verb.to_owned());
    let status = tokio::task::spawn_blocking(move || Command::new(program).args(args).status()).await??;
    if !status.success() {
        bail!("PostgreSQL {verb} failed: {status}");
    }
    Ok(())
}

/// A session holds `LOCK TABLE "Message"` for a while under load.
async fn stall(cli: &Cli, scale: Scale) -> Result<(Value, bool)> {
    let started = Instant::now();
    let mut s = stage(cli, Backend::Postgres, "stall", scale, &[("CHAT_DB_TIMEOUT", "1")]).await?;
    s.load.start_sending(scale.per_user, 4, 64);
    tokio::time::sleep(scale.between_faults).await;
    let pool = s.db.pg_pool().await?;
    let mut tx = pool.begin().await?;
    sqlx::query(r#"LOCK TABLE "Message" IN ACCESS EXCLUSIVE MODE"#).execute(&mut *tx).await?;
    let watcher = watch_readiness(s.server.http_url());
    tokio::time::sleep(scale.stall).await;
    tx.rollback().await?;
    pool.close().await;
    let (not_ready, samples) = watcher.stop().await;
    tokio::time::sleep(scale.between_faults).await;
    let extra = json!({
        "stall_s": scale.stall.as_secs(),
        "readyz_not_ready_samples": not_ready,
        "readyz_samples": samples,
    });
    let (report, ok) = settle(s, "stall", Backend::Postgres, extra, started).await?;
    Ok((report, ok && not_ready > 0))
}

/// The server's database connections are cut (`pg_terminate_backend`) under load.
async fn cut(cli: &Cli, scale: Scale) -> Result<(Value, bool)> {
    let started = Instant::now();
    let mut s = stage(cli, Backend::Postgres, "cut", scale, &[]).await?;
    s.load.start_sending(scale.per_user, 4, 64);
    let pool = s.db.pg_pool().await?;
    let db_name: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&pool).await?;
    let mut terminated = 0i64;
    for _ in 0..scale.kills.max(2) {
        tokio::time::sleep(scale.between_faults).await;
        let n: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&db_name)
        .fetch_one(&pool)
        .await?;
        terminated += n;
    }
    pool.close().await;
    tokio::time::sleep(scale.between_faults).await;
    let extra = json!({ "cuts": scale.kills.max(2), "connections_terminated": terminated });
    settle(s, "cut", Backend::Postgres, extra, started).await
}

/// The SQLite file's disk fills up under load, then gets room again.
async fn disk_full(cli: &Cli, scale: Scale) -> Result<(Value, bool)> {
    let started = Instant::now();
    let dir = cli.work_dir.join("disk-full-sqlite");
    let _ = Command::new("umount").arg(&dir).status();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIP disk-full [sqlite]: cannot mount a tmpfs here (needs root)");
        return Ok((
            json!({ "scenario": "disk-full", "backend": "sqlite", "ok": true, "skipped": "cannot mount tmpfs" }),
            true,
        ));
    }
    let result = async {
        // The log stays off the full disk, so what the server says about it is kept.
        let log = cli.work_dir.join("disk-full-sqlite.log");
        let _ = std::fs::remove_file(&log);
        let mut s = stage_in(cli, Backend::Sqlite, &dir, &log, scale, &[("CHAT_DB_TIMEOUT", "2")]).await?;
        // Larger messages fill 3 MiB in seconds.
        s.load.start_sending(scale.per_user * 4, 8, 2048);
        let watcher = watch_readiness(s.server.http_url());
        let full = async {
            while s.server.metric("chat_errors_total{code=\"unavailable\"").await == 0.0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let filled = tokio::time::timeout(Duration::from_secs(120), full).await.is_ok();
        let full_after = started.elapsed();
        tokio::time::sleep(scale.between_faults).await;
        let remounted = Command::new("mount").args(["-o", "remount,size=256m"]).arg(&dir).status()?.success();
        tokio::time::sleep(scale.between_faults).await;
        let (not_ready, samples) = watcher.stop().await;
        let extra = json!({
            "disk_filled": filled,
            "full_after_s": full_after.as_secs_f64().round(),
            "room_given_back": remounted,
            "readyz_not_ready_samples": not_ready,
            "readyz_samples": samples,
        });
        let (report, ok) = settle(s, "disk-full", Backend::Sqlite, extra, started).await?;
        Ok::<_, anyhow::Error>((report, ok && filled && remounted && not_ready > 0))
    }
    .await;
    let _ = Command::new("umount").arg(&dir).status();
    result
}

/// Real users' latency quiet, then the same load with every kind of abuser at once.
async fn abuse_run(cli: &Cli, scale: Scale) -> Result<(Value, bool)> {
    let started = Instant::now();
    // Quiet.
    let mut quiet = stage(cli, Backend::Postgres, "abuse-quiet", scale, &[]).await?;
    quiet.load.start_sending(scale.per_user, 4, 64);
    let rss_quiet = sample_rss(&quiet.server, scale.quiet).await;
    let (quiet_report, quiet_ok) = settle(quiet, "abuse-quiet", Backend::Postgres, json!({}), started).await?;

    // Abusive.
    let started = Instant::now();
    let mut s = stage(cli, Backend::Postgres, "abuse", scale, &[]).await?;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", s.server.port).parse()?;
    let mix = if cli.smoke {
        abuse::Mix { flooders: 4, non_readers: 4, half_open: 50, garbage: 4, fuzzers: 4 }
    } else {
        abuse::Mix { flooders: 16, non_readers: 16, half_open: 400, garbage: 16, fuzzers: 16 }
    };
    let abusers = abuse::Abusers::start(addr, SECRET.as_bytes(), i32::try_from(scale.pairs)?, mix);
    s.load.start_sending(scale.per_user, 4, 64);
    let rss_abused = sample_rss(&s.server, scale.abusive).await;
    let counts = abusers.stop().await;
    // What the server itself saw and refused (the abusers' own counts include frames written
    // into sockets the server had already closed).
    let server_errors = s.server.metric("chat_errors_total").await;
    let server_refused = s.server.metric("chat_refused_total").await;
    let write_failures = s.server.metric("chat_write_failures_total").await;
    let load = std::sync::atomic::Ordering::Relaxed;
    let quiet_p99 = quiet_report["delivery_ms"]["p99"].as_f64().unwrap_or(0.0);
    let extra = json!({
        "abusers": { "flooders": mix.flooders, "non_readers": mix.non_readers, "half_open": mix.half_open,
                     "garbage": mix.garbage, "fuzzers": mix.fuzzers },
        "abusive_frames_written": counts.bad_inputs.load(load),
        "server_error_frames": server_errors,
        "server_refused_connections": server_refused,
        "server_write_failures": write_failures,
        "abuser_connections": counts.connections.load(load),
        "abuser_connections_closed_by_server": counts.closed_by_server.load(load),
        "rss_mib": { "quiet_max": rss_quiet as f64 / 1024.0, "abused_max": rss_abused as f64 / 1024.0 },
        "quiet_delivery_p99_ms": quiet_p99,
    });
    let (mut report, ok) = settle(s, "abuse", Backend::Postgres, extra, started).await?;
    let abused_p99 = report["delivery_ms"]["p99"].as_f64().unwrap_or(0.0);
    report["p99_factor"] = json!(if quiet_p99 > 0.0 { (abused_p99 / quiet_p99 * 10.0).round() / 10.0 } else { 0.0 });
    Ok((json!([quiet_report, report]), ok && quiet_ok))
}

async fn sample_rss(server: &Server, for_how_long: Duration) -> u64 {
    let deadline = Instant::now() + for_how_long;
    let mut max = 0;
    while Instant::now() < deadline {
        max = max.max(server.rss_kib().unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    max
}

/// Polls `/readyz` in the background, counting how often it said "not ready".
struct Readiness {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<(u32, u32)>,
}

fn watch_readiness(base: String) -> Readiness {
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap_or_default();
        let (mut not_ready, mut samples) = (0, 0);
        loop {
            let status = http.get(format!("{base}/readyz")).send().await.map_or(0, |r| r.status().as_u16());
            samples += 1;
            if status != 200 {
                not_ready += 1;
            }
            tokio::select! {
                _ = &mut stopped => return (not_ready, samples),
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    });
    Readiness { stop, task }
}

impl Readiness {
    async fn stop(self) -> (u32, u32) {
        let _ = self.stop.send(());
        self.task.await.unwrap_or((0, 0))
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.work_dir)?;
    let scale = Scale::new(cli.smoke);
    let wanted = |name: &str| cli.only.is_empty() || cli.only.iter().any(|o| o == name);
    let mut all_ok = true;
    let mut run = |result: Result<(Value, bool)>, name: &str| match result {
        Ok((report, ok)) => {
            println!("{report}");
            all_ok &= ok;
        }
        Err(e) => {
            eprintln!("FAIL {name}: {e:#}");
            println!("{}", json!({ "scenario": name, "ok": false, "error": format!("{e:#}") }));
            all_ok = false;
        }
    };
    if wanted("kill9") {
        run(kill9(&cli, Backend::Postgres, scale).await, "kill9");
        run(kill9(&cli, Backend::Sqlite, scale).await, "kill9");
    }
    if wanted("stall") {
        run(stall(&cli, scale).await, "stall");
    }
    if wanted("cut") {
        run(cut(&cli, scale).await, "cut");
    }
    if wanted("disk-full") {
        run(disk_full(&cli, scale).await, "disk-full");
    }
    if wanted("abuse") {
        run(abuse_run(&cli, scale).await, "abuse");
    }
    if wanted("pg-restart") && !cli.pg_control.is_empty() {
        run(pg_restart(&cli, scale).await, "pg-restart");
    }
    if all_ok {
        eprintln!("fault suite: every promise held");
        Ok(())
    } else {
        eprintln!("fault suite: a promise was broken (see FAIL above)");
        std::process::exit(1);
    }
}
