//! `ingestor`: SSE JSONL logs into SQLite, as fast as SQLite allows.
//!
//! The pipeline, in the order data flows: [`reader`] frames lines, [`scan`]
//! (over [`json`]'s lexical pieces) reads each envelope, [`batch`] turns it
//! into a row of cells, [`pipeline`] moves batches between a scanning thread
//! and the [`writer`] into [`db`]. [`source`] decides where reading starts;
//! [`live`] follows a growing input after the backfill, [`handover`] switches
//! to it by `exec()`; [`run`] ties a run together from a [`config::Config`]. [`views`] holds
//! the SQL views that answer users' questions, and `ingestor report` over them.

#[cfg(not(unix))]
compile_error!("ingestor needs a Unix-like system (Linux or macOS)");

pub mod batch;
pub mod cli;
pub mod config;
pub mod db;
pub mod exit;
pub mod failpoint;
pub mod handover;
pub mod json;
pub mod live;
pub mod lock;
pub mod mem;
pub mod pipeline;
pub mod reader;
pub mod report;
pub mod run;
pub mod scan;
pub mod signals;
pub mod source;
pub mod views;
pub mod watch;
pub mod writer;
