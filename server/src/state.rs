//! The state every connection and HTTP handler shares, and the user directory cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chat_protocol::UserRef;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::config::ServeConfig;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::writer::Writer;

/// Shared server state. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct AppState(pub(crate) Arc<Shared>);

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ServeConfig,
    pub(crate) store: Store,
    pub(crate) hub: Hub,
    pub(crate) writer: Writer,
    pub(crate) users: UserDirectory,
    pub(crate) auth: Auth,
    pub(crate) metrics: Metrics,
    /// Cancelled when the server starts shutting down.
    pub(crate) shutdown: CancellationToken,
    /// Cancelled once the writer has committed and acked everything it accepted.
    pub(crate) drained: CancellationToken,
    /// Every connection task, so shutdown can wait for them.
    pub(crate) tracker: TaskTracker,
    /// WebSocket connections currently upgraded (authenticated or not).
    pub(crate) open: AtomicUsize,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Holds one of the `max_connections` slots; released on drop.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    state: AppState,
    /// Whether the slot is beyond the limit (the connection is refused after upgrade).
    pub(crate) over_limit: bool,
}

impl ConnectionSlot {
    pub(crate) fn take(state: &AppState) -> Self {
        let before = state.open.fetch_add(1, Ordering::AcqRel);
        ConnectionSlot { state: state.clone(), over_limit: before >= state.config.limits.max_connections }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.state.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A cache in front of `users_view`: every send checks that its recipient exists, and
/// the database should not answer the same question thousands of times a second.
#[derive(Debug)]
pub(crate) struct UserDirectory {
    store: Store,
    cache: Mutex<HashMap<UserRef, (Arc<str>, Instant)>>,
    ttl: Duration,
}

/// Entries kept at most; the cache is simply emptied when it grows past this.
const DIRECTORY_CAPACITY: usize = 200_000;

impl UserDirectory {
    pub(crate) fn new(store: Store, ttl: Duration) -> Self {
        UserDirectory { store, cache: Mutex::new(HashMap::new()), ttl }
    }

    /// The user's display name, or `None` if `users_view` has no such user.
    pub(crate) async fn name(&self, user: UserRef) -> Result<Option<Arc<str>>, StoreError> {
        {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((name, at)) = cache.get(&user)
                && at.elapsed() < self.ttl
            {
                return Ok(Some(Arc::clone(name)));
            }
        }
        // Unknown users are not cached: a user created a moment ago must work at once.
        let Some(name) = self.store.find_user(user).await? else {
            return Ok(None);
        };
        let name: Arc<str> = name.into();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= DIRECTORY_CAPACITY {
            cache.clear();
        }
        cache.insert(user, (Arc::clone(&name), Instant::now()));
        Ok(Some(name))
    }
}
