//! Benchmark: how long a client takes to catch up on 10,000 messages it missed.
//!
//! A student's client is connected to server A; A goes away; through server B (same
//! database) two teachers send 10,000 messages; A comes back on the same port. Reported:
//! the time from the client's reconnect (status open) to `CaughtUp`, with every message
//! delivered once.
//!
//!     cargo run --release -p chat-client --features native --example catchup
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_client::core::{Event, Status, Timings};
use chat_client::native::{Client, TokenProvider};
use chat_protocol::UserRef;
use chat_server::auth::Auth;
use chat_server::testing::TestDb;
use chat_server::{Running, ServeConfig};

const SECRET: &[u8] = b"catch-up-benchmark-secret-0123456789";
const MISSED: usize = 10_000;

fn provider(user: UserRef) -> TokenProvider {
    Arc::new(move || {
        let now = chat_server::now_ms() / 1000;
        let token = Auth::new(SECRET).mint(user, now, now + 3600).unwrap();
        Box::pin(async move { Ok(token) })
    })
}

async fn server(db: &TestDb, addr: &str) -> Running {
    let mut config = ServeConfig::for_tests(SECRET);
    config.bind = addr.parse().unwrap();
    config.limits.requests_per_second = 1_000_000;
    config.limits.request_burst = 1_000_000;
    config.limits.outbound_bytes = 256 * 1024 * 1024;
    Running::start(config, db.store()).await.unwrap()
}

async fn client(server: &Running, user: UserRef) -> (Client, tokio::sync::mpsc::UnboundedReceiver<Event>) {
    let timings = Timings { backoff_base: 50, backoff_cap: 200, ..Timings::default() };
    let (c, events) = Client::start(&server.http_url(), provider(user), timings).unwrap();
    c.wait_for(Status::Open).await;
    (c, events)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let db = TestDb::ready().await;
    let a = server(&db, "127.0.0.1:0").await;
    let addr = a.addr.to_string();
    let (student, mut events) = client(&a, UserRef::student(1)).await;
    let (t, _) = client(&a, UserRef::teacher(1)).await;
    t.send(UserRef::student(1), "before").await.unwrap();
    a.stop().await.unwrap();
    student.wait_for(Status::Reconnecting).await;

    let b = server(&db, "127.0.0.1:0").await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for teacher in [UserRef::teacher(1), UserRef::teacher(2)] {
        let (c, _e) = client(&b, teacher).await;
        tasks.push(tokio::spawn(async move {
            let _keep = _e;
            let sends: Vec<_> = (0..MISSED / 2)
                .map(|i| {
                    let c = c.clone();
                    tokio::spawn(async move { c.send(UserRef::student(1), format!("missed {i}")).await.unwrap() })
                })
                .collect();
            for s in sends {
                s.await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    println!("stored {MISSED} messages through server B in {:.2} s", started.elapsed().as_secs_f64());

    let _a = server(&db, &addr).await;
    let restarted = Instant::now();
    let mut seen = HashSet::new();
    let mut reconnected = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(60), events.recv()).await.unwrap().unwrap() {
            Event::Status(Status::Open) => reconnected = Some(Instant::now()),
            Event::Message { message, live: false, .. } => {
                assert!(seen.insert(message.id), "duplicate");
            }
            Event::CaughtUp { count, conversations } => {
                let done = Instant::now();
                let from_open = reconnected.map_or(f64::NAN, |r| (done - r).as_secs_f64() * 1000.0);
                println!(
                    "caught up {count} messages ({} unique, {} conversations): {:.0} ms after the reconnect, {:.0} ms after the server came back",
                    seen.len(),
                    conversations.map_or(0, |c| c.len()),
                    from_open,
                    (done - restarted).as_secs_f64() * 1000.0
                );
                assert_eq!(seen.len(), MISSED);
                break;
            }
            _ => {}
        }
    }
}
