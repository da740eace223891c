//! `serve` (the guide's `npm run socket`) and `demo`: settings, the database, the listener.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{CmdResult, DbArgs, display_path, open_sqlite};
use crate::auth::weak_secret;
use crate::clock::Clock;
use crate::config::{Blocking, Origins, Policy, QuietHours, Safety, ServeConfig, ServerLimits, TokenRules};
use crate::delivery::bus::{BusConfig, BusKeys, NatsAuth};
use crate::demo;
use crate::moderation::{Moderation, Rules};
use crate::server::{self, shutdown_signal};
use crate::store::db::{DEFAULT_DB_POOL, Database, DbTarget, explain_connect_error};
use crate::store::schema;
use crate::store::{PgStore, Store};

/// The flags' defaults, from the one place that defines them.
const LIMITS: ServerLimits = ServerLimits::DEFAULT;

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
    #[arg(long, env = "CHAT_POLICY", default_value = Policy::DEFAULT_PAIRS)]
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
    #[arg(long, env = "CHAT_TOKEN_MAX_LIFETIME", default_value_t = TokenRules::DEFAULT_MAX_LIFETIME.as_secs())]
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
    #[arg(long, env = "CHAT_DB_POOL", default_value_t = DEFAULT_DB_POOL)]
    pub db_pool: u32,
    /// Create the Message table and users_view first if they are missing.
    #[arg(long, env = "CHAT_APPLY_SCHEMA")]
    pub apply_schema: bool,
    /// Run as one node of several on the same database: `postgres` (LISTEN/NOTIFY on
    /// DATABASE_URL) or a NATS URL (nats://host:4222). Unset: a single node.
    #[arg(long, env = "CHAT_BUS")]
    pub bus: Option<String>,
    /// A direct PostgreSQL URL for the bus's listening connection (when DATABASE_URL goes
    /// through PgBouncer in transaction mode, which cannot carry LISTEN).
    #[arg(long, env = "CHAT_BUS_DATABASE_URL", hide_env_values = true)]
    pub bus_database_url: Option<String>,
    /// The deployment's cluster key, shared by every node and by nothing else: every bus
    /// payload is sealed with it (XChaCha20-Poly1305). 32 random bytes as hex or base64
    /// (`openssl rand -hex 32`); several, comma-separated, while rotating (the first seals).
    /// Required with CHAT_BUS.
    #[arg(long, env = "CHAT_BUS_KEY", hide_env_values = true)]
    pub bus_key: Option<String>,
    /// NATS user name (with CHAT_NATS_PASSWORD); or put user:password@ in CHAT_BUS.
    #[arg(long, env = "CHAT_NATS_USER")]
    pub nats_user: Option<String>,
    /// NATS password.
    #[arg(long, env = "CHAT_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// NATS token; or put token@ in CHAT_BUS.
    #[arg(long, env = "CHAT_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,
    /// NATS user nkey seed (SU...).
    #[arg(long, env = "CHAT_NATS_NKEY", hide_env_values = true)]
    pub nats_nkey: Option<String>,
    /// A NATS .creds file (user JWT and seed, as `nsc` writes it).
    #[arg(long, env = "CHAT_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// PEM roots that signed the NATS server's certificate (implies TLS).
    #[arg(long, env = "CHAT_NATS_TLS_CA")]
    pub nats_tls_ca: Option<PathBuf>,
    /// This node's client certificate for NATS (PEM; with CHAT_NATS_TLS_KEY).
    #[arg(long, env = "CHAT_NATS_TLS_CERT")]
    pub nats_tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "CHAT_NATS_TLS_KEY")]
    pub nats_tls_key: Option<PathBuf>,
    /// Keep messages this long, then remove them (days or weeks, e.g. 365d): at start and
    /// daily, in batches, each run recorded in the audit log. Unset: messages are kept.
    #[arg(long, env = "CHAT_RETENTION")]
    pub retention: Option<String>,
    /// Keep audit entries this long (at least 365d), then remove them daily (the removal is
    /// itself recorded). Unset: the audit log is kept.
    #[arg(long, env = "CHAT_AUDIT_RETENTION")]
    pub audit_retention: Option<String>,
    /// Whether students may start conversations; `false`: a student may only reply to someone
    /// who wrote to them first (a teacher writes first).
    #[arg(long, env = "CHAT_STUDENTS_MAY_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub students_may_start: bool,
    /// Who may block whom: pairs of blocker-blocked (a teacher's block is a mute), or `none`.
    #[arg(long, env = "CHAT_BLOCKING", default_value = Blocking::DEFAULT_PAIRS)]
    pub blocking: String,
    /// An http(s) URL every report is POSTed to as JSON (signed: X-Chat-Signature).
    #[arg(long, env = "CHAT_REPORT_WEBHOOK")]
    pub report_webhook: Option<String>,
    /// Minutes after sending during which a sender may edit or delete a message (0: never).
    #[arg(long, env = "CHAT_EDIT_WINDOW", default_value_t = Safety::DEFAULT_EDIT_WINDOW_MINUTES)]
    pub edit_window: u64,
    /// Quiet hours for students, local time (e.g. 19:00-07:00): messages to students then are
    /// delivered as always but marked quiet, so the app does not notify.
    #[arg(long, env = "CHAT_QUIET_HOURS")]
    pub quiet_hours: Option<String>,
    /// The school's time zone for quiet hours (an IANA name, e.g. America/New_York).
    #[arg(long, env = "CHAT_TIMEZONE", default_value = "UTC")]
    pub timezone: String,
    /// The school's moderation rules: a TOML file of word and pattern lists (docs/safety.md),
    /// read again on SIGHUP without a restart.
    #[arg(long, env = "CHAT_MODERATION_RULES")]
    pub moderation_rules: Option<PathBuf>,
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
    #[arg(long, env = "CHAT_POLICY", default_value = Policy::DEFAULT_PAIRS)]
    pub policy: String,
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
    if let Some(why) = weak_secret("CHAT_TOKEN_SECRET", secret) {
        return Err(why);
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
    let bus = match nonempty(&args.bus) {
        None => None,
        Some(value) => {
            let keys = match nonempty(&args.bus_key) {
                Some(keys) => BusKeys::parse(&keys)?,
                None => {
                    return Err("CHAT_BUS is set but CHAT_BUS_KEY is not: every node seals what it says on the bus \
                                with this shared key, so that a database login or access to NATS can neither read \
                                messages off the bus nor forge them. Make one with `openssl rand -hex 32` and give \
                                every node of the deployment the same value"
                        .to_owned());
                }
            };
            let path = |p: &Option<PathBuf>| p.clone().filter(|p| !p.as_os_str().is_empty());
            let auth = NatsAuth {
                user: nonempty(&args.nats_user),
                password: nonempty(&args.nats_password),
                token: nonempty(&args.nats_token),
                nkey_seed: nonempty(&args.nats_nkey),
                creds_file: path(&args.nats_creds),
                tls_ca: path(&args.nats_tls_ca),
                tls_cert: path(&args.nats_tls_cert),
                tls_key: path(&args.nats_tls_key),
            };
            Some(BusConfig::parse(&value, nonempty(&args.bus_database_url), keys, auth)?)
        }
    };
    Ok(ServeConfig {
        bind: SocketAddr::new(args.host, args.port),
        token_secret: secret.as_bytes().to_vec(),
        origins: Origins::parse(&args.allowed_origins)?,
        policy: Policy::parse(&args.policy)?,
        limits,
        tokens,
        clock: Clock::system(),
        bus,
        log_poll: ServeConfig::DEFAULT_LOG_POLL,
        audit_retention: match nonempty(&args.audit_retention) {
            None => None,
            Some(age) => {
                let age = crate::records::parse_age(&age).map_err(|e| format!("CHAT_AUDIT_RETENTION: {e}"))?;
                if age < crate::records::MIN_AUDIT_RETENTION_MS {
                    return Err("CHAT_AUDIT_RETENTION must be at least 365d: the audit log is the school's record of \
                                who read and removed what"
                        .to_owned());
                }
                Some(age)
            }
        },
        retention: match nonempty(&args.retention) {
            None => None,
            Some(age) => Some(crate::records::parse_age(&age).map_err(|e| format!("CHAT_RETENTION: {e}"))?),
        },
        safety: Safety {
            students_may_start: args.students_may_start,
            blocking: Blocking::parse(&args.blocking)?,
            report_webhook: match nonempty(&args.report_webhook) {
                None => None,
                Some(url) => Some(
                    url::Url::parse(&url)
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https"))
                        .ok_or_else(|| format!("CHAT_REPORT_WEBHOOK '{url}' is not an http(s) URL"))?,
                ),
            },
            edit_window: Duration::from_secs(args.edit_window.saturating_mul(60)),
            quiet_hours: match nonempty(&args.quiet_hours) {
                None => None,
                Some(hours) => Some(QuietHours::parse(&hours, &args.timezone)?),
            },
            moderation: match args.moderation_rules.as_deref().filter(|p| !p.as_os_str().is_empty()) {
                None => Moderation::default(),
                Some(path) => {
                    let rules = Rules::load(path)?;
                    tracing::info!(
                        file = %path.display(),
                        rules = rules.rules().len(),
                        patterns = rules.pattern_count,
                        "moderation rules loaded (send SIGHUP to read them again)"
                    );
                    Moderation::new(Some(rules))
                }
            },
        },
    })
}

/// Reads the moderation rules again on every SIGHUP; a file that no longer reads leaves the
/// rules in force, and the log says why.
fn reload_on_hangup(moderation: &Moderation) {
    #[cfg(unix)]
    {
        let moderation = moderation.clone();
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut hangups) => {
                tokio::spawn(async move {
                    while hangups.recv().await.is_some() {
                        match moderation.reload() {
                            Ok(Some(patterns)) => tracing::info!(patterns, "moderation rules read again (SIGHUP)"),
                            Ok(None) => {
                                tracing::info!("SIGHUP: no moderation rules to read (CHAT_MODERATION_RULES is not set)")
                            }
                            Err(e) => tracing::error!("{e}; the rules in force stay"),
                        }
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: the moderation rules are read at start only")
            }
        }
    }
    #[cfg(not(unix))]
    let _ = moderation;
}

pub(super) async fn serve(args: ServeArgs) -> CmdResult {
    let config = serve_config(&args)?;
    reload_on_hangup(&config.safety.moderation);
    if std::env::var_os("CHAT_OUTBOUND_QUEUE").is_some() {
        tracing::warn!(
            "CHAT_OUTBOUND_QUEUE (frames) is no longer read: the queue is bounded in bytes by CHAT_OUTBOUND_BYTES \
             (default 4194304)"
        );
    }
    let (store, described) = match Database::parse(args.db.database_url.as_deref()).map_err(|e| e.to_string())? {
        Database::Postgres(target) => open_postgres(&args, &target).await?,
        Database::Sqlite { path, .. } if config.bus.is_some() => {
            return Err(format!(
                "CHAT_BUS is set but the database is the SQLite file {}: SQLite serves a single node. Set \
                 DATABASE_URL to your app's PostgreSQL to run several nodes, or unset CHAT_BUS",
                display_path(&path)
            ));
        }
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
    let role = config.bus.as_ref().map_or_else(|| "single node".to_owned(), |b| format!("bus {}", b.name()));
    let ready = move || {
        tracing::info!(
            "chat-server {} listening on ws://{addr}{} ({described}; {role})",
            env!("CARGO_PKG_VERSION"),
            crate::net::http::WS_PATH,
        );
    };
    server::run_announced(listener, config, store, axum::Router::new(), shutdown_signal(), ready)
        .await
        .map_err(|e| format!("the server failed: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

async fn open_postgres(args: &ServeArgs, target: &DbTarget) -> Result<(Store, String), String> {
    if target.pgbouncer
        && args.bus.as_deref().is_some_and(is_postgres_bus)
        && args.bus_database_url.as_deref().is_none_or(|u| u.trim().is_empty())
    {
        return Err("CHAT_BUS=postgres cannot LISTEN through PgBouncer in transaction pooling mode (DATABASE_URL has \
                    pgbouncer=true): notifications would reach whichever client the pooler gave the connection to \
                    next, and the nodes would stop hearing each other. Set CHAT_BUS_DATABASE_URL to a direct URL of \
                    the same database (past PgBouncer), or use CHAT_BUS=nats://..."
            .to_owned());
    }
    let pool = connect_serving(target, args.db_pool, Duration::from_secs(args.db_timeout.max(1))).await?;
    target.check_pooled(&pool).await?;
    let schema_name = target.schema_name().to_owned();
    if args.apply_schema {
        let applied = schema::apply(&pool, &schema_name, None).await.map_err(|e| e.to_string())?;
        for step in applied.steps {
            tracing::info!("{step}");
        }
    } else {
        schema::require_ready(&pool, &schema_name).await?;
    }
    Ok((Store::Postgres(PgStore::on(pool)), format!("database {}, schema {schema_name}", target.redacted)))
}

fn is_postgres_bus(value: &str) -> bool {
    matches!(value.trim(), "postgres" | "postgresql" | "pg")
}

/// The server's pool: every statement bounded by `statement_timeout`, so a lock or a
/// stalled disk turns into a retryable error instead of a send that never hears back.
async fn connect_serving(
    target: &DbTarget,
    pool_size: u32,
    statement_timeout: Duration,
) -> Result<crate::store::PgDb, String> {
    let bounded = target.clone().with_statement_timeout(statement_timeout);
    bounded.connect(pool_size).await.map_err(|e| explain_connect_error(target, &e))
}

pub(super) async fn run_demo(args: DemoArgs) -> CmdResult {
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
        clock: Clock::system(),
        bus: None,
        log_poll: ServeConfig::DEFAULT_LOG_POLL,
        retention: None,
        audit_retention: None,
        safety: Safety::default(),
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
    tracing::info!(
        "chat-server {} demo listening on ws://{addr}{}",
        env!("CARGO_PKG_VERSION"),
        crate::net::http::WS_PATH
    );
    tracing::info!("demo ready: open {page} in two browser tabs and pick a different user in each");
    let routes = demo::routes(store.clone(), &secret, policy, sdk, demo::AllowedHosts::new(&args.allowed_hosts));
    server::run_with(listener, config, Store::Sqlite(store), routes, shutdown_signal())
        .await
        .map_err(|e| format!("the server failed: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn a_short_or_missing_secret_names_the_variable() {
        let cli = Cli::parse_from(["chat-server", "serve", "--token-secret", "short"]);
        let Command::Serve(args) = cli.command else { panic!("serve") };
        let err = serve_config(&args).expect_err("too short");
        assert!(err.starts_with("CHAT_TOKEN_SECRET is 5 bytes long"), "{err}");
    }

    #[test]
    fn the_examples_placeholder_and_patterned_secrets_are_refused_with_how_to_make_one() {
        // The Next.js example's .env.example, as a school that copies it would run it.
        let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/nextjs/.env.example"))
            .expect("the example's .env.example");
        let placeholder = example
            .lines()
            .find_map(|l| l.strip_prefix("CHAT_TOKEN_SECRET="))
            .expect("the example sets CHAT_TOKEN_SECRET");
        for weak in
            [placeholder, "test-secret-test-secret-test-secret!", &"ab".repeat(32), "0123456789abcdef0123456789abcdef"]
        {
            let cli = Cli::parse_from(["chat-server", "serve", "--token-secret", weak]);
            let Command::Serve(args) = cli.command else { panic!("serve") };
            let err = serve_config(&args).expect_err(weak);
            assert!(err.starts_with("CHAT_TOKEN_SECRET") && err.contains("openssl rand -hex 32"), "{weak}: {err}");
        }
        // What `openssl rand -hex 32` and `openssl rand -base64 32` print.
        for good in [
            "9f2c4e1a7b3d8c6e0f5a2b4d6e8c1a3f7b9d2e4c6a8f0b1d3e5c7a9b2d4f6e8a",
            "q3Vb7nX0pLk2Jw9sRz4Ty6Hm1Cf8Ud5Ge0Ai3Ko7Nq2=",
        ] {
            let cli = Cli::parse_from(["chat-server", "serve", "--token-secret", good]);
            let Command::Serve(args) = cli.command else { panic!("serve") };
            assert!(serve_config(&args).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_bus_without_a_cluster_key_is_refused_with_how_to_make_one() {
        let secret = "9f2c4e1a7b3d8c6e0f5a2b4d6e8c1a3f7b9d2e4c6a8f0b1d3e5c7a9b2d4f6e8a";
        let cli = Cli::parse_from(["chat-server", "serve", "--token-secret", secret, "--bus", "postgres"]);
        let Command::Serve(args) = cli.command else { panic!("serve") };
        let err = serve_config(&args).expect_err("no key");
        assert!(err.starts_with("CHAT_BUS is set but CHAT_BUS_KEY is not") && err.contains("openssl rand"), "{err}");
        let key = "3f1c9a0b7e5d2c4f8a6b1e0d9c7f5a3b2e4d6c8f0a1b3c5d7e9f1a2b4c6d8e0f";
        let cli = Cli::parse_from([
            "chat-server",
            "serve",
            "--token-secret",
            secret,
            "--bus",
            "nats://u:p@127.0.0.1:4222",
            "--bus-key",
            key,
        ]);
        let Command::Serve(args) = cli.command else { panic!("serve") };
        let bus = serve_config(&args).unwrap().bus.unwrap();
        assert!(matches!(&bus.kind, crate::delivery::bus::BusKind::Nats { url, auth }
            if url == "nats://127.0.0.1:4222" && auth.method() == "user and password"));
    }
}
