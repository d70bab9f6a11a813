//! Command-line flags as the user types them; [`crate::config`] resolves them.

use std::path::PathBuf;

use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  ingestor --input ~/centralized-logs/codex/sse_lines.jsonl --db codex.db
      backfill the file (again later: only the new lines are added)
  ingestor --input ~/centralized-logs/codex/sse_lines.jsonl --db codex.db --follow
      backfill, then keep following it in live mode (Ctrl-C to stop)
  tail -F ~/centralized-logs/claude/sse_lines.jsonl | ingestor --db claude.db
      the same from a pipe

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
pub struct Args {
    /// The JSONL file to ingest; `-` or absent reads standard input.
    #[arg(long, value_name = "PATH")]
    pub input: Option<PathBuf>,

    /// The SQLite database to write (created if missing).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,

    /// Build a new database from the start of the input; the existing one is
    /// replaced only once the new one is complete.
    #[arg(long)]
    pub from_scratch: bool,

    /// SQLite page cache for the backfill, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 8)]
    pub historical_cache_mb: u64,

    /// Lines per transaction during the backfill.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_rows: u64,

    /// Keep following the input after its end: historical mode catches up,
    /// then the process re-executes itself in live mode (small memory, WAL,
    /// each new line committed within a fraction of a second). Standard input
    /// is always followed until it closes, switching to live when it idles.
    #[arg(long)]
    pub follow: bool,

    /// Start reading the input at this byte offset (a line start) instead of
    /// resuming where the last run stopped.
    #[arg(long, value_name = "BYTES", conflicts_with_all = ["start_at_end", "from_scratch"])]
    pub start_offset: Option<u64>,

    /// Start a new source at the end of the input's last complete line,
    /// skipping what is already there.
    #[arg(long, conflicts_with = "from_scratch")]
    pub start_at_end: bool,

    /// SQLite page cache in live mode, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 2)]
    pub live_cache_mb: u64,

    /// Follow in live mode from the start, without a historical phase and
    /// without re-executing (what the re-executed process runs with).
    #[arg(long)]
    pub no_exec_live: bool,

    /// Resident memory allowed in live mode, in MiB: above it the process
    /// frees what it can, and re-executes itself at the committed offset when
    /// following a file.
    #[arg(long, value_name = "MIB", default_value_t = 12)]
    pub rss_budget_mb: u64,

    /// Seconds without data on standard input before switching to live mode.
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub idle_secs: f64,

    /// No progress display and no summary line.
    #[arg(long, short)]
    pub quiet: bool,

    /// Lines longer than this go to bad_lines with their first MiB (testing aid;
    /// the default is what one SQLite value can hold).
    #[arg(long, value_name = "BYTES", hide = true)]
    pub max_line_bytes: Option<usize>,
}
