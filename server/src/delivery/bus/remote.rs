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
    /// The users all nodes hold, added up.
    entries: usize,
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

    /// Whether `node` is known.
    pub(super) fn knows(&self, node: NodeId) -> bool {
        self.nodes.contains_key(&node)
    }

    /// How many other nodes are known.
    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Returns the users whose presence elsewhere changed, with their new state; `None` when
    /// some were not taken because the nodes together already hold `max_entries` users (what
    /// other nodes say is kept bounded, whoever says it).
    pub(super) fn set(
        &mut self,
        node: NodeId,
        users: &[UserRef],
        online: bool,
        max_entries: usize,
    ) -> Option<Vec<(UserRef, bool)>> {
        let Some((_, held)) = self.nodes.get_mut(&node) else { return Some(Vec::new()) };
        let mut changed = Vec::new();
        let mut refused = false;
        for &user in users {
            if online && self.entries >= max_entries && !held.contains(&user) {
                refused = true;
                continue;
            }
            let moved = if online { held.insert(user) } else { held.remove(&user) };
            if !moved {
                continue;
            }
            if online {
                self.entries += 1;
            } else {
                self.entries -= 1;
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
        (!refused).then_some(changed)
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
                self.entries -= users.len();
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
        assert_eq!(r.set(1, &[u], true, 100).unwrap(), vec![(u, true)]);
        assert_eq!(r.set(2, &[u], true, 100).unwrap(), vec![]);
        assert_eq!(r.set(1, &[u], false, 100).unwrap(), vec![]);
        let timeout = Duration::from_secs(6);
        assert_eq!(r.forget_silent(timeout, t0 + timeout), vec![], "not past the timeout yet");
        assert!(!r.heard(1, t0 + Duration::from_secs(5)), "node 1 speaks again, node 2 does not");
        assert_eq!(r.forget_silent(timeout, t0 + Duration::from_secs(7)), vec![u], "node 2 held u; it is forgotten");
        assert_eq!(r.nodes.len(), 1, "node 1 was heard recently: kept");
        assert_eq!(r.set(1, &[u], true, 100).unwrap(), vec![(u, true)]);
        assert_eq!(r.forget_silent(timeout, t0 + Duration::from_secs(12)), vec![u]);
        assert_eq!(r.len(), 0);
        // Events of a node not heard from (forgotten) change nothing.
        assert_eq!(r.set(2, &[u], true, 100).unwrap(), vec![]);
    }

    #[test]
    fn what_other_nodes_say_is_kept_bounded() {
        let mut r = Remote::default();
        let t0 = Instant::now();
        r.heard(1, t0);
        r.heard(2, t0);
        let many: Vec<UserRef> = (0..10).map(UserRef::student).collect();
        assert_eq!(r.set(1, &many[..6], true, 8).unwrap().len(), 6);
        assert_eq!(r.set(2, &many, true, 8), None, "past the bound: refused (two taken, the rest not)");
        assert_eq!(r.entries, 8);
        assert_eq!(r.set(1, &many[..6], false, 8).unwrap().len(), 4, "two are still online on node 2");
        assert_eq!(r.entries, 2);
        assert!(r.set(2, &many[5..], true, 8).is_some(), "room again");
        assert_eq!(r.forget_silent(Duration::from_secs(1), t0 + Duration::from_secs(2)).len(), 7);
        assert_eq!(r.entries, 0);
    }

    #[test]
    fn after_a_bus_outage_every_node_gets_a_full_timeout_again() {
        let mut r = Remote::default();
        let t0 = Instant::now();
        let timeout = Duration::from_secs(6);
        let u = UserRef::teacher(3);
        r.heard(1, t0);
        r.set(1, &[u], true, 100).unwrap();
        // Cut off for 20 s: node 1 was silent only because we heard nothing.
        r.refresh(t0 + Duration::from_secs(20));
        assert_eq!(r.forget_silent(timeout, t0 + Duration::from_secs(25)), vec![]);
        // Still silent a full timeout after we are back: now it is gone.
        assert_eq!(r.forget_silent(timeout, t0 + Duration::from_secs(27)), vec![u]);
    }
}
