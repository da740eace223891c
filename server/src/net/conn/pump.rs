//! The pump: writes a connection's queued frames to its socket, flushing in batches, and
//! closes the socket with the reason it was given.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use bytes::Bytes;
use chat_protocol::{ErrorCode, MAX_SERVER_FRAME_BYTES, ServerFrame};
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::{CLOSE_WRITE_TIMEOUT, Sink, close_with};
use crate::delivery::outbox::{ConnControl, Ending, QueueBytes};

/// Frames written to the socket before one flush, when many are waiting.
const WRITE_BATCH: usize = 64;

/// Writes queued frames to the socket until the connection is told to close, then says
/// why and closes. A write that makes no progress for `stall` (the client stopped reading
/// and its TCP window is shut) closes the connection as a slow consumer.
pub(super) async fn pump(
    mut sink: Sink,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    queue: Arc<QueueBytes>,
    control: Arc<ConnControl>,
    stall: Duration,
) {
    'outer: loop {
        let first = tokio::select! {
            biased;
            () = control.killed() => break,
            frame = rx.recv() => match frame {
                Some(frame) => frame,
                None => break,
            },
        };
        // Write everything already waiting, then flush once.
        let mut pending = vec![first];
        while pending.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(frame) => pending.push(frame),
                Err(_) => break,
            }
        }
        let bytes: usize = pending.iter().map(Bytes::len).sum();
        let count = pending.len();
        let write = async {
            for frame in pending {
                if frame.len() > MAX_SERVER_FRAME_BYTES {
                    // Pages are packed well below this; a frame this large is a bug, and
                    // writing it would fail the socket for good.
                    tracing::error!(len = frame.len(), "a frame over the protocol's limit was not sent");
                    continue;
                }
                sink.feed(Message::Binary(frame)).await?;
            }
            sink.flush().await
        };
        let result = tokio::select! {
            biased;
            () = control.killed() => break 'outer,
            result = timeout(stall, write) => result,
        };
        queue.release_many(bytes, count);
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                queue.metrics().write_failure("error");
                tracing::info!(error = %e, "writing to a client failed; closing its connection");
                control.end_quietly();
                return;
            }
            Err(_) => {
                queue.metrics().write_failure("stalled");
                tracing::info!(
                    queued = queue.queued(),
                    seconds = stall.as_secs_f64(),
                    "a client read nothing for too long; closing its connection"
                );
                control.kill(ErrorCode::SLOW_CONSUMER, "the client did not read its messages");
                return;
            }
        }
    }
    let ending = control.reason().unwrap_or(Ending::Quiet);
    let finish = async {
        match ending {
            Ending::Quiet => {
                let _ignored_client_already_gone = sink.close().await;
            }
            Ending::Tell(code @ ErrorCode::SHUTTING_DOWN, message) => {
                // Flush the acks of everything committed during the drain, then "going away".
                while let Ok(frame) = rx.try_recv() {
                    if sink.feed(Message::Binary(frame)).await.is_err() {
                        return;
                    }
                }
                let fatal = ServerFrame::Fatal { code, message };
                if let Ok(bytes) = fatal.encode() {
                    let _ = sink.feed(Message::Binary(Bytes::from(bytes))).await;
                }
                let close = CloseFrame { code: 1001, reason: "server shutting down".into() };
                let _ = sink.send(Message::Close(Some(close))).await;
            }
            Ending::Tell(code, message) => close_with(&mut sink, code, &message).await,
        }
    };
    if timeout(CLOSE_WRITE_TIMEOUT, finish).await.is_err() {
        tracing::debug!("closing a connection timed out");
    }
}
