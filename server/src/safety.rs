//! Reports offered to the app: every stored report is POSTed as JSON to `CHAT_REPORT_WEBHOOK`
//! (a route of the Next.js app, say, that alerts the safeguarding lead), signed with the
//! token secret the app already holds: `X-Chat-Signature: sha256=<hex HMAC-SHA256 of the body>`.
//!
//! The report is stored before the webhook hears of it, so a webhook that is down loses
//! nothing: it is tried four times over about half a minute, then counted as failed
//! (`chat_safety_total{reason="webhook_failed"}`) and left in `chat_report` for staff.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// Reports waiting for the webhook, at most.
const QUEUE: usize = 1024;

/// The pauses between attempts.
const RETRIES: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(25)];

/// The signature header's value for `body`: `sha256=` and the hex HMAC-SHA256 under `secret`.
#[must_use]
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Where reports go: a queue in front of the webhook's task. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct ReportHook {
    queue: mpsc::Sender<(i64, String)>,
    metrics: Metrics,
}

impl ReportHook {
    /// Starts the task that posts to `url`.
    pub(crate) fn start(url: url::Url, secret: Vec<u8>, metrics: Metrics) -> ReportHook {
        let (queue, mut reports) = mpsc::channel::<(i64, String)>(QUEUE);
        let task_metrics = metrics.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
            while let Some((id, body)) = reports.recv().await {
                let signed = signature(&secret, body.as_bytes());
                let mut pauses = RETRIES.iter();
                loop {
                    let sent = http
                        .post(url.clone())
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .header("X-Chat-Signature", &signed)
                        .header("X-Chat-Report", id.to_string())
                        .body(body.clone())
                        .send()
                        .await;
                    let failure = match sent {
                        Ok(r) if r.status().is_success() => None,
                        Ok(r) => Some(format!("the webhook answered {}", r.status())),
                        Err(e) => Some(format!("the webhook did not answer: {e}")),
                    };
                    let Some(failure) = failure else {
                        task_metrics.safety("webhook_delivered");
                        break;
                    };
                    if let Some(pause) = pauses.next() {
                        tracing::warn!(report = id, "{failure}; trying again in {pause:?}");
                        tokio::time::sleep(*pause).await;
                    } else {
                        tracing::error!(report = id, "{failure}; giving up (the report stays in chat_report)");
                        task_metrics.safety("webhook_failed");
                        break;
                    }
                }
            }
        });
        ReportHook { queue, metrics }
    }

    /// Queues report `id` (its JSON `body`); a full queue drops it (counted, logged: the
    /// report itself is stored).
    pub(crate) fn offer(&self, id: i64, body: String) {
        if self.queue.try_send((id, body)).is_err() {
            tracing::error!(report = id, "the report webhook's queue is full; the report stays in chat_report");
            self.metrics.safety("webhook_failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
