//! The browser transport and the JavaScript API (`ChatClient`), exported with wasm-bindgen.
//!
//! The sans-IO [`Session`] does the work; this module only moves bytes between it and a
//! `WebSocket`, keeps one `setTimeout` armed for [`Session::poll_timeout`], calls the
//! app's `getToken`, and turns events into promise resolutions and listener calls.
//! Every closure handed to the browser is owned here and unregistered on drop (never
//! leaked with `forget`), except one-shot promise callbacks, which free themselves.
//! JavaScript callbacks are invoked only after the internal borrow is released, so a
//! handler may call back into the client.
//!
//! Layout, in layers (after automerge-wasm): `client` holds the exported `ChatClient` and
//! checks its options; `driver` moves bytes and time between the session and the browser
//! (the socket, the timer, the token provider); `listeners` turns the session's events into
//! promise resolutions and listener calls; `convert` maps values to and from JavaScript;
//! `types` holds the TypeScript declarations of all of it.

mod client;
mod convert;
mod driver;
mod listeners;
mod types;

pub use client::ChatClient;
pub use types::*;
