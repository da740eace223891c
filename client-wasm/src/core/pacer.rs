//! Spending the server's announced request budget.

use chat_protocol::{Limits, Millis};

/// The server's request budget as the client spends it: a token bucket refilled at the
/// announced rate, in thousandths of a request so the arithmetic stays in integers.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Pacer {
    milli: i64,
    per_second: i64,
    burst: i64,
    at: Millis,
}

impl Pacer {
    pub(super) fn new(limits: &Limits, now: Millis) -> Self {
        // Nine tenths of the announced rate: a margin for the clocks and the network, so a
        // paced client is never the one the server has to refuse.
        let per_second = (i64::from(limits.requests_per_second) * 9 / 10).max(1);
        let burst = i64::from(limits.request_burst.max(1));
        Pacer { milli: burst * 1000, per_second, burst, at: now }
    }

    fn refill(&mut self, now: Millis) {
        let elapsed = (now - self.at).max(0);
        self.milli = (self.milli + elapsed * self.per_second).min(self.burst * 1000);
        self.at = now;
    }

    /// Takes one request's worth if there is one.
    pub(super) fn take(&mut self, now: Millis) -> bool {
        self.refill(now);
        let ok = self.milli >= 1000;
        if ok {
            self.milli -= 1000;
        }
        ok
    }

    /// Takes one request's worth even into debt (requests that cannot wait).
    pub(super) fn spend(&mut self) {
        self.milli -= 1000;
    }

    /// When the next request's worth will be there.
    pub(super) fn ready_at(&self) -> Millis {
        let per_second = self.per_second.max(1);
        self.at + ((1000 - self.milli).max(0) + per_second - 1) / per_second
    }

    /// The server refused: whatever we thought we had, we have nothing.
    pub(super) fn empty(&mut self) {
        self.milli = self.milli.min(0);
    }
}
