//! The sending half: events queued by the hub, the feed and the connections go out in
//! batches, packed into bodies that fit the transport, each sealed ([`super::seal`]) and
//! numbered by this node.

use base64::Engine as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::seal::{BusKeys, Header};
use super::{BusEvent, NodeId};
use crate::metrics::Metrics;
use crate::store::PgDb;

/// How the node reaches the bus.
#[derive(Clone, Debug)]
pub(super) enum Transport {
    Postgres(PgDb),
    Nats(async_nats::Client),
}

impl Transport {
    pub(super) async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), String> {
        match self {
            Transport::Postgres(pool) => {
                let text = base64::engine::general_purpose::STANDARD_NO_PAD.encode(payload);
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(channel)
                    .bind(text)
                    .execute(pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            Transport::Nats(client) => {
                client.publish(channel.to_owned(), payload.into()).await.map_err(|e| e.to_string())
            }
        }
    }
}

/// Seals this node's payloads, numbering them.
pub(super) struct Sealer {
    pub(super) keys: BusKeys,
    pub(super) node: NodeId,
    pub(super) seq: u64,
}

impl Sealer {
    fn seal(&mut self, channel: &str, body: &[u8]) -> Vec<u8> {
        self.seq += 1;
        let header = Header { node: self.node, seq: self.seq, sent_ms: crate::now_ms() };
        self.keys.seal(channel, header, body)
    }
}

/// Publishes queued events in batches until `leaving`; then publishes what is still queued
/// and ends.
pub(super) async fn publish_loop(
    mut rx: mpsc::Receiver<BusEvent>,
    transport: Transport,
    channel: String,
    mut sealer: Sealer,
    max_body: usize,
    metrics: Metrics,
    leaving: CancellationToken,
) {
    let mut queued = Vec::with_capacity(256);
    loop {
        let received = tokio::select! {
            n = rx.recv_many(&mut queued, 256) => n,
            () = leaving.cancelled(), if !rx.is_closed() => {
                // Take no more; what is buffered is still received, then recv_many says 0.
                rx.close();
                continue;
            }
        };
        if received == 0 {
            return;
        }
        // Commits and log wake-ups first: they are what a message waits for on the other
        // nodes (in the order queued: a commit before the round that logged it).
        queued.sort_by_key(|e| !e.wakes());
        for (body, wakes) in bodies(std::mem::take(&mut queued), max_body) {
            let payload = sealer.seal(&channel, &body);
            let reason = if wakes { "wakeup" } else { "events" };
            match transport.publish(&channel, payload).await {
                Ok(()) => metrics.bus_published(reason),
                Err(e) => {
                    tracing::warn!(error = %e, "the bus refused {reason}; they are lost (the feed polls the log, presence is re-sent on reconnect)");
                }
            }
        }
    }
}

/// Packs events into bodies of at most `max_body` encoded bytes, each with whether it
/// wakes the feed. A log wake-up whose rows do not fit alone goes as a bare wake-up.
pub(super) fn bodies(events: Vec<BusEvent>, max_body: usize) -> Vec<(Vec<u8>, bool)> {
    let encode = |events: &Vec<BusEvent>| postcard::to_allocvec(events).unwrap_or_default();
    let mut out = Vec::new();
    let mut current: Vec<BusEvent> = Vec::new();
    let wakes = |events: &[BusEvent]| events.iter().any(BusEvent::wakes);
    for mut event in events {
        // (A commit notice was sized when queued, `Bus::committed`: it always fits.)
        if matches!(event, BusEvent::Logged(_)) && encode(&vec![event.clone()]).len() > max_body {
            event = BusEvent::Log;
        }
        current.push(event);
        if current.len() > 1 && encode(&current).len() > max_body {
            let last = current.pop().into_iter().collect();
            let full = std::mem::replace(&mut current, last);
            out.push((encode(&full), wakes(&full)));
        }
    }
    if !current.is_empty() {
        out.push((encode(&current), wakes(&current)));
    }
    out
}
