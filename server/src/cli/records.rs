//! The operators' commands for safety and compliance: `export` (a user's records, for a
//! parent's or a student's request), `purge` (retention) and `erase` (a user's data). Each
//! needs `DATABASE_URL` said explicitly, refuses ambiguous input, has `--dry-run`, asks for
//! `--yes` before it deletes anything, shows progress on long runs, and leaves an entry in
//! the audit log (`chat_audit`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use super::{CmdResult, DbArgs, display_path, open_sqlite, required_database};
use crate::records::{self, ExportFormat, format_time, parse_age, parse_user, user_text};
use crate::store::db::{Database, explain_connect_error};
use crate::store::schema;
use crate::store::{PgStore, Store};

/// Who runs a command, for the audit log.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// Who is asking, as the audit log should record it (default: the login name, $USER).
    #[arg(long, env = "CHAT_OPERATOR")]
    pub by: Option<String>,
}

impl OperatorArgs {
    fn actor(&self) -> String {
        let name = self
            .by
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("USERNAME").ok())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        format!("operator {}", name.trim())
    }
}

/// `export` options.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// Whose records: the role and the id, e.g. student:1 (ids of teachers and students overlap).
    #[arg(long)]
    pub user: String,
    /// json (complete, machine-readable), csv (a spreadsheet) or html (to read or print).
    /// Default: the extension of --out, else json.
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// The file to write (default: standard output).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
    /// Count what would be exported; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Who asks.
    #[command(flatten)]
    pub operator: OperatorArgs,
}

/// `purge` options.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// Remove the messages older than this: days or weeks, e.g. 365d or 52w.
    #[arg(long, required_unless_present = "audit_older_than")]
    pub older_than: Option<String>,
    /// Remove the audit entries older than this (at least 365d); the removal is recorded.
    #[arg(long)]
    pub audit_older_than: Option<String>,
    /// Count what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove them (without it, the command only says what it would remove).
    #[arg(long)]
    pub yes: bool,
    /// Who asks.
    #[command(flatten)]
    pub operator: OperatorArgs,
}

/// `erase` options.
#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// Whose data: the role and the id, e.g. student:1.
    #[arg(long)]
    pub user: String,
    /// Count what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove it (without it, the command only says what it would remove).
    #[arg(long)]
    pub yes: bool,
    /// Who asks.
    #[command(flatten)]
    pub operator: OperatorArgs,
}

/// `hold` options.
#[derive(Debug, Args)]
pub struct HoldArgs {
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// Who asks.
    #[command(flatten)]
    pub operator: OperatorArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: HoldCommand,
}

/// `hold` subcommands.
#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Place a legal hold on a user's records: their messages, the earlier texts of those messages
    /// and the reports they are in are kept whatever retention says, and erase refuses.
    Add {
        /// Whose records: the role and the id, e.g. student:1.
        #[arg(long)]
        user: String,
        /// Why, as the school's records should say it (a case or request number).
        #[arg(long)]
        reason: String,
    },
    /// List the holds in place.
    List,
    /// Release a hold: retention and erase apply again. The audit log keeps the hold and why it ended.
    Release {
        /// Whose records: the role and the id, e.g. student:1.
        #[arg(long)]
        user: String,
        /// Why the hold ends (the case closed, counsel's instruction).
        #[arg(long)]
        reason: String,
    },
}

/// The database these commands work on: explicit, with the chat schema in place.
async fn open(db: &DbArgs) -> Result<Store, String> {
    match required_database(db)? {
        Database::Postgres(target) => {
            let pool = target.connect(2).await.map_err(|e| explain_connect_error(&target, &e))?;
            schema::require_ready(&pool, target.schema_name()).await?;
            Ok(Store::Postgres(PgStore::on(pool)))
        }
        Database::Sqlite { path, .. } => {
            if !path.exists() {
                return Err(format!("the SQLite database {} does not exist", display_path(&path)));
            }
            Ok(Store::Sqlite(open_sqlite(&path).await?))
        }
    }
}

/// Progress on standard error, at most once a second (and never for a run that ends sooner).
struct Progress {
    what: &'static str,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    fn new(what: &'static str) -> Progress {
        Progress { what, started: Instant::now(), last: None }
    }

    fn tell(&mut self, done: u64, total: u64) {
        let now = Instant::now();
        let due =
            self.last.map_or(now - self.started >= Duration::from_secs(1), |last| now - last >= Duration::from_secs(1));
        if due {
            self.last = Some(now);
            match (done * 100).checked_div(total) {
                Some(percent) => eprintln!("{}: {done} of {total} messages ({percent}%)", self.what),
                None => eprintln!("{}: {done} messages", self.what),
            }
        }
    }
}

fn store_error(e: impl std::fmt::Display) -> String {
    format!("{e} (what was done before this stays done; run the command again to finish)")
}

pub(super) async fn export(args: ExportArgs) -> CmdResult {
    let user = parse_user(&args.user)?;
    let format = match (args.format, args.out.as_deref()) {
        (Some(f), _) => f,
        (None, Some(path)) => ExportFormat::from_path(path).ok_or_else(|| {
            format!(
                "cannot tell the format from {}: give --format json, csv or html (or a .json, .csv or .html name)",
                path.display()
            )
        })?,
        (None, None) => ExportFormat::Json,
    };
    if let Some(path) = &args.out
        && path.exists()
        && !args.force
        && !args.dry_run
    {
        return Err(format!("{} exists: choose another --out, or add --force to replace it", display_path(path)));
    }
    let store = open(&args.db).await?;
    let (messages, _) = store.user_record_counts(user).await.map_err(|e| e.to_string())?;
    let name = store.find_user(user).await.map_err(|e| e.to_string())?;
    if messages == 0 && name.is_none() {
        return Err(format!("{} has no messages and is not in users_view: check the role and the id", user_text(user)));
    }
    let who = name.as_deref().map_or_else(|| user_text(user), |n| format!("{} ({n})", user_text(user)));
    if args.dry_run {
        println!("would export {messages} messages of {who} as {}", format.name());
        return Ok(ExitCode::SUCCESS);
    }
    let actor = args.operator.actor();
    let now = crate::now_ms();
    let mut progress = Progress::new("export");
    let export = records::export(&store, user, now, &actor, &mut |n| progress.tell(n, messages))
        .await
        .map_err(|e| e.to_string())?;
    let text = export.render(format);
    let destination = match &args.out {
        Some(path) => {
            write_file(path, &text, args.force)?;
            display_path(path)
        }
        None => {
            std::io::stdout()
                .write_all(text.as_bytes())
                .map_err(|e| format!("cannot write the export to standard output: {e}"))?;
            "standard output".to_owned()
        }
    };
    let detail = format!(
        "exported {} messages and {} audit entries of {} as {} to {destination}",
        export.messages.len(),
        export.audit.len(),
        user_text(user),
        format.name()
    );
    store.write_audit(now, &actor, "export", Some(user), &detail).await.map_err(|e| e.to_string())?;
    eprintln!(
        "exported {} messages of {who} ({}) to {destination}; recorded in the audit log",
        export.messages.len(),
        format.name()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes personal data to a file of its own, readable by its owner only. Without `force`
/// the file must not exist (a symlink there counts as existing: it is not followed). With
/// `force` the text goes to a new file beside it, which is then renamed into place: an
/// existing file (or a symlink, itself) is replaced, never written through, and keeps
/// neither its mode nor its owner.
fn write_file(path: &Path, text: &str, force: bool) -> Result<(), String> {
    let create = |at: &Path| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(at).map_err(|e| format!("cannot create {}: {e}", at.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", at.display()))
    };
    if !force {
        return create(path);
    }
    if path.is_dir() {
        return Err(format!("{} is a directory: give a file name to --out", path.display()));
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    let temporary = dir.join(format!(".{name}.{}.tmp", hex::encode(rand::random::<[u8; 6]>())));
    create(&temporary)?;
    std::fs::rename(&temporary, path).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot replace {}: {e}", path.display())
    })
}

pub(super) async fn purge(args: PurgeArgs) -> CmdResult {
    let audit_age = match &args.audit_older_than {
        None => None,
        Some(age) => {
            let age = parse_age(age)?;
            if age < records::MIN_AUDIT_RETENTION_MS {
                return Err("--audit-older-than must be at least 365d: the audit log is the school's record of who \
                            read and removed what"
                    .to_owned());
            }
            Some(age)
        }
    };
    let store = open(&args.db).await?;
    let now = crate::now_ms();
    if let Some(audit_age) = audit_age {
        let before = now - audit_age;
        if args.dry_run || !args.yes {
            println!("would remove the audit entries written before {}", format_time(before));
        } else {
            let removed =
                records::purge_audit(&store, before, &args.operator.actor(), now).await.map_err(store_error)?;
            println!(
                "removed {removed} audit entries written before {}; the removal is recorded in the audit log",
                format_time(before)
            );
        }
    }
    let Some(older_than) = &args.older_than else {
        if !args.yes && !args.dry_run {
            return Err("purge removes them for good: run it again with --yes (or --dry-run to only count)".to_owned());
        }
        return Ok(ExitCode::SUCCESS);
    };
    let age = parse_age(older_than)?;
    let before = now - age;
    let counted = records::purge(&store, before, true, "", now, &mut |_, _| {}).await.map_err(|e| e.to_string())?;
    let span = match (counted.oldest, counted.newest) {
        (Some(a), Some(b)) => format!(" (from {} to {})", format_time(a), format_time(b)),
        _ => String::new(),
    };
    if counted.messages == 0 {
        println!("no messages were created before {}: nothing to remove", format_time(before));
    } else if args.dry_run || !args.yes {
        println!(
            "would remove {} messages created before {}{span}, and their message-log rows",
            counted.messages,
            format_time(before)
        );
    }
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes && counted.messages > 0 {
        return Err("purge removes them for good: run it again with --yes (or --dry-run to only count)".to_owned());
    }
    let mut progress = Progress::new("purge");
    let report = records::purge(&store, before, false, &args.operator.actor(), now, &mut |d, t| progress.tell(d, t))
        .await
        .map_err(store_error)?;
    if report.messages > 0 || report.log_rows > 0 || report.reports > 0 {
        println!(
            "removed {} messages created before {}, {} message-log rows and {} reports; recorded in the audit log",
            report.messages,
            format_time(before),
            report.log_rows,
            report.reports
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn hold(args: HoldArgs) -> CmdResult {
    let store = open(&args.db).await?;
    let now = crate::now_ms();
    match args.command {
        HoldCommand::Add { user, reason } => {
            let user = parse_user(&user)?;
            let reason = reason.trim();
            if reason.is_empty() {
                return Err("give the hold a --reason (a case or request number): the records must say why".to_owned());
            }
            let name = store.find_user(user).await.map_err(|e| e.to_string())?;
            let (messages, _) = store.user_record_counts(user).await.map_err(|e| e.to_string())?;
            if messages == 0 && name.is_none() {
                return Err(format!(
                    "{} has no messages and is not in users_view: check the role and the id",
                    user_text(user)
                ));
            }
            match records::place_hold(&store, user, reason, &args.operator.actor(), now)
                .await
                .map_err(|e| e.to_string())?
            {
                Ok(_) => println!(
                    "placed a legal hold on the records of {} ({messages} messages): retention keeps them and erase \
                     refuses until it is released; recorded in the audit log",
                    user_text(user)
                ),
                Err(existing) => {
                    return Err(format!(
                        "{} is already under a legal hold placed by {} on {} (reason: {}); nothing changed",
                        user_text(user),
                        existing.placed_by,
                        format_time(existing.placed_at),
                        existing.reason
                    ));
                }
            }
        }
        HoldCommand::List => {
            let holds = store.holds().await.map_err(|e| e.to_string())?;
            if holds.is_empty() {
                println!("no legal holds");
            }
            for hold in holds {
                println!(
                    "{}\tplaced {} by {}\treason: {}",
                    user_text(hold.user),
                    format_time(hold.placed_at),
                    hold.placed_by,
                    hold.reason
                );
            }
        }
        HoldCommand::Release { user, reason } => {
            let user = parse_user(&user)?;
            let reason = reason.trim();
            if reason.is_empty() {
                return Err("say why the hold ends with --reason: the records must say why".to_owned());
            }
            match records::release_hold(&store, user, reason, &args.operator.actor(), now)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(hold) => println!(
                    "released the legal hold on the records of {} (placed by {} on {}); retention and erase apply \
                     again; recorded in the audit log",
                    user_text(user),
                    hold.placed_by,
                    format_time(hold.placed_at)
                ),
                None => return Err(format!("{} is not under a legal hold: nothing to release", user_text(user))),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn erase(args: EraseArgs) -> CmdResult {
    let user = parse_user(&args.user)?;
    let store = open(&args.db).await?;
    if let Some(hold) = store.hold_of(user).await.map_err(|e| e.to_string())? {
        return Err(records::held_sentence(&hold));
    }
    let counted = records::erase(&store, user, true, "", 0, &mut |_, _| {}).await.map_err(|e| e.to_string())?;
    let name = store.find_user(user).await.map_err(|e| e.to_string())?;
    if counted.messages == 0 && counted.log_rows == 0 && name.is_none() {
        return Err(format!("{} has no messages and is not in users_view: check the role and the id", user_text(user)));
    }
    let who = name.as_deref().map_or_else(|| user_text(user), |n| format!("{} ({n})", user_text(user)));
    if args.dry_run || !args.yes {
        println!(
            "would erase {} messages sent or received by {who}, {} message-log rows{}",
            counted.messages,
            counted.log_rows,
            if counted.directory { ", and their name from the directory" } else { "" }
        );
    }
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        return Err("erase cannot be undone: run it again with --yes (or --dry-run to only count)".to_owned());
    }
    let mut progress = Progress::new("erase");
    let report = records::erase(&store, user, false, &args.operator.actor(), crate::now_ms(), &mut |d, t| {
        progress.tell(d, t);
    })
    .await
    .map_err(store_error)?;
    println!(
        "erased {} messages, {} message-log rows, {} blocks and {} reports of {who}{}; recorded in the audit log",
        report.messages,
        report.log_rows,
        report.blocks,
        report.reports,
        if report.directory { ", and their directory entry" } else { "" }
    );
    if matches!(store, Store::Postgres(_)) {
        println!(
            "note: their {} row and their sign-in belong to your app: remove them there",
            if user.role == chat_protocol::Role::Teacher { "Teacher" } else { "Student" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
