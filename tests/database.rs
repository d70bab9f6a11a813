//! The database file itself, through the real binary: which databases ingestor writes into
//! (and which it refuses, untouched), what `--from-scratch` keeps, how indexes are judged, who
//! can read the files it creates, names planted beside the database, and what the summary says
//! when a backfill is stopped.
//!
//! Linux only where it says so: waits on `/proc/PID/fd` and the exec into live mode.

mod oracle;
mod util;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rusqlite::Connection;
use rusqlite::types::Value;

use util::{DB, Dir, INPUT, ProcBuilder, assert_matches, generate};

/// Runs `ingestor --input INPUT --db DB ARGS`, asserts a clean run (one summary line) and a
/// sound database, and returns the summary line.
fn ingest(dir: &Dir, args: &[&str]) -> String {
    let summary = dir
        .command()
        .args(["--input", INPUT, "--db", DB])
        .args(args)
        .assert_ok();
    dir.db(DB).assert_integrity();
    summary
}

/// Runs `ingestor --input INPUT --db DB ARGS` and asserts a clean refusal (non-zero exit, one
/// line); returns that line.
fn refused(dir: &Dir, db: &str, args: &[&str]) -> String {
    dir.command()
        .args(["--input", INPUT, "--db", db])
        .args(args)
        .assert_err()
}

/// A small input with a value in every indexed column, and a bad line.
fn small_input(dir: &Dir) {
    dir.create(
        INPUT,
        "{\"event\":\"a\",\"t\":\"2025-01-01T00:00:00.000\",\"flow_id\":\"f\",\"round\":\"1\",\
         \"sid\":\"s\",\"metadata\":\"{\\\"pid\\\":7,\\\"cwd\\\":\\\"/w\\\",\\\"turn_id\\\":\\\"u\\\"}\",\
         \"line\":\"data: {}\"}\n\
         {\"event\":\"b\",\"sid\":\"S\"}\n\
         not json\n",
    );
}

fn with_suffix(dir: &Dir, name: &str, suffix: &str) -> std::path::PathBuf {
    dir.path(&format!("{name}{suffix}"))
}

/// Asserts that `name` has exactly the bytes `before` and that SQLite left no file beside it.
fn assert_untouched(dir: &Dir, name: &str, before: &[u8]) {
    assert!(dir.read(name) == before, "{name} was modified");
    for suffix in ["-journal", "-wal", "-shm", ".building"] {
        let side = with_suffix(dir, name, suffix);
        assert!(!side.exists(), "{} left behind", side.display());
    }
}

// ---------------------------------------------------------------------------------------------
// Item 13: a stopped backfill says so

/// SIGINT during the backfill of a big file: the run commits what it read and its summary says
/// that it stopped early, at which byte of how many, and that indexes were not built; the next
/// run completes and builds them.
#[cfg(target_os = "linux")]
#[test]
fn a_backfill_stopped_by_sigint_says_it_stopped_early() {
    let dir = Dir::new();
    // A million short lines: a second or more of work, so the signal lands in the load.
    let mut bytes = Vec::with_capacity(64 << 20);
    for i in 0..1_000_000u32 {
        writeln!(
            bytes,
            "{{\"event\":\"e\",\"sid\":\"s{}\",\"data_count\":{i}}}",
            i % 997
        )
        .expect("write");
    }
    dir.create(INPUT, &bytes);
    let building = with_suffix(&dir, DB, ".building");
    let mut p = ProcBuilder::new(&dir, &["--input", INPUT, "--db", DB]).spawn();
    p.wait_for("the build file", |_| building.exists().then_some(()));
    p.signal(libc::SIGINT);
    let err = p.assert_ok();
    eprintln!("{err}");
    let line = err.trim_end();
    let rest = line
        .strip_prefix("ingestor: stopped early at byte ")
        .unwrap_or_else(|| panic!("the summary does not say it stopped early: {line}"));
    let nums = util::numbers_in(rest);
    let (offset, total) = (nums[0] as usize, nums[1] as usize);
    assert!(
        rest.starts_with(&format!("{offset} of {total} (")),
        "no total: {line}"
    );
    assert_eq!(total, bytes.len(), "{line}");
    assert!(offset < total, "{line}");
    assert!(
        offset == 0 || bytes[offset - 1] == b'\n',
        "not a line end: {line}"
    );
    assert!(line.contains("indexes not built"), "{line}");
    assert!(!line.contains("indexes 0.00"), "{line}");
    let committed = bytes[..offset].iter().filter(|b| **b == b'\n').count();
    let db = dir.db(DB);
    assert_eq!(db.count("sse_lines") as usize, committed, "{line}");
    assert!(
        db.indexes().iter().all(|(n, _)| !n.starts_with("idx_sse_")),
        "indexes built by a stopped run: {:?}",
        db.indexes()
    );
    let summary = ingest(&dir, &[]);
    assert!(!summary.contains("stopped"), "{summary}");
    assert_eq!(db.count("sse_lines"), 1_000_000);
    assert_eq!(
        db.indexes()
            .iter()
            .filter(|(n, _)| n.starts_with("idx_sse_"))
            .count(),
        7
    );
}

// ---------------------------------------------------------------------------------------------
// Item 14: one unit

/// An input of exactly 2 MiB is reported as 2.0 MiB (it is 2.1 MB), and no size says MB.
#[test]
fn summary_sizes_are_in_mib() {
    let dir = Dir::new();
    let mut bytes = Vec::new();
    for i in 0..2048 {
        let head = format!("{{\"event\":\"e{i:04}\",\"line\":\"");
        let pad = 1024 - head.len() - "\"}\n".len();
        bytes.extend_from_slice(head.as_bytes());
        bytes.extend(std::iter::repeat_n(b'a', pad));
        bytes.extend_from_slice(b"\"}\n");
    }
    assert_eq!(bytes.len(), 2 << 20);
    dir.create(INPUT, &bytes);
    let summary = ingest(&dir, &[]);
    assert!(summary.contains(" 2.0 MiB in "), "{summary}");
    assert!(!summary.contains("MB"), "{summary}");
}

