//! The resolved settings a run works from, derived once from the flags.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::Args;
use crate::db::Tuning;

/// SQLite's default SQLITE_MAX_LENGTH bounds one value *and* one row record;
/// the margin leaves room for the row's other columns.
pub const SQLITE_MAX_VALUE: usize = 1_000_000_000 - (1 << 20);

/// Fixed when a database is created. See README "Settings" for the measurement.
pub const PAGE_SIZE: u32 = 16384;

#[derive(Clone, Debug)]
pub struct Config {
    /// `None` reads standard input.
    pub input: Option<PathBuf>,
    pub db: PathBuf,
    pub from_scratch: bool,
    /// The backfill of a new database, built under another name.
    pub new_db: Tuning,
    /// The backfill into an existing database.
    pub historical: Tuning,
    /// Lines per transaction in the backfill.
    pub batch_rows: u64,
    pub max_line: usize,
    pub progress: bool,
    pub quiet: bool,
    pub follow: bool,
    pub start_offset: Option<u64>,
    pub start_at_end: bool,
    /// Go live at once, without a historical phase or a re-exec.
    pub live_only: bool,
    pub live: Tuning,
    pub rss_budget: u64,
    /// Standard input idle time that ends the historical phase.
    pub idle: Duration,
    /// The flag as given, forwarded on re-exec.
    pub max_line_flag: Option<usize>,
}

impl Config {
    pub fn from_args(args: Args) -> Config {
        let input = args.input.filter(|p| p.as_os_str() != "-");
        Config {
            input,
            db: args.db,
            from_scratch: args.from_scratch,
            new_db: Tuning {
                cache_mb: args.historical_cache_mb.max(1),
                page_size: PAGE_SIZE,
                journal: "OFF",
                synchronous: "OFF",
            },
            historical: Tuning {
                cache_mb: args.historical_cache_mb.max(1),
                page_size: PAGE_SIZE,
                journal: "DELETE",
                // NORMAL syncs the rollback journal before the database is
                // overwritten, so even a power loss cannot damage what was
                // there before the run; measured cost on a 1 GB load: +0.35 s
                // (1.4 -> 1.8 s, ~8% of load + indexes).
                synchronous: "NORMAL",
            },
            batch_rows: args.batch_rows,
            max_line: args
                .max_line_bytes
                .unwrap_or(SQLITE_MAX_VALUE)
                .min(SQLITE_MAX_VALUE),
            progress: !args.quiet && std::io::stderr().is_terminal(),
            quiet: args.quiet,
            follow: args.follow,
            start_offset: args.start_offset,
            start_at_end: args.start_at_end,
            live_only: args.no_exec_live,
            live: Tuning {
                cache_mb: args.live_cache_mb.max(1),
                page_size: PAGE_SIZE,
                journal: "WAL",
                synchronous: "NORMAL",
            },
            rss_budget: args.rss_budget_mb.max(1) << 20,
            idle: Duration::from_secs_f64(args.idle_secs.clamp(0.01, 86_400.0)),
            max_line_flag: args.max_line_bytes,
        }
    }
}
