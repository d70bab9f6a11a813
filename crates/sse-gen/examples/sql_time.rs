//! Times SQL through the bundled SQLite (the library `ingestor` and `ingestor report` use), for
//! scripts/views_bench.sh:
//!
//!   sql_time DB RUNS SQL [PARAM]   runs SQL RUNS times, stepping every row and reading every
//!                                  column as a client would; prints one line per run:
//!                                  `wall_seconds cpu_seconds rows` (CPU: user + system)
//!   sql_time DB --batch FILE       executes the statements of FILE (read-write)
//!   sql_time DB --value SQL [PARAM]  prints the first column of the first row

use std::time::Instant;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, mode, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: sql_time DB RUNS SQL [PARAM] | DB --batch FILE | DB --value SQL".into(),
        );
    };
    let params: Vec<&str> = rest.iter().skip(1).map(String::as_str).collect();
    if mode == "--batch" {
        let conn = Connection::open(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(&std::fs::read_to_string(&rest[0])?)?;
        return Ok(());
    }
    let sql = rest.first().ok_or("no SQL")?;
    if mode == "--value" {
        let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let v: rusqlite::types::Value =
            conn.query_row(sql, rusqlite::params_from_iter(&params), |r| r.get(0))?;
        match v {
            rusqlite::types::Value::Integer(i) => println!("{i}"),
            rusqlite::types::Value::Real(f) => println!("{f}"),
            rusqlite::types::Value::Text(t) => println!("{t}"),
            other => println!("{other:?}"),
        }
        return Ok(());
    }
    let runs: usize = mode.parse()?;
    eprintln!("SQLite {}", rusqlite::version());
    for _ in 0..runs {
        // A fresh connection per run, with SQLite's default settings, as a user's would be.
        let conn = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let mut stmt = conn.prepare(sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(&params))?;
        let (mut n, mut bytes) = (0u64, 0usize);
        while let Some(row) = rows.next()? {
            n += 1;
            for i in 0..columns {
                bytes += match row.get_ref(i)? {
                    ValueRef::Text(t) | ValueRef::Blob(t) => t.len(),
                    _ => 8,
                };
            }
        }
        std::hint::black_box(bytes);
        println!(
            "{:.4} {:.4} {n}",
            started.elapsed().as_secs_f64(),
            cpu_seconds() - cpu
        );
    }
    Ok(())
}

/// User plus system CPU time of this process so far: on a shared machine, what a query cost
/// apart from the time it waited for a core.
fn cpu_seconds() -> f64 {
    // SAFETY: `getrusage` only writes the struct we pass, which is plain data.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
