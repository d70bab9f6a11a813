//! Which file a source is: a new source's `ingest_sources` row is stored with its first lines,
//! never before. A row stored with nothing read holds only the file's first bytes as its
//! fingerprint; log lines often start alike (one event name, the same minute: 187 of 2,000
//! `sse-gen` lines share their first 64 bytes), so after a copy-truncate that row matched an
//! older, longer copy of the file, which was read again as its continuation: every line of
//! it twice (the rare duplicate of the kill -9 campaign).
//!
//! Each test below kills a run between the moment a new source was recorded before the fix and
//! its first commit (a failpoint), copy-truncates the file while nothing runs, and runs again.

use std::fs;
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;

use crate::util::{DB, Dir, INPUT, ProcBuilder, assert_source_matches, wait_all};

/// `n` lines whose first 64 bytes are the same (`event` and `t` first, as logs write them),
/// told apart by `tag` and their number, after those 64 bytes.
fn alike(event: &str, tag: &str, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let line = format!(
            "{{\"event\":\"{event}\",\"t\":\"2025-11-04T12:00:00.000\",\"flow_id\":\"flow-0001\",\
             \"sid\":\"{tag}-{i}\"}}\n"
        );
        // What tells lines apart comes after the 64 bytes a file is first recognised by.
        assert!(line.find("\"sid\"") >= Some(64), "{line}");
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// logrotate's copytruncate, then the writer writing `next` into the truncated file: `INPUT`
/// is copied to `kept`, and rewritten in place as `next` (the same file, as after a truncation
/// and new appends). The bytes are overwritten before the file is cut to their length, so that
/// a follower sees the file shrink only once it holds `next` whole: what it records for the
/// file is then `next`'s first bytes, whenever it looks.
fn copy_truncate(dir: &Dir, kept: &str, next: &[u8]) {
    fs::copy(dir.path(INPUT), dir.path(kept)).expect("copy");
    let f = fs::OpenOptions::new()
        .write(true)
        .open(dir.path(INPUT))
        .expect("open input");
    let before = f.metadata().expect("stat").len();
    assert!(next.len() as u64 <= before, "a truncation shrinks the file");
    f.write_all_at(next, 0).expect("rewrite");
    f.set_len(next.len() as u64).expect("truncate");
}

/// Runs `ingestor --input INPUT --db DB ARGS` with failpoint `spec` and waits for its SIGKILL.
fn run_killed(dir: &Dir, args: &[&str], spec: &str, wait: impl FnOnce(&mut crate::util::Proc)) {
    let mut p = ProcBuilder::follow(dir, args)
        .env("INGESTOR_FAILPOINTS", spec)
        .spawn();
    wait(&mut p);
    let status = p.wait_exit();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "expected the failpoint {spec} to kill it; stderr:\n{}",
        p.stderr()
    );
}

/// The run after the last copy-truncate: it says what it finishes first, then its summary.
fn finish(dir: &Dir) {
    let out = dir.command().args(["--input", INPUT, "--db", DB]).run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {err}", out.status);
    assert!(err.contains("finishing that from"), "{err}");
}

/// The database holds `a` then `c`, each line once, each file as its own source. `b` is not
/// there: it was copied away before any line of it was committed, and nothing stored tells
/// its copy from any other file named like one (as for a copy-truncate before any run saw the
/// file); before the fix its place was taken by `a`, again.
fn assert_a_then_c(dir: &Dir, a: &[u8], c: &[u8]) {
    let db = dir.db(DB);
    // `sid` tells every line of these files apart.
    let sids: Vec<String> = db
        .open()
        .prepare("SELECT sid FROM sse_lines ORDER BY id")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("read");
    let mut seen = std::collections::HashMap::new();
    for sid in &sids {
        *seen.entry(sid.as_str()).or_insert(0) += 1;
    }
    let mut twice: Vec<&str> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(s, _)| *s)
        .collect();
    twice.sort();
    assert!(
        twice.is_empty(),
        "{} of {} rows are lines stored more than once, such as {:?}",
        twice.len(),
        sids.len(),
        &twice[..twice.len().min(5)]
    );
    let count = |bytes: &[u8]| bytes.iter().filter(|&&b| b == b'\n').count();
    let want: Vec<String> = (0..count(a))
        .map(|i| format!("a-{i}"))
        .chain((0..count(c)).map(|i| format!("c-{i}")))
        .collect();
    assert_eq!(
        sids, want,
        "rows: the lines of the first file, then the third's"
    );
    let ids: Vec<i64> = db
        .open()
        .prepare("SELECT id FROM ingest_sources ORDER BY id")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("read");
    assert_eq!(ids.len(), 2, "one source per file read: {ids:?}");
    assert_source_matches(&db, ids[0], a);
    assert_source_matches(&db, ids[1], c);
}

/// A resumed backfill finishes the copy of the file it knew, then records the cut file as a
/// new source and is killed at its first commit; the file is copy-truncated again before the
/// next run.
#[test]
fn a_copy_truncate_before_a_new_sources_first_commit_in_a_backfill_duplicates_nothing() {
    let dir = Dir::new();
    // Each file shorter than the one before (a copy-truncate shrinks the file); c starts
    // differently.
    let (a, b, c) = (
        alike("delta", "a", 60),
        alike("delta", "b", 20),
        alike("other", "c", 15),
    );
    dir.create(INPUT, &a);
    dir.command()
        .args(["--input", INPUT, "--db", DB])
        .assert_ok();
    copy_truncate(&dir, "in.jsonl.1", &b);
    // Finishing the copy commits nothing (it was read whole): the first commit is b's.
    run_killed(&dir, &[], "before-position:kill", |_| {});
    copy_truncate(&dir, "in.jsonl.2", &c);
    finish(&dir);
    assert_a_then_c(&dir, &a, &c);
}

/// The same in live mode: the follower reads on in the copy, moves to the cut file as a new
/// source and is killed right after that move's commit.
#[test]
fn a_copy_truncate_before_a_new_sources_first_commit_in_live_mode_duplicates_nothing() {
    let dir = Dir::new();
    let (a, b, c) = (
        alike("delta", "a", 60),
        alike("delta", "b", 20),
        alike("other", "c", 15),
    );
    dir.create(INPUT, &a);
    run_killed(&dir, &["--follow"], "rotate-after-commit:kill", |p| {
        p.wait_exec();
        wait_all(p, &dir.path(DB), &a);
        copy_truncate(&dir, "in.jsonl.1", &b);
    });
    copy_truncate(&dir, "in.jsonl.2", &c);
    finish(&dir);
    assert_a_then_c(&dir, &a, &c);
}
