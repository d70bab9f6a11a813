//! The resolved settings a run works from, derived once from the flags.
//!
//! This is the one place that checks what the user asked for: each numeric
//! flag against its range ([`Bounds`]), and the rules between flags that need
//! their values (clap checks only which flags may go together). A refusal is a
//! [`UsageError`] (exit status 2) of one line, before anything is opened.

use std::fmt::Display;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::cli::{Args, ReportArgs, StatusArgs};
use crate::db::{Journal, Synchronous, Tuning};
use crate::exit::UsageError;
use crate::report::Log;
use crate::views::report;

/// SQLite's default SQLITE_MAX_LENGTH bounds one value *and* one row record;
/// the margin leaves room for the row's other columns.
pub const SQLITE_MAX_VALUE: usize = 1_000_000_000 - (1 << 20);

/// Fixed when a database is created. Why 16 KiB: docs/design.md ("Settings,
/// and why"); the measurement: docs/performance.md.
pub const PAGE_SIZE: u32 = 16384;

/// The values one numeric flag accepts, inclusive. Its help in [`crate::cli`]
/// states the same range (a test keeps the two in step).
#[derive(Clone, Copy, Debug)]
pub struct Bounds<T> {
    pub flag: &'static str,
    pub min: T,
    pub max: T,
    pub unit: &'static str,
}

pub const HISTORICAL_CACHE_MIB: Bounds<u64> = Bounds {
    flag: "--historical-cache-mb",
    min: 1,
    max: 65536,
    unit: "MiB",
};

/// A batch is also cut by its size in bytes, so a large count costs memory
/// only with many small lines; past ten million the commits are so rare that
/// a crash loses minutes of work for no measurable gain.
pub const BATCH_ROWS: Bounds<u64> = Bounds {
    flag: "--batch-rows",
    min: 1,
    max: 10_000_000,
    unit: "lines",
};

/// Offsets are stored as SQLite integers (signed 64-bit).
pub const START_OFFSET: Bounds<u64> = Bounds {
    flag: "--start-offset",
    min: 0,
    max: i64::MAX as u64,
    unit: "bytes",
};

pub const LIVE_CACHE_MIB: Bounds<u64> = Bounds {
    flag: "--live-cache-mb",
    min: 1,
    max: 4096,
    unit: "MiB",
};

/// The floor is [`LIVE_OWN_MIB`] plus the default live cache: below what the
/// live process needs at rest, it would free memory and re-execute in a loop.
pub const RSS_BUDGET_MIB: Bounds<u64> = Bounds {
    flag: "--rss-budget-mb",
    min: 8,
    max: 65536,
    unit: "MiB",
};

/// What the live process needs besides its SQLite page cache: what it holds
/// at rest right after the exec (VmRSS, default settings; measured and dated
/// in docs/performance.md), plus a margin for the read buffer and the
/// allocator.
pub const LIVE_OWN_MIB: u64 = 6;

/// Finite; short enough by default (0.25 s) that a line read while the
/// producer is the slower side is visible well within a second.
pub const IDLE_SECS: Bounds<f64> = Bounds {
    flag: "--idle-secs",
    min: 0.01,
    max: 86_400.0,
    unit: "seconds",
};

/// `{}` is the shortest line that can be a row; above [`SQLITE_MAX_VALUE`]
/// SQLite cannot store the line.
pub const MAX_LINE_BYTES: Bounds<usize> = Bounds {
    flag: "--max-line-bytes",
    min: 2,
    max: SQLITE_MAX_VALUE,
    unit: "bytes",
};

impl<T: FromStr + PartialOrd + Display + Copy> Bounds<T> {
    /// The value `raw` stands for, if it is one of ours. A NaN compares false
    /// with both ends, so it is refused with the infinities.
    pub fn parse(&self, raw: &str) -> Result<T, UsageError> {
        raw.parse::<T>()
            .ok()
            .filter(|v| *v >= self.min && *v <= self.max)
            .ok_or_else(|| {
                UsageError(format!(
                    "invalid value {raw:?} for {}: expected {} {}",
                    self.flag,
                    self.range(),
                    self.unit
                ))
            })
    }

    /// The range as the flag's help and its error state it.
    pub fn range(&self) -> String {
        format!("{} to {}", self.min, self.max)
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The files to ingest, each its own source, in the order given; empty
    /// reads standard input.
    pub inputs: Vec<PathBuf>,
    pub db: PathBuf,
    pub from_scratch: bool,
    /// The backfill of a new database, built under another name.
    pub new_db: Tuning,
    /// The backfill into an existing database.
    pub historical: Tuning,
    /// Lines per transaction in the backfill.
    pub batch_rows: u64,
    pub max_line: usize,
    /// Where messages go, as `--quiet` and `--log-format` ask.
    pub log: Log,
    pub follow: bool,
    pub start_offset: Option<u64>,
    pub start_at_end: bool,
    /// Go live at once, without a historical phase or a re-exec.
    pub live_only: bool,
    pub live: Tuning,
    /// In bytes (the flag is in MiB).
    pub rss_budget: u64,
    /// Time waited for input (within twice as long) that ends a pipe's
    /// historical phase: see `input::source::CatchUp`.
    pub idle: Duration,
    /// The flag as given, forwarded on re-exec.
    pub max_line_flag: Option<usize>,
    /// Which checkpoints this process runs (`--checkpoint`, docs/fleet.md).
    pub checkpoint: crate::db::Checkpoint,
}

impl Config {
    /// Resolves and checks the flags; refuses a value out of its range or a
    /// combination that cannot work, naming the flag. `log` is the handle
    /// `main` made from `--quiet` and `--log-format` (it reports errors in
    /// these very flags too).
    pub fn from_args(args: Args, log: Log) -> Result<Config, UsageError> {
        let inputs = resolve_inputs(args.input)?;
        let historical_cache_mib = HISTORICAL_CACHE_MIB.parse(&args.historical_cache_mb)?;
        let batch_rows = BATCH_ROWS.parse(&args.batch_rows)?;
        let start_offset = args
            .start_offset
            .as_deref()
            .map(|raw| START_OFFSET.parse(raw))
            .transpose()?;
        let live_cache_mib = LIVE_CACHE_MIB.parse(&args.live_cache_mb)?;
        let rss_budget_mib = RSS_BUDGET_MIB.parse(&args.rss_budget_mb)?;
        let idle_secs = IDLE_SECS.parse(&args.idle_secs)?;
        let max_line_flag = args
            .max_line_bytes
            .as_deref()
            .map(|raw| MAX_LINE_BYTES.parse(raw))
            .transpose()?;

        if inputs.is_empty() {
            let refused = if start_offset.is_some() {
                Some((START_OFFSET.flag, "no offsets to seek to"))
            } else {
                args.start_at_end
                    .then_some(("--start-at-end", "no end to start from"))
            };
            if let Some((flag, why)) = refused {
                return Err(UsageError(format!(
                    "{flag} needs --input FILE (standard input has {why})"
                )));
            }
        }
        if inputs.len() > 1 && start_offset.is_some() {
            return Err(UsageError(format!(
                "{} applies to one input; with several, each resumes where the database \
                 says it stopped",
                START_OFFSET.flag
            )));
        }
        // A cache the budget cannot hold would be shed as soon as it fills.
        if rss_budget_mib < live_cache_mib + LIVE_OWN_MIB {
            return Err(UsageError(format!(
                "--rss-budget-mb {rss_budget_mib} is too small for --live-cache-mb \
                 {live_cache_mib}: the budget must be at least the cache plus {LIVE_OWN_MIB} \
                 MiB for the rest of the live process"
            )));
        }

        let Some(db) = args.db else {
            // clap requires --db unless a subcommand is given; `main` runs those elsewhere.
            return Err(UsageError(
                "--db PATH is required (or a subcommand such as `report`)".to_owned(),
            ));
        };
        Ok(Config {
            inputs,
            db,
            from_scratch: args.from_scratch,
            new_db: Tuning {
                cache_mb: historical_cache_mib,
                page_size: PAGE_SIZE,
                journal: Journal::Off,
                synchronous: Synchronous::Off,
            },
            historical: Tuning {
                cache_mb: historical_cache_mib,
                page_size: PAGE_SIZE,
                // A published database stays in WAL mode whoever writes it, so
                // that a reader is never locked out (schema.md); NORMAL is WAL's
                // durable setting: a crash loses nothing committed.
                journal: Journal::Wal,
                synchronous: Synchronous::Normal,
            },
            batch_rows,
            max_line: max_line_flag.unwrap_or(SQLITE_MAX_VALUE),
            log,
            follow: args.follow,
            start_offset,
            start_at_end: args.start_at_end,
            live_only: args.no_exec_live,
            live: Tuning {
                cache_mb: live_cache_mib,
                page_size: PAGE_SIZE,
                journal: Journal::Wal,
                synchronous: Synchronous::Normal,
            },
            rss_budget: rss_budget_mib << 20,
            idle: Duration::from_secs_f64(idle_secs),
            max_line_flag,
            checkpoint: args.checkpoint,
        })
    }
}

/// The input files as given: standard input (`-`, or none) only alone, and no
/// file twice (it would be one source read by two readers).
fn resolve_inputs(given: Vec<PathBuf>) -> Result<Vec<PathBuf>, UsageError> {
    let stdin = |p: &PathBuf| p.as_os_str() == "-";
    if given.iter().any(stdin) {
        if given.len() > 1 {
            return Err(UsageError(
                "--input - (standard input) can only be the one input: a pipe cannot be \
                 followed beside files (run one ingestor per pipe)"
                    .into(),
            ));
        }
        return Ok(Vec::new());
    }
    for (i, path) in given.iter().enumerate() {
        let same = |other: &PathBuf| {
            other == path
                || matches!(
                    (std::fs::canonicalize(other), std::fs::canonicalize(path)),
                    (Ok(a), Ok(b)) if a == b
                )
        };
        if given[..i].iter().any(same) {
            return Err(UsageError(format!(
                "--input {} is given twice",
                path.display()
            )));
        }
    }
    Ok(given)
}

/// A `YYYY-MM-DD` day, checked as a calendar date (the views compare days as text).
fn day(flag: &str, raw: &str) -> Result<String, UsageError> {
    let b = raw.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    let valid = shape && {
        let n = |r: std::ops::Range<usize>| raw[r].parse::<u32>().unwrap_or(0);
        let (y, m, d) = (n(0..4), n(5..7), n(8..10));
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let days = match m {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => 0,
        };
        (1..=days).contains(&d)
    };
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(UsageError(format!(
            "invalid value {raw:?} for {flag}: expected a day as YYYY-MM-DD"
        )))
    }
}

/// Resolves and checks `ingestor report`'s flags.
pub fn report_query(args: ReportArgs) -> Result<report::Query, UsageError> {
    let since = args
        .since
        .as_deref()
        .map(|d| day("--since", d))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|d| day("--until", d))
        .transpose()?;
    if let (Some(s), Some(u)) = (&since, &until)
        && s > u
    {
        return Err(UsageError(format!(
            "--since {s} is after --until {u}: no day is in between"
        )));
    }
    Ok(report::Query {
        db: args.db,
        by: args.by,
        since,
        until,
        product: args.product,
        json: args.json,
    })
}

/// Resolves `ingestor status`'s flags (nothing to check beyond what clap does).
pub fn status_query(args: StatusArgs) -> crate::status::Query {
    crate::status::Query {
        db: args.db,
        json: args.json,
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    fn config(flags: &[&str]) -> Result<Config, UsageError> {
        let argv = ["ingestor", "--input", "in.jsonl", "--db", "out.db"];
        let args = Args::try_parse_from(argv.iter().chain(flags)).expect("clap accepts");
        resolve(args)
    }

    fn resolve(args: Args) -> Result<Config, UsageError> {
        let log = Log::new(args.quiet, args.log_format);
        Config::from_args(args, log)
    }

    /// The help of `flag`, as `--help` shows it.
    fn help_of(flag: &str) -> String {
        let cmd = Args::command();
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == flag.strip_prefix("--"))
            .unwrap_or_else(|| panic!("no flag {flag}"));
        arg.get_help().expect("help").to_string()
    }

    fn check_help<T: FromStr + PartialOrd + Display + Copy>(b: Bounds<T>) {
        let help = help_of(b.flag);
        assert!(
            help.contains(&b.range()),
            "the help of {} does not state its range {}: {help:?}",
            b.flag,
            b.range()
        );
        assert!(
            help.to_lowercase().contains(&b.unit.to_lowercase()),
            "the help of {} does not state its unit {}: {help:?}",
            b.flag,
            b.unit
        );
    }

    #[test]
    fn every_numeric_flag_states_its_range_and_unit() {
        check_help(HISTORICAL_CACHE_MIB);
        check_help(BATCH_ROWS);
        check_help(START_OFFSET);
        check_help(LIVE_CACHE_MIB);
        check_help(RSS_BUDGET_MIB);
        check_help(IDLE_SECS);
        check_help(MAX_LINE_BYTES);
        let numeric = Args::command()
            .get_arguments()
            .filter(|a| a.get_action().takes_values())
            .filter(|a| {
                !matches!(
                    a.get_id().as_str(),
                    "input" | "db" | "log_format" | "checkpoint"
                )
            })
            .count();
        assert_eq!(numeric, 7, "a numeric flag without Bounds");
    }

    #[test]
    fn edges_are_accepted() {
        let c = config(&[
            "--historical-cache-mb=65536",
            "--batch-rows=1",
            "--start-offset=0",
            "--live-cache-mb=1",
            "--rss-budget-mb=8",
            "--idle-secs=0.01",
            "--max-line-bytes=2",
        ])
        .expect("lower edges");
        assert_eq!(c.historical.cache_mb, 65536);
        assert_eq!(c.new_db.cache_mb, 65536);
        assert_eq!(c.batch_rows, 1);
        assert_eq!(c.start_offset, Some(0));
        assert_eq!(c.live.cache_mb, 1);
        assert_eq!(c.rss_budget, 8 * 1024 * 1024);
        assert_eq!(c.idle, Duration::from_millis(10));
        assert_eq!((c.max_line, c.max_line_flag), (2, Some(2)));

        let c = config(&[
            "--batch-rows=10000000",
            "--start-offset=9223372036854775807",
            "--live-cache-mb=4096",
            "--rss-budget-mb=65536",
            "--idle-secs=86400",
            "--max-line-bytes=998951424",
        ])
        .expect("upper edges");
        assert_eq!(c.start_offset, Some(i64::MAX as u64));
        assert_eq!(c.rss_budget, 1 << 36);
        assert_eq!(c.idle, Duration::from_secs(86_400));
        assert_eq!(c.max_line, SQLITE_MAX_VALUE);
    }

    #[test]
    fn defaults_are_in_range() {
        let c = config(&[]).expect("defaults");
        assert_eq!(c.historical.cache_mb, 8);
        assert_eq!(c.batch_rows, 100_000);
        assert_eq!(c.live.cache_mb, 2);
        assert_eq!(c.rss_budget, 12 << 20);
        assert_eq!(c.idle, Duration::from_millis(250));
        assert_eq!((c.max_line, c.max_line_flag), (SQLITE_MAX_VALUE, None));
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_flag_and_range() {
        let cases: &[(&str, &[&str], &str)] = &[
            (
                "--historical-cache-mb",
                &["0", "-1", "65537", "nan", "8.5", ""],
                "1 to 65536 MiB",
            ),
            (
                "--batch-rows",
                &["0", "-5", "10000001", "1e3", "abc"],
                "1 to 10000000 lines",
            ),
            (
                "--start-offset",
                &["-1", "9223372036854775808", "inf"],
                "bytes",
            ),
            ("--live-cache-mb", &["0", "-1", "4097"], "1 to 4096 MiB"),
            (
                "--rss-budget-mb",
                &["0", "1", "7", "-1", "65537", "nan"],
                "8 to 65536 MiB",
            ),
            (
                "--idle-secs",
                &[
                    "nan", "NaN", "inf", "-inf", "infinity", "-1", "0", "0.009", "86400.5", "1e300",
                ],
                "0.01 to 86400 seconds",
            ),
            (
                "--max-line-bytes",
                &["0", "1", "998951425", "ten"],
                "2 to 998951424 bytes",
            ),
        ];
        for (flag, values, range) in cases {
            for value in *values {
                let given = format!("{flag}={value}");
                let err = config(&[&given]).expect_err(&given).to_string();
                assert!(
                    err.contains(flag) && err.contains(range) && !err.contains('\n'),
                    "{given}: {err:?}"
                );
            }
        }
    }

    #[test]
    fn offsets_need_a_file() {
        for input in [&[][..], &["--input", "-"]] {
            for (flags, named) in [
                (&["--start-offset", "0"][..], "--start-offset"),
                (&["--start-at-end"], "--start-at-end"),
            ] {
                let argv = ["ingestor", "--db", "out.db"];
                let args = Args::try_parse_from(argv.iter().chain(input).chain(flags))
                    .expect("clap accepts");
                let err = resolve(args).expect_err("no file").to_string();
                assert!(err.contains(named) && err.contains("--input"), "{err}");
            }
        }
    }

    #[test]
    fn the_budget_must_hold_the_live_cache() {
        let err = config(&["--rss-budget-mb=8", "--live-cache-mb=3"])
            .expect_err("cache too big")
            .to_string();
        assert!(err.contains("--rss-budget-mb 8") && err.contains("--live-cache-mb 3"));
        config(&["--rss-budget-mb=9", "--live-cache-mb=3"]).expect("fits");
        config(&["--rss-budget-mb=4102", "--live-cache-mb=4096"]).expect("fits");
    }

    #[test]
    fn report_days_are_calendar_days() {
        for ok in ["2025-11-18", "2024-02-29", "2000-02-29", "1999-12-31"] {
            assert_eq!(day("--since", ok).unwrap(), ok);
        }
        for bad in [
            "2025-11-1",
            "2025/11/18",
            "2025-13-01",
            "2025-00-10",
            "2025-02-29",
            "1900-02-29",
            "2025-04-31",
            "20251118",
            "",
            "2025-11-18T00",
            "２０２５-11-18",
        ] {
            let err = day("--until", bad).unwrap_err().to_string();
            assert!(
                err.contains("--until") && err.contains("YYYY-MM-DD"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn report_since_after_until_is_refused() {
        let args = |since: &str, until: &str| ReportArgs {
            db: "x.db".into(),
            by: report::By::Day,
            since: Some(since.to_owned()),
            until: Some(until.to_owned()),
            product: None,
            json: false,
        };
        let err = report_query(args("2025-11-19", "2025-11-18"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--since 2025-11-19") && err.contains("--until 2025-11-18"));
        let q = report_query(args("2025-11-18", "2025-11-18")).expect("one day");
        assert_eq!(q.since.as_deref(), Some("2025-11-18"));
    }
}
