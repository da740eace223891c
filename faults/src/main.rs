//! `chat-faults`: the fault suite. Real users (the SDK's native client) send through a real
//! `chat-server` process while the suite kills it, restarts or stalls its database, cuts
//! its connections, fills its disk, and floods it with misbehaving clients. Every scenario
//! ends by counting: every acked message stored exactly once and delivered to its
//! recipient's app exactly once, or the scenario fails.
//!
//! Each scenario prints one JSON line on stdout (the figures RELIABILITY.md reports) and a
//! human line on stderr. `--smoke` runs every scenario for seconds (CI); without it they run
//! for minutes. Exit status 1 when any promise was broken.
//!
//! The scenarios are in `scenarios.rs`; this file holds the command line, the databases, and
//! the stage every scenario starts from (`stage`) and ends with (`settle`).
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs, unreachable_pub)]

mod abuse;
mod balancer;
mod bus_attack;
mod load;
mod scenarios;
mod server;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
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
    /// Run only these scenarios (comma-separated): kill9, node-kill, pg-restart, stall, cut,
    /// disk-full, abuse.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where temporary databases and logs go.
    #[arg(long, default_value = "target/faults")]
    work_dir: PathBuf,
}

/// The cluster key the suite's nodes share (`CHAT_BUS_KEY`).
pub(crate) const BUS_KEY: &str = "7b2e9d4f1a6c3e8b0d5f2a7c9e1b4d6f8a0c3e5b7d9f1a2c4e6b8d0f3a5c7e9b";
const SECRET: &str = "fa17c0de9b3e5d7a1c4f6e8b2d0a3c5e7f9b1d4a6c8e0f2b5d7a9c1e3f6b8d0a";

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

/// One scenario's setting: a database, a server on it (and, in the cluster scenario, more
/// nodes and the balancer in front of them), and real users connected.
struct Stage {
    db: Db,
    server: Server,
    load: Load,
    others: Vec<Server>,
    balancer: Option<balancer::Balancer>,
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
    Ok(Stage { db, server, load, others: Vec::new(), balancer: None })
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
    let panics = stage.server.panics_logged() + stage.others.iter().map(Server::panics_logged).sum::<usize>();
    let alive = stage.server.alive() && stage.others.iter_mut().all(Server::alive);
    let shutdown = stage.server.terminate()?;
    for other in &mut stage.others {
        other.terminate()?;
    }
    drop(stage.balancer.take());
    let sent = stage.load.sent.load(std::sync::atomic::Ordering::Relaxed);
    stage.load.close();
    stage.db.drop_it().await;
    let ok =
        tally.lost == 0 && tally.duplicated == 0 && tally.forged == 0 && panics == 0 && converged && reopened && alive;
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
        "forged_delivered": tally.forged,
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
        run(scenarios::kill9(&cli, Backend::Postgres, scale).await, "kill9");
        run(scenarios::kill9(&cli, Backend::Sqlite, scale).await, "kill9");
    }
    if wanted("node-kill") {
        run(scenarios::node_kill(&cli, "postgres", scale).await, "node-kill");
        run(scenarios::node_kill(&cli, "nats", scale).await, "node-kill");
    }
    if wanted("stall") {
        run(scenarios::stall(&cli, scale).await, "stall");
    }
    if wanted("cut") {
        run(scenarios::cut(&cli, scale).await, "cut");
    }
    if wanted("disk-full") {
        run(scenarios::disk_full(&cli, scale).await, "disk-full");
    }
    if wanted("abuse") {
        run(scenarios::abuse_run(&cli, scale).await, "abuse");
    }
    if wanted("pg-restart") && !cli.pg_control.is_empty() {
        run(scenarios::pg_restart(&cli, scale).await, "pg-restart");
    }
    if all_ok {
        eprintln!("fault suite: every promise held");
        Ok(())
    } else {
        eprintln!("fault suite: a promise was broken (see FAIL above)");
        std::process::exit(1);
    }
}
