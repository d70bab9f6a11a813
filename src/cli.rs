//! Command-line flags as the user types them; [`crate::config`] resolves them.
//!
//! Numeric flags are taken here as the text given and turned into numbers in
//! [`crate::config::Config::from_args`], the one place that checks them: every
//! value outside its range (which each flag's help states) is refused there
//! with one line naming the flag. clap checks only which flags go together.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::report::Format;
use crate::views::report::{By, Product};

const EXAMPLES: &str = "\
Examples:
  ingestor --input ~/centralized-logs/codex/sse_lines.jsonl --db codex.db
      backfill the file (again later: only the new lines are added)
  ingestor --input ~/centralized-logs/codex/sse_lines.jsonl --db codex.db --follow
      backfill, then keep following it in live mode (Ctrl-C to stop)
  tail -n +1 -F ~/centralized-logs/claude/sse_lines.jsonl | ingestor --db claude.db
      the same from a pipe, once: -n +1 sends the whole file (tail -F alone sends only its
      last 10 lines); a pipe cannot resume, so every run adds it all again: to follow a log,
      use --input PATH --follow
  ingestor status --db codex.db
      how far each log is ingested, and which process is following it
  ingestor report --db codex.db --by model --since 2025-11-01
      tokens and time to first token per model since November 1st

The -mb flags are in MiB (1 MiB = 1,048,576 bytes).

Exit status: 0 done (also after SIGINT/SIGTERM, once what was read is committed),
1 the run failed (one line on stderr says why), 2 bad usage.";

/// Turn an ever-growing SSE JSONL log into a SQLite database you can query.
///
/// Reads `sse_lines.jsonl` (from --input, or standard input) and writes one row
/// per line into the `sse_lines` table of --db; lines that are not valid JSON
/// objects go to `bad_lines`. Running the same command again continues where
/// the last run stopped: only new lines are added.
#[derive(Debug, Parser)]
#[command(version, about, long_about, max_term_width = 100, after_long_help = EXAMPLES)]
// `ingestor --input A --db X` stays the ingesting command: a subcommand only stands in for it
// (its flags then belong to the subcommand, and --db is no longer required at the top).
#[command(
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// A JSONL file to ingest; give it once per log (`--input A --input B`)
    /// to ingest several into one database, each as its own source. `-` or
    /// absent reads standard input, which can only be the one input. To
    /// follow a log, prefer `--input PATH --follow` to a `tail -F` pipe: it
    /// resumes at the committed byte after a restart, follows rotations, and
    /// hands over to live mode by exec.
    #[arg(long, value_name = "PATH")]
    pub input: Vec<PathBuf>,

    /// The SQLite database to write (created if missing).
    // Required unless a subcommand is given (clap checks it; `Config` relies on it).
    #[arg(long, value_name = "PATH", required = true)]
    pub db: Option<PathBuf>,

    /// Build a new database from the start of the input; the existing one is
    /// replaced only once the new one is complete.
    #[arg(long)]
    pub from_scratch: bool,

    /// SQLite page cache for the backfill, in MiB (1 to 65536).
    #[arg(
        long,
        value_name = "MIB",
        default_value = "8",
        allow_negative_numbers = true
    )]
    pub historical_cache_mb: String,

    /// Lines per transaction during the backfill (1 to 10000000).
    #[arg(
        long,
        value_name = "N",
        default_value = "100000",
        allow_negative_numbers = true
    )]
    pub batch_rows: String,

    /// Keep following the input after its end: historical mode catches up,
    /// then the process re-executes itself in live mode (small memory, WAL,
    /// each new line committed within a fraction of a second). Standard input
    /// is always followed until it closes, switching to live once caught up
    /// (see --idle-secs). To follow a file through a pipe, send it whole:
    /// `tail -n +1 -F FILE | ingestor` (plain `tail -F` sends only its last 10
    /// lines); better, `--input FILE --follow` resumes exactly where it
    /// stopped, follows rotation and can re-execute into live mode.
    #[arg(long)]
    pub follow: bool,

    /// Start reading the input at this byte offset (a line start) instead of
    /// resuming where the last run stopped; needs --input FILE. In bytes (0 to
    /// 9223372036854775807).
    #[arg(
        long,
        value_name = "BYTES",
        allow_negative_numbers = true,
        conflicts_with_all = ["start_at_end", "from_scratch"]
    )]
    pub start_offset: Option<String>,

    /// Start a new source at the end of the input's last complete line,
    /// skipping what is already there; needs --input FILE.
    #[arg(long, conflicts_with = "from_scratch")]
    pub start_at_end: bool,

    /// SQLite page cache in live mode, in MiB (1 to 4096, and at most
    /// --rss-budget-mb minus 6).
    #[arg(
        long,
        value_name = "MIB",
        default_value = "2",
        allow_negative_numbers = true
    )]
    pub live_cache_mb: String,

    /// Follow in live mode from the start, without a historical phase and
    /// without re-executing (what the re-executed process runs with).
    // --from-scratch builds a new database beside the old one, which live
    // mode never does: together they would add the input a second time.
    #[arg(long, conflicts_with = "from_scratch")]
    pub no_exec_live: bool,

    /// Resident memory allowed in live mode, in MiB (8 to 65536, and at least
    /// --live-cache-mb plus 6): above it the process frees what it can, and
    /// re-executes itself at the committed offset when following a file. The
    /// live process needs about 5 MiB besides its page cache: a smaller budget
    /// would have it free memory and re-execute over and over.
    #[arg(
        long,
        value_name = "MIB",
        default_value = "12",
        allow_negative_numbers = true
    )]
    pub rss_budget_mb: String,

    /// Seconds standard input must have waited for data, within twice that
    /// time, for its historical phase to end (caught up: a steady trickle
    /// switches to live mode as soon as a silence does) (0.01 to 86400).
    #[arg(
        long,
        value_name = "SECS",
        default_value = "0.25",
        allow_negative_numbers = true
    )]
    pub idle_secs: String,

    /// Which WAL checkpoints ingestor runs: `auto` also those that wait for readers (the
    /// WAL stays small under readers that never pause); `passive` only SQLite's automatic
    /// ones, for a database that Litestream replicates (it checkpoints itself, and its
    /// read transaction would make a waiting checkpoint stall live mode). docs/fleet.md.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = crate::db::Checkpoint::Auto)]
    pub checkpoint: crate::db::Checkpoint,

    /// No progress display and no summary line.
    #[arg(long, short)]
    pub quiet: bool,

    /// How log lines are written on stderr. `text`: on a terminal `ingestor: message` (with
    /// progress bars); otherwise, as in a service's log, `2026-11-29T18:40:02Z INFO message`,
    /// one line each (UTC; levels INFO, WARN, ERROR). `json`: one object per line with `ts`,
    /// `level`, `msg` and a message's counts as numbers (`lines`, `lag_bytes`, `rss_bytes`).
    /// In live mode a heartbeat line (`live: N lines in 60 s, lag 0 B, rss 6.1 MiB`) comes at
    /// most once a minute, and only when lines, the lag or the RSS changed.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
    pub log_format: Format,

    /// Lines longer than this go to bad_lines with their first MiB (testing aid;
    /// the default is what one SQLite value can hold). In bytes (2 to 998951424).
    #[arg(long, value_name = "BYTES", hide = true, allow_negative_numbers = true)]
    pub max_line_bytes: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print token usage and time to first token from a database, by day (the default),
    /// model, folder or session.
    ///
    /// Reads the views of the database (requests, sessions, ...) on a read-only connection:
    /// it works while ingestor is following a log into the same database. Tokens are as
    /// each vendor reports them, summed per product (Codex's input includes its cached
    /// tokens, Claude's does not); TTFT is the time from the request's start to its first
    /// output, p50 (nearest rank) and maximum, in milliseconds.
    Report(ReportArgs),

    /// Show how far each log of a database is ingested, and who is ingesting it.
    ///
    /// Per log: its path and host, the committed byte offset, the file's size now and how
    /// many bytes behind that is (and lines, when at most 64 MiB behind), the last commit
    /// that moved it (UTC), its rows and bad lines, and the process ingesting it, if any;
    /// with the database's and its WAL's sizes. It only looks: the database is opened
    /// read-only and no lock is taken, so a running ingestor is never held up.
    Status(StatusArgs),

    /// Print the SQL that queries several hosts' databases as one (docs/fleet.md).
    ///
    /// Checks each database (an ingestor database of this schema version, each file once,
    /// no log held by two of them: a database restored twice would count twice), then prints
    /// ATTACH statements and TEMP views (sse_lines, bad_lines, ingest_sources, requests,
    /// tool_calls, sessions, usage_daily, fleet_hosts) that put their rows side by side with
    /// a `host` column. Run it in a session: `ingestor fleet a.db b.db > fleet.sql;
    /// sqlite3 :memory: -cmd '.read fleet.sql' 'SELECT host, count(*) FROM sse_lines GROUP BY
    /// host'`. At most 10 databases (SQLite's default ATTACH limit).
    Fleet(FleetArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Exit status: 0 printed, 1 the database is missing, not an ingestor \
database or cannot be read (one line on stderr says which), 2 bad usage."
)]
pub struct StatusArgs {
    /// The SQLite database to look at (never written).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,

    /// Print JSON (one object, with an array of sources) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Exit status: 0 printed, 1 a database is missing, not an ingestor \
database of this version, given twice, or holds a log another one holds (one line on stderr \
says which), 2 bad usage (also more than 10 databases)."
)]
pub struct FleetArgs {
    /// The hosts' databases (restored replicas, or copies); each is opened read-only.
    #[arg(value_name = "HOST_DB", required = true)]
    pub dbs: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Exit status: 0 printed, 1 the database is missing, empty, \
has no views yet or cannot be read (one line on stderr says which), 2 bad usage."
)]
pub struct ReportArgs {
    /// The SQLite database to read (never written).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,

    /// What to group requests by.
    #[arg(long, value_enum, default_value_t = By::Day)]
    pub by: By,

    /// Only requests started on or after this day (YYYY-MM-DD, local time as logged).
    #[arg(long, value_name = "DAY")]
    pub since: Option<String>,

    /// Only requests started on or before this day (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DAY")]
    pub until: Option<String>,

    /// Only one product's requests.
    #[arg(long, value_enum)]
    pub product: Option<Product>,

    /// Print JSON (an array of objects, one per group) instead of a table.
    #[arg(long)]
    pub json: bool,
}
