//! An authenticated connection's safety and supervision requests: the school's rules
//! checked before a send or typing (blocks, reply-only), blocking, reports, edits and
//! deletions, and a supervisor's audited reads. Rare requests: their handlers run as boxed
//! futures (see `on_binary`), so an idle connection's task stays small.

use chat_protocol::{
    ClientFrame, Conversation, Cursor, ErrorCode, MAX_BLOCKS, MessageId, Role, ServerFrame, StoredMessage, UserRef,
};

use super::connection::{Connection, PeerView, pack};
use crate::delivery::announce::Notice;
use crate::store::{MAX_EDITS, Revised};

/// Reports one user may make in [`REPORT_WINDOW_MS`].
const MAX_REPORTS_PER_WINDOW: i64 = 30;
const REPORT_WINDOW_MS: i64 = 3_600_000;

/// Peers a connection remembers at most (then it forgets them all and asks again).
const MAX_PEER_VIEWS: usize = 1024;

impl Connection {
    /// A supervisor's reads (each audited before it is answered). The permission check is
    /// kept apart from the match (not a guard): it answers the refusal itself.
    #[allow(clippy::collapsible_match)]
    pub(super) async fn on_supervise(&mut self, frame: ClientFrame) {
        match frame {
            ClientFrame::SuperviseRevisions { req, student, id } => {
                if self.may_supervise(req, student) {
                    match self.state.store.message_by_id(id).await {
                        Ok(Some(m)) if m.from == student || m.to == student => {
                            match self.state.store.revisions_of(&m, chat_protocol::MAX_REVISIONS).await {
                                Ok(found) => {
                                    let revisions: Vec<chat_protocol::Revision> = found
                                        .into_iter()
                                        .map(|r| {
                                            let mut before = r.content;
                                            // Only text the app wrote itself can be longer.
                                            crate::store::cut_at_char(&mut before, chat_protocol::MAX_CONTENT_BYTES);
                                            chat_protocol::Revision { at: r.at, deleted: r.kind == "delete", before }
                                        })
                                        .collect();
                                    let detail = format!(
                                        "read the {} earlier texts of message {} (their conversation with {}:{})",
                                        revisions.len(),
                                        id.hyphenated().as_str(),
                                        m.peer_of(student).role.as_str(),
                                        m.peer_of(student).id
                                    );
                                    if self.audit_read(req, student, &detail).await {
                                        self.reply(&ServerFrame::Revisions { req, revisions });
                                    }
                                }
                                Err(e) => self.store_error(req, &e),
                            }
                        }
                        Ok(_) => self.error(
                            req,
                            ErrorCode::UNKNOWN_MESSAGE,
                            "the student neither sent nor received this message",
                        ),
                        Err(e) => self.store_error(req, &e),
                    }
                }
            }
            ClientFrame::SuperviseConversations { req, student, before, limit } => {
                if self.may_supervise(req, student)
                    && let Some((conversations, next)) = self.conversations_of(req, student, before, limit).await
                {
                    let detail =
                        format!("read a page of their conversation list ({} conversations)", conversations.len());
                    if self.audit_read(req, student, &detail).await {
                        self.reply(&ServerFrame::ConversationsPage { req, conversations, next });
                    }
                }
            }
            ClientFrame::SuperviseHistory { req, student, peer, before, limit } => {
                if self.may_supervise(req, student) {
                    match self.state.store.history(student, peer, before, limit).await {
                        Ok(mut messages) => {
                            let full = messages.len() == usize::from(limit);
                            let cut = pack(&mut messages, StoredMessage::encoded_len_bound);
                            let next = if full || cut { messages.last().map(StoredMessage::cursor) } else { None };
                            let detail = format!(
                                "read {} messages of their conversation with {}:{}",
                                messages.len(),
                                peer.role.as_str(),
                                peer.id
                            );
                            if self.audit_read(req, student, &detail).await {
                                self.reply(&ServerFrame::History { req, peer, messages, next });
                            }
                        }
                        Err(e) => self.store_error(req, &e),
                    }
                }
            }
            _ => {}
        }
    }

    /// Whether this connection may read `student`'s conversations as a supervisor (answers
    /// the request with the refusal if not).
    fn may_supervise(&self, req: u32, student: UserRef) -> bool {
        if !self.supervision.is_supervisor() {
            self.error(
                req,
                ErrorCode::NOT_ALLOWED,
                "only supervisors may read other users' conversations (the app marks them in their token)",
            );
            return false;
        }
        if student.role != Role::Student {
            self.error(req, ErrorCode::NOT_ALLOWED, "supervisors read students' conversations, not teachers'");
            return false;
        }
        if !self.supervision.covers(student.id) {
            let why = format!("you do not supervise student {} (the token's supervises claim)", student.id);
            self.error(req, ErrorCode::NOT_ALLOWED, why);
            return false;
        }
        true
    }

    /// Writes a supervisor's read to the audit log; nothing is shown that was not recorded.
    async fn audit_read(&self, req: u32, student: UserRef, detail: &str) -> bool {
        let actor = format!("{}:{} (supervisor)", self.me.role.as_str(), self.me.id);
        let now = self.state.config.clock.now_ms();
        match self.state.store.write_audit(now, &actor, "supervisor-read", Some(student), detail).await {
            Ok(()) => true,
            Err(e) => {
                self.store_error(req, &e);
                false
            }
        }
    }

    pub(super) async fn conversations_of(
        &self,
        req: u32,
        user: UserRef,
        before: Option<Cursor>,
        limit: u16,
    ) -> Option<(Vec<Conversation>, Option<Cursor>)> {
        match self.state.store.conversations(user, before, limit).await {
            Ok(mut conversations) => {
                let full = conversations.len() == usize::from(limit);
                let cut = pack(&mut conversations, Conversation::encoded_len_bound);
                let next = if full || cut { conversations.last().map(|c| c.last.cursor()) } else { None };
                Some((conversations, next))
            }
            Err(e) => {
                self.store_error(req, &e);
                None
            }
        }
    }

    /// The school's rules beyond roles, for `me` writing (`sending`) or typing to `peer`:
    /// a block either way refuses it (`blocked`); where students may not start
    /// conversations, a student writes only to someone who wrote to them first
    /// (`reply_only`). Answers the request with the refusal.
    pub(super) async fn check_safety(&mut self, req: u32, peer: UserRef, sending: bool) -> bool {
        let epoch = self.state.hub.blocks_epoch();
        let known = self.peers.get(&peer).copied();
        let mut view = match known {
            Some(view) if view.epoch == epoch => view,
            _ => match Box::pin(self.state.store.block_state(self.me, peer)).await {
                Ok(blocks) => PeerView { epoch, blocks, wrote_first: known.is_some_and(|v| v.wrote_first) },
                Err(e) => {
                    self.store_error(req, &e);
                    return false;
                }
            },
        };
        let refusal = if view.blocks.mine {
            Some((ErrorCode::BLOCKED, "you blocked this user: unblock them to write to them".to_owned()))
        } else if view.blocks.theirs {
            Some((ErrorCode::BLOCKED, "this user does not take messages from you".to_owned()))
        } else if sending
            && self.me.role == Role::Student
            && !self.state.config.safety.students_may_start
            && !view.wrote_first
        {
            match Box::pin(self.state.store.has_written(peer, self.me)).await {
                Ok(true) => {
                    view.wrote_first = true;
                    None
                }
                Ok(false) => Some((
                    ErrorCode::REPLY_ONLY,
                    format!(
                        "students may reply but not start a conversation here: the {} writes first",
                        peer.role.as_str()
                    ),
                )),
                Err(e) => {
                    self.store_error(req, &e);
                    return false;
                }
            }
        } else {
            None
        };
        if self.peers.len() >= MAX_PEER_VIEWS && !self.peers.contains_key(&peer) {
            self.peers.clear();
        }
        self.peers.insert(peer, view);
        match refusal {
            None => true,
            Some((code, why)) => {
                self.error(req, code, why);
                false
            }
        }
    }

    /// Whether a block stands between this user and `peer` either way (from the same cached
    /// view as [`Connection::check_safety`]); a database error counts as blocked, so nothing
    /// leaks while the database cannot say.
    pub(super) async fn blocked_with(&mut self, peer: UserRef) -> bool {
        let epoch = self.state.hub.blocks_epoch();
        let known = self.peers.get(&peer).copied();
        let blocks = match known {
            Some(view) if view.epoch == epoch => view.blocks,
            _ => match Box::pin(self.state.store.block_state(self.me, peer)).await {
                Ok(blocks) => {
                    let wrote_first = known.is_some_and(|v| v.wrote_first);
                    if self.peers.len() >= MAX_PEER_VIEWS && !self.peers.contains_key(&peer) {
                        self.peers.clear();
                    }
                    self.peers.insert(peer, PeerView { epoch, blocks, wrote_first });
                    blocks
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read blocks; withholding a read receipt");
                    return true;
                }
            },
        };
        blocks.mine || blocks.theirs
    }

    pub(super) async fn on_block(&mut self, req: u32, user: UserRef, blocked: bool) {
        if user == self.me {
            self.error(req, ErrorCode::SELF_MESSAGE, "a user cannot block themself");
            return;
        }
        if blocked && !self.state.config.safety.blocking.allows(self.me.role, user.role) {
            let why = format!(
                "the school's policy does not let a {} block a {}: report a message instead",
                self.me.role.as_str(),
                user.role.as_str()
            );
            self.error(req, ErrorCode::NOT_ALLOWED, why);
            return;
        }
        if blocked {
            match self.state.users.name(user).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    let why = format!("no {} with id {}", user.role.as_str(), user.id);
                    return self.error(req, ErrorCode::UNKNOWN_RECIPIENT, why);
                }
                Err(e) => return self.store_error(req, &e),
            }
            match self.state.store.blocks_of(self.me, MAX_BLOCKS).await {
                Ok(list) if list.len() >= MAX_BLOCKS && !list.contains(&user) => {
                    let why = format!("at most {MAX_BLOCKS} users can be blocked; unblock one first");
                    return self.error(req, ErrorCode::NOT_ALLOWED, why);
                }
                Ok(_) => {}
                Err(e) => return self.store_error(req, &e),
            }
        }
        match self.state.store.set_block(self.me, user, blocked, self.state.config.clock.now_ms()).await {
            Ok(changed) => {
                if changed {
                    self.state.metrics.safety(if blocked { "block" } else { "unblock" });
                    self.state.hub.announce(if blocked {
                        Notice::Blocked { blocker: self.me, blocked: user }
                    } else {
                        Notice::Unblocked
                    });
                }
                self.reply(&ServerFrame::Done { req });
            }
            Err(e) => self.store_error(req, &e),
        }
    }

    pub(super) async fn on_report(&mut self, req: u32, id: MessageId, reason: &str) {
        let (from, content) = match self.state.store.received(self.me, id).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                return self.error(req, ErrorCode::UNKNOWN_MESSAGE, "no message with this id was sent to you");
            }
            Err(e) => return self.store_error(req, &e),
        };
        let now = self.state.config.clock.now_ms();
        // A flood from one user must not bury other users' reports (or the webhook): a
        // student may report many messages, but not without bound.
        match self.state.store.reports_since(self.me, now - REPORT_WINDOW_MS).await {
            Ok(n) if n >= MAX_REPORTS_PER_WINDOW => {
                self.state.metrics.safety("report_limited");
                let why = format!(
                    "you have reported {MAX_REPORTS_PER_WINDOW} messages in the last hour; staff will look at them. \
                     If someone is in danger, tell an adult at school now"
                );
                return self.error(req, ErrorCode::RATE_LIMITED, why);
            }
            Ok(_) => {}
            Err(e) => return self.store_error(req, &e),
        }
        let pending = self.state.reports.is_some();
        match self.state.store.insert_report(now, id, self.me, from, reason, &content, pending).await {
            Ok(Some(report)) => {
                self.state.metrics.safety("report");
                tracing::info!(report, reporter = ?self.me, reported = ?from, "a message was reported");
                if let Some(hook) = &self.state.reports {
                    hook.stored();
                }
                self.reply(&ServerFrame::Done { req });
            }
            // Reported before by this user: the first report stands (done, not stored twice).
            Ok(None) => self.reply(&ServerFrame::Done { req }),
            Err(e) => self.store_error(req, &e),
        }
    }

    /// Edits (`Some` text) or deletes (`None`) a message this user sent, within the edit
    /// window; the old text goes to `chat_revision`, then everyone who has the message is told.
    pub(super) async fn on_change(&mut self, req: u32, id: MessageId, content: Option<String>) {
        let window = self.state.config.safety.edit_window;
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let now = self.state.config.clock.now_ms();
        let current = match self.state.store.message_by_id(id).await {
            Ok(Some(m)) if m.from == self.me => m,
            Ok(_) => return self.error(req, ErrorCode::UNKNOWN_MESSAGE, "you sent no message with this id"),
            Err(e) => return self.store_error(req, &e),
        };
        if current.content.is_empty() {
            return self.error(req, ErrorCode::NOT_ALLOWED, "this message was deleted");
        }
        // An edit reaches the recipient like a message: a block either way stops it (a
        // deletion goes through: it takes text away).
        if content.is_some() && !self.check_safety(req, current.to, false).await {
            return;
        }
        // An edit is held to the same words as a send (no sending "hi" and editing it into what
        // the rules refuse).
        if let Some(text) = &content
            && !self.check_content(req, text)
        {
            return;
        }
        if window_ms == 0 || now > current.created_at.saturating_add(window_ms) {
            let why = if window_ms == 0 {
                "this school does not let messages be edited or deleted once sent".to_owned()
            } else {
                format!("a message can be edited or deleted within {} minutes of sending", window.as_secs() / 60)
            };
            return self.error(req, ErrorCode::NOT_ALLOWED, why);
        }
        let (kind, deleted) = if content.is_some() { ("edit", false) } else { ("delete", true) };
        match self.state.store.revise(self.me, id, content.as_deref().unwrap_or(""), kind, now).await {
            Ok(Revised::Changed(message)) => {
                // Every connection of both users, this one too: the tab that edited updates
                // from the same event as the others.
                self.state.hub.announce(Notice::Changed { message, deleted });
                self.reply(&ServerFrame::Done { req });
            }
            Ok(Revised::NotYours) => self.error(req, ErrorCode::UNKNOWN_MESSAGE, "you sent no message with this id"),
            Ok(Revised::TooMany) => {
                let why = format!("a message can be edited {MAX_EDITS} times; send a new message instead");
                self.error(req, ErrorCode::NOT_ALLOWED, why);
            }
            Err(e) => self.store_error(req, &e),
        }
    }
}
