//! The integration tests, one binary (as ripgrep's `tests/tests.rs`): the helpers in [`util`]
//! and the serde_json [`oracle`] are compiled once, and every module runs the real `ingestor`
//! binary on real files and pipes.
//!
//! - `historical`: one-shot backfills, resumes, the contract against the oracle;
//! - `live`: following files and pipes, rotation, the hand-over to live mode;
//! - `faults`: a kill or an I/O error at each step of a commit, a full disk;
//! - `cli`: flags, their ranges and the hand-over of settings;
//! - `crash`: the kill -9 campaign (Linux);
//! - `views`: the views of views.md against the generator's answers, and `ingestor report`.

mod oracle;
mod util;

mod cli;
mod crash;
mod faults;
mod historical;
mod live;
mod views;
