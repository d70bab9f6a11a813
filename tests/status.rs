//! `ingestor status`: what it says about each log (position, how far behind, who follows it),
//! that it only looks (read-only, no lock taken, nothing created) while a follower or a
//! backfill writes, and its one-line refusals.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::util::{self, DB, Dir, ProcBuilder};

/// `ingestor status --db DB [--json]` in `dir`; must exit 0 with nothing on stderr.
fn status(dir: &Dir, db: &str, json: bool) -> String {
    let out = run_status(dir, db, json);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "status {db} failed ({}):\n{stderr}",
        out.status
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn run_status(dir: &Dir, db: &str, json: bool) -> Output {
    let mut cmd = dir.command();
    cmd.args(["status", "--db", db]);
    if json {
        cmd.arg("--json");
    }
    cmd.run()
}

fn status_json(dir: &Dir, db: &str) -> Value {
    let text = status(dir, db, true);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// `status` fails with exit 1 and one line on stderr, which is returned.
fn status_err(dir: &Dir, db: &str) -> String {
    let out = run_status(dir, db, false);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "status {db}: {stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

fn canonical(dir: &Dir, name: &str) -> String {
    std::fs::canonicalize(dir.path(name))
        .expect("canonical")
        .to_string_lossy()
        .into_owned()
}

fn lines(bytes: &[u8]) -> u64 {
    let e = crate::oracle::expect(bytes);
    (e.rows.len() + e.bad.len()) as u64
}

fn rows_and_bad(bytes: &[u8]) -> (u64, u64) {
    let e = crate::oracle::expect(bytes);
    (e.rows.len() as u64, e.bad.len() as u64)
}

/// The two-log setup while it follows: both logs caught up and held by the follower's pid,
/// rows and bad lines per log as the input has them; status run over and over while the
/// follower commits never holds it up; after SIGTERM nobody holds either.
#[test]
fn status_of_two_logs_while_following() {
    let dir = Dir::new();
    let a = util::generate(&dir, "a.all", 81, 3_000, "0.01");
    let b = util::generate(&dir, "b.all", 82, 2_000, "0.01");
    let (a_cut, b_cut) = (util::after_lines(&a, 1_000), util::after_lines(&b, 800));
    dir.create("a.jsonl", &a[..a_cut]);
    dir.create("b.jsonl", &b[..b_cut]);
    let args = [
        "--input", "a.jsonl", "--input", "b.jsonl", "--db", DB, "--follow",
    ];
    let mut p = ProcBuilder::new(&dir, &args).spawn();
    let count = || {
        util::try_counts(&dir.path(DB))
            .map(|(r, b)| (r + b) as u64)
            .unwrap_or(0)
    };
    p.wait_stderr("live from offset");
    p.wait_for("the backfill", |_| {
        (count() == lines(&a[..a_cut]) + lines(&b[..b_cut])).then_some(())
    });

    // Appends in pieces, a status after each: every one answers, the follower takes them all.
    let pieces = 20;
    let bound = |bytes: &[u8], from: usize, i: usize| from + (bytes.len() - from) * i / pieces;
    for i in 1..=pieces {
        dir.append("a.jsonl", &a[bound(&a, a_cut, i - 1)..bound(&a, a_cut, i)]);
        dir.append("b.jsonl", &b[bound(&b, b_cut, i - 1)..bound(&b, b_cut, i)]);
        let s = status_json(&dir, DB);
        assert_eq!(s["sources"].as_array().map(Vec::len), Some(2), "{s}");
    }
    assert_eq!(dir.read("a.jsonl"), a, "the pieces add up to the log");
    assert_eq!(dir.read("b.jsonl"), b);
    p.wait_for("everything appended", |_| {
        (count() == lines(&a) + lines(&b)).then_some(())
    });

    let s = status_json(&dir, DB);
    let pid = p.pid as u64;
    assert_eq!(s["writer"]["pid"], pid, "{s}");
    assert_eq!(s["schema_version"], 3);
    assert!(
        s["db_bytes"].as_u64().unwrap() > 0 && s["wal_bytes"].is_u64(),
        "{s}"
    );
    let sources = s["sources"].as_array().unwrap();
    for (src, (name, bytes)) in sources.iter().zip([("a.jsonl", &a), ("b.jsonl", &b)]) {
        let (rows, bad) = rows_and_bad(bytes);
        assert_eq!(src["path"], canonical(&dir, name).as_str(), "{src}");
        assert_eq!(
            src["host"].as_str().map(str::is_empty),
            Some(false),
            "{src}"
        );
        assert_eq!(src["file"], "same", "{src}");
        assert_eq!(src["offset"], bytes.len() as u64, "{src}");
        assert_eq!(src["size"], bytes.len() as u64, "{src}");
        assert_eq!(
            (&src["behind_bytes"], &src["behind_lines"]),
            (&0.into(), &0.into())
        );
        assert_eq!(
            (&src["rows"], &src["bad_lines"]),
            (&rows.into(), &bad.into()),
            "{src}"
        );
        assert_eq!(src["held_by"]["pid"], pid, "{src}");
        assert_eq!(src["files"], 1);
        assert!(
            src["last_commit"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{src}"
        );
        assert!(
            src["last_commit_age_s"].as_f64().is_some_and(|a| a >= 0.0),
            "{src}"
        );
    }

    // The table: a database line, a header, one line per log, the follower's pid on each.
    let text = status(&dir, DB, false);
    let lines_of: Vec<&str> = text.lines().collect();
    assert_eq!(lines_of.len(), 4, "{text}");
    assert!(
        lines_of[0].starts_with("database ") && lines_of[0].contains(&format!("writer pid {pid}"))
    );
    assert!(
        lines_of[1].starts_with("SOURCE") && lines_of[1].contains("LINES BEHIND"),
        "{text}"
    );
    for (line, name) in lines_of[2..].iter().zip(["a.jsonl", "b.jsonl"]) {
        assert!(line.starts_with(&canonical(&dir, name)), "{text}");
        assert!(line.trim_end().ends_with(&format!("pid {pid}")), "{text}");
    }

    let err = p.stop_with(libc::SIGTERM);
    assert!(
        !err.contains("locked"),
        "the follower waited on a lock:\n{err}"
    );
    let s = status_json(&dir, DB);
    assert_eq!(s["writer"], Value::Null, "{s}");
    for src in s["sources"].as_array().unwrap() {
        assert_eq!(src["held_by"], Value::Null, "{src}");
    }
}

/// A log nobody follows: the bytes and complete lines behind it, a partial last line counted
/// in bytes only; then the file rotated away (all of the new one unread) and deleted.
#[test]
fn status_says_how_far_behind_a_log_is() {
    let dir = Dir::new();
    let all = util::generate(&dir, "all", 91, 1_500, "0");
    let cut = util::after_lines(&all, 1_000);
    dir.create("in.jsonl", &all[..cut]);
    dir.command()
        .args(["--input", "in.jsonl", "--db", DB, "--quiet"])
        .assert_ok();
    let more = &all[cut..util::after_lines(&all, 1_200)];
    dir.append("in.jsonl", more);
    dir.append("in.jsonl", b"{\"event\":\"half");
    let s = status_json(&dir, DB);
    let src = &s["sources"][0];
    assert_eq!(src["file"], "same", "{src}");
    assert_eq!(src["offset"], cut as u64);
    assert_eq!(src["behind_bytes"], (more.len() + 14) as u64, "{src}");
    assert_eq!(src["behind_lines"], 200, "{src}");
    let (rows, bad) = rows_and_bad(&all[..cut]);
    assert_eq!(
        (&src["rows"], &src["bad_lines"]),
        (&rows.into(), &bad.into())
    );
    assert_eq!(src["held_by"], Value::Null);
    assert_eq!(s["writer"], Value::Null);
    let text = status(&dir, DB, false);
    assert!(
        text.lines().nth(2).is_some_and(|l| l.contains("  200  ")),
        "{text}"
    );

    std::fs::rename(dir.path("in.jsonl"), dir.path("in.jsonl.1")).expect("rotate");
    dir.create("in.jsonl", &all[..100]);
    let s = status_json(&dir, DB);
    let src = &s["sources"][0];
    assert_eq!(src["file"], "replaced", "{src}");
    assert_eq!(
        (&src["size"], &src["behind_bytes"]),
        (&100.into(), &100.into())
    );

    std::fs::remove_file(dir.path("in.jsonl")).expect("delete");
    let s = status_json(&dir, DB);
    let src = &s["sources"][0];
    assert_eq!(src["file"], "missing", "{src}");
    assert_eq!(
        (&src["size"], &src["behind_bytes"]),
        (&Value::Null, &Value::Null)
    );
}

/// Standard input is a source of its own, named `-`, with no file to compare.
#[test]
fn status_of_a_pipe_source() {
    let dir = Dir::new();
    dir.command()
        .args(["--db", DB, "--quiet"])
        .stdin_bytes(b"{\"event\":\"a\"}\nnot json\n".to_vec())
        .assert_ok();
    let s = status_json(&dir, DB);
    let src = &s["sources"][0];
    assert_eq!(src["path"], "-");
    assert_eq!(src["file"], "pipe");
    assert_eq!((&src["rows"], &src["bad_lines"]), (&1.into(), &1.into()));
    assert_eq!(src["behind_bytes"], Value::Null);
}

/// Whether a process holds a write transaction open on `db` now (a `BEGIN IMMEDIATE` that
/// would wait).
fn write_locked(db: &Path) -> bool {
    let conn = rusqlite::Connection::open(db).expect("open");
    match conn.execute_batch("BEGIN IMMEDIATE") {
        Ok(()) => {
            conn.execute_batch("ROLLBACK").expect("rollback");
            false
        }
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => true,
        // Stopped while it held a WAL-index lock for a moment: cannot tell; try another moment.
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::FileLockingProtocolFailed) => {
            false
        }
        Err(e) => panic!("BEGIN IMMEDIATE: {e}"),
    }
}

/// A backfill stopped (SIGSTOP) in the middle of a write transaction, its locks held: status
/// answers at once, from the last commit, and names it as the holder of the log.
#[test]
fn status_while_a_backfill_holds_its_locks() {
    let dir = Dir::new();
    let all = util::generate(&dir, "all", 92, 30_000, "0");
    let cut = util::after_lines(&all, 500);
    dir.create("in.jsonl", &all[..cut]);
    dir.command()
        .args(["--input", "in.jsonl", "--db", DB, "--quiet"])
        .assert_ok();
    dir.append("in.jsonl", &all[cut..]);
    let mut p = ProcBuilder::new(
        &dir,
        &["--input", "in.jsonl", "--db", DB, "--batch-rows", "20"],
    )
    .spawn();
    // Stop it at a moment it is inside a transaction (most of a backfill is).
    let mut caught = false;
    for _ in 0..1_000 {
        p.signal(libc::SIGSTOP);
        if write_locked(&dir.path(DB)) {
            caught = true;
            break;
        }
        p.signal(libc::SIGCONT);
        assert!(
            p.alive(),
            "the backfill ended before it was caught in a transaction"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(caught, "never caught the backfill inside a transaction");
    let s = status_json(&dir, DB);
    p.signal(libc::SIGCONT);
    let pid = p.pid as u64;
    let src = &s["sources"][0];
    assert_eq!(src["held_by"]["pid"], pid, "{s}");
    assert_eq!(s["writer"]["pid"], pid, "{s}");
    let offset = src["offset"].as_u64().unwrap();
    assert!(offset >= cut as u64 && offset < all.len() as u64, "{src}");
    // What it says is the last commit: rows and position agree.
    assert_eq!(src["rows"], lines(&all[..offset as usize]), "{src}");
    assert_eq!(
        src["behind_bytes"].as_u64().unwrap(),
        all.len() as u64 - offset
    );
    p.assert_ok();
    let s = status_json(&dir, DB);
    assert_eq!(s["sources"][0]["behind_bytes"], 0);
    assert_eq!(s["sources"][0]["rows"], lines(&all));
}

/// A first backfill builds the database under another name: status says who is creating it.
#[test]
fn status_while_the_database_is_being_created() {
    let dir = Dir::new();
    util::generate(&dir, "in.jsonl", 93, 30_000, "0");
    let mut p = ProcBuilder::new(&dir, &["--input", "in.jsonl", "--db", DB]).spawn();
    p.wait_for("the database being built", |_| {
        dir.exists(&format!("{DB}.building")).then_some(())
    });
    p.signal(libc::SIGSTOP);
    assert!(
        !dir.exists(DB),
        "the backfill finished before it could be caught"
    );
    let err = status_err(&dir, DB);
    p.signal(libc::SIGCONT);
    assert!(
        err.contains("does not exist yet")
            && err.contains(&format!("process {} is creating it", p.pid)),
        "{err}"
    );
    p.assert_ok();
}

/// One line and exit 1 for what status cannot read; it creates nothing (no database, no lock
/// file) in doing so.
#[test]
fn status_refuses_what_is_not_an_ingestor_database() {
    let dir = Dir::new();
    let err = status_err(&dir, "none.db");
    assert!(err.contains("none.db does not exist"), "{err}");
    dir.create(
        "text.db",
        "not a database, just text that is long enough to be read\n".repeat(20),
    );
    assert!(status_err(&dir, "text.db").contains("is not a SQLite database"));
    dir.create("empty.db", b"");
    assert!(status_err(&dir, "empty.db").contains("is not an ingestor database"));
    rusqlite::Connection::open(dir.path("other.db"))
        .and_then(|c| c.execute_batch("CREATE TABLE ingest_sources(x)"))
        .expect("a foreign database");
    let err = status_err(&dir, "other.db");
    assert!(
        err.contains("is not an ingestor database") && err.contains("path"),
        "{err}"
    );
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/v1-one-source.db"
        ),
        dir.path("v1.db"),
    )
    .expect("copy fixture");
    assert!(status_err(&dir, "v1.db").contains("schema version 1"));
    let mut names: Vec<String> = std::fs::read_dir(dir.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["empty.db", "other.db", "text.db", "v1.db"]);
}
