//! De-duplication: every message id is reported to the app once.

use alloc::vec::Vec;

use chat_protocol::MessageId;

/// How many message ids are remembered to drop repeats (at least; up to twice as many).
const DEDUP_CAPACITY: usize = 10_000;

/// The ids of messages already reported, as a sorted vector.
///
/// Ids are mostly time-ordered (UUIDv7), so inserts land at the end and cost O(1); when
/// the vector holds twice the capacity, the lowest (oldest) half is dropped at once. A
/// plain sorted `Vec` keeps the browser bundle far smaller than a tree or hash map.
#[derive(Debug, Default)]
pub(super) struct SeenIds(Vec<u128>);

impl SeenIds {
    /// Adds `id`; returns false if it was already there.
    pub(super) fn insert(&mut self, id: MessageId) -> bool {
        let key = u128::from_be_bytes(id.0);
        let position = if self.0.last().is_none_or(|&last| last < key) {
            self.0.len()
        } else {
            match self.0.binary_search(&key) {
                Ok(_) => return false,
                Err(position) => position,
            }
        };
        self.0.insert(position, key);
        if self.0.len() >= 2 * DEDUP_CAPACITY {
            // Copy down and truncate (ids are `Copy`): no `Drain` and its drop guard.
            self.0.copy_within(DEDUP_CAPACITY.., 0);
            self.0.truncate(self.0.len() - DEDUP_CAPACITY);
        }
        true
    }
}
