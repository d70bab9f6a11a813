//! `ingestor`: SSE JSONL logs into SQLite, as fast as SQLite allows.
//!
//! The pipeline, one folder per stage, in the order data flows:
//!
//! - [`input`]: frame lines from a file or a pipe, and decide where reading starts;
//! - [`scan`]: read each line's envelope and turn it into a row of a batch;
//! - [`db`]: the contract's schema, migrations, and the writer that commits batches;
//! - [`follow`]: live following after the backfill, and the `exec()` hand-over to it;
//! - [`sys`]: memory, signals, locks and failpoints, under everything else.
//!
//! At the top: [`cli`] (flags) resolved into a [`config::Config`], which [`run`] ties
//! together; [`pipeline`] moves batches from the scanning thread to the writing one;
//! [`report`] is the one logging handle; [`exit`] maps errors to exit codes.
//!
//! Beside the pipeline, the read-only subcommands: [`views`] (the SQL views that
//! answer users' questions, and `ingestor report` over them), [`status`] (how far
//! each log is, and who ingests it) and [`fleet`] (several hosts' databases queried
//! as one). Each folder's module comment says what it owns and what it may call.

#[cfg(not(unix))]
compile_error!("ingestor needs a Unix-like system (Linux or macOS)");

pub mod cli;
pub mod config;
pub mod db;
pub mod exit;
pub mod fleet;
pub mod follow;
pub mod input;
pub mod pipeline;
pub mod report;
pub mod run;
pub mod scan;
pub mod status;
pub mod sys;
pub mod views;
