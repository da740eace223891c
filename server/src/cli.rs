//! The `chat-server` command line: the guide's npm scripts as subcommands.
//!
//! | guide                  | here                               |
//! |------------------------|------------------------------------|
//! | `npm run socket`       | `chat-server serve` (the default)  |
//! | `npm run setup:chat`   | `chat-server setup`                |
//! | `npm run db:message`   | `chat-server setup --only message` |
//! | `npm run db:view`      | `chat-server setup --only view`    |
//! | `npm run check:socket` | `chat-server check`                |
//! | `npm run check:prisma` | `chat-server check-db`             |
//!
//! Without `DATABASE_URL`, `serve` keeps its messages (and users) in an embedded SQLite
//! file, `chat.db` in the working directory; `users` manages that file's users, and
//! `demo` starts a ready-made demo on its own file with a page to chat in.
//!
//! Settings come from flags, the environment, `.env.local` and `.env` in the working
//! directory, in that order of precedence, as in a Next.js app.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::auth::MIN_SECRET_BYTES;
use crate::config::{Origins, Policy, ServeConfig, ServerLimits, TokenRules};

/// The server limits' defaults, which the flags' defaults show.
const LIMITS: ServerLimits = ServerLimits::DEFAULT;
use crate::db::{Database, DbTarget, explain_connect_error};
use crate::schema::{self, Part};
use crate::store::{PgStore, SqliteStore, Store};
use crate::{demo, server};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "chat-server",
    version,
    about = "Real-time chat server for school apps (Next.js + Prisma + PostgreSQL)"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the WebSocket chat server (the default; replaces `npm run socket`).
    Serve(ServeArgs),
    /// Create the Message table and users_view; safe to repeat (replaces `npm run setup:chat`).
    Setup(SetupArgs),
    /// Ask a running server whether it is healthy (replaces `npm run check:socket`).
    Check(CheckArgs),
    /// Check the database connection and the chat tables (replaces `npm run check:prisma`).
    CheckDb(DbArgs),
    /// Start a demo: embedded database, demo users, and a page at / to chat in (two tabs, two users).
    Demo(DemoArgs),
    /// List or add the users of the embedded SQLite database (PostgreSQL's are your app's tables).
    Users(UsersArgs),
}

/// `demo` options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The port to listen on.
    #[arg(long, env = "SOCKET_PORT", default_value_t = 4000)]
    pub port: u16,
    /// The address to listen on (its own setting: `CHAT_HOST` is `serve`'s).
    #[arg(long, env = "CHAT_DEMO_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Host names (besides localhost and IP addresses) the demo page may be reached by,
    /// comma-separated; requests naming any other host are refused (DNS rebinding).
    #[arg(long, env = "CHAT_DEMO_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// The demo's SQLite file (created and filled with demo users if missing).
    #[arg(long, env = "CHAT_DEMO_DATABASE", default_value = "chat-demo.db")]
    pub database: PathBuf,
    /// The built chat-sdk package (`bash pkg/build.sh` writes it to pkg/dist).
    #[arg(long, env = "CHAT_DEMO_SDK_DIR", default_value = demo::DEFAULT_SDK_DIR)]
    pub sdk_dir: PathBuf,
    /// Who may message whom: pairs among teacher-student, teacher-teacher, student-student.
    #[arg(long, env = "CHAT_POLICY", default_value = "teacher-student,teacher-teacher")]
    pub policy: String,
}

/// `users` options.
#[derive(Debug, Args)]
pub struct UsersArgs {
    /// The database (unset: the embedded chat.db).
    #[command(flatten)]
    pub db: DbArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: UsersCommand,
}

/// `users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List every teacher and student.
    List,
    /// Add a teacher or a student; prints the new id.
    Add {
        /// teacher or student.
        role: RoleArg,
        /// The display name.
        name: String,
    },
}

/// A role on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum RoleArg {
    /// A teacher.
    Teacher,
    /// A student.
    Student,
}

impl From<RoleArg> for chat_protocol::Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Teacher => chat_protocol::Role::Teacher,
            RoleArg::Student => chat_protocol::Role::Student,
        }
    }
}

/// Where the database is.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// The app's PostgreSQL URL, exactly as Prisma uses it (`?schema=` is honoured), or a
    /// SQLite file (`file:./chat.db`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// `setup` options.
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// Apply only one part: `message` (the table, like `db:message`) or `view` (like `db:view`).
    #[arg(long, value_enum)]
    pub only: Option<Part>,
}

/// `check` options.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The server's URL, as the app's NEXT_PUBLIC_SOCKET_URL (http://localhost:4000).
    #[arg(long, env = "NEXT_PUBLIC_SOCKET_URL")]
    pub url: Option<String>,
    /// The port to try on localhost when no URL is given.
    #[arg(long, env = "SOCKET_PORT", default_value_t = 4000)]
    pub port: u16,
}

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// The port to listen on.
    #[arg(long, env = "SOCKET_PORT", default_value_t = 4000)]
    pub port: u16,
    /// The address to listen on (0.0.0.0 to accept connections from other machines).
    #[arg(long, env = "CHAT_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The HS256 secret the app signs chat tokens with (at least 32 bytes).
    #[arg(long, env = "CHAT_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,
    /// Browser origins allowed to connect, comma-separated, or `*` for any.
    #[arg(long, env = "CHAT_ALLOWED_ORIGINS", default_value = "http://localhost:3000,http://127.0.0.1:3000")]
    pub allowed_origins: String,
    /// Who may message whom: pairs among teacher-student, teacher-teacher, student-student.
    #[arg(long, env = "CHAT_POLICY", default_value = "teacher-student,teacher-teacher")]
    pub policy: String,
    /// Maximum authenticated connections.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS", default_value_t = LIMITS.max_connections)]
    pub max_connections: usize,
    /// Maximum connections not yet authenticated (HTTP requests, sockets before hello).
    #[arg(long, env = "CHAT_MAX_PENDING", default_value_t = LIMITS.max_pending)]
    pub max_pending: usize,
    /// Maximum unauthenticated connections from one IP address.
    #[arg(long, env = "CHAT_MAX_PENDING_PER_IP", default_value_t = LIMITS.max_pending_per_ip)]
    pub max_pending_per_ip: usize,
    /// Maximum connections (tabs, devices) of one user.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS_PER_USER", default_value_t = LIMITS.max_connections_per_user)]
    pub max_connections_per_user: usize,
    /// Requests per second allowed per user (all of the user's connections together), sustained.
    #[arg(long, env = "CHAT_RATE_PER_SECOND", default_value_t = LIMITS.requests_per_second)]
    pub rate_per_second: u32,
    /// Requests allowed in a burst per user.
    #[arg(long, env = "CHAT_RATE_BURST", default_value_t = LIMITS.request_burst)]
    pub rate_burst: u32,
    /// Seconds without any protocol frame before a connection is closed.
    #[arg(long, env = "CHAT_IDLE_TIMEOUT", default_value_t = LIMITS.idle_timeout.as_secs())]
    pub idle_timeout: u64,
    /// Seconds a new connection has to say hello.
    #[arg(long, env = "CHAT_HELLO_TIMEOUT", default_value_t = LIMITS.hello_timeout.as_secs())]
    pub hello_timeout: u64,
    /// Seconds an HTTP request has to send all its headers.
    #[arg(long, env = "CHAT_HEADER_TIMEOUT", default_value_t = LIMITS.header_timeout.as_secs())]
    pub header_timeout: u64,
    /// Bytes queued for one client before it is disconnected as a slow consumer.
    #[arg(long, env = "CHAT_OUTBOUND_BYTES", default_value_t = LIMITS.outbound_bytes)]
    pub outbound_bytes: usize,
    /// Seconds a client's socket may accept nothing while frames wait before it is closed.
    #[arg(long, env = "CHAT_WRITE_STALL_TIMEOUT", default_value_t = LIMITS.write_stall_timeout.as_secs())]
    pub write_stall_timeout: u64,
    /// Seconds a database statement may run (statement_timeout); /readyz reports a longer commit.
    #[arg(long, env = "CHAT_DB_TIMEOUT", default_value_t = LIMITS.db_timeout.as_secs())]
    pub db_timeout: u64,
    /// Seconds a shutdown may take at most.
    #[arg(long, env = "CHAT_SHUTDOWN_TIMEOUT", default_value_t = LIMITS.shutdown_timeout.as_secs())]
    pub shutdown_timeout: u64,
    /// The longest token lifetime accepted, in seconds (exp - iat, and exp - now).
    #[arg(long, env = "CHAT_TOKEN_MAX_LIFETIME", default_value_t = 86_400)]
    pub token_max_lifetime: u64,
    /// When set, tokens must carry this audience (aud).
    #[arg(long, env = "CHAT_TOKEN_AUDIENCE")]
    pub token_audience: Option<String>,
    /// When set, tokens must carry this issuer (iss).
    #[arg(long, env = "CHAT_TOKEN_ISSUER")]
    pub token_issuer: Option<String>,
    /// Sends waiting to be stored before new ones are refused as overloaded.
    #[arg(long, env = "CHAT_WRITE_QUEUE", default_value_t = LIMITS.write_queue)]
    pub write_queue: usize,
    /// Messages stored per transaction at most.
    #[arg(long, env = "CHAT_MAX_BATCH", default_value_t = LIMITS.max_batch)]
    pub max_batch: usize,
    /// Database connections (unless DATABASE_URL sets connection_limit).
    #[arg(long, env = "CHAT_DB_POOL", default_value_t = 8)]
    pub db_pool: u32,
    /// Create the Message table and users_view first if they are missing.
    #[arg(long, env = "CHAT_APPLY_SCHEMA")]
    pub apply_schema: bool,
}

/// Loads `.env.local` and `.env` (without overriding the environment), parses the command
/// line and runs it. `serve` is assumed when no subcommand is given.
#[must_use]
pub fn main() -> ExitCode {
    for file in [".env.local", ".env"] {
        match dotenvy::from_filename(file) {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => {
                eprintln!("error: {file} could not be read: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let cli = Cli::parse_from(with_default_subcommand(std::env::args_os().collect()));
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Setup(args) => setup(args).await,
            Command::Check(args) => check(args).await,
            Command::CheckDb(args) => check_db(args).await,
            Command::Demo(args) => run_demo(args).await,
            Command::Users(args) => users(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Inserts `serve` when the first argument is not a subcommand (or help/version).
fn with_default_subcommand(mut args: Vec<OsString>) -> Vec<OsString> {
    let first = args.get(1).and_then(|a| a.to_str()).map(str::to_owned);
    let needs_serve = match first.as_deref() {
        None => true,
        Some("-h" | "--help" | "-V" | "--version" | "help") => false,
        Some(arg) => arg.starts_with('-'),
    };
    if needs_serve {
        args.insert(1.min(args.len()), OsString::from("serve"));
    }
    args
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colours only on a terminal: a log redirected to a file or a pipe stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let _already_set_in_tests = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

type CmdResult = Result<ExitCode, String>;

/// The database `setup` and `check-db` work on: they need `DATABASE_URL` said explicitly.
fn required_database(args: &DbArgs) -> Result<Database, String> {
    if args.database_url.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return Err("DATABASE_URL is not set: put your app's PostgreSQL URL in the environment or in .env \
             (e.g. DATABASE_URL=postgresql://USER:PASSWORD@localhost:5432/DATABASE), or file:./chat.db \
             for the embedded SQLite database"
            .to_owned());
    }
    Database::parse(args.database_url.as_deref()).map_err(|e| e.to_string())
}

async fn open_sqlite(path: &Path) -> Result<SqliteStore, String> {
    SqliteStore::open(path).await.map_err(|e| {
        format!(
            "cannot open the SQLite database {}: {e}. Is it a chat-server database, and is its folder writable? \
             (Set DATABASE_URL to use PostgreSQL instead.)",
            display_path(path)
        )
    })
}

/// The path as the user should read it: absolute, and without `..` once it exists.
fn display_path(path: &Path) -> String {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

async fn connect(target: &DbTarget, pool_size: u32) -> Result<sqlx::PgPool, String> {
    target.connect(pool_size).await.map_err(|e| explain_connect_error(target, &e))
}

/// The server's pool: every statement bounded by `statement_timeout`, so a lock or a
/// stalled disk turns into a retryable error instead of a send that never hears back.
async fn connect_serving(
    target: &DbTarget,
    pool_size: u32,
    statement_timeout: Duration,
) -> Result<sqlx::PgPool, String> {
    let bounded = target.clone().with_statement_timeout(statement_timeout);
    bounded.connect(pool_size).await.map_err(|e| explain_connect_error(target, &e))
}

/// Turns `serve` arguments into a configuration, naming the variable at fault.
///
/// # Errors
/// One sentence naming the variable and what to do.
pub fn serve_config(args: &ServeArgs) -> Result<ServeConfig, String> {
    let secret = args.token_secret.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
        "CHAT_TOKEN_SECRET is not set: the chat server verifies the tokens your Next.js app signs with it; \
         set the same random string (at least 32 bytes, e.g. from `openssl rand -hex 32`) for both"
            .to_owned()
    })?;
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "CHAT_TOKEN_SECRET is {} bytes long; use at least {MIN_SECRET_BYTES} random bytes (e.g. `openssl rand -hex 32`)",
            secret.len()
        ));
    }
    let positive = |name: &str, value: usize| {
        if value == 0 { Err(format!("{name} must be at least 1")) } else { Ok(value) }
    };
    let secs = |name: &str, value: u64| positive(name, value as usize).map(|v| Duration::from_secs(v as u64));
    if args.outbound_bytes < 2 * chat_protocol::MAX_SERVER_FRAME_BYTES {
        return Err(format!(
            "CHAT_OUTBOUND_BYTES must be at least {} (two of the largest frames)",
            2 * chat_protocol::MAX_SERVER_FRAME_BYTES
        ));
    }
    let limits = ServerLimits {
        max_connections: positive("CHAT_MAX_CONNECTIONS", args.max_connections)?,
        max_pending: positive("CHAT_MAX_PENDING", args.max_pending)?,
        max_pending_per_ip: positive("CHAT_MAX_PENDING_PER_IP", args.max_pending_per_ip)?,
        max_connections_per_user: positive("CHAT_MAX_CONNECTIONS_PER_USER", args.max_connections_per_user)?,
        requests_per_second: u32::try_from(positive("CHAT_RATE_PER_SECOND", args.rate_per_second as usize)?)
            .unwrap_or(u32::MAX),
        request_burst: args.rate_burst.max(args.rate_per_second),
        idle_timeout: secs("CHAT_IDLE_TIMEOUT", args.idle_timeout)?,
        hello_timeout: secs("CHAT_HELLO_TIMEOUT", args.hello_timeout)?,
        header_timeout: secs("CHAT_HEADER_TIMEOUT", args.header_timeout)?,
        outbound_bytes: args.outbound_bytes,
        write_stall_timeout: secs("CHAT_WRITE_STALL_TIMEOUT", args.write_stall_timeout)?,
        write_queue: positive("CHAT_WRITE_QUEUE", args.write_queue)?,
        max_batch: positive("CHAT_MAX_BATCH", args.max_batch)?,
        db_timeout: secs("CHAT_DB_TIMEOUT", args.db_timeout)?,
        shutdown_timeout: secs("CHAT_SHUTDOWN_TIMEOUT", args.shutdown_timeout)?,
        ..ServerLimits::default()
    };
    let nonempty = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
    let tokens = TokenRules {
        max_lifetime: secs("CHAT_TOKEN_MAX_LIFETIME", args.token_max_lifetime)?,
        audience: nonempty(&args.token_audience),
        issuer: nonempty(&args.token_issuer),
    };
    Ok(ServeConfig {
        bind: SocketAddr::new(args.host, args.port),
        token_secret: secret.as_bytes().to_vec(),
        origins: Origins::parse(&args.allowed_origins)?,
        policy: Policy::parse(&args.policy)?,
        limits,
        tokens,
    })
}

async fn serve(args: ServeArgs) -> CmdResult {
    let config = serve_config(&args)?;
    if std::env::var_os("CHAT_OUTBOUND_QUEUE").is_some() {
        tracing::warn!(
            "CHAT_OUTBOUND_QUEUE (frames) is no longer read: the queue is bounded in bytes by CHAT_OUTBOUND_BYTES \
             (default 4194304)"
        );
    }
    let (store, described) = match Database::parse(args.db.database_url.as_deref()).map_err(|e| e.to_string())? {
        Database::Postgres(target) => open_postgres(&args, &target).await?,
        Database::Sqlite { path, from_url } => {
            if from_url {
                tracing::info!("using the SQLite database {} (from DATABASE_URL)", display_path(&path));
            } else {
                tracing::info!(
                    "no DATABASE_URL: using the embedded SQLite database {} (set DATABASE_URL to your app's PostgreSQL for a real deployment)",
                    display_path(&path)
                );
            }
            let store = open_sqlite(&path).await?;
            let users = store.users().await.map_err(|e| e.to_string())?;
            if users.is_empty() {
                tracing::warn!(
                    "the database has no users yet, so every sign-in is refused: add some with \
                     `chat-server users add teacher \"Ms. Smith\"` (or try `chat-server demo`)"
                );
            }
            (Store::Sqlite(store), format!("SQLite {}, {} users", display_path(&path), users.len()))
        }
    };
    let listener = server::bind(config.bind).map_err(|e| {
        format!(
            "cannot listen on {}: {e}. Is another server (or the old socket server) using port {}? Set SOCKET_PORT to another port.",
            config.bind,
            config.bind.port()
        )
    })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        "chat-server {} listening on ws://{addr}{} ({described})",
        env!("CARGO_PKG_VERSION"),
        crate::http::WS_PATH,
    );
    server::run(listener, config, store, shutdown_signal()).await.map_err(|e| format!("the server failed: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

async fn open_postgres(args: &ServeArgs, target: &DbTarget) -> Result<(Store, String), String> {
    let pool = connect_serving(target, args.db_pool, Duration::from_secs(args.db_timeout.max(1))).await?;
    let schema_name = target.schema_name().to_owned();
    if args.apply_schema {
        let applied = schema::apply(&pool, &schema_name, None).await.map_err(|e| e.to_string())?;
        for step in applied.steps {
            tracing::info!("{step}");
        }
    } else {
        schema::require_ready(&pool, &schema_name).await?;
    }
    Ok((Store::Postgres(PgStore::new(pool)), format!("database {}, schema {schema_name}", target.redacted)))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}

async fn setup(args: SetupArgs) -> CmdResult {
    let target = match required_database(&args.db)? {
        Database::Postgres(target) => target,
        Database::Sqlite { path, .. } => {
            if args.only.is_some() {
                println!("note: --only applies to PostgreSQL; a SQLite database gets its whole schema");
            }
            open_sqlite(&path).await?;
            println!(
                "the SQLite database {} is up to date (Message, Teacher, Student, users_view)",
                display_path(&path)
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    let pool = connect(&target, 1).await?;
    let applied = schema::apply(&pool, target.schema_name(), args.only).await.map_err(|e| e.to_string())?;
    for step in applied.steps {
        println!("{step}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn check_db(args: DbArgs) -> CmdResult {
    let target = match required_database(&args)? {
        Database::Postgres(target) => target,
        Database::Sqlite { path, .. } => return check_sqlite(&path).await,
    };
    let pool = connect(&target, 1).await?;
    let schema_name = target.schema_name();
    let report = schema::inspect(&pool, schema_name).await.map_err(|e| format!("cannot inspect the database: {e}"))?;
    println!("connected to {} (PostgreSQL {}), schema {schema_name}", target.redacted, report.server_version);
    for line in &report.ok {
        println!("  ok: {line}");
    }
    for finding in &report.problems {
        println!("  problem: {}", finding.problem);
        println!("    fix: {}", finding.fix);
    }
    if report.problems.is_empty() {
        println!("the database is ready for chat-server serve");
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

async fn check_sqlite(path: &Path) -> CmdResult {
    if !path.exists() {
        println!("problem: the SQLite database {} does not exist", display_path(path));
        println!("  fix: chat-server serve (or chat-server setup) creates it");
        return Ok(ExitCode::FAILURE);
    }
    let store = open_sqlite(path).await?;
    let users = store.users().await.map_err(|e| e.to_string())?;
    let messages: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "Message""#)
        .fetch_one(store.pool())
        .await
        .map_err(|e| format!("cannot read the Message table: {e}"))?;
    let teachers = users.iter().filter(|u| u.role == chat_protocol::Role::Teacher).count();
    println!("opened the SQLite database {}", display_path(path));
    println!("  ok: schema up to date (Message, Teacher, Student, users_view)");
    println!("  ok: {teachers} teachers, {} students, {messages} messages", users.len() - teachers);
    if users.is_empty() {
        println!("  problem: no users, so every sign-in is refused");
        println!("    fix: chat-server users add teacher \"Ms. Smith\"");
        return Ok(ExitCode::FAILURE);
    }
    println!("the database is ready for chat-server serve");
    Ok(ExitCode::SUCCESS)
}

async fn users(args: UsersArgs) -> CmdResult {
    let path = match Database::parse(args.db.database_url.as_deref()).map_err(|e| e.to_string())? {
        Database::Sqlite { path, .. } => path,
        Database::Postgres(_) => {
            return Err("DATABASE_URL is a PostgreSQL database: its users are your app's Teacher and Student \
                 tables (read through users_view); add them in your app, not here"
                .to_owned());
        }
    };
    let store = open_sqlite(&path).await?;
    match args.command {
        UsersCommand::List => {
            let users = store.users().await.map_err(|e| e.to_string())?;
            if users.is_empty() {
                println!(
                    "no users in {} yet; add one with: chat-server users add teacher \"Ms. Smith\"",
                    display_path(&path)
                );
            }
            for u in users {
                println!("{} {}\t{}", u.role.as_str(), u.id, u.name);
            }
        }
        UsersCommand::Add { role, name } => {
            let name = name.trim();
            if name.is_empty() {
                return Err("the name is empty; give the user a display name".to_owned());
            }
            let role = chat_protocol::Role::from(role);
            let id = store.add_user(role, name).await.map_err(|e| e.to_string())?;
            println!("added {} {id}: {name}", role.as_str());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_demo(args: DemoArgs) -> CmdResult {
    let sdk = demo::SdkFiles::load(&args.sdk_dir)?;
    let policy = Policy::parse(&args.policy)?;
    tracing::info!("demo: using the SQLite database {}", display_path(&args.database));
    let store = open_sqlite(&args.database).await?;
    let users = demo::seed(&store).await.map_err(|e| e.to_string())?;
    // A fresh secret each run: demo tokens are good for this process only.
    let secret: [u8; 32] = rand::random();
    let listener = server::bind(SocketAddr::new(args.host, args.port)).map_err(|e| {
        format!(
            "cannot listen on {}:{}: {e}. Is something else using the port? Pass --port or set SOCKET_PORT.",
            args.host, args.port
        )
    })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let config = ServeConfig {
        bind: addr,
        token_secret: secret.to_vec(),
        // The page is served by this server; anyone who can reach it can be any demo user anyway.
        origins: Origins::Any,
        policy,
        limits: ServerLimits::default(),
        tokens: TokenRules::default(),
    };
    tracing::warn!(
        "DEMO MODE: /demo/token gives a chat token for any demo user to whoever asks. Never use `demo` for real users; \
         run `chat-server serve` with your app minting tokens"
    );
    tracing::info!(
        "demo: {} users ({}); the browser package comes from {}",
        users.len(),
        users.iter().map(|u| format!("{} {} {}", u.role.as_str(), u.id, u.name)).collect::<Vec<_>>().join(", "),
        display_path(&args.sdk_dir)
    );
    let page = if addr.ip().is_unspecified() {
        format!("http://localhost:{}/", addr.port())
    } else {
        format!("http://{addr}/")
    };
    tracing::info!("chat-server {} demo listening on ws://{addr}{}", env!("CARGO_PKG_VERSION"), crate::http::WS_PATH);
    tracing::info!("demo ready: open {page} in two browser tabs and pick a different user in each");
    let routes = demo::routes(store.clone(), &secret, policy, sdk, demo::AllowedHosts::new(&args.allowed_hosts));
    server::run_with(listener, config, Store::Sqlite(store), routes, shutdown_signal())
        .await
        .map_err(|e| format!("the server failed: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, serde::Deserialize)]
struct Health {
    status: String,
    version: String,
    protocol: u16,
    connections: i64,
}

async fn check(args: CheckArgs) -> CmdResult {
    let base = args.url.filter(|u| !u.trim().is_empty()).unwrap_or_else(|| format!("http://localhost:{}", args.port));
    let health_url = health_url(&base)?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().map_err(|e| e.to_string())?;
    let response = match client.get(health_url.clone()).send().await {
        Ok(r) => r,
        Err(e) => {
            println!("chat server at {base}: not reachable ({e})");
            println!("  start it with: chat-server serve");
            return Ok(ExitCode::FAILURE);
        }
    };
    let status = response.status();
    let health: Result<Health, _> = response.json().await;
    match health {
        Ok(h) if status.is_success() && h.status == "ok" => {
            println!(
                "chat server at {base}: ok (version {}, protocol {}, {} connection{})",
                h.version,
                h.protocol,
                h.connections,
                if h.connections == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(h) => {
            println!("chat server at {base}: {} (HTTP {status})", h.status);
            Ok(ExitCode::FAILURE)
        }
        Err(_) => {
            println!(
                "chat server at {base}: {health_url} answered HTTP {status}, which is not a chat-server health report"
            );
            println!("  is NEXT_PUBLIC_SOCKET_URL pointing at the chat server?");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `http://host:4000` (or `ws://…/ws`) -> `http://host:4000/healthz`.
fn health_url(base: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(base.trim()).map_err(|e| {
        format!("NEXT_PUBLIC_SOCKET_URL '{base}' is not a URL ({e}); expected e.g. http://localhost:4000")
    })?;
    let scheme = match url.scheme() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        other => {
            return Err(format!("NEXT_PUBLIC_SOCKET_URL '{base}' has the scheme '{other}'; expected http(s) or ws(s)"));
        }
    };
    url.set_scheme(scheme).map_err(|()| format!("cannot use the URL {base}"))?;
    let path = url.path().trim_end_matches('/').trim_end_matches(crate::http::WS_PATH).to_owned();
    url.set_path(&format!("{path}/healthz"));
    url.set_query(None);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_is_the_default_subcommand() {
        let args = |v: &[&str]| with_default_subcommand(v.iter().map(OsString::from).collect());
        assert_eq!(args(&["chat-server"]), ["chat-server", "serve"]);
        assert_eq!(args(&["chat-server", "--port", "5"]), ["chat-server", "serve", "--port", "5"]);
        assert_eq!(args(&["chat-server", "setup"]), ["chat-server", "setup"]);
        assert_eq!(args(&["chat-server", "--help"]), ["chat-server", "--help"]);
    }

    #[test]
    fn health_urls_follow_the_socket_url() {
        let h = |s: &str| health_url(s).map(|u| u.to_string());
        assert_eq!(h("http://localhost:4000"), Ok("http://localhost:4000/healthz".into()));
        assert_eq!(h("http://localhost:4000/"), Ok("http://localhost:4000/healthz".into()));
        assert_eq!(h("wss://chat.school.example/ws"), Ok("https://chat.school.example/healthz".into()));
        assert_eq!(h("https://school.example/chat"), Ok("https://school.example/chat/healthz".into()));
        assert!(h("localhost:4000").is_err());
    }

    #[test]
    fn a_short_or_missing_secret_names_the_variable() {
        let cli = Cli::parse_from(["chat-server", "serve", "--token-secret", "short"]);
        let Command::Serve(args) = cli.command else { panic!("serve") };
        let err = serve_config(&args).expect_err("too short");
        assert!(err.starts_with("CHAT_TOKEN_SECRET is 5 bytes long"), "{err}");
    }
}
