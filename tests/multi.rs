//! One live follower following several files at once (issue 9, item 1): each with `tail -F`
//! semantics, served in turns, every line stored exactly once as a row that names its source.
//!
//! The command line takes one `--input` on this branch, so these tests drive the library's
//! follower ([`live::follow`]) with two sources, as the live process does. It runs in a child
//! process — this test binary again, with only [`follower`] selected — so that a real SIGTERM
//! stops it as it stops the real binary (the stop flag is process-wide, with no test hook).
//! Waits poll a condition with a generous deadline; nothing asserts a timing.

use crate::oracle;
use crate::util;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use ingestor::follow::live::{self, LIVE_READ_BUFFER, Tailed};
use ingestor::input::reader::LineReader;
use ingestor::input::source::{self, Start};
use ingestor::scan::batch::Builder;
use rusqlite::types::Value;

use crate::util::{DB, Dir, after_lines, generate, try_counts};

/// Tells [`follower`] what to follow: the database, then each input, one per line.
const SPEC_ENV: &str = "INGESTOR_TEST_MULTI_FOLLOWER";
const PATIENCE: Duration = Duration::from_secs(60);

/// Not a test: the follower process the tests below start (see the module's documentation).
/// Follows every input given (one not there yet is awaited) until SIGTERM.
#[test]
#[ignore = "the follower process of the multi-source tests, started by them"]
fn follower() {
    let spec = std::env::var(SPEC_ENV).expect("started by a multi-source test");
    let mut lines = spec.lines();
    let db = lines.next().expect("database path");
    let inputs: Vec<PathBuf> = lines.map(PathBuf::from).collect();
    ingestor::sys::signals::install().expect("stop signals handled");
    ingestor::sys::mem::pin_mmap_threshold();
    // The live process's own settings, as the flags resolve them; a budget the test binary
    // (bigger than ingestor) cannot exceed, so that it never re-executes into itself.
    let first = inputs[0].to_str().expect("utf-8 path");
    let args = ingestor::cli::Args::try_parse_from([
        "ingestor",
        "--input",
        first,
        "--db",
        db,
        "--follow",
        "--no-exec-live",
        "--rss-budget-mb",
        "65536",
    ])
    .expect("flags");
    let log = ingestor::report::Log::new(args.quiet, args.log_format);
    let config = ingestor::config::Config::from_args(args, log).expect("config");
    let conn = ingestor::db::open(&config.db, &config.live, &config.log).expect("open db");
    ingestor::db::create_indexes(&conn).expect("indexes");
    let mut sources = Vec::new();
    for path in &inputs {
        if !path.exists() {
            sources.push(Tailed::awaited(path.clone()));
            continue;
        }
        let opened = source::open_input(Some(path))
            .and_then(|i| i.resolve(&conn, Start::Resume))
            .expect("open input");
        let mut reader = LineReader::new(
            opened.input,
            opened.row.offset,
            LIVE_READ_BUFFER,
            config.max_line,
        );
        reader.seed_tail(&opened.row.tail);
        reader.expect_head(&opened.row.head);
        sources.push(Tailed::new(reader, opened.row.into(), Some(path.clone())));
    }
    let followed = live::follow(
        &conn,
        sources,
        Builder::new(config.max_line),
        config.rss_budget,
        config.checkpoint,
        &config.log,
    )
    .unwrap_or_else(|e| panic!("follow: {e:#}"));
    assert!(matches!(followed.end, live::End::Stopped));
    let ids: Vec<i64> = followed.positions.iter().map(|p| p.source_id).collect();
    eprintln!("ingestor: stopped; sources {ids:?}");
}

/// A [`follower`] process; killed if dropped while running.
struct Follower {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Follower {
    fn start(db: &Path, inputs: &[PathBuf]) -> Follower {
        Follower::start_with(db, inputs, None)
    }

    /// [`Follower::start`] with `INGESTOR_FAILPOINTS=failpoints`.
    fn start_with(db: &Path, inputs: &[PathBuf], failpoints: Option<&str>) -> Follower {
        let mut spec = db.to_str().expect("utf-8 path").to_owned();
        for input in inputs {
            spec.push('\n');
            spec.push_str(input.to_str().expect("utf-8 path"));
        }
        let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
        match failpoints {
            Some(points) => cmd.env("INGESTOR_FAILPOINTS", points),
            None => cmd.env_remove("INGESTOR_FAILPOINTS"),
        };
        let mut child = cmd
            .args([
                "multi::follower",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SPEC_ENV, spec)
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the follower");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let mut pipe = child.stderr.take().expect("stderr");
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Follower {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Polls `cond` until it holds; fails if the follower ends first or after [`PATIENCE`].
    fn wait_for(&mut self, what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "the follower ended ({status}) while waiting for {what}; stderr:\n{}",
                    self.stderr()
                );
            }
            assert!(
                start.elapsed() < PATIENCE,
                "timed out waiting for {what}; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the database holds exactly `want` (rows, bad lines); fails at once if it
    /// ever holds more (a duplicate).
    fn wait_counts(&mut self, db: &Path, want: (usize, usize)) {
        let want = (want.0 as i64, want.1 as i64);
        let stderr = self.stderr.clone();
        self.wait_for(&format!("{want:?} (rows, bad lines)"), || {
            let Ok(got) = try_counts(db) else {
                return false;
            };
            assert!(
                got.0 <= want.0 && got.1 <= want.1,
                "database holds {got:?} (rows, bad), more than the {want:?} written; stderr:\n{}",
                String::from_utf8_lossy(&stderr.lock().unwrap())
            );
            got == want
        });
    }

    /// Waits for the follower to be killed by a failpoint (SIGKILL).
    fn wait_killed(mut self) {
        use std::os::unix::process::ExitStatusExt;
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "the follower was not killed by its failpoint; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "stderr:\n{}",
            self.stderr()
        );
    }

    /// SIGTERM, then a clean exit (status 0). Returns stderr.
    fn stop(mut self) -> String {
        // SAFETY: plain kill(2) on the pid of a child not reaped yet.
        let rc = unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill");
        let start = Instant::now();
        let status: ExitStatus = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            assert!(start.elapsed() < PATIENCE, "the follower did not stop");
            thread::sleep(Duration::from_millis(5));
        };
        if let Some(r) = self.reader.take() {
            r.join().expect("stderr reader");
        }
        let err = self.stderr();
        assert!(
            status.success(),
            "the follower exited with {status}:\n{err}"
        );
        util::assert_no_panic("the follower", &err);
        assert!(err.contains("ingestor: stopped"), "stderr:\n{err}");
        err
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Appends `bytes` to `path` in `pieces` writes cut inside lines, pausing after each.
fn append_pieces(path: &Path, bytes: &[u8], pieces: usize, pause: Duration) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .expect("open for append");
    let mut from = 0;
    for i in 1..=pieces {
        let to = if i == pieces {
            bytes.len()
        } else {
            (bytes.len() * i / pieces + 37).min(bytes.len())
        };
        if to > from {
            f.write_all(&bytes[from..to]).expect("append");
        }
        from = to;
        thread::sleep(pause);
    }
}

/// `bytes` cut into `parts` runs of whole lines.
fn split_lines(bytes: &[u8], parts: usize) -> Vec<&[u8]> {
    let lines = bytes.iter().filter(|b| **b == b'\n').count();
    (0..parts)
        .map(|i| {
            let from = after_lines(bytes, lines * i / parts);
            let to = after_lines(bytes, lines * (i + 1) / parts);
            &bytes[from..to]
        })
        .collect()
}

/// (rows, bad lines) the oracle expects for all of `inputs`.
fn expected(inputs: &[&[u8]]) -> (usize, usize) {
    inputs.iter().fold((0, 0), |(r, b), input| {
        let e = oracle::expect(input);
        (r + e.rows.len(), b + e.bad.len())
    })
}

/// `(id, path)` of every source, oldest first.
fn sources(db: &Path) -> Vec<(i64, String)> {
    let conn = util::try_open(db).expect("open db");
    let mut stmt = conn
        .prepare("SELECT id, path FROM ingest_sources ORDER BY id")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn canonical(p: &Path) -> String {
    std::fs::canonicalize(p)
        .expect("canonical path")
        .to_string_lossy()
        .into_owned()
}

/// Checks the whole database against the files written: `files[path]` lists the contents of
/// each file that was at `path`, in order; each is one source (the k-th source recorded for a
/// path is its k-th file). Every line of every file is stored exactly once, as a row or bad
/// line of its own source at its own offset, in order; `(source_id, src_offset)` is unique.
fn assert_sources_match(db: &util::Db, files: &[(&Path, Vec<Vec<u8>>)]) {
    let srcs = sources(&db.path);
    let rows = db.rows();
    let bad = db.bad_lines();
    let mut checked = (0, 0);
    for (path, contents) in files {
        let name = canonical(path);
        let ids: Vec<i64> = srcs.iter().filter(|s| s.1 == name).map(|s| s.0).collect();
        assert_eq!(
            ids.len(),
            contents.len(),
            "sources recorded for {name}: {srcs:?}"
        );
        for (id, input) in ids.iter().zip(contents) {
            let mine = Value::Integer(*id);
            let rows: Vec<_> = rows
                .iter()
                .filter(|r| r.source_id == mine)
                .cloned()
                .collect();
            let bad: Vec<_> = bad
                .iter()
                .filter(|b| b.source_id == mine)
                .cloned()
                .collect();
            let exp = oracle::expect(input);
            if let Err(report) = oracle::check(input, &exp, &rows, &bad) {
                panic!("source {id} ({name}) differs from its file:\n{report}");
            }
            // The oracle compares values; where each row came from is checked here.
            let offsets: Vec<Value> = rows.iter().map(|r| r.src_offset.clone()).collect();
            let want: Vec<Value> = exp
                .rows
                .iter()
                .map(|r| Value::Integer(r.src_offset as i64))
                .collect();
            assert_eq!(offsets, want, "src_offset of source {id} ({name})");
            checked.0 += rows.len();
            checked.1 += bad.len();
            let offset: i64 = db
                .open()
                .query_row(
                    "SELECT offset FROM ingest_sources WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .expect("offset");
            assert_eq!(
                offset,
                input.len() as i64,
                "position of source {id} ({name})"
            );
        }
    }
    // No row outside the sources checked, none of them twice.
    assert_eq!(checked, (rows.len(), bad.len()), "rows of unknown sources");
    let dup: i64 = db
        .open()
        .query_row(
            "SELECT count(*) FROM (SELECT 1 FROM sse_lines GROUP BY source_id, src_offset \
             HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .expect("duplicates");
    assert_eq!(dup, 0, "(source_id, src_offset) is not unique");
    db.assert_integrity();
}

/// After a kill: each source's committed rows are exactly its lines before its stored position
/// (rows and position committed together, whatever else the transaction held).
fn assert_positions_hold_their_rows(db: &Path, files: &[(&Path, &[u8])]) {
    let conn = util::try_open(db).expect("open db");
    for (path, content) in files {
        let name = canonical(path);
        let Ok((id, offset)) = conn.query_row(
            "SELECT id, offset FROM ingest_sources WHERE path = ?1",
            [&name],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        ) else {
            continue;
        };
        let stored: i64 = conn
            .query_row(
                "SELECT (SELECT count(*) FROM sse_lines WHERE source_id = ?1) + \
                 (SELECT count(*) FROM bad_lines WHERE source_id = ?1)",
                [id],
                |r| r.get(0),
            )
            .expect("count");
        let before = util::line_ends(content).get(&(offset as usize)).copied();
        assert_eq!(
            Some(stored),
            before,
            "{name}: {stored} rows and bad lines committed with position {offset}"
        );
    }
}

/// A kill at each step of a commit that holds both sources' rows, and injected I/O errors
/// (retried from the committed positions): after a restart, every line of both files is
/// stored exactly once.
#[test]
fn a_kill_or_an_error_in_a_commit_of_two_sources_loses_and_duplicates_nothing() {
    let cases = [
        ("before-position@3:kill", true),
        ("before-commit@3:kill", true),
        ("after-commit@2:kill", true),
        ("before-commit@2:error,before-position@4:error", false),
    ];
    for (points, kills) in cases {
        let dir = Dir::new();
        let db = dir.path(DB);
        let (a, b) = (dir.path("a.jsonl"), dir.path("b.jsonl"));
        let all_a = generate(&dir, "a-all.jsonl", 61, 2000, "0.02");
        let all_b = generate(&dir, "b-all.jsonl", 62, 2000, "0.02");
        let pa = split_lines(&all_a, 12);
        let pb = split_lines(&all_b, 12);
        dir.create("a.jsonl", pa[0]);
        dir.create("b.jsonl", pb[0]);
        let inputs = [a.clone(), b.clone()];
        let mut f = Follower::start_with(&db, &inputs, Some(points));
        f.wait_counts(&db, expected(&[pa[0], pb[0]]));
        // Both grow together, so that transactions hold rows of both.
        for (x, y) in pa[1..].iter().zip(&pb[1..]) {
            dir.append("a.jsonl", x);
            dir.append("b.jsonl", y);
            thread::sleep(Duration::from_millis(30));
        }
        if kills {
            f.wait_killed();
            assert_positions_hold_their_rows(&db, &[(&a, &all_a), (&b, &all_b)]);
            f = Follower::start(&db, &inputs);
        }
        f.wait_counts(&db, expected(&[&all_a, &all_b]));
        let err = f.stop();
        if !kills {
            assert!(err.contains("retrying from offsets"), "{points}:\n{err}");
        }
        assert_sources_match(
            &dir.db(DB),
            &[(a.as_path(), vec![all_a]), (b.as_path(), vec![all_b])],
        );
    }
}

/// Two files followed by one process while both grow: a rename rotation of one and a delete
/// and re-create of the other, a restart that resumes both from `ingest_sources`, then a
/// copy-truncate. Every line of every file lands exactly once, as a row of its own source.
#[test]
fn two_files_followed_at_once_through_rotations_and_a_restart() {
    let dir = Dir::new();
    let db = dir.path(DB);
    let (a, b) = (dir.path("a.jsonl"), dir.path("b.jsonl"));
    let all_a = generate(&dir, "a-all.jsonl", 31, 4000, "0.02");
    let all_b = generate(&dir, "b-all.jsonl", 32, 4000, "0.02");
    let pa = split_lines(&all_a, 5);
    let pb = split_lines(&all_b, 5);
    dir.create("a.jsonl", pa[0]);
    dir.create("b.jsonl", pb[0]);
    let inputs = [a.clone(), b.clone()];

    let mut f = Follower::start(&db, &inputs);
    f.wait_counts(&db, expected(&[pa[0], pb[0]]));
    let pause = Duration::from_millis(15);
    // Both grow at once; then `a` is rotated by rename while its logger writes its last lines
    // into the old file, and `b` is deleted and re-created, each while the other grows.
    let (a_last, a_next) = pa[2].split_at(after_lines(pa[2], 5));
    thread::scope(|s| {
        s.spawn(|| {
            append_pieces(&a, pa[1], 6, pause);
            let mut old = std::fs::OpenOptions::new()
                .append(true)
                .open(&a)
                .expect("open a");
            std::fs::rename(&a, dir.path("a.jsonl.1")).expect("rotate a");
            for piece in a_last.chunks(a_last.len() / 3 + 1) {
                old.write_all(piece).expect("write into the rotated file");
                thread::sleep(pause);
            }
            drop(old);
            append_pieces(&a, a_next, 6, pause);
        });
        append_pieces(&b, pb[1], 6, pause);
        std::fs::remove_file(&b).expect("remove b");
        append_pieces(&b, pb[2], 6, pause);
    });
    let a1 = [pa[0], pa[1], a_last].concat();
    f.wait_counts(&db, expected(&[&a1, a_next, pb[0], pb[1], pb[2]]));
    let err = f.stop();
    assert_eq!(err.matches("was rotated").count(), 2, "stderr:\n{err}");

    // A restart resumes both where they were; then `a` grows while `b` is copied and
    // truncated once caught up (lines written between a copy and its truncation are in
    // neither file: no tailer sees them).
    let mut f = Follower::start(&db, &inputs);
    thread::scope(|s| {
        s.spawn(|| append_pieces(&a, pa[3], 6, pause));
        append_pieces(&b, pb[3], 6, pause);
    });
    let before = expected(&[&a1, a_next, pa[3], pb[0], pb[1], pb[2], pb[3]]);
    f.wait_counts(&db, before);
    std::fs::copy(&b, dir.path("b.jsonl.1")).expect("copy b");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&b)
        .expect("open b")
        .set_len(0)
        .expect("truncate b");
    thread::scope(|s| {
        s.spawn(|| append_pieces(&a, pa[4], 6, pause));
        append_pieces(&b, pb[4], 6, pause);
    });
    let a2 = [a_next, pa[3], pa[4]].concat();
    let b2 = [pb[2], pb[3]].concat();
    f.wait_counts(&db, expected(&[&a1, &a2, pb[0], pb[1], &b2, pb[4]]));
    let err = f.stop();
    assert!(
        !err.contains("was rotated"),
        "a resume, no rotation:\n{err}"
    );
    let cuts = err.matches("was truncated").count() + err.matches("was rewritten").count();
    assert_eq!(cuts, 1, "stderr:\n{err}");

    assert_sources_match(
        &dir.db(DB),
        &[
            (&a, vec![a1, a2]),
            (&b, vec![[pb[0], pb[1]].concat(), b2, pb[4].to_vec()]),
        ],
    );
}

/// A busy source does not starve a quiet one: with a backlog in each file when the follower
/// starts, their rows are stored in alternating runs of at most a few batches, not one file
/// after the other.
#[test]
fn sources_are_served_in_turns() {
    let dir = Dir::new();
    let db = dir.path(DB);
    let (a, b) = (dir.path("a.jsonl"), dir.path("b.jsonl"));
    let all_a = generate(&dir, "a.jsonl", 41, 3000, "0");
    let all_b = generate(&dir, "b.jsonl", 42, 3000, "0");
    let one = all_b[..after_lines(&all_b, 1)].to_vec();
    let c = dir.create("c.jsonl", &one);
    let mut f = Follower::start(&db, &[a.clone(), b.clone(), c.clone()]);
    f.wait_counts(&db, expected(&[&all_a, &all_b, &one]));
    f.stop();
    let rows = dir.db(DB).rows();
    let srcs = sources(&db);
    let id_of = |p: &Path| {
        let name = canonical(p);
        Value::Integer(srcs.iter().find(|s| s.1 == name).expect("source").0)
    };
    let (ia, ib, ic) = (id_of(&a), id_of(&b), id_of(&c));
    // Runs of rows of one source, in the order they were stored.
    let mut runs: Vec<(Value, usize)> = Vec::new();
    for r in &rows {
        match runs.last_mut() {
            Some((s, n)) if *s == r.source_id => *n += 1,
            _ => runs.push((r.source_id.clone(), 1)),
        }
    }
    let longest = runs.iter().map(|r| r.1).max().unwrap_or(0);
    assert!(
        runs.len() >= 10 && longest <= 1000,
        "rows were not taken in turns: {} runs, longest {longest}",
        runs.len()
    );
    // The one-line file waited for one turn of each other file at most.
    let before_c = rows.iter().take_while(|r| r.source_id != ic).count();
    assert!(
        before_c <= 1000,
        "{before_c} rows before the one-line file's"
    );
    for id in [&ia, &ib] {
        assert!(runs.iter().any(|r| r.0 == *id));
    }
    let files = [
        (a.as_path(), vec![all_a]),
        (b.as_path(), vec![all_b]),
        (c.as_path(), vec![one]),
    ];
    assert_sources_match(&dir.db(DB), &files);
}

/// A path that names no file yet is waited for while the other is followed, then followed from
/// offset 0 as a new source.
#[test]
fn a_path_not_there_yet_is_awaited_while_the_other_is_followed() {
    let dir = Dir::new();
    let db = dir.path(DB);
    let (a, b) = (dir.path("a.jsonl"), dir.path("b.jsonl"));
    let all_a = generate(&dir, "a-all.jsonl", 51, 1000, "0");
    let all_b = generate(&dir, "b-all.jsonl", 52, 1000, "0");
    let pa = split_lines(&all_a, 2);
    dir.create("a.jsonl", pa[0]);
    let mut f = Follower::start(&db, &[a.clone(), b.clone()]);
    f.wait_counts(&db, expected(&[pa[0]]));
    append_pieces(&a, pa[1], 3, Duration::from_millis(10));
    f.wait_counts(&db, expected(&[&all_a]));
    append_pieces(&b, &all_b, 3, Duration::from_millis(10));
    f.wait_counts(&db, expected(&[&all_a, &all_b]));
    let err = f.stop();
    assert!(err.contains("b.jsonl appeared"), "stderr:\n{err}");
    assert_sources_match(
        &dir.db(DB),
        &[(a.as_path(), vec![all_a]), (b.as_path(), vec![all_b])],
    );
}

/// Standard input cannot be followed with another input: refused before anything is read.
#[test]
fn standard_input_is_followed_alone() {
    let dir = Dir::new();
    dir.create("a.jsonl", b"{}\n");
    let tuning = ingestor::db::Tuning {
        cache_mb: 2,
        page_size: 16384,
        journal: ingestor::db::Journal::Wal,
        synchronous: ingestor::db::Synchronous::Normal,
    };
    let log = ingestor::report::Log::new(true, ingestor::report::Format::Text);
    let conn = ingestor::db::open(&dir.path(DB), &tuning, &log).expect("open");
    let open = |input: source::Unresolved, path: Option<PathBuf>| {
        let o = input.resolve(&conn, Start::Resume).expect("resolve");
        let reader = LineReader::new(o.input, o.row.offset, LIVE_READ_BUFFER, 1 << 20);
        Tailed::new(reader, o.row.into(), path)
    };
    let a = dir.path("a.jsonl");
    let both = vec![
        open(source::open_input(None).expect("stdin"), None),
        open(source::open_input(Some(&a)).expect("a"), Some(a.clone())),
    ];
    let err = live::follow(
        &conn,
        both,
        Builder::new(1 << 20),
        12 << 20,
        ingestor::db::Checkpoint::Auto,
        &log,
    )
    .err()
    .expect("refused");
    assert!(
        err.to_string()
            .contains("standard input can only be followed alone"),
        "{err:#}"
    );
    assert_eq!(dir.db(DB).count("sse_lines"), 0);
}
