//! The session state machine, sans IO: no sockets, no clock, no randomness of its own.
//!
//! A transport (native tokio, or the browser's WebSocket) feeds it inputs — the app's
//! calls, a token, the socket opening, a frame, the socket closing, the time passing —
//! each with the current time, and then drains its outputs:
//! [`Session::poll_transmit`] (frames to write), [`Session::poll_action`] (open or close
//! the socket, fetch a token), [`Session::poll_event`] (what the app should learn) and
//! [`Session::poll_timeout`] (when to call [`Session::handle_timeout`] next).
//!
//! It owns the guarantees the SDK makes: a send stays in the outbox until the server acks
//! it and is sent again with the same id after every reconnect, in order; a message
//! delivered twice reaches the app once; requests time out cleanly; a refused token ends
//! in the terminal `Unauthorized` state instead of reconnecting forever; sends go out no
//! faster than the rate the server announced, and back off when it says `rate_limited`.
//!
//! Layout, in the manner of quinn-proto:
//! - `session`: [`Session`], the state machine: the app's calls, `handle_*` and `poll_*`;
//!   a connection's life in `session/lifecycle`, sends and its own requests in `session/exchange`.
//! - `vocabulary`: what crosses its edge ([`Timings`], [`Status`], [`Action`], [`Request`],
//!   [`Event`]).
//! - `timers`: the timer table; `requests`: requests in flight, each with its purpose;
//!   `outbox`: unacknowledged sends; `dedup`: ids already reported; `typing`: typing
//!   notices both ways; `pacer`: the server's request budget.

mod dedup;
mod outbox;
mod pacer;
mod requests;
mod session;
mod timers;
mod typing;
mod vocabulary;

pub use session::Session;
pub use vocabulary::{Action, Event, Request, Status, Timings, TokenPurpose};
