//! An authenticated connection's requests: read, rate-limited, validated, answered.

use std::sync::Arc;

use chat_protocol::{
    ClientFrame, Conversation, Cursor, ErrorCode, MAX_BLOCKS, MAX_CONVERSATIONS_PAGE, PageBudget, ServerFrame,
    StoredMessage, UserRef,
};
use futures_util::StreamExt;
use governor::NotUntil;
use governor::clock::{Clock, DefaultClock};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::connection::{Connection, pack};
use super::handshake::{Refusal, socket_error};
use super::{DRAIN_TIMEOUT, MAX_THROTTLE, Stream};
use crate::delivery::announce::Notice;
use crate::delivery::outbox::ConnControl;
use crate::delivery::writer::WriteRequest;
use crate::moderation::Verdict;
use crate::store::NewMessage;
use axum::extract::ws::Message;

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
                // Typing is the start of writing: where students may only reply, a student
                // does not type first either.
                if self.check_peer(req, peer) && self.check_safety(req, peer, true).await {
                    self.state.hub.announce(Notice::Typing { from: self.me, to: peer, on });
                    self.reply(&ServerFrame::Done { req });
                }
            }
            ClientFrame::WatchPresence { req, users } => Box::pin(self.on_watch(req, users)).await,
            ClientFrame::RefreshToken { req, token } => {
                match self.state.auth.verify(&token, self.state.config.clock.now_ms()) {
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
                }
            }
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

    async fn on_send(&mut self, req: u32, msg: NewMessage) {
        if !self.check_peer(req, msg.to)
            || !self.check_safety(req, msg.to, true).await
            || !self.check_content(req, &msg.content)
        {
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

    /// The school's moderation rules on a text about to be stored (a send, an edit): `false`
    /// (and the rule's sentence sent back) when a rule blocks it.
    pub(super) fn check_content(&self, req: u32, content: &str) -> bool {
        match self.state.config.safety.moderation.check(content) {
            Verdict::Allow => true,
            Verdict::Block { rule, message } => {
                tracing::info!(user = ?self.me, rule, "a text was blocked by the moderation rules");
                self.error(req, ErrorCode::CONTENT_BLOCKED, message);
                false
            }
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

    async fn on_watch(&mut self, req: u32, mut users: Vec<UserRef>) {
        if !users.iter().all(|&u| self.check_peer(req, u)) {
            return;
        }
        users.sort_unstable();
        users.dedup();
        // A block either way hides presence both ways: such users are not watched (a block
        // made later ends the watch, `Hub::unwatch_between`).
        let partners = match self.state.store.block_partners(self.me).await {
            Ok(partners) => partners,
            Err(e) => return self.store_error(req, &e),
        };
        users.retain(|u| !partners.contains(u));
        let online = self.state.hub.set_watch(&self.outbox, &self.watching, &users);
        self.watching = users;
        self.reply(&ServerFrame::Watching { req, online });
    }

    async fn on_mark_read(&mut self, req: u32, peer: UserRef, up_to: Cursor) {
        if !self.check_peer(req, peer) {
            return;
        }
        match self.state.store.mark_read(self.me, peer, up_to, self.state.config.clock.now_ms()).await {
            Ok(count) => {
                self.reply(&ServerFrame::MarkedRead { req, count });
                if count > 0 {
                    // This user's other tabs; and the peer's, unless a block stands between
                    // them (the read state is the reader's own; the live receipt is contact).
                    if self.blocked_with(peer).await {
                        let receipt = ServerFrame::Read { reader: self.me, peer, up_to };
                        self.state.hub.deliver(&receipt, &[(self.me, Some(self.outbox.id()))]);
                    } else {
                        let except = Some(self.outbox.id());
                        self.state.hub.announce(Notice::Read { reader: self.me, peer, up_to, except });
                    }
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
