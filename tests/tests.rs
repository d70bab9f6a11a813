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
//! - `contract`: the settled readings of schema.md and the scanner's edge cases, against the oracle;
//! - `views`: the views of views.md against the generator's answers, and `ingestor report`;
//! - `crash`: the kill -9 campaign (Linux);
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
mod input;
mod live;
mod multi;
mod sources;
mod views;
