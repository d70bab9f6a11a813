//! The integration tests, one binary (as ripgrep's `tests/tests.rs`): the helpers in [`util`]
//! and the serde_json [`oracle`] are compiled once, and every module runs the real `ingestor`
//! binary on real files and pipes.
//!
//! - `historical`: one-shot backfills, resumes, the contract against the oracle;
//! - `input`: standard input, signals, long and blank lines, memory budget episodes;
//! - `live`: following files and pipes, rotation, the hand-over to live mode;
//! - `database`: what a run does to the database file: modes, foreign files, indexes, user objects;
//! - `faults`: a kill or an I/O error at each step of a commit, a full disk;
//! - `cli`: flags, their ranges and the hand-over of settings;
//! - `multi`: one live follower following several files at once (through the library);
//! - `sources`: several inputs and several writers in one database, locks, readers, migration;
//! - `identity`: a new source is recorded with its first lines, a copy-truncate before them;
//! - `contract`: the settled readings of schema.md and the scanner's edge cases, against the oracle;
//! - `views`: the views of views.md against the generator's answers, and `ingestor report`;
//! - `service`: the systemd unit and launchd agent of contrib/, run as written; standard input
//!   at /dev/null;
//! - `status`: `ingestor status` beside a follower and a backfill, and its refusals;
//! - `pipe`: a busy pipe shows every line within a second, in both phases;
//! - `crash`: the kill -9 campaign (Linux);
//! - `logs`: the log a service keeps: timestamps and levels, JSON, heartbeats, no repeats;
//! - `model`: the shared contract model (`crates/contract-model`) against the binary on nested
//!   values only it can judge (balanced, not valid JSON).
//! - `fleet`: Litestream replication under kill -9, and `ingestor fleet` over several hosts.

mod oracle;
mod util;

mod cli;
mod contract;
mod crash;
mod database;
mod faults;
mod fleet;
mod historical;
mod identity;
mod input;
mod live;
mod logs;
mod model;
mod multi;
mod pipe;
mod service;
mod sources;
mod status;
mod views;
