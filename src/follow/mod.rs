//! Follow: what happens after the backfill. [`live`] follows growing files (or
//! a pipe) inside the memory budget, [`watch`] notices rotation, truncation and
//! rewrites the way `tail -F` does, and [`handover`] switches from a backfill to
//! live mode by `exec()` at the committed offset.
//!
//! The top of the pipeline below `run`: may call every other stage.

pub mod handover;
pub mod live;
pub mod watch;
