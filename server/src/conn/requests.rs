//! An authenticated connection's requests: read, rate-limited, validated, answered.

use std::collections::HashMap;
use std::sync::Arc;

use chat_protocol::{
    ClientFrame, Conversation, Cursor, ErrorCode, MAX_BLOCKS, MAX_CONVERSATIONS_PAGE, MessageId, Millis, PageBudget,
    Role, ServerFrame, StoredMessage, UserRef,
};
use futures_util::StreamExt;
use governor::NotUntil;
use governor::clock::{Clock, DefaultClock};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::handshake::{Refusal, socket_error};
use super::{DRAIN_TIMEOUT, MAX_THROTTLE, Stream};
use crate::bus::BusEvent;
use crate::hub::{ConnControl, Outbox};
use crate::state::AppState;
use crate::store::{BlockState, NewMessage};
use crate::writer::WriteRequest;
use axum::extract::ws::Message;

/// An authenticated connection's reader: answers requests through its outbox.
pub(super) struct Connection {
    pub(super) state: AppState,
    pub(super) me: UserRef,
    pub(super) outbox: Outbox,
    pub(super) token_expires_at: Millis,
    pub(super) watching: Vec<UserRef>,
    /// What this connection learnt of its peers: the blocks either way (good while the hub's
    /// blocks epoch has not moved) and whether the peer wrote first (once true, for good).
    pub(super) peers: HashMap<UserRef, PeerView>,
    /// Whose conversations this teacher may read as a supervisor (kept up to date by token
    /// refreshes).
    pub(super) supervision: crate::auth::Supervision,
    /// The protocol version the client speaks.
    pub(super) version: u16,
}

/// A connection's view of one peer, for the safety rules.
#[derive(Clone, Copy, Debug)]
pub(super) struct PeerView {
    epoch: u64,
    blocks: BlockState,
    wrote_first: bool,
}

/// Peers a connection remembers at most (then it forgets them all and asks again).
const MAX_PEER_VIEWS: usize = 1024;

enum Next {
    Continue,
    Stop,
}

impl Connection {
    pub(super) async fn read_loop(&mut self, stream: &mut Stream) {
        let idle = self.state.config.limits.idle_timeout;
        let mut idle_deadline = Instant::now() + idle;
        let state = self.state.clone();
        loop {
            tokio::select! {
                biased;
                () = self.outbox.control().killed() => return,
                () = state.shutdown.cancelled() => return,
                () = sleep_until(idle_deadline) => {
                    self.fatal(ErrorCode::IDLE_TIMEOUT, "nothing was heard from the client for too long");
                    return;
                }
                () = state.config.clock.sleep_until(self.token_expires_at) => {
                    self.fatal(ErrorCode::TOKEN_EXPIRED, "the token expired; reconnect with a fresh token");
                    return;
                }
                message = stream.next() => {
                    // Only protocol frames show a live client: WebSocket pings are answered by
                    // the library and could keep a client that never reads alive forever.
                    if !matches!(message, Some(Ok(Message::Ping(_) | Message::Pong(_)))) {
                        idle_deadline = Instant::now() + idle;
                    }
                    let next = match message {
                        None | Some(Ok(Message::Close(_))) => Next::Stop,
                        Some(Err(e)) => {
                            if let Refusal::Fatal(code, why) = socket_error(&e) {
                                self.fatal(code, &why);
                            }
                            Next::Stop
                        }
                        Some(Ok(Message::Text(_))) => {
                            self.fatal(ErrorCode::BAD_FRAME, "text frames are not part of the protocol; send binary frames");
                            Next::Stop
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Next::Continue,
                        Some(Ok(Message::Binary(bytes))) => self.on_binary(&bytes).await,
                    };
                    if matches!(next, Next::Stop) {
                        return;
                    }
                }
            }
        }
    }

    fn fatal(&self, code: ErrorCode, message: &str) {
        self.state.metrics.error(code);
        self.outbox.control().kill(code, message);
    }

    fn reply(&self, frame: &ServerFrame) {
        self.outbox.push_frame(frame);
    }

    fn error(&self, req: u32, code: ErrorCode, message: impl Into<String>) {
        self.state.metrics.error(code);
        self.reply(&ServerFrame::Error { req, code, message: message.into() });
    }

    async fn on_binary(&mut self, bytes: &[u8]) -> Next {
        let frame = match ClientFrame::decode(bytes) {
            Ok(frame) => frame,
            Err(e) => {
                // Undecodable bytes mean the client and server disagree about the protocol;
                // nothing the client sends next can be trusted to line up.
                self.fatal(e.code(), &e.to_string());
                return Next::Stop;
            }
        };
        let Some(req) = frame.request_id() else {
            self.fatal(ErrorCode::ALREADY_AUTHENTICATED, "this connection already said hello");
            return Next::Stop;
        };
        if let Err(wait) = self.state.rates.check_key(&self.me) {
            return self.throttle(req, &wait).await;
        }
        if let Err(code) = frame.validate() {
            self.error(req, code, code.name());
            return Next::Continue;
        }
        match frame {
            ClientFrame::Hello { .. } => {}
            ClientFrame::Send { req, id, to, content } => {
                self.on_send(req, NewMessage { id, from: self.me, to, content }).await
            }
            ClientFrame::History { req, peer, before, limit } => self.on_history(req, peer, before, limit).await,
            ClientFrame::Conversations { req } => {
                // Protocol 1's unpaged list: the first page only.
                if let Some((conversations, _)) = self.conversations_page(req, None, MAX_CONVERSATIONS_PAGE).await {
                    self.reply(&ServerFrame::Conversations { req, conversations });
                }
            }
            ClientFrame::ConversationsPage { req, before, limit } => {
                if let Some((conversations, next)) = self.conversations_page(req, before, limit).await {
                    self.reply(&ServerFrame::ConversationsPage { req, conversations, next });
                }
            }
            ClientFrame::MarkRead { req, peer, up_to } => self.on_mark_read(req, peer, up_to).await,
            ClientFrame::Typing { req, peer, on } => {
                if self.check_peer(req, peer) && self.check_safety(req, peer, false).await {
                    self.state.hub.deliver(&ServerFrame::Typing { from: self.me, on }, &[(peer, None)]);
                    self.state.hub.publish(BusEvent::Typing { from: self.me, to: peer, on });
                    self.reply(&ServerFrame::Done { req });
                }
            }
            ClientFrame::WatchPresence { req, users } => {
                if users.iter().all(|&u| self.check_peer(req, u)) {
                    let mut users = users;
                    users.sort_unstable();
                    users.dedup();
                    let online = self.state.hub.set_watch(&self.outbox, &self.watching, &users);
                    self.watching = users;
                    self.reply(&ServerFrame::Watching { req, online });
                }
            }
            ClientFrame::RefreshToken { req, token } => match self.state.auth.verify(&token) {
                Ok(v) if v.user == self.me => match self.state.users.still_exists(self.me).await {
                    Ok(true) => {
                        self.token_expires_at = v.expires_at;
                        self.supervision = v.supervision;
                        self.reply(&ServerFrame::TokenRefreshed { req, expires_at: v.expires_at });
                        if let Some(quiet) = super::quiet_hours(&self.state, self.me, self.version) {
                            self.reply(&quiet);
                        }
                    }
                    Ok(false) => {
                        // Removed from the app since the connection opened: it ends here.
                        self.fatal(ErrorCode::UNKNOWN_USER, "this user no longer exists in users_view");
                        return Next::Stop;
                    }
                    Err(e) => self.store_error(req, &e),
                },
                Ok(_) => self.error(req, ErrorCode::IDENTITY_CHANGED, "the new token names another user"),
                Err((code, why)) => self.error(req, code, why),
            },
            ClientFrame::Ping { req } => {
                self.reply(&ServerFrame::Pong { req, server_time: self.state.config.clock.now_ms() })
            }
            ClientFrame::Sync { req, after, limit } => match self.state.store.sync(self.me, after, limit + 1).await {
                Ok(mut messages) => {
                    let more = messages.len() > usize::from(limit);
                    messages.truncate(usize::from(limit));
                    let cut = pack(&mut messages, StoredMessage::encoded_len_bound);
                    self.reply(&ServerFrame::SyncPage { req, messages, more: more || cut });
                }
                Err(e) => self.store_error(req, &e),
            },
            ClientFrame::CatchUp { req, after, limit } => {
                match self.state.store.catch_up(self.me, after, limit + 1).await {
                    Ok(mut rows) => {
                        let more = rows.len() > usize::from(limit);
                        rows.truncate(usize::from(limit));
                        let mut budget = PageBudget::new();
                        let keep = rows
                            .iter()
                            .take_while(|(_, m)| budget.admit(m.as_ref().map_or(0, StoredMessage::encoded_len_bound)))
                            .count();
                        let cut = keep < rows.len();
                        rows.truncate(keep);
                        // Where the next page starts: past the last row read, even one whose
                        // message the app deleted since.
                        let last = rows.last().map_or(after, |(position, _)| *position);
                        let messages = rows.into_iter().filter_map(|(_, m)| m).collect();
                        self.reply(&ServerFrame::CatchUpPage { req, messages, last, more: more || cut });
                    }
                    Err(e) => self.store_error(req, &e),
                }
            }
            // The rare requests' futures are boxed: a connection's task is as large as the largest
            // state of this function, and most connections sit idle in it (7-8 KiB each).
            ClientFrame::Block { req, user, blocked } => Box::pin(self.on_block(req, user, blocked)).await,
            ClientFrame::Blocks { req } => match Box::pin(self.state.store.blocks_of(self.me, MAX_BLOCKS)).await {
                Ok(users) => self.reply(&ServerFrame::Blocks { req, users }),
                Err(e) => self.store_error(req, &e),
            },
            ClientFrame::Report { req, id, reason } => Box::pin(self.on_report(req, id, &reason)).await,
            ClientFrame::Edit { req, id, content } => Box::pin(self.on_change(req, id, Some(content))).await,
            ClientFrame::Delete { req, id } => Box::pin(self.on_change(req, id, None)).await,
            frame @ (ClientFrame::SuperviseRevisions { .. }
            | ClientFrame::SuperviseConversations { .. }
            | ClientFrame::SuperviseHistory { .. }) => Box::pin(self.on_supervise(frame)).await,
        }
        Next::Continue
    }

    /// A supervisor's reads (each audited before it is answered). The permission check is
    /// kept apart from the match (not a guard): it answers the refusal itself.
    #[allow(clippy::collapsible_match)]
    async fn on_supervise(&mut self, frame: ClientFrame) {
        match frame {
            ClientFrame::SuperviseRevisions { req, student, id } => {
                if self.may_supervise(req, student) {
                    match self.state.store.message_by_id(id).await {
                        Ok(Some(m)) if m.from == student || m.to == student => {
                            match self.state.store.revisions_of(id, chat_protocol::MAX_REVISIONS).await {
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

    fn store_error(&self, req: u32, e: &crate::store::StoreError) {
        tracing::error!(error = %e, user = ?self.me, "a request failed in the database");
        if e.is_unavailable() {
            self.error(req, ErrorCode::UNAVAILABLE, "the database is unavailable; retry shortly");
        } else {
            self.error(req, ErrorCode::INTERNAL, "the server could not complete the request; retry");
        }
    }

    /// Over the user's request budget: refuse this request and stop reading this connection
    /// until the budget allows the next one, so a flood turns into back-pressure on the
    /// client's socket instead of a flood of error frames (which would fill its queue).
    async fn throttle(&self, req: u32, wait: &NotUntil<<DefaultClock as Clock>::Instant>) -> Next {
        let wait = wait.wait_time_from(DefaultClock::default().now()).min(MAX_THROTTLE);
        self.error(
            req,
            ErrorCode::RATE_LIMITED,
            format!("too many requests from this user; retry in {} ms", wait.as_millis().max(1)),
        );
        tokio::select! {
            () = self.outbox.control().killed() => Next::Stop,
            () = self.state.shutdown.cancelled() => Next::Stop,
            () = sleep(wait) => Next::Continue,
        }
    }

    async fn conversations_page(
        &self,
        req: u32,
        before: Option<Cursor>,
        limit: u16,
    ) -> Option<(Vec<Conversation>, Option<Cursor>)> {
        self.conversations_of(req, self.me, before, limit).await
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

    async fn conversations_of(
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

    /// Whether `me` may talk to `peer` at all (answers the request with an error if not).
    fn check_peer(&self, req: u32, peer: UserRef) -> bool {
        if peer == self.me {
            self.error(req, ErrorCode::SELF_MESSAGE, "a user cannot talk to themself");
            return false;
        }
        if !self.state.config.policy.allows(self.me.role, peer.role) {
            self.error(
                req,
                ErrorCode::NOT_ALLOWED,
                format!("a {} may not message a {}", self.me.role.as_str(), peer.role.as_str()),
            );
            return false;
        }
        true
    }

    /// The school's rules beyond roles, for `me` writing (`sending`) or typing to `peer`:
    /// a block either way refuses it (`blocked`); where students may not start
    /// conversations, a student writes only to someone who wrote to them first
    /// (`reply_only`). Answers the request with the refusal.
    async fn check_safety(&mut self, req: u32, peer: UserRef, sending: bool) -> bool {
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

    async fn on_block(&mut self, req: u32, user: UserRef, blocked: bool) {
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
                    self.state.hub.blocks_changed();
                    self.state.hub.publish(BusEvent::Blocks);
                }
                self.reply(&ServerFrame::Done { req });
            }
            Err(e) => self.store_error(req, &e),
        }
    }

    async fn on_report(&mut self, req: u32, id: MessageId, reason: &str) {
        let (from, content) = match self.state.store.received(self.me, id).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                return self.error(req, ErrorCode::UNKNOWN_MESSAGE, "no message with this id was sent to you");
            }
            Err(e) => return self.store_error(req, &e),
        };
        let now = self.state.config.clock.now_ms();
        match self.state.store.insert_report(now, id, self.me, from, reason, &content).await {
            Ok(report) => {
                self.state.metrics.safety("report");
                tracing::info!(report, reporter = ?self.me, reported = ?from, "a message was reported");
                if let Some(hook) = &self.state.reports {
                    let person = |u: UserRef| serde_json::json!({ "role": u.role.as_str(), "id": u.id });
                    let body = serde_json::json!({
                        "type": "report",
                        "id": report,
                        "at": crate::records::format_time(now),
                        "reason": reason,
                        "reporter": person(self.me),
                        "message": {
                            "id": id.hyphenated().as_str(),
                            "from": person(from),
                            "to": person(self.me),
                            "content": content,
                        },
                    });
                    hook.offer(report, body.to_string());
                }
                self.reply(&ServerFrame::Done { req });
            }
            Err(e) => self.store_error(req, &e),
        }
    }

    /// Edits (`Some` text) or deletes (`None`) a message this user sent, within the edit
    /// window; the old text goes to `chat_revision`, then everyone who has the message is told.
    async fn on_change(&mut self, req: u32, id: MessageId, content: Option<String>) {
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
            Ok(Some(message)) => {
                // Every connection of both users, this one too: the tab that edited updates
                // from the same event as the others.
                let targets = [(message.to, None), (self.me, None)];
                self.state.hub.deliver(&ServerFrame::Changed { message, deleted }, &targets);
                self.state.hub.publish(BusEvent::Changed { id, deleted });
                self.reply(&ServerFrame::Done { req });
            }
            Ok(None) => self.error(req, ErrorCode::UNKNOWN_MESSAGE, "you sent no message with this id"),
            Err(e) => self.store_error(req, &e),
        }
    }

    async fn on_send(&mut self, req: u32, msg: NewMessage) {
        if !self.check_peer(req, msg.to) || !self.check_safety(req, msg.to, true).await {
            return;
        }
        match self.state.users.name(msg.to).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                let to = msg.to;
                self.error(req, ErrorCode::UNKNOWN_RECIPIENT, format!("no {} with id {}", to.role.as_str(), to.id));
                return;
            }
            Err(e) => return self.store_error(req, &e),
        }
        if let Err(code) = self.state.writer.submit(WriteRequest { msg, req, reply: self.outbox.clone() }) {
            let why = if code == ErrorCode::OVERLOADED {
                "the server is busy; retry shortly"
            } else {
                "the server is shutting down; retry"
            };
            self.error(req, code, why);
        }
    }

    async fn on_history(&mut self, req: u32, peer: UserRef, before: Option<Cursor>, limit: u16) {
        if !self.check_peer(req, peer) {
            return;
        }
        match self.state.store.history(self.me, peer, before, limit).await {
            Ok(mut messages) => {
                let full = messages.len() == usize::from(limit);
                let cut = pack(&mut messages, StoredMessage::encoded_len_bound);
                let next = if full || cut { messages.last().map(StoredMessage::cursor) } else { None };
                self.reply(&ServerFrame::History { req, peer, messages, next });
            }
            Err(e) => self.store_error(req, &e),
        }
    }

    async fn on_mark_read(&mut self, req: u32, peer: UserRef, up_to: Cursor) {
        if !self.check_peer(req, peer) {
            return;
        }
        match self.state.store.mark_read(self.me, peer, up_to, self.state.config.clock.now_ms()).await {
            Ok(count) => {
                self.reply(&ServerFrame::MarkedRead { req, count });
                if count > 0 {
                    // The peer's tabs, and this user's other tabs.
                    let receipt = ServerFrame::Read { reader: self.me, peer, up_to };
                    self.state.hub.deliver(&receipt, &[(peer, None), (self.me, Some(self.outbox.id()))]);
                    self.state.hub.publish(BusEvent::Read { reader: self.me, peer, up_to });
                }
            }
            Err(e) => self.store_error(req, &e),
        }
    }

    /// Unregisters and tells the pump how to close.
    pub(super) async fn close(&mut self, control: &Arc<ConnControl>) {
        let state = self.state.clone();
        state.hub.set_watch(&self.outbox, &self.watching, &[]);
        state.hub.unregister(&self.outbox);
        state.metrics.connection_closed();
        if !control.is_killed() && state.shutdown.is_cancelled() {
            // Shutting down: everything this connection sent was accepted before we stopped
            // reading; wait until the writer committed it so the acks go out before the close.
            if timeout(DRAIN_TIMEOUT, state.drained.cancelled()).await.is_err() {
                tracing::warn!("the writer did not drain in time");
            }
            control.kill(ErrorCode::SHUTTING_DOWN, "the server is shutting down; reconnect shortly");
        } else {
            // The client went away (or a reason was already given).
            control.end_quietly();
        }
    }
}

/// Keeps the longest prefix of `items` that fits one page by bytes; returns whether any
/// were cut (then the page says there is more, from its last item on).
fn pack<T>(items: &mut Vec<T>, size: impl Fn(&T) -> usize) -> bool {
    let mut budget = PageBudget::new();
    let keep = items.iter().take_while(|item| budget.admit(size(item))).count();
    let cut = keep < items.len();
    items.truncate(keep);
    cut
}
