//! The commands that work on the database: `setup` (the guide's `setup:chat`, `db:message`,
//! `db:view`), `check-db` (`check:prisma`) and `users` (the embedded SQLite file's users).

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{CmdResult, DbArgs, display_path, open_sqlite, required_database};
use crate::store::db::{Database, DbTarget, explain_connect_error};
use crate::store::schema::{self, Part};

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

async fn connect(target: &DbTarget, pool_size: u32) -> Result<crate::store::PgDb, String> {
    target.connect(pool_size).await.map_err(|e| explain_connect_error(target, &e))
}

pub(super) async fn setup(args: SetupArgs) -> CmdResult {
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

pub(super) async fn check_db(args: DbArgs) -> CmdResult {
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
    let messages = store.message_count().await.map_err(|e| format!("cannot read the Message table: {e}"))?;
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

pub(super) async fn users(args: UsersArgs) -> CmdResult {
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
