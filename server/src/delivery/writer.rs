//! The write path: group commit.
//!
//! Connections hand accepted sends to one writer task through a bounded queue. The writer
//! takes everything waiting (up to `max_batch`), stores it atomically (one multi-row statement,
//! autocommitted, on PostgreSQL and on SQLite alike), and only after the commit acks each
//! sender and delivers each message: at once to this node's connections that take messages
//! before their log position, and in a commit notice to the other nodes
//! ([`Feed::deliver_committed`]); the feed then brings positions and everything else. There
//! is no timer: while one commit is in flight the next batch accumulates, so a light load
//! commits each message at once and a heavy load gets large batches. A full queue answers
//! `overloaded` instead of growing memory.
//!
//! One writer means commits happen in order and `createdAt` never goes backwards
//! (it is `max(now, previous)`), which is what lets clients catch up by time cursor.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use chat_protocol::{ErrorCode, Millis, RequestId, ServerFrame, StoredMessage};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::ServerLimits;
use crate::delivery::feed::Feed;
use crate::delivery::hub::Hub;
use crate::delivery::outbox::Outbox;
use crate::metrics::Metrics;
use crate::now_ms;
use crate::store::{InsertOutcome, NewMessage, Store};

/// One accepted send waiting to be stored.
#[derive(Debug)]
pub(crate) struct WriteRequest {
    /// The message.
    pub(crate) msg: NewMessage,
    /// The request to answer.
    pub(crate) req: RequestId,
    /// The sending connection.
    pub(crate) reply: Outbox,
}

/// The handle connections submit sends through. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    tx: mpsc::Sender<WriteRequest>,
    health: Arc<Health>,
}

/// What `/readyz` needs to know about the writer.
#[derive(Debug, Default)]
struct Health {
    /// When the commit in flight started (ms since the epoch), 0 when none is.
    busy_since: AtomicI64,
    /// Whether the last commit failed because the database was unavailable.
    failing: AtomicBool,
}

/// The writer's state as `/readyz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriterState {
    /// Committing normally (or idle).
    Ok,
    /// A commit has been running for longer than the database timeout.
    Stalled,
    /// The last commit failed: the database is unreachable or refused to write.
    Failing,
}

impl WriterState {
    /// The word `/readyz` prints.
    #[must_use]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WriterState::Ok => "ok",
            WriterState::Stalled => "stalled",
            WriterState::Failing => "failing",
        }
    }
}

impl Writer {
    /// Queues a send for the next batch.
    ///
    /// # Errors
    /// [`ErrorCode::OVERLOADED`] when the queue is full, [`ErrorCode::SHUTTING_DOWN`] once
    /// the writer stopped taking work.
    pub(crate) fn submit(&self, request: WriteRequest) -> Result<(), ErrorCode> {
        self.tx.try_send(request).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ErrorCode::OVERLOADED,
            mpsc::error::TrySendError::Closed(_) => ErrorCode::SHUTTING_DOWN,
        })
    }

    /// Whether the writer commits, given how long a commit may take.
    #[must_use]
    pub(crate) fn state(&self, stall_after: Duration) -> WriterState {
        let since = self.health.busy_since.load(Ordering::Acquire);
        let stall = i64::try_from(stall_after.as_millis()).unwrap_or(i64::MAX);
        if since != 0 && now_ms() - since > stall {
            WriterState::Stalled
        } else if self.health.failing.load(Ordering::Acquire) {
            WriterState::Failing
        } else {
            WriterState::Ok
        }
    }
}

/// Starts the writer. When `stop` is cancelled it refuses new work, commits and acks
/// everything already queued, and then the returned task ends.
#[must_use]
pub(crate) fn spawn(
    store: Store,
    (feed, hub): (Feed, Hub),
    metrics: Metrics,
    clock: Clock,
    limits: &ServerLimits,
    stop: CancellationToken,
) -> (Writer, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(limits.write_queue.max(1));
    let health = Arc::new(Health::default());
    let max_batch = limits.max_batch.max(1);
    let task = tokio::spawn(run(rx, store, (feed, hub), metrics, clock, max_batch, stop, Arc::clone(&health)));
    (Writer { tx, health }, task)
}

// The writer task's whole state, moved in once.
#[allow(clippy::too_many_arguments)]
async fn run(
    mut rx: mpsc::Receiver<WriteRequest>,
    store: Store,
    (feed, hub): (Feed, Hub),
    metrics: Metrics,
    clock: Clock,
    max_batch: usize,
    stop: CancellationToken,
    health: Arc<Health>,
) {
    let mut batch: Vec<WriteRequest> = Vec::with_capacity(max_batch);
    let mut last_at: Millis = 0;
    let mut stopping = false;
    loop {
        let n = tokio::select! {
            biased;
            () = stop.cancelled(), if !stopping => {
                // Refuse new sends; what is queued is still committed below.
                rx.close();
                stopping = true;
                continue;
            }
            n = rx.recv_many(&mut batch, max_batch) => n,
        };
        if n == 0 {
            break;
        }
        // createdAt never goes back, even if the clock does: catch-up cursors rely on it.
        last_at = clock.now_ms().max(last_at);
        health.busy_since.store(now_ms().max(1), Ordering::Release);
        let ok = commit(&store, (&feed, &hub), &metrics, &batch, last_at).await;
        health.busy_since.store(0, Ordering::Release);
        health.failing.store(!ok, Ordering::Release);
        batch.clear();
        if stopping && !ok {
            // Shutting down with the database gone: trying the rest batch by batch could
            // take a timeout each. Refuse them now; none was acked, so every sender still
            // holds its message and resends it to the next server.
            while rx.recv_many(&mut batch, max_batch).await > 0 {
                for r in batch.drain(..) {
                    refuse(&metrics, &r, ErrorCode::UNAVAILABLE, "the server is shutting down; retry");
                }
            }
            break;
        }
    }
    tracing::debug!("writer drained and stopped");
}

fn refuse(metrics: &Metrics, r: &WriteRequest, code: ErrorCode, message: &str) {
    metrics.error(code);
    r.reply.push_frame(&ServerFrame::Error { req: r.req, code, message: message.into() });
}

/// Stores one batch, acks and delivers. Returns whether the database took it.
async fn commit(
    store: &Store,
    (feed, hub): (&Feed, &Hub),
    metrics: &Metrics,
    batch: &[WriteRequest],
    created_at: Millis,
) -> bool {
    let messages: Vec<&NewMessage> = batch.iter().map(|r| &r.msg).collect();
    let fresh = feed.expect(batch.iter().map(|r| (r.msg.id, r.reply.id())));
    let started = Instant::now();
    let outcomes = match store.insert_batch(&messages, created_at).await {
        Ok(outcomes) => outcomes,
        Err(e) => {
            feed.not_stored(batch.iter().zip(&fresh).filter(|(_, f)| **f).map(|(r, _)| r.msg.id));
            // Nothing of the batch was acked (if the database committed and its answer was
            // lost, the resend finds the rows and gets the original ack): every sender
            // keeps its message and retries with the same id.
            tracing::error!(error = %e, batch = batch.len(), "storing a batch failed");
            let (code, why) = if e.is_unavailable() {
                (ErrorCode::UNAVAILABLE, "the database is unavailable; the message was not stored, retry")
            } else {
                (ErrorCode::INTERNAL, "the message could not be stored; retry")
            };
            for r in batch {
                refuse(metrics, r, code, why);
            }
            return false;
        }
    };
    let stored = outcomes.iter().filter(|o| matches!(o, InsertOutcome::Stored { .. })).count();
    metrics.batch(batch.len(), stored, started.elapsed().as_secs_f64());

    let mut not_stored = Vec::new();
    let mut committed = Vec::with_capacity(stored);
    for ((r, outcome), fresh) in batch.iter().zip(outcomes).zip(fresh) {
        if fresh && !matches!(outcome, InsertOutcome::Stored { .. }) {
            not_stored.push(r.msg.id);
        }
        match outcome {
            InsertOutcome::Stored { created_at } => {
                r.reply.push_frame(&ServerFrame::Sent { req: r.req, id: r.msg.id, created_at });
                let m = &r.msg;
                committed.push(StoredMessage {
                    id: m.id,
                    from: m.from,
                    to: m.to,
                    content: m.content.clone(),
                    created_at,
                    read: false,
                });
            }
            InsertOutcome::Duplicate { created_at } => {
                // A resend of a message already stored: the original ack, nothing new.
                r.reply.push_frame(&ServerFrame::Sent { req: r.req, id: r.msg.id, created_at });
            }
            InsertOutcome::Unresolved => {
                metrics.error(ErrorCode::INTERNAL);
                r.reply.push_frame(&ServerFrame::Error {
                    req: r.req,
                    code: ErrorCode::INTERNAL,
                    message: "the message could not be confirmed; retry".into(),
                });
            }
            InsertOutcome::Conflict => {
                refuse(
                    metrics,
                    r,
                    ErrorCode::ID_CONFLICT,
                    "this message id is already used for another message; use a new random id",
                );
            }
        }
    }
    // Each stored message goes at once to the connections (here, and through the bus on the
    // other nodes) that take messages before their log position; the feed logs them and
    // delivers them to the others, in log order, and tells the first ones their position.
    // (A resend's id names the message delivered before; a conflicting id, someone
    // else's: neither is to be skipped for this connection.)
    if !committed.is_empty() {
        feed.deliver_committed(hub, committed);
    }
    if !not_stored.is_empty() {
        feed.not_stored(not_stored);
    }
    if stored > 0 {
        feed.committed();
    }
    true
}
