//! Crash safety of `ingestor --follow` under `kill -9`, at CI size.
//!
//! A writer thread appends pre-generated lines to the followed file in chunks cut at arbitrary
//! byte positions (so half-written lines are common); the harness starts `ingestor --follow`,
//! SIGKILLs it at moments drawn from a seeded RNG (during the first backfill into
//! `DB.building`, during a resumed backfill, right around the `exec()` hand-over, and in live
//! mode while lines arrive) and restarts it, over and over. After every kill it checks that the
//! database is sound (`PRAGMA integrity_check`) and that what is committed is exactly the lines
//! before the committed offset; at the end it restarts once more, waits until the whole file is
//! in, stops with SIGTERM and compares the database with the oracle: every line exactly once,
//! in file order.
//!
//! Scope: the writer only appends to one file. Rotation or truncation of the followed file is
//! known not to be handled yet and is not exercised here. Nothing asserts on speed; the seed is
//! fixed, so the same kill plan is drawn on every run (the moments it lands on still depend on
//! the machine's timing).
//!
//! The same campaign at scale: `scripts/kill9.sh`.

mod oracle;
mod util;

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

use util::Dir;

const DB: &str = "crash.db";
const INPUT: &str = "followed.jsonl";
const SEED: u64 = 0x6b69_6c6c_2d39;
/// Kill points in the campaign.
const KILLS: usize = 30;
/// The first kills all aim at the first backfill (the database does not exist yet).
const FIRST_BUILD_KILLS: usize = 5;
/// Lines generated in all; the followed file starts with about 40 % of them.
const LINES: usize = 30_000;
/// Deadline for anything the binary should do "soon".
const PATIENCE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// A small deterministic RNG (splitmix64), so that the kill plan depends on the seed alone.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }
}

// ---------------------------------------------------------------------------------------------
// One `ingestor --follow` process, stderr collected, killed when dropped.

struct Proc {
    child: Child,
    pid: i32,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Proc {
    fn follow(dir: &Dir) -> Proc {
        let mut child = Command::new(util::INGESTOR)
            .current_dir(dir.root())
            .arg("--input")
            .arg(dir.path(INPUT))
            .arg("--db")
            .arg(dir.path(DB))
            .arg("--follow")
            .env_remove("RUST_BACKTRACE")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ingestor --follow");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let mut pipe = child.stderr.take().expect("stderr");
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
        });
        Proc {
            pid: child.id() as i32,
            child,
            stderr,
            reader: Some(reader),
            status: None,
        }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    fn alive(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait().expect("try_wait") {
            Some(s) => {
                self.status = Some(s);
                false
            }
            None => true,
        }
    }

    /// Whether the process has re-executed itself into live mode (same pid, new command line).
    fn execed(&self) -> bool {
        fs::read(format!("/proc/{}/cmdline", self.pid))
            .map(|b| String::from_utf8_lossy(&b).contains("--no-exec-live"))
            .unwrap_or(false)
    }

    fn announced_live(&self) -> bool {
        self.stderr().contains("live from offset")
    }

    /// Spins (no sleep: the hand-over window is a few milliseconds) until `cond` holds. Fails if
    /// the process ends or nothing happens within [`PATIENCE`].
    fn spin_until(&mut self, what: &str, cond: impl Fn(&Proc) -> bool) {
        let start = Instant::now();
        while !cond(self) {
            assert!(
                self.alive(),
                "ingestor ended ({:?}) while waiting for {what}; stderr:\n{}",
                self.status,
                self.stderr()
            );
            assert!(
                start.elapsed() < PATIENCE,
                "no {what} within {PATIENCE:?}; stderr:\n{}",
                self.stderr()
            );
            thread::yield_now();
        }
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on the pid of a child that has not been reaped yet.
        let rc = unsafe { libc::kill(self.pid, sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid);
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        while self.alive() {
            assert!(
                start.elapsed() < PATIENCE,
                "ingestor did not exit within {PATIENCE:?}; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(2));
        }
        if let Some(r) = self.reader.take() {
            r.join().expect("stderr reader");
        }
        self.status.expect("status")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The writer: appends `src[start..]` to the followed file, never past `budget`, in chunks cut at
// arbitrary byte positions.

struct Writer {
    budget: Arc<AtomicUsize>,
    written: Arc<AtomicUsize>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    fn start(path: PathBuf, src: Arc<Vec<u8>>, start: usize, seed: u64) -> Writer {
        let budget = Arc::new(AtomicUsize::new(start));
        let written = Arc::new(AtomicUsize::new(start));
        let (b, w) = (budget.clone(), written.clone());
        let handle = thread::spawn(move || {
            let mut rng = Rng(seed);
            let mut f = OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("open followed file for append");
            let mut pos = start;
            while pos < src.len() {
                let limit = b.load(Ordering::SeqCst).min(src.len());
                if pos < limit {
                    let n = (rng.range(1, 40_000) as usize).min(limit - pos);
                    f.write_all(&src[pos..pos + n]).expect("append");
                    pos += n;
                    w.store(pos, Ordering::SeqCst);
                }
                thread::sleep(rng.millis(0, 6));
            }
        });
        Writer {
            budget,
            written,
            handle: Some(handle),
        }
    }

    fn allow(&self, upto: usize) {
        self.budget.store(upto, Ordering::SeqCst);
    }

    fn written(&self) -> usize {
        self.written.load(Ordering::SeqCst)
    }

    fn finish(&mut self, len: usize) {
        self.allow(len);
        if let Some(h) = self.handle.take() {
            h.join().expect("writer thread");
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Let a failing test end: the writer stops at its budget, so release it fully.
        self.budget.store(usize::MAX, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// Database checks after a kill.

const SQLITE_READONLY_ROLLBACK: i32 = 8 | (3 << 8);

fn open_ro(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// `(integrity_check, committed offset, rows, bad lines)` of the database left by a kill.
///
/// Read-only first. A kill inside a rollback-journal transaction leaves a hot journal that a
/// read-only connection may not roll back (`SQLITE_READONLY_ROLLBACK`); then the same check
/// runs on a copy of the database and its journal, so that the original is left exactly as
/// the killed process left it, for the next `ingestor` to recover.
fn inspect(dir: &Dir) -> (String, i64, i64, i64) {
    let db = dir.path(DB);
    let query = |conn: &Connection| -> rusqlite::Result<(String, i64, i64, i64)> {
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let lines: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let offset: i64 = conn.query_row(
            "SELECT coalesce(max(offset), 0) FROM ingest_sources",
            [],
            |r| r.get(0),
        )?;
        let rows: i64 = conn.query_row("SELECT count(*) FROM sse_lines", [], |r| r.get(0))?;
        let bad: i64 = conn.query_row("SELECT count(*) FROM bad_lines", [], |r| r.get(0))?;
        Ok((lines.join("\n"), offset, rows, bad))
    };
    match open_ro(&db).and_then(|c| query(&c)) {
        Ok(v) => v,
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == SQLITE_READONLY_ROLLBACK =>
        {
            let copy = dir.path("inspect-copy.db");
            for suffix in ["", "-journal", "-wal"] {
                let from = PathBuf::from(format!("{}{suffix}", db.display()));
                let to = PathBuf::from(format!("{}{suffix}", copy.display()));
                let _ = fs::remove_file(&to);
                if from.exists() {
                    fs::copy(&from, &to).expect("copy database for inspection");
                }
            }
            let _ = fs::remove_file(PathBuf::from(format!("{}-shm", copy.display())));
            let v = Connection::open(&copy)
                .and_then(|c| query(&c))
                .unwrap_or_else(|e| panic!("inspect copy of {}: {e}", db.display()));
            for suffix in ["", "-journal", "-wal", "-shm"] {
                let _ = fs::remove_file(PathBuf::from(format!("{}{suffix}", copy.display())));
            }
            v
        }
        Err(e) => panic!("inspect {} after a kill: {e}", db.display()),
    }
}

/// For every line end of `src`: the offset just past it and how many non-blank lines end there
/// or before (each non-blank line is a row or a bad line).
fn line_ends(src: &[u8]) -> HashMap<usize, i64> {
    let mut ends = HashMap::new();
    ends.insert(0, 0);
    let (mut start, mut stored) = (0usize, 0i64);
    for (i, &b) in src.iter().enumerate() {
        if b == b'\n' {
            let line = &src[start..i];
            if !line.iter().all(|c| matches!(c, b' ' | b'\t' | b'\r')) {
                stored += 1;
            }
            ends.insert(i + 1, stored);
            start = i + 1;
        }
    }
    ends
}

/// How many values of `actual` are surplus (duplicates) and how many of `expected` are absent
/// (missing), as multisets.
fn surplus_and_missing<T: std::hash::Hash + Eq>(
    expected: impl IntoIterator<Item = T>,
    actual: impl IntoIterator<Item = T>,
) -> (usize, usize) {
    let mut counts: HashMap<T, i64> = HashMap::new();
    for v in expected {
        *counts.entry(v).or_default() += 1;
    }
    for v in actual {
        *counts.entry(v).or_default() -= 1;
    }
    let dup = counts
        .values()
        .filter(|&&c| c < 0)
        .map(|&c| -c)
        .sum::<i64>();
    let missing = counts.values().filter(|&&c| c > 0).sum::<i64>();
    (dup as usize, missing as usize)
}

fn text_key(v: &Value) -> Vec<u8> {
    match v {
        Value::Text(s) => s.as_bytes().to_vec(),
        Value::Blob(b) => b.clone(),
        other => format!("{other:?}").into_bytes(),
    }
}

// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Aim {
    /// A random moment after the start (a backfill, when there is something to backfill).
    Backfill,
    /// As soon as `live from offset` is on stderr (just before the exec).
    Announced,
    /// As soon as /proc shows the re-executed command line (the new image starting up).
    Execed,
    /// A random moment in live mode while the writer appends.
    Live,
}

#[cfg(target_os = "linux")]
#[test]
fn kill9_at_random_moments_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let dir = Dir::new();
    dir.generate(
        "source.jsonl",
        &[
            "--seed",
            "97",
            "--lines",
            &LINES.to_string(),
            "--product",
            "both",
            "--max-line-mb",
            "1",
            "--adversarial",
            "0.02",
        ],
    );
    let src = Arc::new(dir.read("source.jsonl"));
    assert!(src.ends_with(b"\n"));
    let ends = line_ends(&src);
    let mut rng = Rng(SEED);

    // The followed file starts with 40 % of the source, cut inside a line.
    let initial = src.len() * 2 / 5 + 17;
    dir.create(INPUT, &src[..initial]);
    // How long a first backfill of that takes here (a one-shot run on a copy), so that the
    // first kills can be spread over it whatever the machine's speed.
    dir.create("calibrate.jsonl", &src[..initial]);
    // Two runs, the faster one counts: an overestimate would make the first-build kills miss.
    let mut backfill_time = Duration::MAX;
    for round in 0..2 {
        let db = format!("calibrate-{round}.db");
        let calibrate = Instant::now();
        dir.command()
            .args(["--input", "calibrate.jsonl", "--db", &db, "--quiet"])
            .assert_ok();
        backfill_time = backfill_time.min(calibrate.elapsed());
    }
    let mut writer = Writer::start(dir.path(INPUT), src.clone(), initial, SEED ^ 0xa5a5);

    let mut kills_by_phase: HashMap<&str, usize> = HashMap::new();
    let mut restarts = 0usize;
    let mut integrity_checks = 0usize;
    for k in 0..KILLS {
        // The writer spreads the rest of the source over the campaign (most of it; the last
        // part arrives before the final run).
        let upto = initial + (src.len() - initial) * (k + 1) / (KILLS + 2);
        writer.allow(upto);
        let aim = if k < FIRST_BUILD_KILLS {
            Aim::Backfill
        } else {
            match rng.range(0, 99) {
                0..=24 => Aim::Backfill,
                25..=39 => Aim::Announced,
                40..=54 => Aim::Execed,
                _ => Aim::Live,
            }
        };
        if k >= FIRST_BUILD_KILLS && rng.range(0, 2) == 0 {
            // Down for a while: the next start has a backlog to backfill.
            thread::sleep(rng.millis(20, 250));
        }
        let first_build = !dir.exists(DB);
        let spawned = Instant::now();
        let mut p = Proc::follow(&dir);
        if k > 0 {
            restarts += 1;
        }
        match aim {
            Aim::Backfill => {
                // A moment within the expected backfill (the last one measured, or the
                // calibration for the first, of which the last part builds indexes after the
                // rename), start-up included.
                let frac = rng.range(0, if first_build { 600 } else { 1000 }) as u32;
                thread::sleep(backfill_time * frac / 1000);
            }
            Aim::Announced => p.spin_until("`live from offset` line", Proc::announced_live),
            Aim::Execed => p.spin_until("exec into live mode", Proc::execed),
            Aim::Live => {
                p.spin_until("exec into live mode", |p| p.execed() && p.announced_live());
                thread::sleep(rng.millis(5, 400));
            }
        }
        if matches!(aim, Aim::Announced) && !first_build {
            // Waited for the end of a resumed backfill: its length guides the next aims.
            backfill_time = spawned.elapsed();
        }
        let phase = if p.execed() {
            match aim {
                Aim::Execed => "switch (just after exec)",
                _ => "live",
            }
        } else if p.announced_live() {
            "switch (before exec)"
        } else if first_build {
            "first backfill"
        } else {
            "resumed backfill"
        };
        assert!(
            p.alive(),
            "ingestor ended on its own ({:?}) before kill #{k}; stderr:\n{}",
            p.status,
            p.stderr()
        );
        p.signal(libc::SIGKILL);
        let status = p.wait_exit();
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.signal(),
                Some(libc::SIGKILL),
                "kill #{k}: ingestor ended with {status} instead of dying of SIGKILL; stderr:\n{}",
                p.stderr()
            );
        }
        println!(
            "kill #{k}: aimed {aim:?}, {phase}, {:.0} ms after start, {} bytes written",
            spawned.elapsed().as_secs_f64() * 1000.0,
            writer.written()
        );
        *kills_by_phase.entry(phase).or_default() += 1;

        // No ingestor runs now: the database must be sound, and what is committed must be
        // exactly the lines before the committed offset.
        if dir.exists(DB) {
            let (integrity, offset, rows, bad) = inspect(&dir);
            integrity_checks += 1;
            assert_eq!(
                integrity, "ok",
                "kill #{k} ({phase}): PRAGMA integrity_check"
            );
            let offset = usize::try_from(offset).expect("offset >= 0");
            let written = writer.written();
            assert!(
                offset <= written,
                "kill #{k} ({phase}): committed offset {offset} is past the {written} bytes written"
            );
            let want = *ends.get(&offset).unwrap_or_else(|| {
                panic!("kill #{k} ({phase}): committed offset {offset} is not at a line end")
            });
            assert_eq!(
                rows + bad,
                want,
                "kill #{k} ({phase}): {rows} rows + {bad} bad lines committed up to offset \
                 {offset}, which holds {want} non-blank lines (negative: missing, positive: \
                 duplicated)"
            );
        }
    }

    // The writer finishes; one more run takes in the whole file and is stopped cleanly.
    writer.finish(src.len());
    let size = fs::metadata(dir.path(INPUT)).expect("stat").len();
    assert_eq!(size as usize, src.len());
    let mut p = Proc::follow(&dir);
    restarts += 1;
    let db_path = dir.path(DB);
    let start = Instant::now();
    loop {
        let offset = open_ro(&db_path).and_then(|c| {
            c.query_row(
                "SELECT coalesce(max(offset), 0) FROM ingest_sources",
                [],
                |r| r.get::<_, i64>(0),
            )
        });
        if offset.as_ref().is_ok_and(|&o| o as u64 == size) {
            break;
        }
        assert!(
            p.alive() && start.elapsed() < PATIENCE,
            "the final run did not reach offset {size} (last: {offset:?}); stderr:\n{}",
            p.stderr()
        );
        thread::sleep(Duration::from_millis(20));
    }
    p.signal(libc::SIGTERM);
    let status = p.wait_exit();
    assert!(
        status.success(),
        "final run exited with {status}; stderr:\n{}",
        p.stderr()
    );

    let db = dir.db(DB);
    let integrity = db.integrity_check();
    let exp = oracle::expect(&src);
    let rows = db.rows();
    let bad = db.bad_lines();
    let (dup_rows, missing_rows) = surplus_and_missing(
        exp.rows.iter().map(|r| text_key(&r.line)),
        rows.iter().map(|r| text_key(&r.line)),
    );
    let (dup_bad, missing_bad) = surplus_and_missing(
        exp.bad.iter().map(|b| b.src_offset as i64),
        bad.iter().map(|b| match b.src_offset {
            Value::Integer(i) => i,
            _ => -1,
        }),
    );
    let check = oracle::check(&src, &exp, &rows, &bad);
    let mut phases: Vec<_> = kills_by_phase.into_iter().collect();
    phases.sort();
    println!(
        "kill -9 campaign: {KILLS} kills {phases:?}, {restarts} restarts, {integrity_checks} \
         integrity checks after kills; {} lines written ({} bytes, {} non-blank); {} rows + {} \
         bad lines in the database ({} + {} expected); duplicates {} rows / {} bad; missing {} \
         rows / {} bad; integrity {integrity}; oracle {}; {:.1} s",
        exp.lines,
        src.len(),
        exp.rows.len() + exp.bad.len(),
        rows.len(),
        bad.len(),
        exp.rows.len(),
        exp.bad.len(),
        dup_rows,
        dup_bad,
        missing_rows,
        missing_bad,
        if check.is_ok() { "ok" } else { "MISMATCH" },
        started.elapsed().as_secs_f64()
    );
    assert_eq!(integrity, "ok", "final PRAGMA integrity_check");
    assert_eq!(
        (dup_rows, missing_rows, dup_bad, missing_bad),
        (0, 0, 0, 0),
        "duplicated or missing lines (rows dup/missing, bad dup/missing)"
    );
    // `check` compares rows pairwise; the counts above make sure neither side has extra ones.
    assert_eq!(rows.len(), exp.rows.len(), "rows in sse_lines");
    assert_eq!(bad.len(), exp.bad.len(), "rows in bad_lines");
    if let Err(report) = check {
        panic!("database differs from the oracle:\n{report}");
    }
}
