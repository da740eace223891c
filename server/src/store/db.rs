//! Choosing the database from `DATABASE_URL`, and connecting to the app's PostgreSQL with
//! the URL exactly as Prisma writes it.
//!
//! No `DATABASE_URL` (for `serve`) or a SQLite URL (`file:./chat.db` as Prisma writes it,
//! or `sqlite:chat.db`) selects the embedded SQLite backend: see [`Database`].
//!
//! Prisma's URL may carry parameters plain PostgreSQL drivers reject or ignore:
//! `schema` (the schema Prisma's tables live in), `connection_limit`, `pool_timeout`,
//! `connect_timeout`, `pgbouncer`, `socket_timeout`, `statement_cache_size`. This module
//! strips them and maps each to its sqlx equivalent, so the same string works for both.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::store::PgDb;
use url::Url;

/// A parsed `DATABASE_URL`.
#[derive(Clone, Debug)]
pub struct DbTarget {
    /// Options for sqlx, with Prisma-only parameters removed.
    pub options: PgConnectOptions,
    /// The schema from `?schema=`, if any (PostgreSQL's default `public` otherwise).
    pub schema: Option<String>,
    /// `connection_limit`, if given.
    pub connection_limit: Option<u32>,
    /// `pool_timeout` (seconds), if given.
    pub pool_timeout: Option<Duration>,
    /// The URL with any password replaced by `***`, for logs and messages.
    pub redacted: String,
    /// `pgbouncer=true` (as Prisma writes it for a PgBouncer in transaction pooling mode):
    /// no prepared statement outlives its statement and no setting is sent at connect (a
    /// pooler hands each transaction whichever server connection is free).
    pub pgbouncer: bool,
}

/// Why a `DATABASE_URL` is unusable.
#[derive(Debug, thiserror::Error)]
pub enum DbUrlError {
    /// Not a URL at all.
    #[error("DATABASE_URL is not a valid URL ({0}); expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE")]
    NotAUrl(url::ParseError),
    /// Another database.
    #[error(
        "DATABASE_URL uses the scheme '{0}'; use your app's PostgreSQL (postgresql://...), a SQLite file (file:./chat.db), or leave it unset for the embedded chat.db"
    )]
    Scheme(String),
    /// A parameter with a value we cannot use.
    #[error("DATABASE_URL parameter '{name}' has the invalid value '{value}'")]
    Parameter {
        /// The parameter.
        name: String,
        /// Its value.
        value: String,
    },
    /// sqlx refused what remained.
    #[error("DATABASE_URL is not usable: {0}")]
    Options(sqlx::Error),
}

impl DbTarget {
    /// The schema the chat tables live in (`public` unless `?schema=` says otherwise).
    #[must_use]
    pub fn schema_name(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }

    /// Parses a Prisma-style `DATABASE_URL`.
    ///
    /// # Errors
    /// [`DbUrlError`] naming what is wrong.
    pub fn parse(raw: &str) -> Result<DbTarget, DbUrlError> {
        let mut url = Url::parse(raw.trim()).map_err(DbUrlError::NotAUrl)?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(DbUrlError::Scheme(url.scheme().to_owned()));
        }
        let mut schema = None;
        let mut connection_limit = None;
        let mut pool_timeout = None;
        let mut connect_timeout = None;
        let mut pgbouncer = false;
        let mut kept: Vec<(String, String)> = Vec::new();
        for (name, value) in url.query_pairs() {
            let bad = || DbUrlError::Parameter { name: name.to_string(), value: value.to_string() };
            match name.as_ref() {
                "schema" => schema = Some(value.to_string()).filter(|s| !s.is_empty()),
                "connection_limit" => connection_limit = Some(value.parse::<u32>().map_err(|_| bad())?),
                "pool_timeout" => pool_timeout = Some(seconds(&value).ok_or_else(bad)?),
                "connect_timeout" => connect_timeout = Some(seconds(&value).ok_or_else(bad)?),
                "pgbouncer" => pgbouncer = value.as_ref() == "true",
                // Prisma-only knobs with no sqlx equivalent worth mapping.
                "socket_timeout" | "statement_cache_size" | "sslaccept" | "sslidentity" | "sslpassword" => {}
                _ => kept.push((name.to_string(), value.to_string())),
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept.iter());
        }
        let mut options = PgConnectOptions::from_str(url.as_str()).map_err(DbUrlError::Options)?;
        // (Behind PgBouncer the startup `options` would be refused, and a session setting
        // would not follow the transactions onto other server connections anyway: the
        // schema is then checked at start instead, [`DbTarget::check_pooled`].)
        if let Some(schema) = schema.as_ref().filter(|_| !pgbouncer) {
            options = options.options([("search_path", quote_ident(schema))]);
        }
        if pgbouncer {
            // PgBouncer in transaction mode cannot keep prepared statements across
            // transactions, and refuses startup parameters it does not know (sqlx sends
            // `extra_float_digits`; nothing here reads floats as text).
            options = options.statement_cache_capacity(0).extra_float_digits(None);
        }
        options = options.log_statements(tracing::log::LevelFilter::Trace);
        let mut redacted = url.clone();
        if redacted.password().is_some() {
            let _ = redacted.set_password(Some("***"));
        }
        Ok(DbTarget {
            options,
            schema,
            connection_limit,
            pool_timeout: pool_timeout.or(connect_timeout),
            redacted: redacted.to_string(),
            pgbouncer,
        })
    }

    /// The same target with every statement limited to `limit` (PostgreSQL's
    /// `statement_timeout`, set as a connection option), and JIT compilation off: the
    /// server's statements are all short, and compiling one whose estimate crossed
    /// `jit_above_cost` costs more than running it (7 ms for a 0.1 ms read, measured).
    #[must_use]
    ///
    /// Behind PgBouncer (`pgbouncer=true`) nothing is set at connect: the store's own bound
    /// on every call (a little past `limit`) is what holds.
    pub fn with_statement_timeout(mut self, limit: Duration) -> DbTarget {
        if self.pgbouncer {
            return self;
        }
        let ms = limit.as_millis().max(1).to_string();
        self.options = self.options.options([("statement_timeout", ms.as_str()), ("jit", "off")]);
        self
    }

    /// Opens a pool. `default_size` applies unless the URL set `connection_limit`.
    ///
    /// # Errors
    /// The connection error, if the first connection fails.
    pub async fn connect(&self, default_size: u32) -> Result<PgDb, sqlx::Error> {
        let wait = self.pool_timeout.unwrap_or(Duration::from_secs(10));
        // One plain connection first: a refused connection, an unknown host or a wrong
        // password fails at once with its own error, instead of after `wait` of retries.
        let first = tokio::time::timeout(wait, sqlx::ConnectOptions::connect(&self.options))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        let _ignored = sqlx::Connection::close(first).await;
        PgPoolOptions::new()
            .max_connections(self.connection_limit.unwrap_or(default_size).max(1))
            .acquire_timeout(wait)
            // sqlx pings every connection before handing it out by default: one more round
            // trip to the database before every statement, on the path of every message.
            // Only a connection idle long enough to have been cut (a restart, a firewall) is
            // pinged; a busy one that broke fails its statement, which is retried.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE_AFTER {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(self.options.clone())
            .await
            .map(|pool| PgDb::new(pool, self.pgbouncer))
    }
}

/// A pooled connection idle this long is pinged before use.
const PING_IDLE_AFTER: Duration = Duration::from_secs(10);

impl DbTarget {
    /// Behind PgBouncer (`pgbouncer=true`): the schema the URL names must be the one its
    /// connections already use (PgBouncer passes no `search_path`), or nothing would find
    /// the tables. Checked once at start, with what to do.
    ///
    /// # Errors
    /// The schema differs: how to set it for the role.
    pub async fn check_pooled(&self, pool: &PgDb) -> Result<(), String> {
        if !self.pgbouncer {
            return Ok(());
        }
        let current: Option<String> = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(pool)
            .await
            .map_err(|e| format!("reading the schema through PgBouncer failed: {e}"))?;
        let wanted = self.schema_name();
        if current.as_deref() == Some(wanted) {
            return Ok(());
        }
        Err(format!(
            "DATABASE_URL has pgbouncer=true and schema={wanted}, but the connections PgBouncer hands out use the \
             schema {}: PgBouncer does not pass a search_path. Set it for the database role (ALTER ROLE <role> SET \
             search_path = {}) or in PgBouncer's connect_query, or connect directly",
            current.as_deref().unwrap_or("(none)"),
            quote_ident(wanted)
        ))
    }
}

fn seconds(value: &str) -> Option<Duration> {
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// Database connections `serve` opens unless `DATABASE_URL` sets `connection_limit`.
pub const DEFAULT_DB_POOL: u32 = 8;

/// The file `serve` uses, in the working directory, when no `DATABASE_URL` is given.
pub const DEFAULT_SQLITE_FILE: &str = "chat.db";

/// Which backend a `DATABASE_URL` selects.
#[derive(Clone, Debug)]
pub enum Database {
    /// The app's PostgreSQL.
    Postgres(DbTarget),
    /// An embedded SQLite file.
    Sqlite {
        /// The file (relative paths are relative to the working directory).
        path: PathBuf,
        /// Whether the path came from `DATABASE_URL` (or is the default).
        from_url: bool,
    },
}

impl Database {
    /// Reads `DATABASE_URL`: a PostgreSQL URL, a SQLite one (`file:PATH`, `sqlite:PATH`,
    /// `sqlite://PATH`), or nothing, which means the SQLite file [`DEFAULT_SQLITE_FILE`].
    ///
    /// # Errors
    /// [`DbUrlError`] for a URL that is neither.
    pub fn parse(raw: Option<&str>) -> Result<Database, DbUrlError> {
        let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(Database::Sqlite { path: PathBuf::from(DEFAULT_SQLITE_FILE), from_url: false });
        };
        let sqlite = ["sqlite://", "sqlite:", "file:"].iter().find_map(|prefix| raw.strip_prefix(prefix));
        if let Some(rest) = sqlite {
            // Prisma's `file:./dev.db?connection_limit=1`: parameters do not apply here.
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(DbUrlError::Parameter { name: "path".into(), value: raw.into() });
            }
            return Ok(Database::Sqlite { path: PathBuf::from(path), from_url: true });
        }
        DbTarget::parse(raw).map(Database::Postgres)
    }
}

/// Quotes an identifier for PostgreSQL (`my schema` -> `"my schema"`).
#[must_use]
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Describes a connection failure in one sentence with what to do about it.
#[must_use]
pub fn explain_connect_error(target: &DbTarget, err: &sqlx::Error) -> String {
    let detail = match err {
        sqlx::Error::Io(e) => format!("the server could not be reached ({e})"),
        sqlx::Error::Database(e) => e.message().to_owned(),
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".to_owned(),
        other => other.to_string(),
    };
    if detail.contains("unsupported startup parameter") {
        // PgBouncer's answer to the settings sent at connect.
        return format!(
            "cannot connect to the database at {}: {detail}. This is PgBouncer: add pgbouncer=true to DATABASE_URL \
             (as Prisma's guide for PgBouncer says), and set CHAT_BUS_DATABASE_URL to a direct URL if CHAT_BUS=postgres.",
            target.redacted
        );
    }
    format!(
        "cannot connect to the database at {}: {detail}. Check DATABASE_URL (in the environment, .env or .env.local) and that PostgreSQL is running.",
        target.redacted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prisma_parameters_are_stripped_and_mapped() {
        let t = DbTarget::parse(
            "postgresql://app:s3cret@db.example:5433/school?schema=chat&connection_limit=5&pool_timeout=3&pgbouncer=true&sslmode=disable",
        )
        .expect("parses");
        assert_eq!(t.schema.as_deref(), Some("chat"));
        assert_eq!(t.connection_limit, Some(5));
        assert_eq!(t.pool_timeout, Some(Duration::from_secs(3)));
        assert_eq!(t.options.get_host(), "db.example");
        assert_eq!(t.options.get_port(), 5433);
        assert_eq!(t.options.get_database(), Some("school"));
        assert!(!t.redacted.contains("s3cret"), "{}", t.redacted);
        assert!(t.redacted.contains("sslmode=disable"), "{}", t.redacted);
        assert!(!t.redacted.contains("schema="), "{}", t.redacted);
    }

    #[test]
    fn other_databases_and_garbage_are_explained() {
        let err = DbTarget::parse("mysql://root@localhost/db").expect_err("not postgres");
        assert!(err.to_string().contains("PostgreSQL"), "{err}");
        let err = DbTarget::parse("not a url").expect_err("garbage");
        assert!(err.to_string().starts_with("DATABASE_URL is not a valid URL"), "{err}");
        let err = DbTarget::parse("postgres://h/db?connection_limit=lots").expect_err("bad number");
        assert!(err.to_string().contains("connection_limit"), "{err}");
    }

    #[test]
    fn sqlite_urls_and_no_url_select_the_embedded_database() {
        let path = |raw: Option<&str>| match Database::parse(raw).expect("parses") {
            Database::Sqlite { path, from_url } => (path.display().to_string(), from_url),
            Database::Postgres(_) => panic!("expected SQLite for {raw:?}"),
        };
        assert_eq!(path(None), ("chat.db".into(), false));
        assert_eq!(path(Some("  ")), ("chat.db".into(), false));
        assert_eq!(path(Some("file:./dev.db?connection_limit=1")), ("./dev.db".into(), true));
        assert_eq!(path(Some("sqlite:data/chat.db")), ("data/chat.db".into(), true));
        assert_eq!(path(Some("sqlite:///var/lib/chat.db")), ("/var/lib/chat.db".into(), true));
        assert!(matches!(Database::parse(Some("postgresql://u@h/db")), Ok(Database::Postgres(_))));
        assert!(Database::parse(Some("file:")).is_err());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("chat"), "\"chat\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
