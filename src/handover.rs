//! The switch from a backfill to live following by `exec()`: a fresh image
//! of the same binary continues at the committed offset, so the memory the
//! backfill touched (page cache, batches, allocator arenas) is really gone,
//! which no amount of freeing in-process guarantees.

use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::anyhow;

use crate::config::Config;
use crate::signals;

/// Why the hand-over did not happen.
pub enum NotExecuted {
    /// A stop signal came first: the caller ends the run normally.
    Stopped,
    Failed(anyhow::Error),
}

/// Replaces this process with a live follower of the same file starting at
/// `offset`. Returns only if it did not. The database must be closed
/// (committed) first: SQLite opens its files close-on-exec, and the new
/// process reopens them.
pub fn exec_live(config: &Config, offset: u64) -> NotExecuted {
    signals::block();
    if signals::stop_requested() {
        signals::unblock();
        return NotExecuted::Stopped;
    }
    if let Err(e) = crate::failpoint::hit("before-exec") {
        signals::unblock();
        return NotExecuted::Failed(anyhow!(e.to_string()));
    }
    let err = exec(config, offset);
    signals::unblock();
    NotExecuted::Failed(err)
}

fn exec(config: &Config, offset: u64) -> anyhow::Error {
    let Some(input) = &config.input else {
        return anyhow!("standard input cannot be handed to a new process");
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return anyhow!(e).context("cannot find this program to re-execute it"),
    };
    let mut cmd = Command::new(exe);
    cmd.arg("--input")
        .arg(input)
        .arg("--db")
        .arg(&config.db)
        .args(["--follow", "--no-exec-live", "--start-offset"])
        .arg(offset.to_string())
        .arg("--live-cache-mb")
        .arg(config.live.cache_mb.to_string())
        .arg("--rss-budget-mb")
        .arg((config.rss_budget >> 20).to_string());
    if let Some(max) = config.max_line_flag {
        cmd.arg("--max-line-bytes").arg(max.to_string());
    }
    if config.quiet {
        cmd.arg("--quiet");
    }
    anyhow!(cmd.exec()).context("cannot re-execute into live mode")
}
