//! The switch from a backfill to live following by `exec()`: a fresh image
//! of the same binary continues at the committed offset, so the memory the
//! backfill touched (page cache, batches, allocator arenas) is really gone,
//! which no amount of freeing in-process guarantees.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::anyhow;

use crate::config::Config;
use crate::report::Format;
use crate::sys::signals;

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
pub fn exec_live(config: &Config, offset: Option<u64>) -> NotExecuted {
    if let Err(e) = signals::block() {
        config.log.warn(format_args!(
            "cannot hold stop signals during the hand-over ({e})"
        ));
    }
    let unblock = || {
        if let Err(e) = signals::unblock() {
            config
                .log
                .warn(format_args!("cannot unblock stop signals ({e})"));
        }
    };
    if signals::stop_requested() {
        unblock();
        return NotExecuted::Stopped;
    }
    if let Err(e) = crate::sys::failpoint::hit("before-exec") {
        unblock();
        return NotExecuted::Failed(anyhow!(e.to_string()));
    }
    let err = exec(config, offset);
    unblock();
    NotExecuted::Failed(err)
}

fn exec(config: &Config, offset: Option<u64>) -> anyhow::Error {
    if config.inputs.is_empty() {
        return anyhow!("standard input cannot be handed to a new process");
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return anyhow!(e).context("cannot find this program to re-execute it"),
    };
    let err = Command::new(exe).args(live_args(config, offset)).exec();
    anyhow!(err).context("cannot re-execute into live mode")
}

/// The flags of the live process: the same settings, resolved again by the
/// new process through the same checks. Each value is attached with `=`, so
/// that a path starting with `-` is not read as a flag.
fn live_args(config: &Config, offset: Option<u64>) -> Vec<OsString> {
    fn flag(name: &str, value: impl AsRef<OsStr>) -> OsString {
        let mut arg = OsString::from(format!("--{name}="));
        arg.push(value);
        arg
    }
    let mut args = Vec::with_capacity(12);
    for input in &config.inputs {
        args.push(flag("input", input));
    }
    args.push(flag("db", &config.db));
    args.extend(["--follow", "--no-exec-live"].map(OsString::from));
    // One input goes on at the very offset reached; several resume where
    // the database says each stopped.
    if let Some(offset) = offset {
        args.push(flag("start-offset", offset.to_string()));
    }
    // The backfill's settings too: a run resolves all of them, and the live
    // process must not start from other values than the ones it was given.
    args.push(flag(
        "historical-cache-mb",
        config.historical.cache_mb.to_string(),
    ));
    args.push(flag("batch-rows", config.batch_rows.to_string()));
    args.push(flag("idle-secs", config.idle.as_secs_f64().to_string()));
    args.push(flag("live-cache-mb", config.live.cache_mb.to_string()));
    args.push(flag("rss-budget-mb", (config.rss_budget >> 20).to_string()));
    if let Some(max) = config.max_line_flag {
        args.push(flag("max-line-bytes", max.to_string()));
    }
    if config.log.quiet() {
        args.push("--quiet".into());
    }
    match config.log.format() {
        Format::Text => {}
        Format::Json => args.push(flag("log-format", "json")),
    }
    if config.checkpoint != crate::db::Checkpoint::Auto {
        args.push("--checkpoint=passive".into());
    }
    args
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Args;
    use crate::report::Log;

    fn resolve(argv: impl IntoIterator<Item = OsString>) -> Config {
        let args = Args::try_parse_from(argv).expect("clap accepts");
        let log = Log::new(args.quiet, args.log_format);
        Config::from_args(args, log).expect("valid")
    }

    /// The live process resolves the forwarded flags to the settings the
    /// backfill had, whatever they were, paths that look like flags included.
    #[test]
    fn the_live_process_gets_the_same_settings() {
        let settings: &[&[&str]] = &[
            &[],
            &["--quiet", "--from-scratch"],
            &["--log-format=json"],
            &["--log-format", "text", "--quiet"],
            &[
                "--historical-cache-mb=65536",
                "--batch-rows=1",
                "--live-cache-mb=4096",
                "--rss-budget-mb=65536",
                "--idle-secs=0.01",
                "--max-line-bytes=2",
            ],
            &[
                "--live-cache-mb=1",
                "--rss-budget-mb=8",
                "--idle-secs=86400",
                "--batch-rows=10000000",
                "--max-line-bytes=998951424",
            ],
            &[
                "--idle-secs=0.123456789",
                "--rss-budget-mb=16",
                "--live-cache-mb=3",
            ],
            &["--start-at-end"],
            &["--start-offset=99"],
            &["--checkpoint", "passive"],
        ];
        for input in ["in.jsonl", "-in.jsonl", "--db", "a dir/in=x.jsonl"] {
            for db in ["out.db", "-", "--input"] {
                for extra in settings {
                    let given: Vec<OsString> = ["ingestor", "--follow"]
                        .into_iter()
                        .map(OsString::from)
                        .chain([format!("--input={input}"), format!("--db={db}")].map(Into::into))
                        .chain(extra.iter().map(OsString::from))
                        .collect();
                    let what = format!("{given:?}");
                    let before = resolve(given);
                    let after = resolve(
                        std::iter::once(OsString::from("ingestor"))
                            .chain(live_args(&before, Some(1234))),
                    );
                    assert_eq!(after.inputs, before.inputs, "{what}");
                    assert_eq!(after.db, before.db, "{what}");
                    assert_eq!(after.start_offset, Some(1234), "{what}");
                    assert!(after.follow && after.live_only, "{what}");
                    assert!(!after.from_scratch && !after.start_at_end, "{what}");
                    assert_eq!(after.log.quiet(), before.log.quiet(), "{what}");
                    assert_eq!(after.log.format(), before.log.format(), "{what}");
                    assert_eq!(after.checkpoint, before.checkpoint, "{what}");
                    assert_eq!(after.live.cache_mb, before.live.cache_mb, "{what}");
                    assert_eq!(after.rss_budget, before.rss_budget, "{what}");
                    assert_eq!(
                        after.historical.cache_mb, before.historical.cache_mb,
                        "{what}"
                    );
                    assert_eq!(after.new_db.cache_mb, before.new_db.cache_mb, "{what}");
                    assert_eq!(after.batch_rows, before.batch_rows, "{what}");
                    assert_eq!(after.idle, before.idle, "{what}");
                    assert_eq!(after.max_line, before.max_line, "{what}");
                    assert_eq!(after.max_line_flag, before.max_line_flag, "{what}");
                }
            }
        }
    }

    /// Several inputs are all handed over, and resume from the database.
    #[test]
    fn several_inputs_are_handed_over_without_an_offset() {
        let before = resolve(
            [
                "ingestor",
                "--follow",
                "--input=a.jsonl",
                "--input=-b",
                "--db=x.db",
            ]
            .map(OsString::from),
        );
        let after =
            resolve(std::iter::once(OsString::from("ingestor")).chain(live_args(&before, None)));
        assert_eq!(after.inputs, before.inputs);
        assert_eq!(after.start_offset, None);
        assert!(after.follow && after.live_only);
    }
}
