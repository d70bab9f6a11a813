//! What the machine and SQLite allow, measured on a given input, so that the
//! end-to-end figures of `ingestor` can be read as ratios (see scripts/bench.sh).
//!
//! - scan: read, frame, scan and build every row, no SQLite;
//! - ceiling load: the same rows, extracted into memory beforehand, inserted
//!   with ingestor's own settings and statements on one thread, twice into
//!   a new database each time, the faster timing kept;
//! - ceiling index: the seven allowlisted indexes built after that load, by
//!   ingestor's own `db::create_indexes`;
//! - with `--by-hand`, SQLite's own: the same seven `CREATE INDEX` statements
//!   on the same database, under each of a few settings (SQLite's defaults,
//!   a second sorter thread, ingestor's small cache, a large cache), each set
//!   dropped again after it is timed; ingestor's build runs at the place
//!   `--round` rotates it to, so no setting always comes first after the load;
//! - then the `fsync` of the database file, which ingestor does before its
//!   rename and which no in-process timing sees.
//!
//! Usage: cargo bench --bench ceiling -- --input FILE --db PATH [--scan-only]
//!        [--load-sql SQL] [--index-sql SQL] [--by-hand] [--round N]

use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use ingestor::config::SQLITE_MAX_VALUE;
use ingestor::db::{self, RawStmt};
use ingestor::input::reader::{Framing, LineReader};
use ingestor::pipeline::{BATCH_LIMITS, READ_BUFFER};
use ingestor::scan::batch::{Batch, Builder};

/// Loads timed per run; the fastest is the insert-only baseline.
const LOAD_ROUNDS: usize = 2;

/// SQLite's own index build, by hand: name and the settings it runs under.
const BY_HAND: [(&str, &str); 5] = [
    ("defaults", "PRAGMA cache_size = -2000; PRAGMA threads = 0"),
    // Ingestor's cache without the helper thread: tells the two apart.
    (
        "cache=1MiB",
        "PRAGMA cache_size = -1024; PRAGMA threads = 0",
    ),
    ("threads=2", "PRAGMA cache_size = -2000; PRAGMA threads = 2"),
    (
        "cache=1MiB,threads=2",
        "PRAGMA cache_size = -1024; PRAGMA threads = 2",
    ),
    (
        "cache=64MiB,threads=2",
        "PRAGMA cache_size = -65536; PRAGMA threads = 2",
    ),
];

fn main() -> anyhow::Result<()> {
    let (mut input, mut db_path, mut scan_only) = (None, None, false);
    let (mut by_hand, mut round) = (false, 0usize);
    // Extra settings to try, applied before the load or before the index
    // build: how the defaults were chosen (see scripts/tune.sh).
    let (mut load_sql, mut index_sql) = (String::new(), String::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--input" => input = args.next().map(PathBuf::from),
            "--db" => db_path = args.next().map(PathBuf::from),
            "--scan-only" => scan_only = true,
            "--by-hand" => by_hand = true,
            "--round" => round = args.next().and_then(|r| r.parse().ok()).unwrap_or(0),
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
    // CPU time too: on a busy machine the wall time above mostly measures waiting.
    println!("scan_cpu_secs: {:.3}", cpu_secs());
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
    let args: ingestor::cli::Args = clap::Parser::parse_from(["ingestor", "--db", "unused"]);
    let log = ingestor::report::Log::new(args.quiet, args.log_format);
    let config =
        ingestor::config::Config::from_args(args, log).expect("the default flags are valid");
    // The same load twice, each into a new database, the faster timing kept
    // (the databases are the same): on this VM a single load of the same
    // 1 GiB measured 1.3 s to 3.5 s, slowest right after another process had
    // written a large database; a floor should not include that noise.
    let mut each = Vec::new();
    let mut conn = None;
    for _ in 0..LOAD_ROUNDS {
        drop(conn.take());
        let (secs, loaded) = load(&db_path, &config, &batches, &load_sql)?;
        each.push(secs);
        conn = Some(loaded);
    }
    let conn = conn.expect("LOAD_ROUNDS > 0");
    let secs = each.iter().copied().fold(f64::INFINITY, f64::min);
    let each: Vec<String> = each.iter().map(|s| format!("{s:.3}")).collect();
    println!("ceiling_load_secs_each: {}", each.join(" "));
    println!("ceiling_load_secs: {secs:.3}");
    conn.execute_batch(&index_sql)?;
    // Ingestor's build, then SQLite's own under each setting, rotated.
    let mut steps: Vec<Option<(&str, &str)>> = vec![None];
    if by_hand {
        steps.extend(BY_HAND.iter().map(|&(name, sql)| Some((name, sql))));
    }
    let n = steps.len();
    steps.rotate_left(round % n);
    for (k, step) in steps.into_iter().enumerate() {
        match step {
            None => {
                let (started, cpu) = (Instant::now(), Cpu::now());
                db::create_indexes(&conn)?;
                println!("ceiling_index_secs: {:.3}", started.elapsed().as_secs_f64());
                cpu.print("ceiling_index_cpu_secs");
            }
            Some((name, settings)) => {
                // create_indexes leaves threads 0 and the load's cache.
                conn.execute_batch(settings)?;
                let (started, cpu) = (Instant::now(), Cpu::now());
                for (index, column) in db::INDEXES {
                    conn.execute_batch(&format!("CREATE INDEX {index} ON sse_lines({column})"))?;
                }
                let secs = started.elapsed().as_secs_f64();
                println!("by_hand_index_secs[{name}]: {secs:.3}");
                cpu.print(&format!("by_hand_index_cpu_secs[{name}]"));
                conn.execute_batch(&format!(
                    "PRAGMA cache_size = -{}; PRAGMA threads = 0",
                    config.new_db.cache_mb * 1024
                ))?;
            }
        }
        // The next step builds them again; the last leaves them, as ingestor does.
        if k + 1 < n {
            for (index, _) in db::INDEXES {
                conn.execute_batch(&format!("DROP INDEX {index}"))?;
            }
        }
    }
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    println!("page_size: {page_size}");
    drop(conn);
    let started = Instant::now();
    File::open(&db_path)?.sync_all()?;
    println!("sync_secs: {:.3}", started.elapsed().as_secs_f64());
    println!("lines: {lines}");
    println!("bytes: {bytes}");
    Ok(())
}

/// Inserts the pre-extracted rows into a new database at `db_path` with
/// ingestor's settings and statements, one thread: the seconds it took.
fn load(
    db_path: &std::path::Path,
    config: &ingestor::config::Config,
    batches: &[Batch],
    load_sql: &str,
) -> anyhow::Result<(f64, rusqlite::Connection)> {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db_path.display()));
    }
    let conn = db::open(db_path, &config.new_db, &config.log)?;
    conn.execute_batch(load_sql)?;
    let started = Instant::now();
    {
        let mut insert_row = RawStmt::prepare(&conn, db::INSERT_ROW)?;
        let mut insert_bad = RawStmt::prepare(&conn, db::INSERT_BAD)?;
        conn.execute_batch("BEGIN")?;
        let mut in_tx = 0;
        for batch in batches {
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
    Ok((started.elapsed().as_secs_f64(), conn))
}

/// CPU time at the start of a step: of the whole process (the sorter's helper
/// thread included) and, on Linux, of the calling thread alone. The calling
/// thread's share is a floor on the step's wall time however many cores are
/// free, so a setting can be judged on a busy machine too.
struct Cpu {
    process: f64,
    thread: Option<f64>,
}

impl Cpu {
    fn now() -> Self {
        Cpu {
            process: cpu_secs(),
            thread: thread_cpu_secs(),
        }
    }

    fn print(&self, label: &str) {
        let process = cpu_secs() - self.process;
        match (self.thread, thread_cpu_secs()) {
            (Some(a), Some(b)) => println!("{label}: {process:.3} main_thread {:.3}", b - a),
            _ => println!("{label}: {process:.3}"),
        }
    }
}

#[cfg(target_os = "linux")]
fn thread_cpu_secs() -> Option<f64> {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_secs() -> Option<f64> {
    None
}

/// User plus system CPU time of this process so far (one thread until the scan
/// ends, so the scan's own).
fn cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
