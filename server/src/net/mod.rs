//! The network side: accepting sockets, the HTTP routes, and each WebSocket connection.

pub(crate) mod conn;
pub(crate) mod http;
pub(crate) mod listen;
pub(crate) mod state;
