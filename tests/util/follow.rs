//! Data and database helpers for tests that grow an input under a running [`Proc`]
//! (tests/live.rs, tests/faults.rs): generated input, appends cut inside lines, and waits and
//! checks that read a database the process may still be creating.

use std::collections::HashMap;
use std::path::Path;
use std::thread;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{Db, Dir, Proc};

/// The database a [`Proc::follow`] writes, in its [`Dir`].
pub const DB: &str = "out.db";
/// The input a [`Proc::follow`] reads, in its [`Dir`].
pub const INPUT: &str = "in.jsonl";

/// Generates `lines` lines (no multi-MB lines, so files stay small) and returns their bytes.
pub fn generate(dir: &Dir, name: &str, seed: u64, lines: usize, adversarial: &str) -> Vec<u8> {
    dir.generate(
        name,
        &[
            "--seed",
            &seed.to_string(),
            "--lines",
            &lines.to_string(),
            "--product",
            "both",
            "--max-line-mb",
            "0",
            "--adversarial",
            adversarial,
        ],
    );
    dir.read(name)
}

/// The offset just past the `n`-th `\n` of `bytes` (0 for `n == 0`).
pub fn after_lines(bytes: &[u8], n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("fewer than {n} lines"))
}

/// Appends `bytes` to the input in `pieces` writes cut at arbitrary byte positions (so inside
/// lines and inside UTF-8 sequences), pausing after each (so that a follower commits several
/// times).
pub fn append_in_pieces(dir: &Dir, bytes: &[u8], pieces: usize, pause: Duration) {
    let mut from = 0;
    for i in 1..=pieces {
        // Odd cut points, so that they fall inside lines rather than at their ends.
        let to = if i == pieces {
            bytes.len()
        } else {
            (bytes.len() * i / pieces + 37).min(bytes.len())
        };
        if to > from {
            dir.append(INPUT, &bytes[from..to]);
        }
        from = to;
        thread::sleep(pause);
    }
}

/// Opens the database read-only without panicking (it may not exist yet).
pub fn try_open(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// `(rows in sse_lines, rows in bad_lines)`, or an error while the database is not there yet.
pub fn try_counts(path: &Path) -> rusqlite::Result<(i64, i64)> {
    let conn = try_open(path)?;
    let rows = conn.query_row("SELECT count(*) FROM sse_lines", [], |r| r.get(0))?;
    let bad = conn.query_row("SELECT count(*) FROM bad_lines", [], |r| r.get(0))?;
    Ok((rows, bad))
}

/// Waits until the database holds exactly `rows` rows and `bad` bad lines; fails at once if it
/// ever holds more (a duplicate).
pub fn wait_counts(p: &mut Proc, db: &Path, rows: usize, bad: usize) {
    let want = (rows as i64, bad as i64);
    p.wait_for(&format!("{rows} rows and {bad} bad lines"), |p| {
        let got = try_counts(db).ok()?;
        assert!(
            got.0 <= want.0 && got.1 <= want.1,
            "database holds {got:?} (rows, bad), more than the {want:?} of the input; stderr:\n{}",
            p.stderr()
        );
        (got == want).then_some(())
    });
}

/// Waits until the database holds everything the oracle expects for `input`; fails at once if
/// it ever holds more (a duplicate).
pub fn wait_all(p: &mut Proc, db: &Path, input: &[u8]) {
    let exp = crate::oracle::expect(input);
    wait_counts(p, db, exp.rows.len(), exp.bad.len());
}

/// Asserts that the database holds exactly what the oracle expects for `input` (rows, bad
/// lines, their order), and that it is sound.
pub fn assert_matches(db: &Db, input: &[u8]) {
    let exp = crate::oracle::expect(input);
    let rows = db.rows();
    let bad = db.bad_lines();
    if let Err(report) = crate::oracle::check(input, &exp, &rows, &bad) {
        panic!(
            "database differs from the oracle ({} rows, {} bad, {} blank expected; {} rows, {} \
             bad found):\n{report}",
            exp.rows.len(),
            exp.bad.len(),
            exp.blank,
            rows.len(),
            bad.len()
        );
    }
    db.assert_integrity();
}

/// Asserts that source `source_id` holds exactly what the oracle expects for its file
/// `input`, read from offset 0: rows and bad lines as [`assert_matches`] checks them, each
/// carrying its source and its line's byte offset.
pub fn assert_source_matches(db: &Db, source_id: i64, input: &[u8]) {
    let exp = crate::oracle::expect(input);
    let rows = db.rows_of(source_id);
    let bad = db.bad_lines_of(source_id);
    if let Err(report) = crate::oracle::check(input, &exp, &rows, &bad) {
        panic!("source {source_id} differs from the oracle:\n{report}");
    }
    let offsets = |v: &rusqlite::types::Value| match v {
        rusqlite::types::Value::Integer(i) => *i as usize,
        other => panic!("src_offset {other:?}"),
    };
    let got: Vec<usize> = rows.iter().map(|r| offsets(&r.src_offset)).collect();
    let want: Vec<usize> = exp.rows.iter().map(|r| r.src_offset).collect();
    assert_eq!(got, want, "source {source_id}: sse_lines.src_offset");
    let got: Vec<usize> = bad.iter().map(|r| offsets(&r.src_offset)).collect();
    let want: Vec<usize> = exp.bad.iter().map(|r| r.src_offset).collect();
    assert_eq!(got, want, "source {source_id}: bad_lines.src_offset");
    db.assert_lines_unique();
    db.assert_integrity();
}

/// For every line end of `src`: the offset just past it and how many non-blank lines end there
/// or before (each non-blank line is a row or a bad line).
pub fn line_ends(src: &[u8]) -> HashMap<usize, i64> {
    let mut ends = HashMap::new();
    ends.insert(0, 0);
    let (mut start, mut stored) = (0usize, 0i64);
    for (i, &b) in src.iter().enumerate() {
        if b == b'\n' {
            if !src[start..i]
                .iter()
                .all(|c| matches!(c, b' ' | b'\t' | b'\r'))
            {
                stored += 1;
            }
            ends.insert(i + 1, stored);
            start = i + 1;
        }
    }
    ends
}
