//! The server's wall clock: the system's in production, one the test moves in tests.
//!
//! Wall time matters where the protocol carries it: a message's `createdAt`, a token's
//! expiry (the connection ends when it passes), the welcome's and pong's `server_time`,
//! when a message was read. Everything else the server waits for is a duration (idle,
//! hello and write-stall timeouts) on tokio's timers.

use std::sync::Arc;
use std::time::Duration;

use chat_protocol::Millis;
use tokio::sync::watch;

/// Where the server reads the time.
#[derive(Clone, Debug, Default)]
pub struct Clock(Option<Arc<watch::Sender<Millis>>>);

impl Clock {
    /// The system clock.
    #[must_use]
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stands still at `start` until [`Clock::advance`] moves it: tests use it
    /// to pass a token's expiry, or to space messages' timestamps, without waiting.
    #[must_use]
    pub fn manual(start: Millis) -> Clock {
        Clock(Some(Arc::new(watch::Sender::new(start))))
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub fn now_ms(&self) -> Millis {
        match &self.0 {
            None => crate::now_ms(),
            Some(manual) => *manual.borrow(),
        }
    }

    /// Moves a manual clock forward by `ms` (and wakes everything waiting on it).
    ///
    /// # Panics
    /// On the system clock, which only time moves.
    pub fn advance(&self, ms: Millis) {
        let Some(manual) = &self.0 else { panic!("the system clock cannot be advanced") };
        manual.send_modify(|now| *now += ms.max(0));
    }

    /// Resolves once the clock reads `at` or later.
    pub async fn sleep_until(&self, at: Millis) {
        match &self.0 {
            None => {
                // Re-checked after waking: the system clock may have been set back meanwhile.
                loop {
                    let left = at.saturating_sub(crate::now_ms());
                    if left <= 0 {
                        return;
                    }
                    // Capped so a far-off instant never overflows the timer.
                    let wait = u64::try_from(left).unwrap_or(0).min(86_400_000);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
            }
            Some(manual) => {
                let mut rx = manual.subscribe();
                // The sender lives as long as this clock does.
                let _ = rx.wait_for(|&now| now >= at).await;
            }
        }
    }
}
