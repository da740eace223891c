//! From an accepted send to every connection that should have it, on this node and the
//! others: the writer commits and delivers, the hub holds the connections and their queues,
//! the feed follows the message log, the bus carries what nodes tell each other.

pub mod bus;
pub(crate) mod feed;
pub(crate) mod hub;
pub(crate) mod writer;
