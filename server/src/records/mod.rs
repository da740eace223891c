//! Safety and compliance for operators: a user's records exported (a parent's FERPA request,
//! GDPR access and portability), old messages purged on a retention policy (COPPA: no
//! indefinite retention), a user erased (GDPR erasure). The CLI (`export`, `purge`, `erase`)
//! and `serve --retention` call these; each writes what it did to the audit log
//! (`chat_audit`), which nothing here ever deletes.
//!
//! Deletions go in batches of short statements: live traffic keeps flowing beside them.
//! Reports users make are offered to the app's webhook by [`report_hook`].

pub mod report_hook;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chat_protocol::{Millis, Role, UserRef};

use crate::store::{AuditEntry, Hold, RecordedMessage, ReportEntry, RevisionEntry, Store, StoreError};

/// Rows a batch deletes or a page reads.
pub const BATCH: u32 = 1000;

/// A day in milliseconds.
pub const DAY_MS: Millis = 24 * 3600 * 1000;

/// Parses a user as the CLI takes it: `student:1` or `teacher:3`. Ids of teachers and
/// students overlap, so an id alone is refused.
///
/// # Errors
/// What is wrong with the text, and the form to use.
pub fn parse_user(text: &str) -> Result<UserRef, String> {
    let hint = "write the role and the id, e.g. student:1 or teacher:3 (teacher and student ids overlap, so an id alone is ambiguous)";
    let Some((role, id)) = text.trim().split_once(':') else {
        return Err(format!("'{text}' is not a user: {hint}"));
    };
    let role = Role::parse(&role.trim().to_ascii_lowercase())
        .ok_or_else(|| format!("'{role}' is not a role (teacher or student): {hint}"))?;
    let id: i32 = id.trim().parse().map_err(|_| format!("'{id}' is not a user id (a whole number): {hint}"))?;
    Ok(UserRef::new(role, id))
}

/// Parses an age as `purge --older-than` and `serve --retention` take it: a whole number of
/// days or weeks (`365d`, `52w`), at least one day. Months and years are refused: their
/// length varies, and a retention policy should say exactly what it keeps.
///
/// # Errors
/// What is wrong with the text, and the form to use.
pub fn parse_age(text: &str) -> Result<Millis, String> {
    let t = text.trim().to_ascii_lowercase();
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    let (n, unit) = t.split_at(digits);
    let days_per = match unit.trim() {
        "d" | "day" | "days" => 1,
        "w" | "week" | "weeks" => 7,
        _ => {
            return Err(format!("'{text}' is not an age: give a whole number of days or weeks, e.g. 365d or 52w"));
        }
    };
    let n: i64 = n.parse().map_err(|_| format!("'{text}' is not an age: e.g. 365d or 52w"))?;
    if n < 1 {
        return Err(format!("'{text}' would remove every message: the age must be at least 1d"));
    }
    n.checked_mul(days_per * DAY_MS)
        .filter(|ms| *ms < 100_000 * 365 * DAY_MS)
        .ok_or_else(|| format!("'{text}' is longer than any stored message can be old"))
}

/// A time as exports and reports show it: RFC 3339 in UTC with milliseconds.
#[must_use]
pub fn format_time(ms: Millis) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| format!("{ms} ms"), |t| format!("{t:.3}"))
}

/// A user as `role:id`.
#[must_use]
pub fn user_text(user: UserRef) -> String {
    format!("{}:{}", user.role.as_str(), user.id)
}

/// Everything kept about one user: their messages (sent and received), the names of the
/// people in them, and the audit entries about them.
#[derive(Clone, Debug)]
pub struct Export {
    /// Whose records these are.
    pub user: UserRef,
    /// When the export was made.
    pub generated_at: Millis,
    /// Who asked for it.
    pub generated_by: String,
    /// The messages, oldest first.
    pub messages: Vec<RecordedMessage>,
    /// Display names (from `users_view`) of the user and everyone in their messages; a user
    /// no longer in the directory has none.
    pub names: HashMap<UserRef, String>,
    /// The audit log's entries about the user, oldest first.
    pub audit: Vec<AuditEntry>,
    /// The reports the user made, and those made about messages they wrote.
    pub reports: Vec<ReportEntry>,
    /// The earlier texts of their messages (each edit and deletion), oldest first.
    pub revisions: Vec<RevisionEntry>,
}

/// Reads everything kept about `user`, page by page; `progress` hears the count so far.
///
/// # Errors
/// A database error.
pub async fn export(
    store: &Store,
    user: UserRef,
    generated_at: Millis,
    generated_by: &str,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Export, StoreError> {
    let mut messages: Vec<RecordedMessage> = Vec::new();
    loop {
        let after = messages.last().map(|m| (m.created_at, m.id.clone()));
        let page = store.records_page(user, after, BATCH).await?;
        let full = page.len() == BATCH as usize;
        messages.extend(page);
        progress(messages.len() as u64);
        if !full {
            break;
        }
    }
    let mut names = HashMap::new();
    let reports = store.reports_about(user).await?;
    let revisions = store.revisions_about(user).await?;
    let mut people: Vec<UserRef> = messages.iter().flat_map(|m| [m.from, m.to]).collect();
    people.extend(reports.iter().flat_map(|r| [r.reporter, r.reported]));
    people.push(user);
    people.sort_by_key(|u| (u.role.as_str(), u.id));
    people.dedup();
    for person in people {
        if let Some(name) = store.find_user(person).await? {
            names.insert(person, name);
        }
    }
    let audit = store.audit_about(user).await?;
    Ok(Export { user, generated_at, generated_by: generated_by.to_owned(), messages, names, audit, reports, revisions })
}

/// The formats an export is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Machine-readable, complete (GDPR portability).
    Json,
    /// One row per message, for a spreadsheet.
    Csv,
    /// A page to read or print: conversations one after another, then the audit entries.
    Html,
}

impl ExportFormat {
    /// The format a file name's extension names, if any.
    #[must_use]
    pub fn from_path(path: &std::path::Path) -> Option<ExportFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(ExportFormat::Json),
            "csv" => Some(ExportFormat::Csv),
            "html" | "htm" => Some(ExportFormat::Html),
            _ => None,
        }
    }

    /// Its name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Json => "json",
            ExportFormat::Csv => "csv",
            ExportFormat::Html => "html",
        }
    }
}

impl Export {
    fn name_of(&self, user: UserRef) -> Option<&str> {
        self.names.get(&user).map(String::as_str)
    }

    fn person_json(&self, user: UserRef) -> serde_json::Value {
        serde_json::json!({ "role": user.role.as_str(), "id": user.id, "name": self.name_of(user) })
    }

    /// The export in `format`.
    #[must_use]
    pub fn render(&self, format: ExportFormat) -> String {
        match format {
            ExportFormat::Json => self.to_json(),
            ExportFormat::Csv => self.to_csv(),
            ExportFormat::Html => self.to_html(),
        }
    }

    /// JSON: `{ format, user, generatedAt, generatedBy, messages: [...], audit: [...] }`.
    #[must_use]
    pub fn to_json(&self) -> String {
        let messages: Vec<serde_json::Value> = self
            .messages
            .iter()
            .map(|m| {
                let earlier: Vec<serde_json::Value> = self
                    .revisions
                    .iter()
                    .filter(|r| r.message_id == m.id)
                    .map(|r| serde_json::json!({ "at": format_time(r.at), "change": r.kind, "before": r.content }))
                    .collect();
                serde_json::json!({
                    "id": m.id,
                    "createdAt": format_time(m.created_at),
                    "updatedAt": format_time(m.updated_at),
                    "from": self.person_json(m.from),
                    "to": self.person_json(m.to),
                    "content": m.content,
                    "deleted": m.content.is_empty(),
                    "isRead": m.read,
                    "revisions": earlier,
                })
            })
            .collect();
        let audit: Vec<serde_json::Value> = self
            .audit
            .iter()
            .map(|a| {
                serde_json::json!({
                    "at": format_time(a.at), "actor": a.actor, "action": a.action, "detail": a.detail,
                })
            })
            .collect();
        let reports: Vec<serde_json::Value> = self
            .reports
            .iter()
            .map(|r| {
                serde_json::json!({
                    "at": format_time(r.at),
                    "messageId": r.message_id,
                    "reporter": self.person_json(r.reporter),
                    "reported": self.person_json(r.reported),
                    "reason": r.reason,
                    "content": r.content,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "format": "chat-server export 1",
            "user": self.person_json(self.user),
            "generatedAt": format_time(self.generated_at),
            "generatedBy": self.generated_by,
            "messages": messages,
            "reports": reports,
            "audit": audit,
        });
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        text
    }

    /// CSV (RFC 4180, a header row): one row per message.
    #[must_use]
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "createdAt,id,fromRole,fromId,fromName,toRole,toId,toName,content,isRead,updatedAt,record,reason\r\n",
        );
        // One record: when, the message's id, from and to (empty when unknown), the text, then
        // isRead, updatedAt, the record's kind and a reason (empty where they do not apply).
        let mut push = |at: Millis, id: &str, people: [Option<UserRef>; 2], content: &str, rest: [String; 4]| {
            let mut fields = vec![format_time(at), id.to_owned()];
            for user in people {
                match user {
                    Some(u) => fields.extend([
                        u.role.as_str().to_owned(),
                        u.id.to_string(),
                        self.name_of(u).unwrap_or_default().to_owned(),
                    ]),
                    None => fields.extend([String::new(), String::new(), String::new()]),
                }
            }
            fields.push(content.to_owned());
            fields.extend(rest);
            let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&row.join(","));
            out.push_str("\r\n");
        };
        for m in &self.messages {
            let rest = [m.read.to_string(), format_time(m.updated_at), "message".to_owned(), String::new()];
            push(m.created_at, &m.id, [Some(m.from), Some(m.to)], &m.content, rest);
        }
        // Earlier texts (a row per edit or deletion: the text before it, at its time), then
        // reports (the reported text, the reporter as its recipient, the reason).
        for r in &self.revisions {
            let message = self.messages.iter().find(|m| m.id == r.message_id);
            let rest = [String::new(), String::new(), r.kind.clone(), String::new()];
            push(r.at, &r.message_id, [message.map(|m| m.from), message.map(|m| m.to)], &r.content, rest);
        }
        for r in &self.reports {
            let rest = [String::new(), String::new(), "report".to_owned(), r.reason.clone()];
            push(r.at, &r.message_id, [Some(r.reported), Some(r.reporter)], &r.content, rest);
        }
        out
    }

    fn label(&self, user: UserRef) -> String {
        match self.name_of(user) {
            Some(name) => format!("{name} ({} {})", user.role.as_str(), user.id),
            None => format!("{} {} (not in the directory)", user.role.as_str(), user.id),
        }
    }

    /// A self-contained HTML page: one table per conversation, then the audit entries.
    #[must_use]
    pub fn to_html(&self) -> String {
        let me = self.label(self.user);
        let mut by_peer: BTreeMap<(&str, i32), Vec<&RecordedMessage>> = BTreeMap::new();
        for m in &self.messages {
            let peer = if m.from == self.user { m.to } else { m.from };
            by_peer.entry((peer.role.as_str(), peer.id)).or_default().push(m);
        }
        let mut out = String::new();
        let _ = write!(
            out,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Messages of {t}</title>\
             <style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%;margin-bottom:2em}}\
             th,td{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}td.text{{white-space:pre-wrap}}</style>\
             </head><body>\n<h1>Messages of {t}</h1>\n<p>Generated {at} (UTC) by {by}: {n} messages in {c} conversations.</p>\n",
            t = html(&me),
            at = html(&format_time(self.generated_at)),
            by = html(&self.generated_by),
            n = self.messages.len(),
            c = by_peer.len(),
        );
        for ((role, id), messages) in &by_peer {
            let peer = UserRef::new(Role::parse(role).unwrap_or(Role::Student), *id);
            let _ = write!(
                out,
                "<h2>With {}</h2>\n<table><tr><th>Sent (UTC)</th><th>From</th><th>Message</th><th>Read</th></tr>\n",
                html(&self.label(peer))
            );
            for m in messages {
                let mut text =
                    if m.content.is_empty() { "<em>(deleted by its sender)</em>".to_owned() } else { html(&m.content) };
                for r in self.revisions.iter().filter(|r| r.message_id == m.id) {
                    let what = if r.kind == "delete" { "deleted" } else { "edited" };
                    let _ = write!(
                        text,
                        "<br><small>{what} {}; before: {}</small>",
                        html(&format_time(r.at)),
                        html(&r.content)
                    );
                }
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td class=\"text\">{text}</td><td>{}</td></tr>",
                    html(&format_time(m.created_at)),
                    html(&self.label(m.from)),
                    if m.read { "yes" } else { "no" }
                );
            }
            out.push_str("</table>\n");
        }
        out.push_str("<h2>Reports by or about this user</h2>\n");
        if self.reports.is_empty() {
            out.push_str("<p>None.</p>\n");
        } else {
            out.push_str(
                "<table><tr><th>When (UTC)</th><th>Reported by</th><th>Written by</th><th>Reason</th><th>Message</th></tr>\n",
            );
            for r in &self.reports {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"text\">{}</td><td class=\"text\">{}</td></tr>",
                    html(&format_time(r.at)),
                    html(&self.label(r.reporter)),
                    html(&self.label(r.reported)),
                    html(&r.reason),
                    html(&r.content)
                );
            }
            out.push_str("</table>\n");
        }
        out.push_str("<h2>Audit log entries about this user</h2>\n");
        if self.audit.is_empty() {
            out.push_str("<p>None.</p>\n");
        } else {
            out.push_str("<table><tr><th>When (UTC)</th><th>Who</th><th>What</th><th>Detail</th></tr>\n");
            for a in &self.audit {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    html(&format_time(a.at)),
                    html(&a.actor),
                    html(&a.action),
                    html(&a.detail)
                );
            }
            out.push_str("</table>\n");
        }
        out.push_str("</body></html>\n");
        out
    }
}

/// One CSV field: quoted when it holds a comma, a quote or a line break (quotes doubled). A
/// field a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading `'`.
#[must_use]
pub fn csv_field(text: &str) -> String {
    // A spreadsheet runs a cell starting with these as a formula (a tab or carriage return
    // before one is skipped by some): prefixed with an apostrophe, the text shows as it is.
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

/// Text made safe inside HTML elements and attributes.
#[must_use]
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What a purge removed (or, on a dry run, would remove).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Messages created before the cut-off.
    pub messages: u64,
    /// Message-log rows of those messages (0 on a dry run: they are counted as they go).
    pub log_rows: u64,
    /// Reports made before the cut-off (0 on a dry run).
    pub reports: u64,
    /// Earlier texts (edits, deletions) made before the cut-off (0 on a dry run).
    pub revisions: u64,
    /// The oldest `createdAt` among them.
    pub oldest: Option<Millis>,
    /// The newest `createdAt` among them.
    pub newest: Option<Millis>,
}

/// Deletes the messages created before `before`, in batches, then the message-log rows
/// left pointing at deleted messages and the reports made before `before`; writes an audit entry when anything went. `progress`
/// hears (removed so far, total). A dry run only counts.
///
/// # Errors
/// A database error; what was deleted before it stays deleted (run it again to finish).
pub async fn purge(
    store: &Store,
    before: Millis,
    dry_run: bool,
    actor: &str,
    now: Millis,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<PurgeReport, StoreError> {
    let (total, oldest, newest) = store.count_older(before).await?;
    let mut report = PurgeReport { messages: total, oldest, newest, ..PurgeReport::default() };
    if dry_run {
        return Ok(report);
    }
    let mut removed = 0;
    loop {
        let n = store.purge_batch(before, BATCH).await?;
        removed += n;
        progress(removed, total.max(removed));
        if n < u64::from(BATCH) {
            break;
        }
    }
    report.messages = removed;
    let mut after = 0;
    loop {
        let window = store.trim_log(after, BATCH).await?;
        report.log_rows += window.removed;
        match window.last {
            Some(last) if window.orphans > 0 => after = last,
            _ => break,
        }
    }
    report.reports = store.purge_reports(before).await?;
    report.revisions = store.purge_revisions(before).await?;
    if !store.reclaim().await? {
        tracing::warn!(
            "the SQLite write-ahead log could not be emptied now (a reader held it); it is at the next checkpoint"
        );
    }
    if report.messages > 0 || report.log_rows > 0 || report.reports > 0 || report.revisions > 0 {
        let detail = format!(
            "removed {} messages created before {} ({} earlier texts), {} message-log rows and {} reports",
            report.messages,
            format_time(before),
            report.revisions,
            report.log_rows,
            report.reports
        );
        store.write_audit(now, actor, "purge", None, &detail).await?;
    }
    Ok(report)
}

/// The shortest audit retention accepted: the audit log is the school's evidence of who read
/// and removed what, kept longer than the messages it is about.
pub const MIN_AUDIT_RETENTION_MS: Millis = 365 * DAY_MS;

/// Removes the audit entries written before `before`, then records that it did (so the log
/// is never silent about its own trimming); returns how many were removed.
///
/// # Errors
/// A database error.
pub async fn purge_audit(store: &Store, before: Millis, actor: &str, now: Millis) -> Result<u64, StoreError> {
    let removed = store.purge_audit(before).await?;
    if removed > 0 {
        let detail = format!("removed {removed} audit entries written before {}", format_time(before));
        store.write_audit(now, actor, "purge-audit", None, &detail).await?;
        if !store.reclaim().await? {
            tracing::warn!("the SQLite write-ahead log could not be emptied now (a reader held it)");
        }
    }
    Ok(removed)
}

/// What an erasure removed (or, on a dry run, would remove).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EraseReport {
    /// Messages the user sent or received.
    pub messages: u64,
    /// Message-log rows naming the user.
    pub log_rows: u64,
    /// Blocks made by or against the user (0 on a dry run).
    pub blocks: u64,
    /// Reports by or about the user (0 on a dry run).
    pub reports: u64,
    /// Earlier texts of their messages, kept from edits and deletions (0 on a dry run).
    pub revisions: u64,
    /// Whether the user's directory entry (name) went too: SQLite only; PostgreSQL's users
    /// are the app's tables.
    pub directory: bool,
}

/// Why `erase` refuses a held user's records, and what ends the refusal.
#[must_use]
pub fn held_sentence(hold: &Hold) -> String {
    format!(
        "{} is under a legal hold placed by {} on {} (reason: {}): erase refuses while it stands; when the hold \
         ends, release it with `chat-server hold release --user {}`",
        user_text(hold.user),
        hold.placed_by,
        format_time(hold.placed_at),
        hold.reason,
        user_text(hold.user)
    )
}

/// Places a hold on `user`'s records (audited); `Ok(Err(existing))` when one already stands.
///
/// # Errors
/// A database error.
pub async fn place_hold(
    store: &Store,
    user: UserRef,
    reason: &str,
    actor: &str,
    now: Millis,
) -> Result<Result<Hold, Hold>, StoreError> {
    if !store.place_hold(user, reason, actor, now).await? {
        let existing = store.hold_of(user).await?;
        // Released between the two statements: place it again.
        return match existing {
            Some(hold) => Ok(Err(hold)),
            None => Box::pin(place_hold(store, user, reason, actor, now)).await,
        };
    }
    let detail = format!("placed a legal hold on the records of {} (reason: {reason})", user_text(user));
    store.write_audit(now, actor, "hold", Some(user), &detail).await?;
    Ok(Ok(Hold { user, reason: reason.to_owned(), placed_by: actor.to_owned(), placed_at: now }))
}

/// Releases the hold on `user`'s records (audited, with why it ends); `None` when there was none.
///
/// # Errors
/// A database error.
pub async fn release_hold(
    store: &Store,
    user: UserRef,
    why: &str,
    actor: &str,
    now: Millis,
) -> Result<Option<Hold>, StoreError> {
    let Some(hold) = store.release_hold(user).await? else { return Ok(None) };
    let detail = format!(
        "released the legal hold on the records of {} placed by {} on {} (reason: {}); released because: {why}",
        user_text(user),
        hold.placed_by,
        format_time(hold.placed_at),
        hold.reason
    );
    store.write_audit(now, actor, "hold-release", Some(user), &detail).await?;
    Ok(Some(hold))
}

/// Removes every message `user` sent or received, the message-log rows naming them, their
/// blocks and the reports by or about them, and (SQLite) their directory entry; writes an audit entry with the counts. `progress` hears
/// (removed so far, total). A dry run only counts.
///
/// # Errors
/// A database error; what was deleted before it stays deleted (run it again to finish).
pub async fn erase(
    store: &Store,
    user: UserRef,
    dry_run: bool,
    actor: &str,
    now: Millis,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<EraseReport, StoreError> {
    if let Some(hold) = store.hold_of(user).await? {
        return Err(StoreError::Refused(held_sentence(&hold)));
    }
    let (messages, log_rows) = store.user_record_counts(user).await?;
    if dry_run {
        let directory = store.keeps_users() && store.find_user(user).await?.is_some();
        return Ok(EraseReport { messages, log_rows, directory, ..EraseReport::default() });
    }
    // The texts their messages had before edits go first (found through the messages).
    let mut report = EraseReport { revisions: store.erase_revisions(user).await?, ..EraseReport::default() };
    loop {
        let n = store.erase_batch(user, BATCH).await?;
        report.messages += n;
        progress(report.messages, messages.max(report.messages));
        if n == 0 {
            break;
        }
    }
    loop {
        let n = store.erase_log_batch(user, BATCH).await?;
        report.log_rows += n;
        if n == 0 {
            break;
        }
    }
    report.log_rows += store.erase_inbox(user).await?;
    (report.blocks, report.reports) = store.erase_safety(user).await?;
    report.directory = store.erase_directory_user(user).await?;
    if !store.reclaim().await? {
        tracing::warn!(
            "the SQLite write-ahead log could not be emptied now (a reader held it); it is at the next checkpoint"
        );
    }
    let detail = format!(
        "erased {} messages sent or received by {} ({} earlier texts), {} message-log rows, {} blocks and {} reports{}",
        report.messages,
        user_text(user),
        report.revisions,
        report.log_rows,
        report.blocks,
        report.reports,
        if report.directory { ", and their directory entry" } else { "" }
    );
    store.write_audit(now, actor, "erase", Some(user), &detail).await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_need_a_role_and_an_id() {
        assert_eq!(parse_user("student:1"), Ok(UserRef::new(Role::Student, 1)));
        assert_eq!(parse_user(" Teacher:12 "), Ok(UserRef::new(Role::Teacher, 12)));
        assert!(parse_user("1").unwrap_err().contains("an id alone is ambiguous"));
        assert!(parse_user("parent:1").unwrap_err().contains("'parent' is not a role"));
        assert!(parse_user("student:x").unwrap_err().contains("'x' is not a user id"));
    }

    #[test]
    fn ages_are_days_or_weeks() {
        assert_eq!(parse_age("365d"), Ok(365 * DAY_MS));
        assert_eq!(parse_age("52w"), Ok(364 * DAY_MS));
        assert_eq!(parse_age("30 days"), Ok(30 * DAY_MS));
        assert!(parse_age("365").unwrap_err().contains("days or weeks"));
        assert!(parse_age("1y").unwrap_err().contains("days or weeks"));
        assert!(parse_age("0d").unwrap_err().contains("at least 1d"));
        assert!(parse_age("99999999999d").is_err());
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"\nbye"), "\"say \"\"hi\"\"\nbye\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("\t=1+1"), "'\t=1+1");
        assert_eq!(csv_field("\r=1+1"), "\"'\r=1+1\"");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(html("<b>Tom & 'Jerry'</b>"), "&lt;b&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt;");
    }

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
