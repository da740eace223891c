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
//! `demo` starts a ready-made demo on its own file with a page to chat in. `export`, `purge`
//! and `erase` answer a school's records requests (see `records`).
//!
//! Settings come from flags, the environment, `.env.local` and `.env` in the working
//! directory, in that order of precedence, as in a Next.js app.
//!
//! Layout: this file parses the command line and dispatches; `serve` runs the server (and
//! `demo`, the server with its demo page); `database` holds the commands that work on the
//! database (`setup`, `check-db`, `users`); `check` asks a running server for its health.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod check;
mod database;
mod records;
mod serve;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::store::SqliteStore;
use crate::store::db::Database;

pub use check::CheckArgs;
pub use database::{RoleArg, SetupArgs, UsersArgs, UsersCommand};
pub use records::{EraseArgs, ExportArgs, HoldArgs, HoldCommand, OperatorArgs, PurgeArgs};
pub use serve::{DemoArgs, ServeArgs, serve_config};

/// The socket-server guide's npm scripts next to the commands that replace them.
const GUIDE_SCRIPTS: &str = "\
The guide's npm scripts, as chat-server commands (in package.json: \"socket\": \"chat-server serve\"):
  npm run socket         chat-server serve          (the default command)
  npm run setup:chat     chat-server setup
  npm run db:message     chat-server setup --only message
  npm run db:view        chat-server setup --only view
  npm run check:socket   chat-server check
  npm run check:prisma   chat-server check-db
Records (safety and compliance; each has --dry-run and writes to the audit log):
  chat-server export --user student:1 --out student-1.html
  chat-server purge --older-than 365d --yes     (or `serve --retention 365d`, daily)
  chat-server erase --user student:1 --yes
Settings come from flags, the environment, .env.local and .env (DATABASE_URL, SOCKET_PORT,
NEXT_PUBLIC_SOCKET_URL, CHAT_TOKEN_SECRET, ...); `chat-server serve --help` lists them all.";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "chat-server",
    version = crate::version_line(),
    about = "Real-time chat server for school apps (Next.js + Prisma + PostgreSQL)",
    after_help = GUIDE_SCRIPTS
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
    /// Write everything kept about one user (messages, audit entries) as JSON, CSV or HTML.
    Export(ExportArgs),
    /// Remove the messages older than a retention period, in batches (--dry-run to count).
    Purge(PurgeArgs),
    /// Remove every message of one user and their data, leaving an audit record (--dry-run to count).
    Erase(EraseArgs),
    /// Place, list or release legal holds: a held user's records outlive retention and cannot be erased.
    Hold(HoldArgs),
}

/// Where the database is.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// The app's PostgreSQL URL, exactly as Prisma uses it (`?schema=` is honoured), or a
    /// SQLite file (`file:./chat.db`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
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
            Command::Serve(args) => serve::serve(args).await,
            Command::Setup(args) => database::setup(args).await,
            Command::Check(args) => check::check(args).await,
            Command::CheckDb(args) => database::check_db(args).await,
            Command::Demo(args) => serve::run_demo(args).await,
            Command::Users(args) => database::users(args).await,
            Command::Export(args) => records::export(args).await,
            Command::Purge(args) => records::purge(args).await,
            Command::Erase(args) => records::erase(args).await,
            Command::Hold(args) => records::hold(args).await,
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
pub(crate) fn required_database(args: &DbArgs) -> Result<Database, String> {
    if args.database_url.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return Err("DATABASE_URL is not set: put your app's PostgreSQL URL in the environment or in .env \
             (e.g. DATABASE_URL=postgresql://USER:PASSWORD@localhost:5432/DATABASE), or file:./chat.db \
             for the embedded SQLite database"
            .to_owned());
    }
    Database::parse(args.database_url.as_deref()).map_err(|e| e.to_string())
}

pub(crate) async fn open_sqlite(path: &Path) -> Result<SqliteStore, String> {
    SqliteStore::open(path).await.map_err(|e| {
        format!(
            "cannot open the SQLite database {}: {e}. Is it a chat-server database, and is its folder writable? \
             (Set DATABASE_URL to use PostgreSQL instead.)",
            display_path(path)
        )
    })
}

/// The path as the user should read it: absolute, and without `..` once it exists.
pub(crate) fn display_path(path: &Path) -> String {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
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
}
