//! The session's timers: one table indexed by an enum, so arming, disarming and finding
//! the next deadline are written once; and the two bits of time arithmetic the session shares
//! (`earliest`, `doubled`).

use chat_protocol::Millis;

/// Everything the session waits for, besides request deadlines and typing expiry (which
/// live with their requests and peers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// The next connection attempt.
    Reconnect,
    /// The socket must open and the welcome arrive by then.
    Connect,
    /// Sends refused with a retryable code go out again.
    RetrySends,
    /// Sends waiting for the request budget go out.
    Pace,
    /// A catch-up refused with a retryable code is asked again.
    Resync,
    /// The next ping (only while open).
    Heartbeat,
    /// The token refresh starts (only while open).
    Refresh,
}

const TIMERS: usize = 7;

impl Timer {
    const fn index(self) -> usize {
        self as usize
    }

    /// Timers that only mean something on an open connection.
    const fn needs_open(self) -> bool {
        matches!(self, Timer::Heartbeat | Timer::Refresh)
    }
}

/// When each timer fires, if armed.
#[derive(Clone, Debug, Default)]
pub(super) struct Timers([Option<Millis>; TIMERS]);

impl Timers {
    pub(super) fn set(&mut self, timer: Timer, at: Millis) {
        self.0[timer.index()] = Some(at);
    }

    pub(super) fn stop(&mut self, timer: Timer) {
        self.0[timer.index()] = None;
    }

    pub(super) fn is_set(&self, timer: Timer) -> bool {
        self.0[timer.index()].is_some()
    }

    /// Disarms `timer` and returns true if it is due at `now`.
    pub(super) fn fire(&mut self, timer: Timer, now: Millis) -> bool {
        let due = self.0[timer.index()].is_some_and(|at| now >= at);
        if due {
            self.stop(timer);
        }
        due
    }

    /// Disarms everything that belongs to one connection (all but the reconnect).
    pub(super) fn stop_connection(&mut self) {
        let reconnect = self.0[Timer::Reconnect.index()];
        self.0 = [None; TIMERS];
        self.0[Timer::Reconnect.index()] = reconnect;
    }

    /// Disarms everything.
    pub(super) fn stop_all(&mut self) {
        self.0 = [None; TIMERS];
    }

    /// The earliest armed deadline; timers that need an open connection count only when `open`.
    pub(super) fn next(&self, open: bool) -> Option<Millis> {
        const ALL: [Timer; TIMERS] = [
            Timer::Reconnect,
            Timer::Connect,
            Timer::RetrySends,
            Timer::Pace,
            Timer::Resync,
            Timer::Heartbeat,
            Timer::Refresh,
        ];
        let mut next = None;
        for t in ALL {
            if open || !t.needs_open() {
                next = earliest(next, self.0[t.index()]);
            }
        }
        next
    }
}

/// The earlier of two optional times. (Plain loops folding with this, rather than iterator
/// chains ending in `min`, are what keep the deadline code small in the browser bundle.)
pub(super) fn earliest(a: Option<Millis>, b: Option<Millis>) -> Option<Millis> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `base` doubled `times` times, and at most `cap`: a backoff's ceiling. (A loop of additions
/// rather than `saturating_mul`, whose overflow check is a 128-bit multiply in the browser.)
pub(super) fn doubled(base: Millis, times: u32, cap: Millis) -> Millis {
    let mut d = base;
    for _ in 0..times {
        if d >= cap {
            break;
        }
        d = d.saturating_add(d);
    }
    d.min(cap)
}

// Natively: proptest is a native dev-dependency.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use proptest::prelude::*;

    use super::doubled;

    proptest! {
        /// The loop gives what the multiplication it replaced gave.
        #[test]
        fn doubled_is_the_capped_power_of_two_multiple(base in 0i64..=i64::MAX, times in 0u32..=20, cap in 0i64..=i64::MAX) {
            prop_assert_eq!(doubled(base, times, cap), base.saturating_mul(1i64 << times).min(cap));
        }
    }
}
