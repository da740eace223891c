//! The chat schema in the app's PostgreSQL: applying it (`setup`) and inspecting it
//! (`check-db`, and the start-up check of `serve`).
//!
//! The SQL lives in `migrations/postgres/` and is idempotent. No migrations table is
//! written: the database belongs to the app and its Prisma schema, and Prisma would treat
//! a table it does not know as drift.

use std::fmt::Write as _;

use crate::store::{PgDb, PgTx};

/// `migrations/postgres/0001_message.sql`: the `Message` table and its indexes.
pub const MESSAGE_SQL: &str = include_str!("../../../migrations/postgres/0001_message.sql");
/// `migrations/postgres/0002_users_view.sql`: the `users_view` view.
pub const USERS_VIEW_SQL: &str = include_str!("../../../migrations/postgres/0002_users_view.sql");
/// The message log beside `Message` (inbox, log, trigger, sequencer): the order live
/// delivery and catch-up follow, whichever node or app wrote a message.
pub const MESSAGE_LOG_SQL: &str = include_str!("../../../migrations/postgres/0003_message_log.sql");
/// Safety and compliance: the audit log (`chat_audit`), blocks (`chat_block`), reports
/// (`chat_report`).
pub const SAFETY_SQL: &str = include_str!("../../../migrations/postgres/0004_safety.sql");

/// Which part of the schema to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Only the `Message` table and its indexes (the guide's `db:message`).
    Message,
    /// Only `users_view` (the guide's `db:view`).
    View,
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A required app table is missing, so the view cannot be created.
    #[error(
        "The table '{schema}.{table}' does not exist, so users_view cannot be created. It belongs to your app: create it with your Prisma schema (npx prisma db push, or your migrations) and run `chat-server setup` again."
    )]
    MissingAppTable {
        /// The schema searched.
        schema: String,
        /// The missing table.
        table: &'static str,
    },
    /// The database refused a statement.
    #[error("the database refused the schema: {0}")]
    Database(#[from] sqlx::Error),
}

/// What `apply` did, for the CLI to report.
#[derive(Debug, Default)]
pub struct Applied {
    /// Lines describing each step.
    pub steps: Vec<String>,
}

/// Applies the schema (all of it when `only` is `None`). Safe to run any number of times.
///
/// # Errors
/// [`SchemaError::MissingAppTable`] when `"Teacher"` or `"Student"` is missing for the view;
/// [`SchemaError::Database`] when a statement fails.
pub async fn apply(pool: &PgDb, schema: &str, only: Option<Part>) -> Result<Applied, SchemaError> {
    let mut applied = Applied::default();
    let mut tx = pool.begin().await?;
    // Serialise concurrent `setup` runs (two servers started at once).
    sqlx::query("SELECT pg_advisory_xact_lock(7405323)").execute(&mut tx).await?;
    if only.is_none_or(|p| p == Part::Message) {
        let existed = relation_exists(&mut tx, "Message").await?;
        sqlx::raw_sql(MESSAGE_SQL).execute(&mut tx).await?;
        applied.steps.push(if existed {
            format!("table {schema}.\"Message\" already exists; its indexes are in place")
        } else {
            format!("created table {schema}.\"Message\" and its indexes")
        });
        let log_existed = relation_exists(&mut tx, "chat_log").await?;
        sqlx::raw_sql(MESSAGE_LOG_SQL).execute(&mut tx).await?;
        applied.steps.push(if log_existed {
            format!("message log {schema}.chat_log, its inbox, trigger and sequencer are in place")
        } else {
            format!("created the message log {schema}.chat_log (with chat_inbox, a trigger on \"Message\", chat_log_sequence())")
        });
        let audit_existed = relation_exists(&mut tx, "chat_audit").await?;
        sqlx::raw_sql(SAFETY_SQL).execute(&mut tx).await?;
        applied.steps.push(if audit_existed {
            format!("audit log {schema}.chat_audit, chat_block, chat_report, chat_revision and chat_hold are in place")
        } else {
            format!(
                "created the audit log {schema}.chat_audit, chat_block (blocks), chat_report (reports), \
                 chat_revision (edits and deletions) and chat_hold (legal holds)"
            )
        });
    }
    if only.is_none_or(|p| p == Part::View) {
        for table in ["Teacher", "Student"] {
            if !relation_exists(&mut tx, table).await? {
                return Err(SchemaError::MissingAppTable { schema: schema.to_owned(), table });
            }
        }
        let existed = relation_exists(&mut tx, "users_view").await?;
        sqlx::raw_sql(USERS_VIEW_SQL).execute(&mut tx).await?;
        applied.steps.push(if existed {
            format!("view {schema}.users_view already existed; replaced with the current definition")
        } else {
            format!("created view {schema}.users_view over \"Teacher\" and \"Student\"")
        });
    }
    tx.commit().await?;
    Ok(applied)
}

async fn relation_exists(conn: &mut PgTx, name: &str) -> Result<bool, sqlx::Error> {
    // to_regclass resolves through search_path, like the unqualified names in our queries.
    sqlx::query_scalar::<_, bool>("SELECT to_regclass(quote_ident($1)) IS NOT NULL").bind(name).fetch_one(conn).await
}

/// One expected column of a relation.
#[derive(Clone, Copy, Debug)]
pub struct ExpectedColumn {
    /// The column name.
    pub name: &'static str,
    /// `information_schema.columns.data_type`.
    pub data_type: &'static str,
    /// Whether it must be nullable.
    pub nullable: bool,
    /// The expected default, as PostgreSQL prints it, or `None` for no default.
    pub default: Option<&'static str>,
}

const fn col(name: &'static str, data_type: &'static str, default: Option<&'static str>) -> ExpectedColumn {
    ExpectedColumn { name, data_type, nullable: false, default }
}

/// The `Message` columns exactly as Prisma creates them.
pub const MESSAGE_COLUMNS: &[ExpectedColumn] = &[
    col("id", "text", None),
    col("senderId", "integer", None),
    col("senderRole", "text", None),
    col("recipientId", "integer", None),
    col("recipientRole", "text", None),
    col("content", "text", None),
    col("createdAt", "timestamp without time zone", Some("CURRENT_TIMESTAMP")),
    col("updatedAt", "timestamp without time zone", None),
    col("isRead", "boolean", Some("false")),
];

/// A column as found in `information_schema`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct FoundColumn {
    /// Name.
    pub column_name: String,
    /// Type.
    pub data_type: String,
    /// `YES` / `NO`.
    pub is_nullable: String,
    /// Default expression.
    pub column_default: Option<String>,
    /// Fractional seconds precision for timestamps.
    pub datetime_precision: Option<i32>,
}

/// Reads the columns of `table` in `schema` in their ordinal order.
///
/// # Errors
/// A database error.
pub async fn columns(pool: &PgDb, schema: &str, table: &str) -> Result<Vec<FoundColumn>, sqlx::Error> {
    sqlx::query_as::<_, FoundColumn>(
        "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text, \
                datetime_precision::int4 \
         FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 \
         ORDER BY ordinal_position",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(pool)
    .await
}

/// One finding of [`inspect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What is wrong.
    pub problem: String,
    /// The command that fixes it.
    pub fix: String,
}

/// The result of inspecting a database for the chat.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// `SHOW server_version`.
    pub server_version: String,
    /// Lines that are fine.
    pub ok: Vec<String>,
    /// Problems with their fixes.
    pub problems: Vec<Finding>,
}

/// Inspects `Message`, `users_view`, `"Teacher"` and `"Student"` in `schema`.
///
/// # Errors
/// A database error (not a missing table: that is a finding).
pub async fn inspect(pool: &PgDb, schema: &str) -> Result<Report, sqlx::Error> {
    let mut report = Report {
        server_version: sqlx::query_scalar("SHOW server_version").fetch_one(pool).await?,
        ..Report::default()
    };

    for table in ["Teacher", "Student"] {
        let found = columns(pool, schema, table).await?;
        if found.is_empty() {
            report.problems.push(Finding {
                problem: format!("table {schema}.\"{table}\" does not exist (it is your app's own table)"),
                fix: "create it through your Prisma schema (npx prisma db push or your migrations)".into(),
            });
        } else {
            let missing: Vec<&str> =
                ["id", "name"].into_iter().filter(|c| !found.iter().any(|f| f.column_name == *c)).collect();
            if missing.is_empty() {
                report.ok.push(format!("table {schema}.\"{table}\" has id and name"));
            } else {
                report.problems.push(Finding {
                    problem: format!("table {schema}.\"{table}\" lacks the column(s) {}", missing.join(", ")),
                    fix: "add them in your Prisma schema (users_view reads id and name)".into(),
                });
            }
        }
    }

    let found = columns(pool, schema, "Message").await?;
    if found.is_empty() {
        report.problems.push(Finding {
            problem: format!("The table '{schema}.Message' does not exist"),
            fix: "chat-server setup --only message".into(),
        });
    } else {
        let mut mismatches = Vec::new();
        for expected in MESSAGE_COLUMNS {
            match found.iter().find(|f| f.column_name == expected.name) {
                None => mismatches.push(format!("column \"{}\" is missing", expected.name)),
                Some(f) => {
                    if let Some(problem) = column_mismatch(expected, f) {
                        mismatches.push(problem);
                    }
                }
            }
        }
        if mismatches.is_empty() {
            report.ok.push(format!("table {schema}.\"Message\" matches the Prisma model"));
        } else {
            let mut problem = format!("table {schema}.\"Message\" differs from the Prisma model:");
            for m in &mismatches {
                let _ = write!(problem, " {m};");
            }
            report.problems.push(Finding {
                problem,
                fix: "align it with the Message model (npx prisma db push), or rename it and run chat-server setup --only message".into(),
            });
        }
    }

    // The message log beside "Message": tables, the trigger that feeds it, the sequencer.
    let log_ok: bool = sqlx::query_scalar(
        "SELECT to_regclass('chat_log') IS NOT NULL AND to_regclass('chat_inbox') IS NOT NULL
            AND to_regprocedure('chat_log_sequence(boolean, text, text, integer)') IS NOT NULL
            AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'chat_log_inbox' AND NOT tgisinternal
                        AND tgrelid = to_regclass('\"Message\"'))",
    )
    .fetch_one(pool)
    .await?;
    if log_ok {
        report.ok.push(format!("message log {schema}.chat_log with its inbox, trigger and sequencer"));
    } else {
        report.problems.push(Finding {
            problem: format!(
                "the message log ({schema}.chat_log, chat_inbox, the trigger chat_log_inbox on \"Message\", \
                 chat_log_sequence()) is missing or incomplete"
            ),
            fix: "chat-server setup --only message".into(),
        });
    }

    // The audit log, and the index retention deletes by.
    let audit_ok: bool = sqlx::query_scalar(
        "SELECT to_regclass('chat_audit') IS NOT NULL AND to_regclass('\"Message_createdAt_idx\"') IS NOT NULL
            AND to_regclass('chat_block') IS NOT NULL AND to_regclass('chat_report') IS NOT NULL
            AND to_regclass('chat_revision') IS NOT NULL AND to_regclass('chat_hold') IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    if audit_ok {
        report.ok.push(format!(
            "safety tables {schema}.chat_audit, chat_block, chat_report, chat_revision, chat_hold, and the index retention deletes by"
        ));
    } else {
        report.problems.push(Finding {
            problem: format!(
                "the safety tables ({schema}.chat_audit, chat_block, chat_report, chat_revision, chat_hold) or the index \"Message_createdAt_idx\" are missing (new in this version)"
            ),
            fix: "chat-server setup --only message".into(),
        });
    }

    let found = columns(pool, schema, "users_view").await?;
    let names: Vec<&str> = found.iter().map(|f| f.column_name.as_str()).collect();
    if found.is_empty() {
        report.problems.push(Finding {
            problem: format!("the view {schema}.users_view does not exist"),
            fix: "chat-server setup --only view".into(),
        });
    } else if ["id", "name", "role"].iter().all(|c| names.contains(c)) {
        report.ok.push(format!("view {schema}.users_view has id, name and role"));
    } else {
        report.problems.push(Finding {
            problem: format!(
                "the view {schema}.users_view has the columns {} instead of id, name, role",
                names.join(", ")
            ),
            fix: "chat-server setup --only view".into(),
        });
    }
    Ok(report)
}

/// Compares one column with its expectation; `None` when they agree.
#[must_use]
pub fn column_mismatch(expected: &ExpectedColumn, found: &FoundColumn) -> Option<String> {
    let name = expected.name;
    if found.data_type != expected.data_type {
        return Some(format!("\"{name}\" is {} instead of {}", found.data_type, expected.data_type));
    }
    if expected.data_type.starts_with("timestamp") && found.datetime_precision != Some(3) {
        return Some(format!("\"{name}\" has precision {:?} instead of 3", found.datetime_precision));
    }
    if (found.is_nullable == "YES") != expected.nullable {
        return Some(format!("\"{name}\" nullability is {} instead of NOT NULL", found.is_nullable));
    }
    if found.column_default.as_deref() != expected.default {
        return Some(format!(
            "\"{name}\" default is {} instead of {}",
            found.column_default.as_deref().unwrap_or("none"),
            expected.default.unwrap_or("none")
        ));
    }
    None
}

/// Checks, before serving, that the tables the server needs exist.
///
/// # Errors
/// A message in the guide's words with the command that fixes it.
pub async fn require_ready(pool: &PgDb, schema: &str) -> Result<(), String> {
    let report = inspect(pool, schema).await.map_err(|e| format!("cannot inspect the database: {e}"))?;
    if report.problems.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for p in &report.problems {
        let _ = writeln!(text, "{}\n  fix: {}", p.problem, p.fix);
    }
    let _ = write!(
        text,
        "(or start with `chat-server serve --apply-schema` to create the chat's own table and view first)"
    );
    Err(text)
}
