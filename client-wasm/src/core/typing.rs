//! Typing notices: throttling our own, expiring our peers'.

use alloc::vec::Vec;

use chat_protocol::{Millis, UserRef};

use super::timers::earliest;
use super::vocabulary::Event;

/// Who we told we are typing to, and who is typing to us.
#[derive(Debug, Default)]
pub(super) struct Typing {
    /// Peers told "typing", with when it was last sent.
    out: Vec<(UserRef, Millis)>,
    /// Peers typing to us, with when that expires.
    inbound: Vec<(UserRef, Millis)>,
}

impl Typing {
    /// Whether a typing change must go to the server (and records it if so): "on" at most
    /// once per `throttle`, "off" only after an "on".
    pub(super) fn needs_sending(&mut self, now: Millis, peer: UserRef, on: bool, throttle: Millis) -> bool {
        let index = self.out.iter().position(|(p, _)| *p == peer);
        match (on, index) {
            (true, Some(i)) if now < self.out[i].1 + throttle => false,
            (true, Some(i)) => {
                self.out[i].1 = now;
                true
            }
            (true, None) => {
                self.out.push((peer, now));
                true
            }
            (false, Some(i)) => {
                self.out.swap_remove(i);
                true
            }
            (false, None) => false,
        }
    }

    /// A message went to `peer`: the server clears our typing there.
    pub(super) fn sent_to(&mut self, peer: UserRef) {
        // `position` and `swap_remove` (as above), not `retain`: no generic instance of its
        // own in the browser bundle. A peer is in the list once at most.
        if let Some(i) = self.out.iter().position(|(p, _)| *p == peer) {
            self.out.swap_remove(i);
        }
    }

    /// A peer's notice arrived; returns the change to report, if any.
    pub(super) fn notice(&mut self, from: UserRef, on: bool, expires: Millis) -> Option<bool> {
        let index = self.inbound.iter().position(|(p, _)| *p == from);
        match (on, index) {
            (true, Some(i)) => {
                self.inbound[i].1 = expires;
                None
            }
            (true, None) => {
                self.inbound.push((from, expires));
                Some(true)
            }
            (false, Some(i)) => {
                self.inbound.swap_remove(i);
                Some(false)
            }
            (false, None) => None,
        }
    }

    /// Ends the typing of `from` (any peer if `None`) that has expired by `now` (whatever
    /// its expiry if `None`); reports each peer that stopped to `events`.
    pub(super) fn stop_inbound(&mut self, from: Option<UserRef>, now: Option<Millis>, events: &mut Vec<Event>) {
        let mut i = 0;
        while i < self.inbound.len() {
            let (peer, expires) = self.inbound[i];
            if from.is_none_or(|f| f == peer) && now.is_none_or(|n| n >= expires) {
                self.inbound.swap_remove(i);
                events.push(Event::Typing { from: peer, on: false });
            } else {
                i += 1;
            }
        }
    }

    /// The connection closed: what we said is forgotten with it.
    pub(super) fn disconnected(&mut self) {
        self.out.clear();
    }

    pub(super) fn next_expiry(&self) -> Option<Millis> {
        let mut next = None;
        for (_, expires) in &self.inbound {
            next = earliest(next, Some(*expires));
        }
        next
    }
}
