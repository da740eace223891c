//! The state every connection and HTTP handler shares, and the slots that count connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chat_protocol::UserRef;
use governor::DefaultKeyedRateLimiter;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::config::ServeConfig;
use crate::delivery::feed::Feed;
use crate::delivery::hub::Hub;
use crate::delivery::writer::Writer;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::users::UserDirectory;

/// Shared server state. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct AppState(pub(crate) Arc<Shared>);

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ServeConfig,
    pub(crate) store: Store,
    pub(crate) hub: Hub,
    /// The message log's follower: positions for new connections.
    pub(crate) feed: Feed,
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
    /// Authenticated WebSocket connections.
    pub(crate) open: AtomicUsize,
    /// Connections not yet authenticated, in all and by IP address.
    pub(crate) pending: Mutex<PendingCount>,
    /// The request budget of each user, shared by all of the user's connections.
    pub(crate) rates: DefaultKeyedRateLimiter<UserRef>,
    /// Where reports are offered to the app (`CHAT_REPORT_WEBHOOK`), if anywhere.
    pub(crate) reports: Option<crate::records::report_hook::ReportHook>,
    /// Whether the bus to the other nodes is up (`None`: a single node).
    pub(crate) bus: Option<crate::delivery::bus::BusHealth>,
}

/// Counts of unauthenticated connections.
#[derive(Debug, Default)]
pub(crate) struct PendingCount {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Holds one of the `max_connections` slots of authenticated connections; released on drop.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    state: AppState,
}

impl ConnectionSlot {
    /// Takes a slot, or `None` when every slot is taken.
    pub(crate) fn take(state: &AppState) -> Option<Self> {
        let max = state.config.limits.max_connections;
        state
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| (open < max).then_some(open + 1))
            .ok()
            .map(|_| ConnectionSlot { state: state.clone() })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.state.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why an unauthenticated connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PendingRefusal {
    /// The server-wide budget of unauthenticated connections is used up.
    Full,
    /// This IP address holds its share already.
    PerIp,
}

/// Holds one of the `max_pending` slots of unauthenticated connections (and one of its
/// IP address's); released on drop, which happens when the connection closes or
/// authenticates. Taken when the TCP connection is accepted, so half-sent HTTP requests
/// and sockets that never say hello count here and never against authenticated users.
#[derive(Debug)]
pub(crate) struct PendingSlot {
    state: AppState,
    ip: IpAddr,
}

impl PendingSlot {
    pub(crate) fn take(state: &AppState, ip: IpAddr) -> Result<Self, PendingRefusal> {
        let limits = &state.config.limits;
        let mut pending = state.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.total >= limits.max_pending {
            return Err(PendingRefusal::Full);
        }
        let mine = pending.by_ip.entry(ip).or_default();
        if *mine >= limits.max_pending_per_ip {
            return Err(PendingRefusal::PerIp);
        }
        *mine += 1;
        pending.total += 1;
        drop(pending);
        state.metrics.pending(1);
        Ok(PendingSlot { state: state.clone(), ip })
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut pending = self.state.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.total = pending.total.saturating_sub(1);
        if let Some(n) = pending.by_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                pending.by_ip.remove(&self.ip);
            }
        }
        drop(pending);
        self.state.metrics.pending(-1);
    }
}
