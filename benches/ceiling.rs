//! What the machine and SQLite allow, measured on a given input, so that the
//! end-to-end figures of `ingestor` can be read as ratios (see scripts/bench.sh).
//!
//! - scan: read, frame, scan and build every row, no SQLite;
//! - ceiling load: the same rows, extracted into memory beforehand, inserted
//!   with ingestor's own settings and statements on one thread;
//! - ceiling index: the seven allowlisted indexes built after that load.
//!
//! Usage: cargo bench --bench ceiling -- --input FILE --db PATH [--scan-only]
//!        [--load-sql SQL] [--index-sql SQL]

use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use ingestor::config::SQLITE_MAX_VALUE;
use ingestor::db::{self, RawStmt};
use ingestor::input::reader::{Framing, LineReader};
use ingestor::pipeline::{BATCH_LIMITS, READ_BUFFER};
use ingestor::scan::batch::{Batch, Builder};

fn main() -> anyhow::Result<()> {
    let (mut input, mut db_path, mut scan_only) = (None, None, false);
    // Extra settings to try, applied before the load or before the index
    // build: how the defaults were chosen (see scripts/tune.sh).
    let (mut load_sql, mut index_sql) = (String::new(), String::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--input" => input = args.next().map(PathBuf::from),
            "--db" => db_path = args.next().map(PathBuf::from),
            "--scan-only" => scan_only = true,
            "--load-sql" => load_sql = args.next().unwrap_or_default(),
            "--index-sql" => index_sql = args.next().unwrap_or_default(),
            _ => {} // cargo passes `--bench`
        }
    }
    let (Some(input), Some(db_path)) = (input, db_path) else {
        anyhow::bail!("usage: cargo bench --bench ceiling -- --input FILE --db PATH");
    };

    // Scan only: one reused batch, as the scanning thread works.
    let started = Instant::now();
    let mut reader = LineReader::new(File::open(&input)?, 0, READ_BUFFER, SQLITE_MAX_VALUE);
    let mut builder = Builder::new(SQLITE_MAX_VALUE);
    let mut batch = Batch::with_limits(BATCH_LIMITS);
    let mut lines = 0;
    while let Some(line) = reader.next_line(Framing::ToEof)? {
        builder.push(&mut batch, &line);
        if batch.is_full(BATCH_LIMITS) {
            lines += batch.lines;
            batch.clear(BATCH_LIMITS);
        }
    }
    lines += batch.lines;
    let bytes = reader.offset();
    println!("scan_secs: {:.3}", started.elapsed().as_secs_f64());
    if scan_only {
        return Ok(());
    }

    // Pre-extract everything, then time only the inserts.
    let mut reader = LineReader::new(File::open(&input)?, 0, READ_BUFFER, SQLITE_MAX_VALUE);
    let mut batches = vec![Batch::with_limits(BATCH_LIMITS)];
    while let Some(line) = reader.next_line(Framing::ToEof)? {
        let batch = batches.last_mut().expect("one batch");
        builder.push(batch, &line);
        if batch.is_full(BATCH_LIMITS) {
            batches.push(Batch::with_limits(BATCH_LIMITS));
        }
    }
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db_path.display()));
    }
    let args: ingestor::cli::Args = clap::Parser::parse_from(["ingestor", "--db", "unused"]);
    let log = ingestor::report::Log::new(args.quiet, args.log_format);
    let config =
        ingestor::config::Config::from_args(args, log).expect("the default flags are valid");
    let conn = db::open(&db_path, &config.new_db, &config.log)?;
    conn.execute_batch(&load_sql)?;
    let started = Instant::now();
    {
        let mut insert_row = RawStmt::prepare(&conn, db::INSERT_ROW)?;
        let mut insert_bad = RawStmt::prepare(&conn, db::INSERT_BAD)?;
        conn.execute_batch("BEGIN")?;
        let mut in_tx = 0;
        for batch in &batches {
            for row in &batch.rows {
                insert_row.execute_row(batch, 1, row)?;
            }
            for bad in &batch.bad {
                insert_bad.execute_bad(batch, 1, bad)?;
            }
            in_tx += batch.lines;
            if in_tx >= config.batch_rows {
                conn.execute_batch("COMMIT; BEGIN")?;
                in_tx = 0;
            }
        }
        conn.execute_batch("COMMIT")?;
    }
    println!("ceiling_load_secs: {:.3}", started.elapsed().as_secs_f64());
    conn.execute_batch(&index_sql)?;
    let started = Instant::now();
    db::create_indexes(&conn)?;
    println!("ceiling_index_secs: {:.3}", started.elapsed().as_secs_f64());
    println!("lines: {lines}");
    println!("bytes: {bytes}");
    Ok(())
}
