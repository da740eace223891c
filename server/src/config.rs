//! The server's configuration once parsed and checked: what `serve` runs with.
//!
//! The CLI (`cli/`) reads flags, the environment and `.env` files; this module holds the
//! validated result and the small value types (origins, policy) with their parsers, so
//! tests can build a configuration without going through the command line.

use std::net::SocketAddr;
use std::time::Duration;

use chat_protocol::{Limits, Role};

use crate::clock::Clock;
use crate::delivery::bus::BusConfig;

/// Which browser origins may open a WebSocket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origins {
    /// Any origin (`*`): only for development.
    Any,
    /// Exactly these (scheme://host[:port], compared case-insensitively).
    List(Vec<String>),
}

impl Origins {
    /// Parses a comma-separated list, or `*`.
    ///
    /// # Errors
    /// A sentence naming the bad entry.
    pub fn parse(value: &str) -> Result<Origins, String> {
        if value.trim() == "*" {
            return Ok(Origins::Any);
        }
        let mut list = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let url = url::Url::parse(entry).map_err(|_| {
                format!("CHAT_ALLOWED_ORIGINS entry '{entry}' is not an origin like https://school.example")
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(format!("CHAT_ALLOWED_ORIGINS entry '{entry}' must be an http(s) origin"));
            }
            list.push(url.origin().ascii_serialization());
        }
        Ok(Origins::List(list))
    }

    /// Whether a browser page from `origin` may connect.
    #[must_use]
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Origins::Any => true,
            Origins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin.trim_end_matches('/'))),
        }
    }
}

/// Who may message whom. Symmetric: allowing teacher-student allows both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    teacher_student: bool,
    teacher_teacher: bool,
    student_student: bool,
}

impl Default for Policy {
    /// Teachers and students may talk, teachers among themselves too; students may not
    /// message each other ([`Policy::DEFAULT_PAIRS`]).
    fn default() -> Self {
        Policy { teacher_student: true, teacher_teacher: true, student_student: false }
    }
}

impl Policy {
    /// The default policy as `CHAT_POLICY` writes it.
    pub const DEFAULT_PAIRS: &str = "teacher-student,teacher-teacher";

    /// Parses a comma-separated list of allowed pairs: `teacher-student`,
    /// `teacher-teacher`, `student-student`.
    ///
    /// # Errors
    /// A sentence naming the bad entry.
    pub fn parse(value: &str) -> Result<Policy, String> {
        let mut policy = Policy { teacher_student: false, teacher_teacher: false, student_student: false };
        for (a, b) in role_pairs(value, |entry| {
            format!(
                "CHAT_POLICY entry '{entry}' is not a pair like teacher-student, teacher-teacher or student-student"
            )
        })? {
            *policy.slot(a, b) = true;
        }
        Ok(policy)
    }

    fn slot(&mut self, a: Role, b: Role) -> &mut bool {
        match (a, b) {
            (Role::Teacher, Role::Teacher) => &mut self.teacher_teacher,
            (Role::Student, Role::Student) => &mut self.student_student,
            _ => &mut self.teacher_student,
        }
    }

    /// Whether users of these roles may exchange messages, typing and presence.
    #[must_use]
    pub fn allows(self, a: Role, b: Role) -> bool {
        match (a, b) {
            (Role::Teacher, Role::Teacher) => self.teacher_teacher,
            (Role::Student, Role::Student) => self.student_student,
            _ => self.teacher_student,
        }
    }
}

/// Parses comma-separated `role-role` pairs (`CHAT_POLICY`, `CHAT_BLOCKING`); `bad` words the
/// error for an entry that is not one.
fn role_pairs(value: &str, bad: impl Fn(&str) -> String) -> Result<Vec<(Role, Role)>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            entry.split_once('-').and_then(|(a, b)| Some((Role::parse(a)?, Role::parse(b)?))).ok_or_else(|| bad(entry))
        })
        .collect()
}

/// Which role may block which: pairs of (blocker, blocked). Directional: a teacher may mute
/// a student without a student being able to block a teacher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking([bool; 4]);

impl Default for Blocking {
    /// Students may block students, teachers may mute students and block teachers; a
    /// student may not block a teacher (they report the message instead, and the teacher's
    /// messages stay where staff can see them): [`Blocking::DEFAULT_PAIRS`].
    fn default() -> Self {
        Blocking([true, false, true, true])
    }
}

impl Blocking {
    /// The default as `CHAT_BLOCKING` writes it.
    pub const DEFAULT_PAIRS: &str = "student-student,teacher-student,teacher-teacher";

    fn index(blocker: Role, blocked: Role) -> usize {
        match (blocker, blocked) {
            (Role::Student, Role::Student) => 0,
            (Role::Student, Role::Teacher) => 1,
            (Role::Teacher, Role::Student) => 2,
            (Role::Teacher, Role::Teacher) => 3,
        }
    }

    /// Parses `blocker-blocked` pairs, comma-separated, or `none`.
    ///
    /// # Errors
    /// A sentence naming the bad entry.
    pub fn parse(value: &str) -> Result<Blocking, String> {
        let mut allowed = [false; 4];
        if value.trim() == "none" {
            return Ok(Blocking(allowed));
        }
        for (a, b) in role_pairs(value, |entry| {
            format!("CHAT_BLOCKING entry '{entry}' is not a pair like student-student (who blocks, then whom), or none")
        })? {
            allowed[Blocking::index(a, b)] = true;
        }
        Ok(Blocking(allowed))
    }

    /// Whether a `blocker` may block a `blocked`.
    #[must_use]
    pub fn allows(self, blocker: Role, blocked: Role) -> bool {
        self.0[Blocking::index(blocker, blocked)]
    }
}

/// Quiet hours: a daily span of local time (e.g. 19:00 to 07:00 in the school's time zone)
/// during which messages to students are delivered as always but marked quiet, so the app
/// does not notify.
#[derive(Clone, Debug, PartialEq)]
pub struct QuietHours {
    start: jiff::civil::Time,
    end: jiff::civil::Time,
    zone: jiff::tz::TimeZone,
}

impl QuietHours {
    /// Parses `CHAT_QUIET_HOURS` (`HH:MM-HH:MM`, local time; an end at or before the start
    /// runs past midnight) in `CHAT_TIMEZONE` (an IANA name such as `America/New_York`).
    ///
    /// # Errors
    /// A sentence naming the setting and the form to use.
    pub fn parse(hours: &str, zone: &str) -> Result<QuietHours, String> {
        let form = "give local times like 19:00-07:00";
        let (a, b) =
            hours.split_once('-').ok_or_else(|| format!("CHAT_QUIET_HOURS '{hours}' is not a span of time: {form}"))?;
        let time = |t: &str| {
            jiff::civil::Time::strptime("%H:%M", t.trim())
                .map_err(|_| format!("CHAT_QUIET_HOURS '{hours}': '{}' is not a time: {form}", t.trim()))
        };
        let (start, end) = (time(a)?, time(b)?);
        if start == end {
            return Err(format!("CHAT_QUIET_HOURS '{hours}' is empty: {form}"));
        }
        let zone = jiff::tz::TimeZone::get(zone.trim()).map_err(|_| {
            format!(
                "CHAT_TIMEZONE '{zone}' is not a time zone: give an IANA name such as America/New_York or Europe/London"
            )
        })?;
        Ok(QuietHours { start, end, zone })
    }

    /// The quiet spans overlapping `[from, to)`, as `[start, end)` milliseconds, in order.
    #[must_use]
    pub fn windows(&self, from: chat_protocol::Millis, to: chat_protocol::Millis) -> Vec<(i64, i64)> {
        let ms = |dt: jiff::civil::DateTime| {
            dt.to_zoned(self.zone.clone()).map(|z| z.timestamp().as_millisecond()).unwrap_or(i64::MAX)
        };
        let Ok(first) = jiff::Timestamp::from_millisecond(from) else { return Vec::new() };
        let mut day = first.to_zoned(self.zone.clone()).date();
        // A span that began yesterday evening may still be running.
        day = day.yesterday().unwrap_or(day);
        let mut out = Vec::new();
        loop {
            let start = ms(day.to_datetime(self.start));
            if start >= to {
                break;
            }
            let end_day = if self.end <= self.start { day.tomorrow().unwrap_or(day) } else { day };
            let end = ms(end_day.to_datetime(self.end));
            if end > from {
                out.push((start.max(from), end.min(to)));
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        out
    }
}

/// The school's safety rules beyond who may message whom.
#[derive(Clone, Debug, PartialEq)]
pub struct Safety {
    /// Whether a student may start a conversation (`CHAT_STUDENTS_MAY_START`); when not, a
    /// student may write only to someone who wrote to them first.
    pub students_may_start: bool,
    /// Which roles may block which (`CHAT_BLOCKING`).
    pub blocking: Blocking,
    /// Where each report is posted (`CHAT_REPORT_WEBHOOK`), signed with the token secret.
    pub report_webhook: Option<url::Url>,
    /// How long after sending a message its sender may edit or delete it
    /// (`CHAT_EDIT_WINDOW`, minutes; 0: never).
    pub edit_window: Duration,
    /// Quiet hours for students (`CHAT_QUIET_HOURS`, `CHAT_TIMEZONE`); `None`: none.
    pub quiet_hours: Option<QuietHours>,
    /// The school's moderation rules (`CHAT_MODERATION_RULES`), reloaded on SIGHUP.
    pub moderation: crate::moderation::Moderation,
}

impl Safety {
    /// The default edit window: 15 minutes.
    pub const DEFAULT_EDIT_WINDOW_MINUTES: u64 = 15;
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            students_may_start: true,
            blocking: Blocking::default(),
            report_webhook: None,
            edit_window: Duration::from_secs(Safety::DEFAULT_EDIT_WINDOW_MINUTES * 60),
            quiet_hours: None,
            moderation: crate::moderation::Moderation::default(),
        }
    }
}

/// Flow control and resource limits.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Authenticated WebSocket connections at most.
    pub max_connections: usize,
    /// TCP connections not yet authenticated (HTTP requests being read, WebSockets before
    /// their hello) at most. A separate budget: they never take an authenticated slot.
    pub max_pending: usize,
    /// Unauthenticated connections from one IP address at most.
    pub max_pending_per_ip: usize,
    /// Authenticated connections of one user (tabs, devices) at most.
    pub max_connections_per_user: usize,
    /// Sustained requests per second per user, shared by all of the user's connections.
    pub requests_per_second: u32,
    /// Burst above the sustained rate.
    pub request_burst: u32,
    /// Close a connection after this long without a frame from the client (WebSocket
    /// pings do not count: only protocol frames show a live client).
    pub idle_timeout: Duration,
    /// Close a connection that has not said hello after this long.
    pub hello_timeout: Duration,
    /// Close an HTTP connection whose request headers have not all arrived after this long.
    pub header_timeout: Duration,
    /// Bytes of frames waiting to be written to one client before it counts as a slow
    /// consumer and is closed.
    pub outbound_bytes: usize,
    /// Close a connection whose socket accepts no bytes for this long while frames wait.
    pub write_stall_timeout: Duration,
    /// Sends waiting for the writer before new ones are refused with `overloaded`.
    pub write_queue: usize,
    /// Messages committed in one transaction at most.
    pub max_batch: usize,
    /// How long a user stays "online" after their last connection closed (a reload).
    pub presence_grace: Duration,
    /// The longest a database statement may run (PostgreSQL `statement_timeout`, and a
    /// timer around every database call); also how long a commit may take before
    /// `/readyz` reports the writer stalled.
    pub db_timeout: Duration,
    /// The longest a shutdown may take, from the signal to the process ending.
    pub shutdown_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits::DEFAULT
    }
}

impl ServerLimits {
    /// The defaults, in one place: the command line's defaults are these.
    pub const DEFAULT: ServerLimits = ServerLimits {
        max_connections: 10_000,
        max_pending: 2_048,
        max_pending_per_ip: 256,
        max_connections_per_user: 20,
        requests_per_second: 30,
        request_burst: 60,
        idle_timeout: Duration::from_secs(60),
        hello_timeout: Duration::from_secs(5),
        header_timeout: Duration::from_secs(10),
        outbound_bytes: 4 * 1024 * 1024,
        write_stall_timeout: Duration::from_secs(10),
        write_queue: 16_384,
        max_batch: 1_024,
        presence_grace: Duration::from_secs(3),
        db_timeout: Duration::from_secs(5),
        shutdown_timeout: Duration::from_secs(30),
    };
}

impl ServerLimits {
    /// The limits as announced to clients in the welcome.
    #[must_use]
    pub fn announced(&self) -> Limits {
        Limits::protocol(
            self.requests_per_second,
            self.request_burst,
            u32::try_from(self.idle_timeout.as_millis()).unwrap_or(u32::MAX),
        )
    }
}

/// Everything `serve` needs besides the database.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Where to listen.
    pub bind: SocketAddr,
    /// The HS256 secret shared with the app.
    pub token_secret: Vec<u8>,
    /// Allowed browser origins.
    pub origins: Origins,
    /// Who may message whom.
    pub policy: Policy,
    /// Limits.
    pub limits: ServerLimits,
    /// What tokens must carry besides a valid signature.
    pub tokens: TokenRules,
    /// The wall clock (the system's, but for tests).
    pub clock: Clock,
    /// The bus to the other nodes of this deployment (`CHAT_BUS`); `None`: a single node.
    pub bus: Option<BusConfig>,
    /// How often the feed looks for messages nobody announced (rows the app inserted, a
    /// lost wake-up): default 250 ms.
    pub log_poll: Duration,
    /// Retention (`CHAT_RETENTION`): messages older than this many milliseconds are purged
    /// at start and then daily; `None` keeps them (the default).
    pub retention: Option<chat_protocol::Millis>,
    /// Keep audit entries this long (`CHAT_AUDIT_RETENTION`); `None`: kept for ever.
    pub audit_retention: Option<chat_protocol::Millis>,
    /// Who may start conversations and block whom; where reports go.
    pub safety: Safety,
}

/// Checks on tokens beyond the signature and expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRules {
    /// The longest lifetime accepted: `exp` at most this far after `iat` and after now.
    pub max_lifetime: Duration,
    /// When set, tokens must carry this `aud`.
    pub audience: Option<String>,
    /// When set, tokens must carry this `iss`.
    pub issuer: Option<String>,
}

impl TokenRules {
    /// The longest token lifetime accepted unless configured: a day.
    pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
}

impl Default for TokenRules {
    fn default() -> Self {
        TokenRules { max_lifetime: TokenRules::DEFAULT_MAX_LIFETIME, audience: None, issuer: None }
    }
}

impl ServeConfig {
    /// A configuration for tests: any port on loopback, the given secret, any origin
    /// allowed unless a list is given, default limits.
    #[must_use]
    pub fn for_tests(secret: &[u8]) -> Self {
        ServeConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            token_secret: secret.to_vec(),
            origins: Origins::Any,
            policy: Policy::default(),
            limits: ServerLimits::default(),
            tokens: TokenRules::default(),
            clock: Clock::system(),
            bus: None,
            log_poll: ServeConfig::DEFAULT_LOG_POLL,
            retention: None,
            audit_retention: None,
            safety: Safety::default(),
        }
    }

    /// See [`ServeConfig::log_poll`].
    pub const DEFAULT_LOG_POLL: Duration = Duration::from_millis(250);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_and_ignore_case() {
        let o = Origins::parse("http://localhost:3000, https://School.example").expect("parses");
        assert!(o.allows("http://localhost:3000"));
        assert!(o.allows("https://school.example"));
        assert!(!o.allows("http://localhost:3001"));
        assert!(!o.allows("https://school.example.evil.test"));
        assert!(Origins::parse("*").expect("parses").allows("http://anything"));
        assert!(Origins::parse("localhost:3000").is_err());
    }

    #[test]
    fn the_default_policy_refuses_student_to_student() {
        let p = Policy::default();
        assert!(p.allows(Role::Teacher, Role::Student));
        assert!(p.allows(Role::Student, Role::Teacher));
        assert!(p.allows(Role::Teacher, Role::Teacher));
        assert!(!p.allows(Role::Student, Role::Student));
        assert_eq!(Policy::parse(Policy::DEFAULT_PAIRS), Ok(Policy::default()));
        let all = Policy::parse("teacher-student,student-student").expect("parses");
        assert!(all.allows(Role::Student, Role::Student));
        assert!(!all.allows(Role::Teacher, Role::Teacher));
        assert!(Policy::parse("teacher-parent").is_err());
    }

    fn ms(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn quiet_hours_run_past_midnight_in_the_schools_time_zone_across_a_clock_change() {
        let quiet = QuietHours::parse("19:00-07:00", "America/New_York").unwrap();
        // Saturday 7 March 2026, noon in New York, to Monday: clocks go forward on Sunday 8 March.
        let windows = quiet.windows(ms("2026-03-07T17:00:00Z"), ms("2026-03-09T17:00:00Z"));
        assert_eq!(
            windows,
            [
                // 19:00 EST (UTC-5) to 07:00 EDT (UTC-4) the next morning.
                (ms("2026-03-08T00:00:00Z"), ms("2026-03-08T11:00:00Z")),
                (ms("2026-03-08T23:00:00Z"), ms("2026-03-09T11:00:00Z")),
            ]
        );
        // A span already running at `from` is cut to it.
        let windows = quiet.windows(ms("2026-03-08T05:00:00Z"), ms("2026-03-08T12:00:00Z"));
        assert_eq!(windows, [(ms("2026-03-08T05:00:00Z"), ms("2026-03-08T11:00:00Z"))]);
        // Within one day.
        let lunch = QuietHours::parse("12:00-13:00", "UTC").unwrap();
        assert_eq!(
            lunch.windows(ms("2026-01-01T00:00:00Z"), ms("2026-01-02T00:00:00Z")),
            [(ms("2026-01-01T12:00:00Z"), ms("2026-01-01T13:00:00Z"))]
        );
    }

    #[test]
    fn quiet_hours_refuse_what_they_cannot_read() {
        assert!(QuietHours::parse("7pm-7am", "UTC").unwrap_err().contains("not a time"));
        assert!(QuietHours::parse("19:00", "UTC").unwrap_err().contains("not a span"));
        assert!(QuietHours::parse("19:00-19:00", "UTC").unwrap_err().contains("empty"));
        assert!(QuietHours::parse("19:00-07:00", "Mars/Olympus").unwrap_err().contains("CHAT_TIMEZONE"));
    }
}
