//! Reports offered to the app: every stored report is POSTed as JSON to `CHAT_REPORT_WEBHOOK`
//! (a route of the Next.js app, say, that alerts the safeguarding lead), signed with the
//! token secret the app already holds: `X-Chat-Signature: sha256=<hex HMAC-SHA256 of the body>`,
//! and numbered: `X-Chat-Report: <id>` (the same number as the body's `id`).
//!
//! `chat_report` is the outbox: a report is stored as pending, and the webhook's task takes
//! pending reports from the table (at once after a report here, and every second for
//! those of other nodes and retries), posts each, and marks it posted only when the
//! webhook answered 2xx. A webhook that is down loses nothing, however long it is down and
//! however many reports arrive meanwhile: each is retried with backoff (1 s doubling to
//! 10 minutes) until it is taken. Delivery is at least once (a node may die between the
//! post and the mark): the app de-duplicates by the report's number.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{PendingReport, Store};

/// Reports posted at most at once per round.
const CLAIM: i64 = 16;
/// How long a claimed report is held for this node (past the request's timeout).
const HOLD_MS: i64 = 60_000;
/// How often the task looks for reports without being woken.
const POLL: Duration = Duration::from_secs(1);
/// The longest pause between two attempts.
const MAX_BACKOFF_MS: i64 = 10 * 60_000;

/// The signature header's value for `body`: `sha256=` and the hex HMAC-SHA256 under `secret`.
#[must_use]
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The pause before attempt `attempts + 1`: 1 s, doubling, at most 10 minutes.
fn backoff_ms(attempts: i32) -> i64 {
    let shift = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    (1_000_i64 << shift).min(MAX_BACKOFF_MS)
}

/// The JSON body posted for a report.
#[must_use]
pub fn report_body(pending: &PendingReport) -> String {
    let r = &pending.report;
    let person = |u: chat_protocol::UserRef| serde_json::json!({ "role": u.role.as_str(), "id": u.id });
    serde_json::json!({
        "type": "report",
        "id": r.id,
        "at": crate::records::format_time(r.at),
        "reason": r.reason,
        "reporter": person(r.reporter),
        "message": {
            "id": r.message_id,
            "from": person(r.reported),
            "to": person(r.reporter),
            "content": r.content,
        },
    })
    .to_string()
}

/// Where reports go: wakes the task that posts pending reports from the table. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct ReportHook {
    wake: Arc<Notify>,
}

impl ReportHook {
    /// Starts the task that posts pending reports to `url`.
    pub(crate) fn start(url: url::Url, secret: Vec<u8>, store: Store, clock: Clock, metrics: Metrics) -> ReportHook {
        let wake = Arc::new(Notify::new());
        let woken = Arc::clone(&wake);
        tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
            loop {
                let now = clock.now_ms();
                let claimed = match store.claim_reports(now, now + HOLD_MS, CLAIM).await {
                    Ok(claimed) => claimed,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read pending reports; trying again shortly");
                        Vec::new()
                    }
                };
                let full = claimed.len() >= usize::try_from(CLAIM).unwrap_or(usize::MAX);
                for pending in claimed {
                    let id = pending.report.id;
                    let body = report_body(&pending);
                    let sent = http
                        .post(url.clone())
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .header("X-Chat-Signature", signature(&secret, body.as_bytes()))
                        .header("X-Chat-Report", id.to_string())
                        .body(body)
                        .send()
                        .await;
                    let failure = match sent {
                        Ok(r) if r.status().is_success() => None,
                        Ok(r) => Some(format!("the webhook answered {}", r.status())),
                        Err(e) => Some(format!("the webhook did not answer: {e}")),
                    };
                    let marked = match failure {
                        None => {
                            metrics.safety("webhook_delivered");
                            store.report_posted(id).await
                        }
                        Some(failure) => {
                            let pause = backoff_ms(pending.attempts);
                            metrics.safety("webhook_failed");
                            tracing::warn!(
                                report = id,
                                attempt = pending.attempts,
                                "{failure}; trying again in {} s (the report is kept until the webhook takes it)",
                                pause / 1000
                            );
                            store.report_retry_at(id, clock.now_ms() + pause).await
                        }
                    };
                    if let Err(e) = marked {
                        tracing::warn!(report = id, error = %e, "cannot record the webhook's answer; the report is tried again after its hold");
                    }
                }
                if !full {
                    tokio::select! {
                        () = woken.notified() => {}
                        () = tokio::time::sleep(POLL) => {}
                    }
                }
            }
        });
        ReportHook { wake }
    }

    /// A report was stored: post it now rather than at the next poll.
    pub(crate) fn stored(&self) {
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_a_second_to_ten_minutes() {
        assert_eq!((backoff_ms(1), backoff_ms(2), backoff_ms(3)), (1_000, 2_000, 4_000));
        assert_eq!(backoff_ms(11), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(i32::MAX), MAX_BACKOFF_MS);
    }

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
