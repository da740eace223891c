//! The chat client SDK.
//!
//! - [`core`]: the session state machine, sans IO (no sockets, no clock, no randomness
//!   of its own): the outbox, request correlation and timeouts, de-duplication, reconnect
//!   with backoff, token refresh, catch-up after a disconnect.
//! - [`url`]: the server URL as the app writes it (`http://localhost:4000`) to the
//!   WebSocket endpoint (`ws://localhost:4000/ws`).
//! - `native` (feature `native`): a tokio + tokio-tungstenite transport, used by the Rust
//!   integration tests that run the real server and real clients in one process.
//! - [`json`]: the session's events as JSON text, as the browser package receives them.
//! - `web` (wasm32 only): the session exported to JavaScript with wasm-bindgen (`Core`);
//!   the package in `pkg/` (TypeScript) does the browser's IO around it: `chat-sdk` on npm.

extern crate alloc;

pub mod core;
pub mod json;
pub mod url;

#[cfg(feature = "native")]
pub mod native;

#[cfg(target_arch = "wasm32")]
pub mod web;

// lol_alloc's free list (address-ordered, coalescing) instead of the default dlmalloc: several
// KB less of the browser bundle, and 0.4 KB gzip less than talc, with the same speed on the
// browser test's long session and no growth once the core's own sets are full
// (`memory_stays_bounded_over_a_long_session`; BENCHMARKS.md, "Browser bundle"). The
// spin-locked wrapper, not the single-threaded one: that one takes `unsafe`.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

pub use chat_protocol as protocol;
