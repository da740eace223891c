//! De-duplication: every message id is reported to the app once.

use alloc::vec::Vec;

use chat_protocol::MessageId;

/// How many message ids are remembered to drop repeats (at least; up to twice as many).
const DEDUP_CAPACITY: usize = 10_000;

/// The ids of messages already reported, as a sorted vector.
///
/// Ids are mostly time-ordered (UUIDv7), so an insert lands at the end or a few places
/// before it: the search walks back from the end (and finds a repeat on the way), cheap for
/// nearly ordered ids and smaller in the browser bundle than a binary search. When the vector
/// holds twice the capacity, the lowest (oldest) half is dropped at once. A plain sorted `Vec`
/// keeps the bundle far smaller than a tree or hash map.
#[derive(Debug, Default)]
pub(super) struct SeenIds(Vec<u128>);

impl SeenIds {
    /// Adds `id`; returns false if it was already there.
    pub(super) fn insert(&mut self, id: MessageId) -> bool {
        let key = u128::from_be_bytes(id.0);
        let mut position = self.0.len();
        while position > 0 && self.0[position - 1] >= key {
            if self.0[position - 1] == key {
                return false;
            }
            position -= 1;
        }
        self.0.insert(position, key);
        if self.0.len() >= 2 * DEDUP_CAPACITY {
            // Copy down and truncate (ids are `Copy`): no `Drain` and its drop guard.
            self.0.copy_within(DEDUP_CAPACITY.., 0);
            self.0.truncate(self.0.len() - DEDUP_CAPACITY);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_id_once_in_any_order_and_the_oldest_half_forgotten() {
        let mut seen = SeenIds::default();
        let id = |n: u128| MessageId(n.to_be_bytes());
        // Out of order, repeats far back and near the end.
        for n in [5, 3, 9, 1, 7] {
            assert!(seen.insert(id(n)));
        }
        for n in [1, 3, 5, 7, 9] {
            assert!(!seen.insert(id(n)), "{n} is a repeat");
        }
        assert_eq!(seen.0, [1, 3, 5, 7, 9], "kept sorted");
        for n in 10..(2 * DEDUP_CAPACITY as u128) + 5 {
            assert!(seen.insert(id(n)));
        }
        assert!(seen.0.len() < 2 * DEDUP_CAPACITY);
        assert!(seen.0.windows(2).all(|w| w[0] < w[1]), "still sorted after the trim");
        assert!(seen.insert(id(1)), "the oldest were forgotten");
        assert!(!seen.insert(id(2 * DEDUP_CAPACITY as u128)), "the newest are kept");
    }
}
