//! Command-line flags as the user types them; [`crate::config`] resolves them.

use std::path::PathBuf;

use clap::Parser;

/// Turn an ever-growing SSE JSONL log into a SQLite database you can query.
///
/// Reads `sse_lines.jsonl` (from --input, or standard input) and writes one row
/// per line into the `sse_lines` table of --db; lines that are not valid JSON
/// objects go to `bad_lines`. Running the same command again continues where
/// the last run stopped: only new lines are added.
#[derive(Debug, Parser)]
#[command(version, about, long_about, max_term_width = 100)]
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
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub historical_cache_mb: u64,

    /// Lines per transaction during the backfill.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_rows: u64,

    /// No progress display and no summary line.
    #[arg(long, short)]
    pub quiet: bool,

    /// Lines longer than this go to bad_lines with their first MiB (testing aid;
    /// the default is what one SQLite value can hold).
    #[arg(long, value_name = "BYTES", hide = true)]
    pub max_line_bytes: Option<usize>,
}
