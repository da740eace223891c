//! What this node knows of the others: which users each holds, and when each was last
//! heard (a node not heard for the node timeout is forgotten, its users go offline here).
//! Time is passed in, so the tests run without waiting.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chat_protocol::UserRef;

use super::NodeId;

/// What the other nodes hold: their users and when each was last heard.
#[derive(Debug, Default)]
pub(super) struct Remote {
    nodes: HashMap<NodeId, (Instant, HashSet<UserRef>)>,
    /// On how many other nodes each user is online.
    count: HashMap<UserRef, u32>,
}

impl Remote {
    /// Notes that `node` spoke; returns whether it is new.
    pub(super) fn heard(&mut self, node: NodeId, now: Instant) -> bool {
        let mut new = false;
        self.nodes.entry(node).and_modify(|(seen, _)| *seen = now).or_insert_with(|| {
            new = true;
            (now, HashSet::new())
        });
        new
    }

    /// This node was cut off from the bus and is back: every node gets a full timeout to be
    /// heard again (their silence meanwhile was ours).
    pub(super) fn refresh(&mut self, now: Instant) {
        for (seen, _) in self.nodes.values_mut() {
            *seen = now;
        }
    }

    /// How many other nodes are known.
    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Returns the users whose presence elsewhere changed, with their new state.
    pub(super) fn set(&mut self, node: NodeId, users: &[UserRef], online: bool) -> Vec<(UserRef, bool)> {
        let Some((_, held)) = self.nodes.get_mut(&node) else { return Vec::new() };
        let mut changed = Vec::new();
        for &user in users {
            let moved = if online { held.insert(user) } else { held.remove(&user) };
            if !moved {
                continue;
            }
            let count = self.count.entry(user).or_insert(0);
            if online {
                *count += 1;
                if *count == 1 {
                    changed.push((user, true));
                }
            } else {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.count.remove(&user);
                    changed.push((user, false));
                }
            }
        }
        changed
    }

    /// Forgets the nodes not heard for `timeout`; returns the users now offline everywhere
    /// else.
    pub(super) fn forget_silent(&mut self, timeout: Duration, now: Instant) -> Vec<UserRef> {
        let silent: Vec<NodeId> =
            self.nodes.iter().filter(|(_, (seen, _))| now.duration_since(*seen) > timeout).map(|(n, _)| *n).collect();
        let mut gone = Vec::new();
        for node in silent {
            tracing::warn!(node = format!("{node:016x}"), "a node stopped beating; its users go offline");
            if let Some((_, users)) = self.nodes.remove(&node) {
                for user in users {
                    if let Some(count) = self.count.get_mut(&user) {
                        *count = count.saturating_sub(1);
                        if *count == 0 {
                            self.count.remove(&user);
                            gone.push(user);
                        }
                    }
                }
            }
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_user_is_online_elsewhere_while_any_other_node_holds_them_and_a_silent_node_is_forgotten() {
        let mut r = Remote::default();
        let t0 = Instant::now();
        let u = UserRef::student(1);
        assert!(r.heard(1, t0));
        assert!(r.heard(2, t0));
        assert!(!r.heard(1, t0));
        assert_eq!(r.set(1, &[u], true), vec![(u, true)]);
        assert_eq!(r.set(2, &[u], true), vec![]);
        assert_eq!(r.set(1, &[u], false), vec![]);
        let timeout = Duration::from_secs(6);
        assert_eq!(r.forget_silent(timeout, t0 + timeout), vec![], "not past the timeout yet");
        assert!(!r.heard(1, t0 + Duration::from_secs(5)), "node 1 speaks again, node 2 does not");
        assert_eq!(r.forget_silent(timeout, t0 + Duration::from_secs(7)), vec![u], "node 2 held u; it is forgotten");
        assert_eq!(r.nodes.len(), 1, "node 1 was heard recently: kept");
        assert_eq!(r.set(1, &[u], true), vec![(u, true)]);
        assert_eq!(r.forget_silent(timeout, t0 + Duration::from_secs(12)), vec![u]);
        assert_eq!(r.len(), 0);
        // Events of a node not heard from (forgotten) change nothing.
        assert_eq!(r.set(2, &[u], true), vec![]);
    }

    #[test]
    fn after_a_bus_outage_every_node_gets_a_full_timeout_again() {
        let mut r = Remote::default();
        let t0 = Instant::now();
        let timeout = Duration::from_secs(6);
        let u = UserRef::teacher(3);
        r.heard(1, t0);
        r.set(1, &[u], true);
        // Cut off for 20 s: node 1 was silent only because we heard nothing.
        r.refresh(t0 + Duration::from_secs(20));
        assert_eq!(r.forget_silent(timeout, t0 + Duration::from_secs(25)), vec![]);
        // Still silent a full timeout after we are back: now it is gone.
        assert_eq!(r.forget_silent(timeout, t0 + Duration::from_secs(27)), vec![u]);
    }
}
