//! From an accepted send to every connection that should have it, on this node and the
//! others: the writer commits and delivers, the hub holds the connections and their queues,
//! the feed follows the message log, the bus carries what nodes tell each other.

pub(crate) mod announce;
pub mod bus;
pub(crate) mod feed;
pub(crate) mod hub;
pub(crate) mod notice;
pub(crate) mod outbox;
pub(crate) mod writer;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, taking a poisoned lock as it is.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the maps half-updated in a
    // way that matters more than losing the whole server, so keep going.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` on what `m` guards (a poisoned lock is taken as it is, as everywhere here).
pub(crate) fn with_lock<T, R>(m: &Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
    f(&mut lock(m))
}
