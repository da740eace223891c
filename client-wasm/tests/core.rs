//! The session state machine driven deterministically: a fake clock and scripted frames.
//!
//! Longer than most files on purpose: every test drives the same `Pair` harness, and each is
//! a short script of one guarantee; split by topic they would only repeat the harness.

#![allow(clippy::unwrap_used)]

use chat_client::core::{Action, Event, Request, Session, Status, Timings, TokenPurpose};
use chat_protocol::{ClientFrame, ErrorCode, Limits, MessageId, ServerFrame, StoredMessage, UserRef};

const ME: UserRef = UserRef::teacher(1);
const PEER: UserRef = UserRef::student(1);

/// A session plus a scripted server.
struct Pair {
    s: Session,
    now: i64,
    /// The server's message log position, sent after each welcome.
    log: u64,
}

impl Pair {
    fn new() -> Pair {
        Pair { s: Session::new(Timings::default(), 42), now: 1_000_000, log: 100 }
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.s.poll_action()).collect()
    }

    fn sent(&mut self) -> Vec<ClientFrame> {
        std::iter::from_fn(|| self.s.poll_transmit()).map(|b| ClientFrame::decode(&b).unwrap()).collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.s.poll_event()).collect()
    }

    fn server(&mut self, frame: ServerFrame) {
        self.s.handle_frame(self.now, &frame.encode().unwrap());
    }

    fn advance(&mut self, ms: i64) {
        self.now += ms;
        self.s.handle_timeout(self.now);
    }

    /// Runs the connect handshake up to an open session; returns the hello's token.
    fn open(&mut self, token: &str, expires_in: i64) -> String {
        let actions = self.actions();
        assert!(actions.contains(&Action::FetchToken(TokenPurpose::Connect)), "{actions:?}");
        self.s.handle_token(self.now, TokenPurpose::Connect, token.into());
        assert_eq!(self.actions(), [Action::Open]);
        self.s.handle_open(self.now);
        let hello = self.sent();
        let [ClientFrame::Hello { token, .. }] = hello.as_slice() else { panic!("{hello:?}") };
        let token = token.clone();
        self.server(ServerFrame::Welcome {
            user: ME,
            name: "Ann".into(),
            server_time: self.now,
            token_expires_at: self.now + expires_in,
            limits: Limits::protocol(30, 60, 60_000),
        });
        self.server(ServerFrame::Position { position: self.log });
        assert_eq!(self.s.status(), Status::Open);
        token
    }

    fn connect(&mut self) {
        self.s.connect(self.now);
        self.open("tok", 3_600_000);
    }
}

fn stored(id: MessageId, at: i64, content: &str) -> StoredMessage {
    StoredMessage { id, from: PEER, to: ME, content: content.into(), created_at: at, read: false }
}

#[test]
fn connecting_asks_for_a_token_opens_the_socket_and_says_hello() {
    let mut p = Pair::new();
    p.s.connect(p.now);
    assert_eq!(p.s.status(), Status::Connecting);
    let token = p.open("secret-token", 60_000);
    assert_eq!(token, "secret-token");
    let events = p.events();
    assert!(events.contains(&Event::Status(Status::Open)));
    assert!(events.contains(&Event::Welcome { user: ME, name: "Ann".into() }));
}

#[test]
fn sends_made_offline_wait_and_go_out_in_order_once_open() {
    let mut p = Pair::new();
    let a = p.s.send(p.now, PEER, "first".into()).unwrap();
    let b = p.s.send(p.now, PEER, "second".into()).unwrap();
    assert!(a < b, "time-ordered ids");
    assert!(p.sent().is_empty());
    p.connect();
    let frames = p.sent();
    let ids: Vec<_> =
        frames.iter().filter_map(|f| if let ClientFrame::Send { id, .. } = f { Some(*id) } else { None }).collect();
    assert_eq!(ids, [a, b]);
}

#[test]
fn unacknowledged_sends_are_resent_with_the_same_id_after_a_reconnect() {
    let mut p = Pair::new();
    p.connect();
    let id = p.s.send(p.now, PEER, "hello".into()).unwrap();
    let first = p.sent();
    let [ClientFrame::Send { id: sent_id, .. }] = first.as_slice() else { panic!() };
    assert_eq!(*sent_id, id);
    // The connection drops before the ack.
    p.s.handle_close(p.now, Some(1006));
    assert_eq!(p.s.status(), Status::Reconnecting);
    assert_eq!(p.s.pending_sends(), 1);
    p.advance(Timings::default().backoff_base);
    p.open("tok", 3_600_000);
    let again = p.sent();
    let resent: Vec<_> = again
        .iter()
        .filter_map(|f| if let ClientFrame::Send { id, req, .. } = f { Some((*id, *req)) } else { None })
        .collect();
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].0, id);
    // The ack resolves it.
    p.events();
    p.server(ServerFrame::Sent { req: resent[0].1, id, created_at: p.now });
    let events = p.events();
    assert!(matches!(events.as_slice(), [Event::Sent(m)] if m.id == id && m.content == "hello"), "{events:?}");
    assert_eq!(p.s.pending_sends(), 0);
}

#[test]
fn a_message_delivered_twice_reaches_the_app_once() {
    let mut p = Pair::new();
    p.connect();
    p.events();
    let m = stored(MessageId::new_v7(1, 0, [1; 8]), p.now, "hi");
    p.server(ServerFrame::Message { message: m.clone() });
    p.server(ServerFrame::Message { message: m.clone() });
    assert_eq!(p.events(), [Event::Message { message: m, live: true, quiet: false }]);
}

#[test]
fn a_request_without_an_answer_fails_with_request_timeout() {
    let mut p = Pair::new();
    p.connect();
    p.events();
    let req = p.s.request(p.now, Request::Conversations).unwrap();
    p.advance(Timings::default().request_timeout - 1);
    assert!(p.events().iter().all(|e| !matches!(e, Event::RequestFailed { .. })));
    p.advance(1);
    let events = p.events();
    assert!(
        events.contains(&Event::RequestFailed {
            req,
            code: ErrorCode::REQUEST_TIMEOUT,
            message: "no answer in time".into()
        }),
        "{events:?}"
    );
}

#[test]
fn a_supervisors_list_of_a_students_conversations_is_gathered_from_the_students_pages() {
    let mut p = Pair::new();
    p.connect();
    p.events();
    p.sent();
    let student = UserRef::student(9);
    let req = p.s.request(p.now, Request::SuperviseConversations { student }).unwrap();
    let limit = chat_protocol::MAX_CONVERSATIONS_PAGE;
    assert_eq!(p.sent(), [ClientFrame::SuperviseConversations { req, student, before: None, limit }]);
    let last = stored(MessageId::new_v7(1, 0, [1; 8]), p.now, "hi");
    let one = chat_protocol::Conversation { peer: PEER, peer_name: "Bo".into(), last: last.clone(), unread: 1 };
    p.server(ServerFrame::ConversationsPage { req, conversations: vec![one.clone()], next: Some(last.cursor()) });
    // The next page is the student's again, not the supervisor's own list.
    assert_eq!(p.sent(), [ClientFrame::SuperviseConversations { req, student, before: Some(last.cursor()), limit }]);
    assert_eq!(p.events(), []);
    p.server(ServerFrame::ConversationsPage { req, conversations: vec![], next: None });
    assert_eq!(
        p.events(),
        [Event::Response { req, frame: ServerFrame::Conversations { req, conversations: vec![one] } }]
    );
}

#[test]
fn requests_are_answered_by_matching_request_id() {
    let mut p = Pair::new();
    p.connect();
    p.events();
    let a = p.s.request(p.now, Request::Conversations).unwrap();
    let b = p.s.request(p.now, Request::History { peer: PEER, before: None, limit: 5 }).unwrap();
    p.server(ServerFrame::History { req: b, peer: PEER, messages: vec![], next: None });
    p.server(ServerFrame::Error { req: a, code: ErrorCode::INTERNAL, message: "db".into() });
    let events = p.events();
    assert!(matches!(&events[0], Event::Response { req, .. } if *req == b));
    assert!(matches!(&events[1], Event::RequestFailed { req, code: ErrorCode::INTERNAL, .. } if *req == a));
    // Invalid requests fail before anything is sent.
    assert_eq!(p.s.request(p.now, Request::History { peer: PEER, before: None, limit: 0 }), Err(ErrorCode::BAD_LIMIT));
    assert_eq!(p.s.send(p.now, PEER, " ".into()), Err(ErrorCode::CONTENT_EMPTY));
    assert_eq!(p.s.send(p.now, ME, "me".into()), Err(ErrorCode::SELF_MESSAGE));
}

#[test]
fn a_refused_token_is_terminal_and_fails_pending_work() {
    let mut p = Pair::new();
    p.connect();
    let id = p.s.send(p.now, PEER, "x".into()).unwrap();
    p.events();
    p.s.handle_close(p.now, Some(ErrorCode::UNAUTHORIZED.close_code()));
    assert_eq!(p.s.status(), Status::Unauthorized);
    let events = p.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::SendFailed { id: i, code: ErrorCode::UNAUTHORIZED, .. } if *i == id))
    );
    // Nothing is scheduled: no reconnect loop.
    assert_eq!(p.s.poll_timeout(), None);
    assert!(p.actions().is_empty());
    assert_eq!(p.s.send(p.now, PEER, "y".into()), Err(ErrorCode::UNAUTHORIZED));
}

#[test]
fn a_refused_origin_is_terminal_with_the_servers_reason() {
    // The server upgrades a page from an origin it refuses, sends why, and closes: before any
    // welcome, while the session is still connecting.
    let mut p = Pair::new();
    p.s.connect(p.now);
    p.s.handle_token(p.now, TokenPurpose::Connect, "t".into());
    p.actions();
    p.s.handle_open(p.now);
    p.sent();
    let id = p.s.send(p.now, PEER, "queued".into()).unwrap();
    p.events();
    let why = "this page's origin http://localhost:3100 is not in CHAT_ALLOWED_ORIGINS";
    p.server(ServerFrame::Fatal { code: ErrorCode::ORIGIN_NOT_ALLOWED, message: why.into() });
    p.s.handle_close(p.now, Some(ErrorCode::ORIGIN_NOT_ALLOWED.close_code()));
    assert_eq!(p.s.status(), Status::Refused);
    let events = p.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Refused { code: ErrorCode::ORIGIN_NOT_ALLOWED, reason } if reason == why)),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(e, Event::SendFailed { id: i, code: ErrorCode::ORIGIN_NOT_ALLOWED, message }
            if *i == id && message == why)),
        "{events:?}"
    );
    // No reconnect loop, nothing more to do, and new work is refused at once.
    assert_eq!(p.s.poll_timeout(), None);
    assert!(p.actions().is_empty());
    assert_eq!(p.s.send(p.now, PEER, "y".into()), Err(ErrorCode::ORIGIN_NOT_ALLOWED));
    // A later close of the same socket changes nothing; the app may try again (new settings).
    p.s.handle_close(p.now, None);
    assert_eq!(p.s.status(), Status::Refused);
    p.s.connect(p.now);
    assert_eq!(p.s.status(), Status::Connecting);
}

#[test]
fn an_expired_token_gets_one_immediate_retry_with_a_fresh_token() {
    let mut p = Pair::new();
    p.s.connect(p.now);
    p.s.handle_token(p.now, TokenPurpose::Connect, "stale".into());
    p.actions();
    p.s.handle_open(p.now);
    p.sent();
    p.s.handle_close(p.now, Some(ErrorCode::TOKEN_EXPIRED.close_code()));
    assert_eq!(p.s.status(), Status::Connecting);
    assert_eq!(p.actions(), [Action::FetchToken(TokenPurpose::Connect)]);
    p.s.handle_token(p.now, TokenPurpose::Connect, "still stale".into());
    p.actions();
    p.s.handle_open(p.now);
    p.s.handle_close(p.now, Some(ErrorCode::TOKEN_EXPIRED.close_code()));
    assert_eq!(p.s.status(), Status::Unauthorized);
}

#[test]
fn reconnect_delays_grow_exponentially_with_jitter_and_are_capped() {
    let t = Timings::default();
    let mut p = Pair::new();
    p.s.connect(p.now);
    let mut ceilings = Vec::new();
    for attempt in 0..12u32 {
        p.actions();
        p.s.handle_close(p.now, None);
        let at = p.s.poll_timeout().unwrap();
        let delay = at - p.now;
        let ceiling = (t.backoff_base << attempt.min(20)).min(t.backoff_cap);
        assert!((0..=ceiling).contains(&delay), "attempt {attempt}: {delay} within 0..={ceiling}");
        ceilings.push(ceiling);
        p.now = at;
        p.s.handle_timeout(p.now);
        assert_eq!(p.s.status(), Status::Connecting);
    }
    assert_eq!(*ceilings.last().unwrap(), t.backoff_cap);
    // Going online skips the wait.
    p.actions();
    p.s.handle_close(p.now, None);
    p.s.handle_online(p.now);
    assert_eq!(p.s.status(), Status::Connecting);
}

#[test]
fn the_token_is_refreshed_before_it_expires() {
    let mut p = Pair::new();
    p.s.connect(p.now);
    p.open("t1", 600_000);
    p.actions();
    // Refresh happens 60 s before expiry.
    p.advance(600_000 - 60_000 - 1);
    assert!(!p.actions().contains(&Action::FetchToken(TokenPurpose::Refresh)));
    p.sent();
    p.advance(1);
    assert!(p.actions().contains(&Action::FetchToken(TokenPurpose::Refresh)));
    p.s.handle_token(p.now, TokenPurpose::Refresh, "t2".into());
    let frames = p.sent();
    let Some(ClientFrame::RefreshToken { req, token }) = frames.last().cloned() else { panic!("{frames:?}") };
    assert_eq!(token, "t2");
    p.server(ServerFrame::TokenRefreshed { req, expires_at: p.now + 600_000 });
    assert_eq!(p.s.status(), Status::Open);
}

#[test]
fn a_silent_connection_is_detected_by_the_heartbeat_and_replaced() {
    let mut p = Pair::new();
    p.connect();
    p.sent();
    // Heartbeat after idle/3 = 20 s; no pong within the request timeout.
    p.advance(20_000);
    assert!(p.sent().iter().any(|f| matches!(f, ClientFrame::Ping { .. })));
    p.advance(Timings::default().request_timeout);
    assert!(p.actions().contains(&Action::Close(1000)));
    assert_eq!(p.s.status(), Status::Reconnecting);
}

#[test]
fn a_message_sent_at_commit_is_covered_by_the_position_that_follows_it() {
    let mut p = Pair::new();
    p.connect();
    assert_eq!(p.s.position(), Some(100), "the welcome's position starts the session");
    p.events();
    // Protocol 5: the message comes the moment it committed, its position after.
    let early = stored(MessageId::new_v7(10, 0, [1; 8]), 5_000_000, "at commit");
    p.server(ServerFrame::Message { message: early.clone() });
    assert_eq!(p.events(), [Event::Message { message: early.clone(), live: true, quiet: false }]);
    assert_eq!(p.s.position(), Some(100), "no position until the log numbered it");
    p.server(ServerFrame::Position { position: 107 });
    assert_eq!(p.s.position(), Some(107));
    // The log's copy (a node that had not seen the commit) is the same message: not reported again.
    p.server(ServerFrame::MessageAt { message: early, position: 107 });
    assert_eq!(p.events(), []);
    // A position never goes back.
    p.server(ServerFrame::Position { position: 103 });
    assert_eq!(p.s.position(), Some(107));

    // After a reconnect, the new welcome's position does not replace ours (we catch up from
    // ours); a position that comes during the catch-up counts once it is done.
    p.s.handle_close(p.now, Some(1001));
    p.advance(Timings::default().backoff_base);
    p.log = 300;
    p.open("tok", 3_600_000);
    assert_eq!(p.s.position(), Some(107));
    let frames = p.sent();
    let Some(ClientFrame::CatchUp { req, after: 107, .. }) =
        frames.iter().find(|f| matches!(f, ClientFrame::CatchUp { .. })).cloned()
    else {
        panic!("{frames:?}")
    };
    p.server(ServerFrame::Position { position: 305 });
    assert_eq!(p.s.position(), Some(107), "not before the catch-up reached the log's end");
    p.server(ServerFrame::CatchUpPage { req, messages: vec![], last: 299, more: false });
    assert_eq!(p.s.position(), Some(305));
}

#[test]
fn after_a_reconnect_the_session_catches_up_from_the_log_position_of_the_last_message() {
    let mut p = Pair::new();
    p.connect();
    let seen = stored(MessageId::new_v7(10, 0, [1; 8]), 5_000_000, "seen live");
    p.server(ServerFrame::MessageAt { message: seen.clone(), position: 105 });
    p.events();
    p.s.handle_close(p.now, Some(1001));
    p.advance(Timings::default().backoff_base);
    p.log = 300;
    p.open("tok", 3_600_000);
    let frames = p.sent();
    let Some(ClientFrame::CatchUp { req, after, .. }) =
        frames.iter().find(|f| matches!(f, ClientFrame::CatchUp { .. })).cloned()
    else {
        panic!("{frames:?}")
    };
    assert_eq!(after, 105, "from the last message's position, not the new connection's");
    p.events();
    // This node is behind the one we left: it sends live a message we had (position 104,
    // its id no longer in mind): not reported again.
    let old = stored(MessageId::new_v7(9, 0, [3; 8]), 4_900_000, "had it");
    p.server(ServerFrame::MessageAt { message: old, position: 104 });
    assert_eq!(p.events(), [], "a position at or below ours is a repeat");
    // Written with an earlier createdAt (another node's clock) but logged later: still caught up.
    let missed1 = stored(MessageId::new_v7(11, 0, [1; 8]), 4_000_000, "missed 1");
    let missed2 = stored(MessageId::new_v7(12, 0, [1; 8]), 5_000_200, "missed 2");
    // A live message during the catch-up, and the page repeating it: reported once.
    p.server(ServerFrame::MessageAt { message: missed2.clone(), position: 140 });
    p.server(ServerFrame::CatchUpPage { req, messages: vec![missed1.clone()], last: 120, more: true });
    let frames = p.sent();
    let Some(ClientFrame::CatchUp { req: req2, after: after2, .. }) = frames.first().cloned() else { panic!() };
    assert_eq!(after2, 120);
    p.server(ServerFrame::CatchUpPage { req: req2, messages: vec![missed2.clone()], last: 140, more: false });
    assert_eq!(
        p.events(),
        [
            Event::Message { message: missed2.clone(), live: true, quiet: false },
            Event::Message { message: missed1, live: false, quiet: false }
        ]
    );
    assert_eq!(p.s.position(), Some(140));
    // Then fresh unread counts, gathered over the list's pages.
    let frames = p.sent();
    let Some(ClientFrame::ConversationsPage { req: list_req, before: None, .. }) = frames.first().cloned() else {
        panic!("{frames:?}")
    };
    let first = chat_protocol::Conversation { peer: PEER, peer_name: "Bo".into(), last: missed2.clone(), unread: 2 };
    let second = chat_protocol::Conversation {
        peer: UserRef::student(7),
        peer_name: "Cy".into(),
        last: stored(MessageId::new_v7(9, 0, [2; 8]), 4_000_000, "older"),
        unread: 0,
    };
    p.server(ServerFrame::ConversationsPage {
        req: list_req,
        conversations: vec![first.clone()],
        next: Some(missed2.cursor()),
    });
    assert_eq!(p.events(), [], "not caught up before the last page");
    let frames = p.sent();
    assert_eq!(
        frames,
        [ClientFrame::ConversationsPage {
            req: list_req,
            before: Some(missed2.cursor()),
            limit: chat_protocol::MAX_CONVERSATIONS_PAGE
        }]
    );
    p.server(ServerFrame::ConversationsPage { req: list_req, conversations: vec![second.clone()], next: None });
    assert_eq!(p.events(), [Event::CaughtUp { count: 1, conversations: Some(vec![first, second]) }]);
}

fn welcome_with(p: &mut Pair, limits: Limits) {
    p.s.connect(p.now);
    p.actions();
    p.s.handle_token(p.now, TokenPurpose::Connect, "tok".into());
    p.actions();
    p.s.handle_open(p.now);
    p.sent();
    p.server(ServerFrame::Welcome {
        user: ME,
        name: "Ann".into(),
        server_time: p.now,
        token_expires_at: p.now + 3_600_000,
        limits,
    });
}

fn sends(frames: &[ClientFrame]) -> Vec<MessageId> {
    frames.iter().filter_map(|f| if let ClientFrame::Send { id, .. } = f { Some(*id) } else { None }).collect()
}

#[test]
fn a_long_outbox_goes_out_at_the_rate_the_server_announced() {
    let mut p = Pair::new();
    let mut ids: Vec<MessageId> = (0..100).map(|i| p.s.send(p.now, PEER, format!("queued {i}")).unwrap()).collect();
    // 10 per second announced (paced at 9, a margin for clocks), 20 at once.
    welcome_with(&mut p, Limits::protocol(10, 20, 60_000));
    let mut all = sends(&p.sent());
    assert_eq!(all, ids[..20], "the burst, in order");
    assert_eq!(p.s.poll_timeout().map(|t| t - p.now), Some(112), "the next send is due when a token is");
    p.advance(1_000);
    let second = sends(&p.sent());
    assert_eq!(second, ids[20..29], "a second's worth, in order");
    all.extend(second);
    // A send made now queues behind the others rather than jumping the line.
    ids.push(p.s.send(p.now, PEER, "late".into()).unwrap());
    assert!(sends(&p.sent()).is_empty());
    let mut seconds = 0;
    while all.len() < ids.len() {
        p.advance(1_000);
        let batch = sends(&p.sent());
        assert!(batch.len() <= 9, "never more than the rate: {}", batch.len());
        all.extend(batch);
        seconds += 1;
    }
    assert_eq!(all, ids, "every message once, in order");
    assert_eq!(seconds, 8, "72 more at 9 a second");
}

#[test]
fn rate_limited_sends_back_off_longer_each_time_and_reset_after_success() {
    let mut p = Pair::new();
    welcome_with(&mut p, Limits::protocol(1_000, 1_000, 60_000));
    p.s.send(p.now, PEER, "hello".into()).unwrap();
    let mut frame = p.sent().pop();
    let mut delays = Vec::new();
    for _ in 0..5 {
        let Some(ClientFrame::Send { req, .. }) = frame else { panic!("{frame:?}") };
        p.server(ServerFrame::Error { req, code: ErrorCode::RATE_LIMITED, message: "slow down".into() });
        assert!(p.sent().is_empty(), "not again at once");
        let due = p.s.poll_timeout().unwrap();
        delays.push(due - p.now);
        p.now = due;
        p.s.handle_timeout(p.now);
        frame = p.sent().pop();
    }
    for (i, delay) in delays.iter().enumerate() {
        let ceiling = 500 << i;
        assert!((ceiling / 2..=ceiling).contains(delay), "retry {i}: {delay} ms ({delays:?})");
    }
    // An ack resets the backoff.
    let Some(ClientFrame::Send { req, id, .. }) = frame else { panic!("{frame:?}") };
    p.server(ServerFrame::Sent { req, id, created_at: p.now });
    p.s.send(p.now, PEER, "again".into()).unwrap();
    let Some(ClientFrame::Send { req, .. }) = p.sent().pop() else { panic!() };
    p.server(ServerFrame::Error { req, code: ErrorCode::RATE_LIMITED, message: "slow down".into() });
    let delay = p.s.poll_timeout().unwrap() - p.now;
    assert!((250..=500).contains(&delay), "{delay}");
}

#[test]
fn a_catch_up_page_refused_for_a_retryable_reason_is_asked_again_from_the_same_place() {
    let mut p = Pair::new();
    p.connect();
    p.server(ServerFrame::MessageAt {
        message: stored(MessageId::new_v7(10, 0, [1; 8]), 5_000_000, "seen"),
        position: 101,
    });
    p.s.handle_close(p.now, Some(1001));
    p.advance(Timings::default().backoff_base);
    p.open("tok", 3_600_000);
    let Some(ClientFrame::CatchUp { req, after, .. }) =
        p.sent().into_iter().find(|f| matches!(f, ClientFrame::CatchUp { .. }))
    else {
        panic!()
    };
    p.server(ServerFrame::Error { req, code: ErrorCode::UNAVAILABLE, message: "database".into() });
    assert!(p.sent().is_empty());
    p.events();
    let due = p.s.poll_timeout().unwrap();
    p.now = due;
    p.s.handle_timeout(p.now);
    let again = p.sent();
    assert!(
        matches!(again.as_slice(), [ClientFrame::CatchUp { after: a, .. }] if *a == after),
        "the same catch-up again: {again:?}"
    );
}

#[test]
fn a_retryable_refusal_keeps_the_send_queued_and_tries_again() {
    let mut p = Pair::new();
    p.connect();
    let id = p.s.send(p.now, PEER, "busy?".into()).unwrap();
    let frames = p.sent();
    let Some(ClientFrame::Send { req, .. }) = frames.last().cloned() else { panic!() };
    p.server(ServerFrame::Error { req, code: ErrorCode::OVERLOADED, message: "busy".into() });
    assert_eq!(p.s.pending_sends(), 1);
    assert!(!p.events().iter().any(|e| matches!(e, Event::SendFailed { .. })));
    p.advance(1_000);
    let again = p.sent();
    assert!(again.iter().any(|f| matches!(f, ClientFrame::Send { id: i, .. } if *i == id)), "{again:?}");
}

#[test]
fn closing_fails_everything_pending_with_client_closed() {
    let mut p = Pair::new();
    p.connect();
    let id = p.s.send(p.now, PEER, "bye".into()).unwrap();
    let req = p.s.request(p.now, Request::Ping).unwrap();
    p.events();
    p.s.close(p.now);
    assert_eq!(p.s.status(), Status::Closed);
    let events = p.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::SendFailed { id: i, code: ErrorCode::CLIENT_CLOSED, .. } if *i == id))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::RequestFailed { req: r, code: ErrorCode::CLIENT_CLOSED, .. } if *r == req))
    );
    assert_eq!(p.actions(), [Action::Close(1000)]);
}

#[test]
fn typing_is_throttled_when_sent_and_expires_when_received() {
    let mut p = Pair::new();
    p.connect();
    p.sent();
    p.events();
    let typing = |on| Request::Typing { peer: PEER, on };
    // Keystrokes within the throttle interval send one frame.
    for _ in 0..5 {
        p.s.request(p.now, typing(true)).unwrap();
        p.now += 500;
    }
    let sent: Vec<_> = p.sent().into_iter().filter(|f| matches!(f, ClientFrame::Typing { on: true, .. })).collect();
    assert_eq!(sent.len(), 1);
    // Throttled calls still resolve.
    assert_eq!(p.events().iter().filter(|e| matches!(e, Event::Response { .. })).count(), 4);
    p.now += 3_000;
    p.s.request(p.now, typing(true)).unwrap();
    assert_eq!(p.sent().len(), 1, "refreshed after the interval");
    p.s.request(p.now, typing(false)).unwrap();
    assert!(matches!(p.sent().as_slice(), [ClientFrame::Typing { on: false, .. }]));
    // "Off" with nothing on is not sent.
    p.s.request(p.now, typing(false)).unwrap();
    assert!(p.sent().is_empty());

    // Receiving: one "on" event per episode, off after the expiry without refresh.
    p.events();
    p.server(ServerFrame::Typing { from: PEER, on: true });
    p.advance(4_000);
    p.server(ServerFrame::Typing { from: PEER, on: true });
    assert_eq!(p.events(), [Event::Typing { from: PEER, on: true }]);
    // (The typing requests above were never answered by this scripted server; only look
    // at typing events.)
    let typing_events =
        |p: &mut Pair| -> Vec<Event> { p.events().into_iter().filter(|e| matches!(e, Event::Typing { .. })).collect() };
    p.advance(5_999);
    assert!(typing_events(&mut p).is_empty());
    p.advance(1);
    assert_eq!(typing_events(&mut p), [Event::Typing { from: PEER, on: false }]);
}

#[test]
fn a_peers_typing_is_cleared_when_their_message_arrives() {
    let mut p = Pair::new();
    p.connect();
    p.events();
    p.server(ServerFrame::Typing { from: PEER, on: true });
    let m = stored(MessageId::new_v7(20, 0, [3; 8]), p.now, "done typing");
    p.server(ServerFrame::Message { message: m.clone() });
    assert_eq!(
        p.events(),
        [
            Event::Typing { from: PEER, on: true },
            Event::Typing { from: PEER, on: false },
            Event::Message { message: m, live: true, quiet: false },
        ]
    );
}

#[test]
fn a_session_that_has_seen_no_message_still_catches_up_from_its_first_welcome() {
    let mut p = Pair::new();
    p.connect();
    p.s.handle_close(p.now, Some(1001));
    p.advance(Timings::default().backoff_base);
    p.log = 250;
    p.open("tok", 3_600_000);
    let frames = p.sent();
    let sync = frames.iter().find_map(|f| if let ClientFrame::CatchUp { after, .. } = f { Some(*after) } else { None });
    assert_eq!(sync, Some(100), "from the first connection's position: {frames:?}");
}

#[test]
fn going_offline_drops_the_socket_at_once_and_online_reconnects_without_backoff() {
    let mut p = Pair::new();
    p.connect();
    let id = p.s.send(p.now, PEER, "written offline?".into()).unwrap();
    p.actions();
    p.s.handle_offline(p.now);
    assert_eq!(p.s.status(), Status::Reconnecting);
    assert!(p.actions().contains(&Action::Close(1000)));
    assert_eq!(p.s.pending_sends(), 1, "the send stays queued");
    p.s.handle_online(p.now);
    assert_eq!(p.s.status(), Status::Connecting);
    p.open("tok", 3_600_000);
    let frames = p.sent();
    assert!(frames.iter().any(|f| matches!(f, ClientFrame::Send { id: i, .. } if *i == id)), "{frames:?}");
}

#[test]
fn while_the_browser_is_offline_no_reconnect_is_attempted_until_it_is_back() {
    let mut p = Pair::new();
    p.connect();
    p.actions();
    p.s.handle_offline(p.now);
    assert_eq!(p.s.status(), Status::Reconnecting);
    p.actions();
    // Backoff periods pass: no token fetch, no socket.
    for _ in 0..20 {
        let due = p.s.poll_timeout().unwrap();
        p.now = p.now.max(due);
        p.s.handle_timeout(p.now);
        assert!(!p.actions().iter().any(|a| matches!(a, Action::FetchToken(_) | Action::Open)));
        assert_eq!(p.s.status(), Status::Reconnecting);
    }
    // Back online: at once.
    p.s.handle_online(p.now);
    assert_eq!(p.actions(), [Action::FetchToken(TokenPurpose::Connect)]);
}

#[test]
fn a_pending_send_that_comes_back_in_the_catch_up_before_its_ack_is_reported_once_as_sent() {
    let mut p = Pair::new();
    p.connect();
    p.server(ServerFrame::MessageAt {
        message: stored(MessageId::new_v7(10, 0, [1; 8]), 5_000_000, "seen"),
        position: 101,
    });
    p.s.handle_close(p.now, Some(1001));
    let id = p.s.send(p.now, PEER, "queued while away".into()).unwrap();
    p.advance(Timings::default().backoff_base);
    p.open("tok", 3_600_000);
    let frames = p.sent();
    let Some(ClientFrame::Send { req: send_req, .. }) =
        frames.iter().find(|f| matches!(f, ClientFrame::Send { .. })).cloned()
    else {
        panic!("{frames:?}")
    };
    let Some(ClientFrame::CatchUp { req: sync_req, .. }) =
        frames.iter().find(|f| matches!(f, ClientFrame::CatchUp { .. })).cloned()
    else {
        panic!("{frames:?}")
    };
    p.events();
    // The server committed the resend; the catch-up page, read after the commit, overtakes the ack.
    let mine = StoredMessage {
        id,
        from: ME,
        to: PEER,
        content: "queued while away".into(),
        created_at: 5_000_500,
        read: false,
    };
    p.server(ServerFrame::CatchUpPage { req: sync_req, messages: vec![mine.clone()], last: 102, more: false });
    p.server(ServerFrame::Sent { req: send_req, id, created_at: 5_000_500 });
    let events = p.events();
    let sent: Vec<_> = events.iter().filter(|e| matches!(e, Event::Sent(m) if m.id == id)).collect();
    let messages: Vec<_> =
        events.iter().filter(|e| matches!(e, Event::Message { message, .. } if message.id == id)).collect();
    assert_eq!(sent.len(), 1, "{events:?}");
    assert!(messages.is_empty(), "not a new message as well: {events:?}");
    assert_eq!(p.s.pending_sends(), 0);
}

/// Reconnects `p` after a drop: waits out the backoff and opens again.
fn reconnect(p: &mut Pair) {
    p.s.handle_close(p.now, Some(1006));
    p.advance(Timings::default().backoff_base);
    p.open("tok", 3_600_000);
}

#[test]
fn a_catch_up_cut_by_a_disconnect_is_started_afresh_and_never_reaches_the_app() {
    let mut p = Pair::new();
    p.connect();
    reconnect(&mut p);
    let first = p.sent();
    let [ClientFrame::CatchUp { req: old, .. }] = first.as_slice() else { panic!("{first:?}") };
    let old = *old;
    // The connection drops again before the page arrives.
    p.events();
    reconnect(&mut p);
    assert!(!p.events().iter().any(|e| matches!(e, Event::Response { .. } | Event::RequestFailed { .. })));
    let second = p.sent();
    let [ClientFrame::CatchUp { req: new, .. }] = second.as_slice() else { panic!("one fresh catch-up: {second:?}") };
    assert_ne!(*new, old);
    p.events();
    // A late answer to the old catch-up is not the app's business.
    p.server(ServerFrame::CatchUpPage { req: old, messages: vec![], last: 100, more: false });
    assert_eq!(p.events(), []);
    assert!(p.sent().is_empty(), "the stale page does not end the catch-up");
}

#[test]
fn a_dead_connection_still_fails_the_apps_requests_that_timed_out_with_it() {
    let mut p = Pair::new();
    p.connect();
    p.sent();
    // The heartbeat's ping, then the app's request, both unanswered.
    p.advance(60_000 / 3);
    assert!(matches!(p.sent().as_slice(), [ClientFrame::Ping { .. }]), "the heartbeat");
    let req = p.s.request(p.now, Request::Ping).unwrap();
    p.events();
    p.advance(Timings::default().request_timeout);
    let events = p.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::RequestFailed { req: r, code: ErrorCode::REQUEST_TIMEOUT, .. } if *r == req)),
        "{events:?}"
    );
    assert_eq!(p.s.status(), Status::Reconnecting);
}

#[test]
fn sends_waiting_for_the_budget_do_not_spin_the_timer_while_a_refusal_backs_off() {
    let mut p = Pair::new();
    p.connect();
    // More sends than the burst: the rest wait for the budget.
    for i in 0..80 {
        p.s.send(p.now, PEER, format!("m{i}")).unwrap();
    }
    let first = p.sent();
    let Some(ClientFrame::Send { req, .. }) = first.first() else { panic!() };
    // The server refuses the first as overloaded (the sends back off) and stores the rest.
    p.server(ServerFrame::Error { req: *req, code: ErrorCode::OVERLOADED, message: "busy".into() });
    for frame in &first[1..] {
        if let ClientFrame::Send { req, id, .. } = frame {
            p.server(ServerFrame::Sent { req: *req, id: *id, created_at: p.now });
        }
    }
    let mut calls = 0;
    while let Some(at) = p.s.poll_timeout() {
        calls += 1;
        assert!(calls < 1_000, "the timer keeps firing without progress");
        if p.s.pending_sends() == 0 || at > p.now + Timings::default().backoff_cap {
            break;
        }
        // Whatever is due is handled; the next deadline is then always in the future.
        p.now = p.now.max(at);
        p.s.handle_timeout(p.now);
        for frame in p.sent() {
            if let ClientFrame::Send { req, id, .. } = frame {
                p.server(ServerFrame::Sent { req, id, created_at: p.now });
            }
        }
        assert!(p.s.poll_timeout().is_none_or(|next| next > p.now), "a deadline in the past after handling it");
    }
    assert_eq!(p.s.pending_sends(), 0);
}

#[test]
fn a_final_refusal_reaches_the_app_in_the_servers_words() {
    let mut p = Pair::new();
    p.s.connect(p.now);
    p.s.handle_token(p.now, TokenPurpose::Connect, "t".into());
    p.actions();
    p.s.handle_open(p.now);
    p.sent();
    let id = p.s.send(p.now, PEER, "x".into()).unwrap();
    let why = "this chat-sdk speaks protocol 9, newer than chat-server 0.1.0 (protocols 1 to 2): upgrade chat-server";
    p.server(ServerFrame::Fatal { code: ErrorCode::UNSUPPORTED_VERSION, message: why.into() });
    p.s.handle_close(p.now, Some(ErrorCode::UNSUPPORTED_VERSION.close_code()));
    assert_eq!(p.s.status(), Status::Closed);
    let events = p.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::SendFailed { id: i, code: ErrorCode::UNSUPPORTED_VERSION, message }
            if *i == id && message == why)),
        "{events:?}"
    );
    // A fatal frame whose code the close does not repeat is not taken for it.
    let mut p = Pair::new();
    p.connect();
    let id = p.s.send(p.now, PEER, "y".into()).unwrap();
    p.server(ServerFrame::Fatal { code: ErrorCode::IDLE_TIMEOUT, message: "idle".into() });
    p.s.handle_close(p.now, Some(ErrorCode::UNAUTHORIZED.close_code()));
    let events = p.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::SendFailed { id: i, code: ErrorCode::UNAUTHORIZED, message }
            if *i == id && message == "the server refused the credentials")),
        "{events:?}"
    );
}

#[test]
fn a_send_restored_after_a_reload_goes_out_with_its_original_id_once() {
    // The first page queued a message and was reloaded before it was acked.
    let mut first = Pair::new();
    let id = first.s.new_message_id(first.now);
    assert_eq!(first.s.send_with_id(first.now, id, PEER, "kept".into()), Ok(id));
    // The next page restores it from storage (twice, as two tabs might): one outbox entry.
    let mut p = Pair::new();
    assert_eq!(p.s.send_with_id(p.now, id, PEER, "kept".into()), Ok(id));
    assert_eq!(p.s.send_with_id(p.now, id, PEER, "kept".into()), Ok(id));
    assert_eq!(p.s.pending_sends(), 1);
    p.connect();
    let sends: Vec<_> = p
        .sent()
        .into_iter()
        .filter_map(|f| if let ClientFrame::Send { id, req, .. } = f { Some((id, req)) } else { None })
        .collect();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].0, id, "the original id");
    p.events();
    p.server(ServerFrame::Sent { req: sends[0].1, id, created_at: p.now });
    assert!(matches!(p.events().as_slice(), [Event::Sent(m)] if m.id == id));
    assert_eq!(p.s.send_with_id(p.now, MessageId::NIL, PEER, "x".into()), Err(ErrorCode::BAD_MESSAGE_ID));
}

#[test]
fn a_session_resuming_from_another_catches_up_from_where_that_one_left() {
    let mut p = Pair::new();
    p.s.resume_from(42);
    p.connect();
    let frames = p.sent();
    let syncs: Vec<_> = frames
        .iter()
        .filter_map(|f| if let ClientFrame::CatchUp { after, .. } = f { Some(*after) } else { None })
        .collect();
    assert_eq!(syncs, [42], "{frames:?}");
    // A fresh session (no resume) starts at its welcome: nothing to catch up on.
    let mut fresh = Pair::new();
    fresh.connect();
    assert!(!fresh.sent().iter().any(|f| matches!(f, ClientFrame::CatchUp { .. })));
}
