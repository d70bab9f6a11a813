//! Failure injection: every line lands exactly once whatever happens to the process or the disk.
//!
//! 1. Failpoints (`INGESTOR_FAILPOINTS`, see `src/sys/failpoint.rs`): each commit point
//!    (`before-position`, `before-commit`, `after-commit`) with each action (`kill`: SIGKILL on
//!    the spot; `error`: an injected I/O error) in three situations: a backfill into a new
//!    database (built as `DB.building`), a backfill adding to an existing database, and live
//!    mode after the `exec()` hand-over. Plus `before-exec` with both actions. One table drives
//!    them all ([`failpoint_matrix!`]).
//! 2. A file-size limit (`RLIMIT_FSIZE`, with SIGXFSZ ignored so that writes fail with EFBIG):
//!    a backfill into a new and into an existing database, and (Linux) a live follower whose
//!    limit is raised from outside once it reports that it is retrying.
//!
//! After each failure: the process ended as the action says (killed by SIGKILL, or exit 1 with
//! one `ingestor: ...` line naming the failure; in live mode a write error may instead be
//! retried, which then must be logged and lose nothing), `PRAGMA integrity_check` is ok, and
//! what is committed is exactly the lines before the committed offset. A new database is built
//! as `DB.building` without a journal and is discarded by the next run, so there the check is
//! that nothing exists under the database's name. Then the same command runs without the
//! fault, and the oracle (`tests/oracle`) checks every line is in the database exactly once, in
//! order. Waits poll with a generous deadline; nothing asserts on speed.

use crate::util;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use crate::util::{
    DB, Dir, INPUT, Proc, ProcBuilder, after_lines, append_in_pieces, assert_matches,
    assert_no_panic, line_ends, try_open, wait_all,
};

/// Deadline for anything the binary should do "soon" (a commit, an exec, an exit).
const PATIENCE: Duration = Duration::from_secs(60);

/// Lines of a backfill case: enough for several batches (a batch is at most 4096 lines or
/// 4 MiB), so that with a small `--batch-rows` the second commit is mid-run.
const BACKFILL_LINES: usize = 16_000;
/// Lines already in an existing database before the faulty run.
const EXISTING_LINES: usize = 4_000;
/// `--batch-rows` of the backfill cases: one commit per batch.
const BATCH_ROWS: &str = "1000";
/// Live cases: lines backfilled before the hand-over, and lines in all.
const LIVE_INITIAL: usize = 300;
const LIVE_LINES: usize = 3_000;

// ---------------------------------------------------------------------------------------------
// A running `ingestor`, with failpoints and an optional file-size limit.

/// How a child is started: environment and resource limit.
#[derive(Clone, Default)]
struct Fault {
    /// `INGESTOR_FAILPOINTS`.
    failpoints: Option<String>,
    /// Soft `RLIMIT_FSIZE` in bytes (the hard limit is left as it is); SIGXFSZ is ignored.
    fsize: Option<u64>,
}

impl Fault {
    fn none() -> Fault {
        Fault::default()
    }

    fn failpoints(spec: &str) -> Fault {
        Fault {
            failpoints: Some(spec.to_owned()),
            fsize: None,
        }
    }

    fn fsize(bytes: u64) -> Fault {
        Fault {
            failpoints: None,
            fsize: Some(bytes),
        }
    }
}

/// `ingestor --input INPUT --db DB ARGS` in `dir` under `fault`, stdin from /dev/null.
fn start(dir: &Dir, args: &[&str], fault: &Fault) -> Proc {
    // A failpoint spec in the caller's environment must not leak into a run meant to be clean.
    let mut b = ProcBuilder::follow(dir, args)
        .patience(PATIENCE)
        .env_remove("INGESTOR_FAILPOINTS");
    if let Some(spec) = &fault.failpoints {
        b = b.env("INGESTOR_FAILPOINTS", spec);
    }
    if let Some(limit) = fault.fsize {
        b = b.file_size_limit(limit);
    }
    b.spawn()
}

/// Asserts a run ended in failure with exit 1 and returns the last stderr line, which must be the
/// only `ERROR` line: with `whole`, it must be all of stderr (a backfill prints
/// nothing else); otherwise earlier lines (the backfill's summary before the hand-over) may
/// precede it.
fn assert_one_error_line(p: &mut Proc, whole: bool) -> String {
    let status = p.wait_exit();
    let err = p.stderr();
    assert_no_panic(&p.what, &err);
    assert!(
        status.signal().is_none() && status.code() == Some(1),
        "`{}` ended with {status}, expected exit status 1; stderr:\n{err}",
        p.what
    );
    assert!(p.stdout().is_empty(), "`{}` wrote to stdout", p.what);
    let last = err.lines().last().unwrap_or_default().to_owned();
    assert!(
        err.ends_with('\n')
            && util::log_message(&last)
                .is_some_and(|(level, msg)| level == "ERROR" && !msg.is_empty()),
        "`{}`: the last stderr line is not an `... ERROR message` line:\n{err}",
        p.what
    );
    if whole {
        assert_eq!(
            err.lines().count(),
            1,
            "`{}`: expected exactly one line on stderr:\n{err}",
            p.what
        );
    }
    last
}

// ---------------------------------------------------------------------------------------------
// Data, and the database left behind by a failure.

/// Generates `lines` lines as `all.jsonl` (no multi-MB lines; 2 % adversarial, so bad and blank
/// lines too).
fn generate(dir: &Dir, seed: u64, lines: usize) -> Vec<u8> {
    let all = util::generate(dir, "all.jsonl", seed, lines, "0.02");
    assert!(all.ends_with(b"\n"));
    all
}

/// What a database holds, read without changing it.
#[derive(Debug)]
struct Snapshot {
    integrity: String,
    sources: i64,
    offset: u64,
    rows: i64,
    bad: i64,
}

/// Extended code of a read-only connection that finds a hot journal it may not roll back.
const SQLITE_READONLY_ROLLBACK: i32 = 8 | (3 << 8);

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

/// Integrity, committed offset and counts of `path`. A kill inside a rollback-journal
/// transaction leaves a hot journal a read-only connection may not roll back; then the check
/// runs on a copy (database and journal), so that the original stays exactly as the failure
/// left it for the next run to recover (as tests/crash.rs does).
fn inspect(dir: &Dir, path: &Path) -> Snapshot {
    let query = |conn: &Connection| -> rusqlite::Result<Snapshot> {
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let lines: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let (sources, offset): (i64, i64) = conn.query_row(
            "SELECT count(*), coalesce(max(offset), 0) FROM ingest_sources",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(Snapshot {
            integrity: lines.join("\n"),
            sources,
            offset: offset as u64,
            rows: conn.query_row("SELECT count(*) FROM sse_lines", [], |r| r.get(0))?,
            bad: conn.query_row("SELECT count(*) FROM bad_lines", [], |r| r.get(0))?,
        })
    };
    match try_open(path).and_then(|c| query(&c)) {
        Ok(s) => s,
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == SQLITE_READONLY_ROLLBACK =>
        {
            let copy = dir.path("inspect-copy.db");
            for suffix in ["", "-journal", "-wal"] {
                let (from, to) = (with_suffix(path, suffix), with_suffix(&copy, suffix));
                let _ = fs::remove_file(&to);
                if from.exists() {
                    fs::copy(&from, &to).expect("copy database for inspection");
                }
            }
            let s = Connection::open(&copy)
                .and_then(|c| query(&c))
                .unwrap_or_else(|e| panic!("inspect a copy of {}: {e}", path.display()));
            for suffix in ["", "-journal", "-wal", "-shm"] {
                let _ = fs::remove_file(with_suffix(&copy, suffix));
            }
            s
        }
        Err(e) => panic!("inspect {}: {e}", path.display()),
    }
}

/// After a failure: the database is sound, holds one source, and what it holds is exactly the
/// lines of `src` before the committed offset.
fn assert_committed_prefix(dir: &Dir, src: &[u8], context: &str) -> Snapshot {
    let s = inspect(dir, &dir.path(DB));
    assert_eq!(s.integrity, "ok", "{context}: PRAGMA integrity_check");
    assert_eq!(s.sources, 1, "{context}: ingest_sources rows ({s:?})");
    let Some(&want) = line_ends(src).get(&(s.offset as usize)) else {
        panic!("{context}: committed offset {} is not a line end", s.offset);
    };
    assert_eq!(
        s.rows + s.bad,
        want,
        "{context}: {} rows + {} bad lines committed, but the {want} non-blank lines before the \
         committed offset {} should be there exactly once",
        s.rows,
        s.bad,
        s.offset
    );
    s
}

/// The same follow command without faults: resumes, goes live, takes the whole file, stops on
/// SIGTERM; then the oracle.
fn follow_to_the_end(dir: &Dir, all: &[u8]) {
    let mut p = start(dir, &["--follow"], &Fault::none());
    p.wait_exec();
    wait_all(&mut p, &dir.path(DB), all);
    p.stop();
    assert_matches(&dir.db(DB), all);
}

// ---------------------------------------------------------------------------------------------
// 1. Failpoints

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Kill,
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Situation {
    /// A backfill into a database that does not exist yet (built as `DB.building`).
    NewDb,
    /// A backfill adding to an existing database (rollback journal).
    ExistingDb,
    /// Live mode, after the hand-over, while lines are appended.
    Live,
}

/// How a run with a failpoint ended.
enum Outcome {
    Killed,
    /// Exit 1; the error line.
    Failed(String),
    /// Live mode logged that it retries (the `error` line) and went on.
    Retried(String),
}

/// Waits for the end a failpoint should cause and checks it.
fn expect_failure(p: &mut Proc, action: Action, point: &str, situation: Situation) -> Outcome {
    let injected = format!("injected failure at {point}");
    let outcome = match action {
        Action::Kill => {
            let status = p.wait_exit();
            let err = p.stderr();
            assert_no_panic(&p.what, &err);
            assert_eq!(
                status.signal(),
                Some(libc::SIGKILL),
                "`{}` ended with {status}, expected death by SIGKILL at {point}; stderr:\n{err}",
                p.what
            );
            Outcome::Killed
        }
        // Live mode may retry a write error instead of exiting (the follower carries on).
        Action::Error if situation == Situation::Live => {
            let retried = p.wait_for("the injected error to end the run, or a retry", |p| {
                let err = p.stderr();
                if let Some(l) = err.lines().find(|l| l.contains("retrying")) {
                    return Some(Some(l.to_owned()));
                }
                (!p.alive()).then_some(None)
            });
            match retried {
                Some(line) => Outcome::Retried(line),
                None => Outcome::Failed(assert_one_error_line(p, false)),
            }
        }
        Action::Error => Outcome::Failed(assert_one_error_line(p, true)),
    };
    let err = p.stderr();
    match &outcome {
        Outcome::Killed => eprintln!("{point}:kill ({situation:?}): killed by SIGKILL"),
        Outcome::Failed(line) | Outcome::Retried(line) => {
            assert!(
                line.contains(&injected),
                "`{}`: the line {line:?} does not name the failure ({injected:?}); stderr:\n{err}",
                p.what
            );
            assert_eq!(
                err.matches(&injected).count(),
                1,
                "`{}`: the failure is reported more than once:\n{err}",
                p.what
            );
            eprintln!("{point}:error ({situation:?}): {line}");
        }
    }
    outcome
}

/// One cell of the matrix: `point@2:action` in `situation`, then a clean re-run and the oracle.
fn failpoint_case(situation: Situation, point: &str, action: Action, seed: u64) {
    let spec = format!(
        "{point}@2:{}",
        match action {
            Action::Kill => "kill",
            Action::Error => "error",
        }
    );
    let fault = Fault::failpoints(&spec);
    let dir = Dir::new();
    let db = dir.path(DB);
    match situation {
        Situation::NewDb => {
            let all = generate(&dir, seed, BACKFILL_LINES);
            dir.create(INPUT, &all);
            let args = ["--batch-rows", BATCH_ROWS];
            let mut p = start(&dir, &args, &fault);
            expect_failure(&mut p, action, point, situation);
            // Nothing half-built is visible under the database's name.
            assert!(!db.exists(), "{spec}: {} exists after the failure", DB);
            start(&dir, &args, &Fault::none()).assert_ok();
            assert!(
                !with_suffix(&db, ".building").exists(),
                "the stale DB.building was not removed"
            );
            assert_matches(&dir.db(DB), &all);
        }
        Situation::ExistingDb => {
            let all = generate(&dir, seed, BACKFILL_LINES);
            let cut = after_lines(&all, EXISTING_LINES);
            dir.create(INPUT, &all[..cut]);
            let args = ["--batch-rows", BATCH_ROWS];
            start(&dir, &args, &Fault::none()).assert_ok();
            dir.append(INPUT, &all[cut..]);
            let mut p = start(&dir, &args, &fault);
            expect_failure(&mut p, action, point, situation);
            let s = assert_committed_prefix(&dir, &all, &spec);
            assert!(
                s.offset > cut as u64 && s.offset < all.len() as u64,
                "{spec}: committed offset {} should be mid-run (first run ended at {cut}, file \
                 ends at {})",
                s.offset,
                all.len()
            );
            start(&dir, &args, &Fault::none()).assert_ok();
            assert_matches(&dir.db(DB), &all);
        }
        Situation::Live => {
            let all = generate(&dir, seed, LIVE_LINES);
            let cut = after_lines(&all, LIVE_INITIAL);
            dir.create(INPUT, &all[..cut]);
            // The backfill commits once (its failpoint counters do not reach 2); the live
            // process inherits the variable with fresh counters, and fails at its second
            // commit.
            let mut p = start(&dir, &["--follow"], &fault);
            p.wait_exec();
            wait_all(&mut p, &db, &all[..cut]);
            append_in_pieces(&dir, &all[cut..], 6, Duration::from_millis(100));
            match expect_failure(&mut p, action, point, situation) {
                Outcome::Retried(_) => {
                    wait_all(&mut p, &db, &all);
                    p.stop();
                }
                Outcome::Killed | Outcome::Failed(_) => {}
            }
            let s = assert_committed_prefix(&dir, &all, &spec);
            // The first live commit is in: the failure came in live mode, not in the backfill.
            assert!(
                s.offset > cut as u64,
                "{spec}: committed offset {} should be past the backfill's {cut}",
                s.offset
            );
            follow_to_the_end(&dir, &all);
        }
    }
}

/// One `#[test]` per row: `name: situation, point, action;`.
macro_rules! failpoint_matrix {
    ($($name:ident: $situation:ident, $point:literal, $action:ident;)*) => {
        $(
            #[test]
            fn $name() {
                failpoint_case(Situation::$situation, $point, Action::$action, line!() as u64);
            }
        )*
    };
}

failpoint_matrix! {
    new_db_before_position_kill: NewDb, "before-position", Kill;
    new_db_before_position_error: NewDb, "before-position", Error;
    new_db_before_commit_kill: NewDb, "before-commit", Kill;
    new_db_before_commit_error: NewDb, "before-commit", Error;
    new_db_after_commit_kill: NewDb, "after-commit", Kill;
    new_db_after_commit_error: NewDb, "after-commit", Error;
    existing_db_before_position_kill: ExistingDb, "before-position", Kill;
    existing_db_before_position_error: ExistingDb, "before-position", Error;
    existing_db_before_commit_kill: ExistingDb, "before-commit", Kill;
    existing_db_before_commit_error: ExistingDb, "before-commit", Error;
    existing_db_after_commit_kill: ExistingDb, "after-commit", Kill;
    existing_db_after_commit_error: ExistingDb, "after-commit", Error;
    live_before_position_kill: Live, "before-position", Kill;
    live_before_position_error: Live, "before-position", Error;
    live_before_commit_kill: Live, "before-commit", Kill;
    live_before_commit_error: Live, "before-commit", Error;
    live_after_commit_kill: Live, "after-commit", Kill;
    live_after_commit_error: Live, "after-commit", Error;
}

/// `before-exec`: the backfill is committed and its database closed, the hand-over not made.
/// `kill`: the next run resumes there. `error`: the process says so and follows in-process.
fn before_exec_case(action: Action, seed: u64) {
    let dir = Dir::new();
    let db = dir.path(DB);
    let all = generate(&dir, seed, LIVE_LINES);
    let cut = after_lines(&all, LIVE_LINES / 2);
    dir.create(INPUT, &all[..cut]);
    match action {
        Action::Kill => {
            let mut p = start(&dir, &["--follow"], &Fault::failpoints("before-exec:kill"));
            expect_failure(&mut p, action, "before-exec", Situation::Live);
            let s = assert_committed_prefix(&dir, &all, "before-exec:kill");
            assert_eq!(s.offset, cut as u64, "the whole backfill is committed");
            dir.append(INPUT, &all[cut..]);
            follow_to_the_end(&dir, &all);
        }
        Action::Error => {
            let mut p = start(&dir, &["--follow"], &Fault::failpoints("before-exec:error"));
            let err = p.wait_for("the in-process fallback", |p| {
                let err = p.stderr();
                err.contains("following in this process instead")
                    .then_some(err)
            });
            let line = err
                .lines()
                .find(|l| l.contains("following in this process instead"))
                .unwrap();
            eprintln!("before-exec:error: {line}");
            assert!(
                util::log_message(line).is_some()
                    && line.contains("injected failure at before-exec"),
                "the fallback line does not name the failure: {line:?}"
            );
            #[cfg(target_os = "linux")]
            assert!(!p.execed(), "the process re-executed despite the failure");
            append_in_pieces(&dir, &all[cut..], 4, Duration::from_millis(50));
            wait_all(&mut p, &db, &all);
            let err = p.stop();
            assert!(
                err.lines()
                    .last()
                    .and_then(util::log_message)
                    .is_some_and(|(_, msg)| msg.starts_with("live: ")),
                "the in-process follower did not end with its live summary:\n{err}"
            );
            assert_matches(&dir.db(DB), &all);
            // The same command again: resumes at the end, hands over normally this time.
            follow_to_the_end(&dir, &all);
        }
    }
}

/// A failure in the commit that moves from a rotated file to its successor (the old file's last
/// rows and final position; the new source's row comes with its first lines): killed there, the
/// next start finds the old file by its inode and finishes it; an I/O error there is retried in
/// place. Either way every line of both files lands once, in order.
fn rotation_commit_case(action: Action) {
    let dir = Dir::new();
    let db = dir.path(DB);
    let all = util::generate(&dir, "all.jsonl", 977, LIVE_LINES, "0");
    let (first, second) = all.split_at(after_lines(&all, LIVE_LINES / 2));
    let (initial, appended) = first.split_at(after_lines(first, LIVE_INITIAL));
    dir.create(INPUT, initial);
    let spec = match action {
        Action::Kill => "rotate-before-commit:kill",
        Action::Error => "rotate-before-commit:error",
    };
    let mut p = start(&dir, &["--follow"], &Fault::failpoints(spec));
    p.wait_exec();
    append_in_pieces(&dir, appended, 4, Duration::from_millis(30));
    fs::rename(dir.path(INPUT), dir.path("in.jsonl.1")).expect("rotate");
    dir.create(INPUT, second);
    match action {
        Action::Kill => {
            let status = p.wait_exit();
            assert_eq!(status.signal(), Some(libc::SIGKILL), "{}", p.stderr());
            let err = p.stderr();
            assert!(err.contains("was rotated"), "{err}");
            // Nothing of the new file, and the old file's position from before the rotation.
            let s = assert_committed_prefix(&dir, first, "rotate-before-commit:kill");
            assert!(s.offset <= first.len() as u64);
            follow_to_the_end(&dir, &all);
        }
        Action::Error => {
            wait_all(&mut p, &db, &all);
            let err = p.stop();
            assert_eq!(
                err.matches("injected failure at rotate-before-commit")
                    .count(),
                1,
                "{err}"
            );
            assert!(err.contains("retrying"), "{err}");
            assert_matches(&dir.db(DB), &all);
        }
    }
}

#[test]
fn rotation_commit_killed() {
    rotation_commit_case(Action::Kill);
}

#[test]
fn rotation_commit_failing_is_retried() {
    rotation_commit_case(Action::Error);
}

#[test]
fn before_exec_kill() {
    before_exec_case(Action::Kill, 901);
}

#[test]
fn before_exec_error_follows_in_process() {
    before_exec_case(Action::Error, 902);
}

// ---------------------------------------------------------------------------------------------
// 2. A file-size limit: writes fail with EFBIG (as on a full disk, without needing root)

/// A backfill into a new database that would outgrow the limit.
#[test]
fn file_size_limit_new_db() {
    let dir = Dir::new();
    let db = dir.path(DB);
    let all = generate(&dir, 911, BACKFILL_LINES);
    dir.create(INPUT, &all);
    let mut p = start(&dir, &[], &Fault::fsize(2 << 20));
    let line = assert_one_error_line(&mut p, true);
    eprintln!("RLIMIT_FSIZE 2 MiB, new database: {line}");
    assert!(!db.exists(), "{DB} exists after the failure");
    start(&dir, &[], &Fault::none()).assert_ok();
    assert!(!with_suffix(&db, ".building").exists());
    assert_matches(&dir.db(DB), &all);
}

/// A backfill adding to an existing database: the limit is just above its size.
#[test]
fn file_size_limit_existing_db() {
    let dir = Dir::new();
    let db = dir.path(DB);
    let all = generate(&dir, 912, BACKFILL_LINES);
    let cut = after_lines(&all, EXISTING_LINES);
    dir.create(INPUT, &all[..cut]);
    let args = ["--batch-rows", BATCH_ROWS];
    start(&dir, &args, &Fault::none()).assert_ok();
    dir.append(INPUT, &all[cut..]);
    let size = fs::metadata(&db).expect("db size").len();
    // Room for about half of what the new lines need (measured by the first run's database
    // bytes per input byte): a few batches are committed, then one fails.
    let growth = (all.len() - cut) as f64 * size as f64 / cut as f64;
    let limit = size + (growth / 2.0) as u64;
    let mut p = start(&dir, &args, &Fault::fsize(limit));
    let line = assert_one_error_line(&mut p, true);
    eprintln!("RLIMIT_FSIZE {limit} (database {size} bytes), existing database: {line}");
    let s = assert_committed_prefix(&dir, &all, "file-size limit, existing database");
    assert!(
        s.offset > cut as u64 && s.offset < all.len() as u64,
        "committed offset {} should be mid-run (first run ended at {cut}, file ends at {})",
        s.offset,
        all.len()
    );
    eprintln!(
        "  committed offset {} of {} ({} rows, {} bad lines)",
        s.offset,
        all.len(),
        s.rows,
        s.bad
    );
    start(&dir, &args, &Fault::none()).assert_ok();
    assert_matches(&dir.db(DB), &all);
}

/// Live mode on a file: a write error while following rolls back, is logged once (`retrying`),
/// and is retried from the committed offset; once the limit is raised (from outside, with
/// prlimit), every line arrives exactly once.
#[cfg(target_os = "linux")]
#[test]
fn file_size_limit_live_retries_until_space_returns() {
    let dir = Dir::new();
    let db = dir.path(DB);
    let all = generate(&dir, 913, LIVE_LINES);
    let cut = after_lines(&all, LIVE_INITIAL);
    dir.create(INPUT, &all[..cut]);
    start(&dir, &[], &Fault::none()).assert_ok();
    let size = fs::metadata(&db).expect("db size").len();
    let limit = size + (1 << 20);
    let mut p = start(&dir, &["--follow"], &Fault::fsize(limit));
    p.wait_exec();

    // Append until a write hits the limit (each live commit writes several 16 KiB pages to the
    // WAL, so this comes well before the end of the data).
    let step = (all.len() - cut) / 60;
    let mut at = cut;
    let retry_line = loop {
        let err = p.stderr();
        if let Some(l) = err.lines().find(|l| l.contains("retrying")) {
            break l.to_owned();
        }
        assert!(
            p.alive(),
            "the follower ended at the file-size limit instead of retrying ({:?}); stderr:\n{err}",
            p.status
        );
        if at < all.len() {
            let to = (at + step).min(all.len());
            dir.append(INPUT, &all[at..to]);
            at = to;
            std::thread::sleep(Duration::from_millis(30));
        } else {
            p.wait_for("a `retrying` line at the file-size limit", |p| {
                p.stderr().contains("retrying").then_some(())
            });
        }
    };
    eprintln!("RLIMIT_FSIZE {limit} (database {size} bytes), live: {retry_line}");
    assert!(
        util::log_message(&retry_line).is_some_and(|(level, _)| level == "WARN"),
        "{retry_line:?}"
    );
    // While it waits, the database is sound and holds exactly a prefix.
    std::thread::sleep(Duration::from_millis(300));
    assert!(p.alive(), "the follower ended; stderr:\n{}", p.stderr());
    assert_committed_prefix(&dir, &all, "live, at the file-size limit");

    // Space comes back: raise the soft limit of the running process.
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit on our own child's pid, with a valid new limit and no old-limit output.
    let rc = unsafe { libc::prlimit(p.pid, libc::RLIMIT_FSIZE, &unlimited, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    if at < all.len() {
        dir.append(INPUT, &all[at..]);
    }
    wait_all(&mut p, &db, &all);
    let err = p.stop();
    assert_eq!(
        err.matches("retrying").count(),
        1,
        "the write failure should be logged once:\n{err}"
    );
    assert_matches(&dir.db(DB), &all);
}
