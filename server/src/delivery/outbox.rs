//! One connection's outbound queue ([`Outbox`]), bounded in bytes, and its control block
//! ([`ConnControl`]: why and how it ends). Everything that reaches a client goes through its
//! outbox; the socket's pump drains it.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use chat_protocol::{ErrorCode, ServerFrame, UserRef};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::lock;
use crate::metrics::Metrics;

/// The protocol version from which live messages may come before their position, which a
/// `Position` frame then brings.
pub(crate) const POSITION_FRAMES: u16 = 5;

/// A connection's id, unique within one server process.
pub(crate) type ConnId = u64;

/// How a connection ends.
#[derive(Clone, Debug)]
pub(crate) enum Ending {
    /// The client went away or its socket failed: nobody to tell, just close.
    Quiet,
    /// Tell the client why (a fatal frame and close code `4000 + code`), then close.
    Tell(ErrorCode, String),
}

/// Why and how a connection is being closed; shared by its tasks and the hub.
#[derive(Debug, Default)]
pub(crate) struct ConnControl {
    kill: CancellationToken,
    reason: Mutex<Option<Ending>>,
}

impl ConnControl {
    /// Resolves once the connection has been told to close.
    pub(crate) async fn killed(&self) {
        self.kill.cancelled().await;
    }

    /// Whether the connection has been told to close.
    #[must_use]
    pub(crate) fn is_killed(&self) -> bool {
        self.kill.is_cancelled()
    }

    /// The first reason given for closing, if any.
    #[must_use]
    pub(crate) fn reason(&self) -> Option<Ending> {
        lock(&self.reason).clone()
    }

    /// Tells the connection to close, telling the client `code`. The first reason wins.
    pub(crate) fn kill(&self, code: ErrorCode, message: impl Into<String>) {
        self.end(Ending::Tell(code, message.into()));
    }

    /// Tells the connection to close without a word (the client is gone). The first reason wins.
    pub(crate) fn end_quietly(&self) {
        self.end(Ending::Quiet);
    }

    fn end(&self, ending: Ending) {
        lock(&self.reason).get_or_insert(ending);
        self.kill.cancel();
    }
}

/// What one queued frame costs besides its bytes (the channel node and the `Bytes`
/// handle), so a flood of tiny frames is bounded too.
pub(crate) const FRAME_OVERHEAD: usize = 64;

/// The sending half of one connection's outbound queue, bounded in bytes.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    pub(super) id: ConnId,
    pub(super) user: UserRef,
    /// The protocol version the client speaks (3: messages carry their log position; 4:
    /// `Changed` and `QuietHours`; 5: messages at commit, their positions after).
    pub(super) version: u16,
    tx: mpsc::UnboundedSender<Bytes>,
    queue: Arc<QueueBytes>,
    pub(super) control: Arc<ConnControl>,
}

/// The bytes waiting in one connection's queue, and its bound. The writer side gives
/// bytes back once they are written to the socket.
#[derive(Debug)]
pub(crate) struct QueueBytes {
    queued: AtomicUsize,
    max: usize,
    metrics: Metrics,
}

impl QueueBytes {
    /// Gives back the cost of `count` frames of `bytes` in all, taken off the queue and
    /// written (or dropped).
    pub(crate) fn release_many(&self, bytes: usize, count: usize) {
        let cost = bytes + count * FRAME_OVERHEAD;
        self.queued.fetch_sub(cost, Ordering::AcqRel);
        self.metrics.outbound_bytes(-i64::try_from(cost).unwrap_or(0));
    }

    /// The server's metrics.
    #[must_use]
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The bytes queued now.
    #[must_use]
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

impl Drop for QueueBytes {
    fn drop(&mut self) {
        // Frames never written (the connection closed) leave the gauge with the queue.
        let left = *self.queued.get_mut();
        self.metrics.outbound_bytes(-i64::try_from(left).unwrap_or(0));
    }
}

impl Outbox {
    /// An outbox for connection `id` of `user` holding at most `max_bytes` of frames; the
    /// receiver and the byte counter go to the socket writer.
    #[must_use]
    pub(crate) fn new(
        id: ConnId,
        user: UserRef,
        version: u16,
        max_bytes: usize,
        metrics: Metrics,
    ) -> (Outbox, mpsc::UnboundedReceiver<Bytes>, Arc<QueueBytes>, Arc<ConnControl>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let control = Arc::new(ConnControl::default());
        let queue = Arc::new(QueueBytes { queued: AtomicUsize::new(0), max: max_bytes.max(1), metrics });
        let outbox = Outbox { id, user, version, tx, queue: Arc::clone(&queue), control: Arc::clone(&control) };
        (outbox, rx, queue, control)
    }

    /// The connection's id.
    #[must_use]
    pub(crate) fn id(&self) -> ConnId {
        self.id
    }

    /// Whether live messages reach this connection without their log position: protocol 1
    /// and 2 (which know no positions) and [`POSITION_FRAMES`] on.
    #[must_use]
    pub(crate) fn takes_unpositioned(&self) -> bool {
        self.version < 3 || self.version >= POSITION_FRAMES
    }

    /// The connection's control block.
    #[must_use]
    pub(crate) fn control(&self) -> &ConnControl {
        &self.control
    }

    /// Queues an encoded frame. Returns whether it was queued. A frame that would take the
    /// queue past its byte bound closes the connection as a slow consumer; a closed queue
    /// means the connection is gone.
    pub(crate) fn push(&self, frame: Bytes) -> bool {
        if self.control.is_killed() {
            return false;
        }
        let cost = frame.len() + FRAME_OVERHEAD;
        let before = self.queue.queued.fetch_add(cost, Ordering::AcqRel);
        if before + cost > self.queue.max {
            self.queue.queued.fetch_sub(cost, Ordering::AcqRel);
            if !self.control.is_killed() {
                self.queue.metrics.error(ErrorCode::SLOW_CONSUMER);
            }
            self.control.kill(ErrorCode::SLOW_CONSUMER, "the client did not read its messages fast enough");
            return false;
        }
        self.queue.metrics.outbound_bytes(i64::try_from(cost).unwrap_or(0));
        if self.tx.send(frame).is_err() {
            self.queue.queued.fetch_sub(cost, Ordering::AcqRel);
            self.queue.metrics.outbound_bytes(-i64::try_from(cost).unwrap_or(0));
            return false;
        }
        true
    }

    /// Encodes and queues a frame.
    pub(crate) fn push_frame(&self, frame: &ServerFrame) -> bool {
        match frame.encode() {
            Ok(bytes) => self.push(Bytes::from(bytes)),
            Err(e) => {
                tracing::error!(error = %e, "a server frame could not be encoded");
                false
            }
        }
    }
}
