//! The browser transport (in progress).
