//! Crash safety of `ingestor --follow` under `kill -9`, at CI size, while the followed file is
//! rotated and truncated.
//!
//! A writer thread appends pre-generated lines to the followed file in chunks cut at arbitrary
//! byte positions (so half-written lines are common). Every few hundred lines (seeded) it
//! completes the line it is writing and rotates the file, taking the kinds in turn, in a
//! shuffled order for each round:
//!
//! - **rename**: `mv f f.N`, a short pause, a new `f`; appends go on there. This is allowed while
//!   no ingestor runs, but not before the database has a source row for the current file: after
//!   a restart only the predecessor the database last knew can be found again (by inode).
//! - **delete + re-create**: `rm f`, a short pause, a new `f`.
//! - **copy-truncate**: `cp f f.N; truncate -s 0 f`, appends going on in `f`.
//! - **copy-truncate (no wait)**: the same while the follower may be behind or not running (as a
//!   rename, only once the database has a source row for the current file): the follower reads
//!   on in the copy before taking the cut file from 0.
//!
//! A delete + re-create and a plain copy-truncate lose whatever the follower had not read (what
//! was first promised for copy-truncate), so the writer does them only while an ingestor runs
//! (the harness's kill waits until they are done) and the database's committed offset for the
//! current file's source equals the file's size. No copy-truncate appends anything between the
//! copy and the truncation.
//!
//! The harness starts `ingestor --follow`, SIGKILLs it at moments drawn from a seeded RNG (during
//! the first backfill into `DB.building`, during a resumed backfill, right around the `exec()`
//! hand-over, and in live mode while lines arrive and files rotate) and restarts it, over and
//! over. After every kill it checks that the database is sound (`PRAGMA integrity_check`) and
//! that what is committed is exactly the lines written before the committed position: the
//! latest `ingest_sources` row is matched with one incarnation of the followed file (inode, the
//! stored head and tail bytes), every earlier incarnation must be in whole. At the end it
//! restarts once more, lets the writer finish, waits until the last file is in, stops with
//! SIGTERM and compares the database with the oracle, one incarnation after the other: every
//! line ever written exactly once, in write order.
//!
//! Every start must end in the SIGKILL (the final run, in the SIGTERM): an ingestor that ends on
//! its own fails the test. `ROTATE` turns the rotations off (append-only campaign on one file).
//! Nothing asserts on speed; the seed is fixed, so the same kill and rotation plan is drawn on
//! every run (the moments they land on still depend on the machine's timing).
//!
//! The same campaign at scale: `scripts/kill9.sh`.

// Linux only: it tells the phases of a run apart by /proc/PID/cmdline.
#![cfg(target_os = "linux")]

use crate::oracle;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};

use crate::util::{Dir, Proc, ProcBuilder, line_ends, try_open};

const DB: &str = "crash.db";
/// The followed file lives in a folder of its own, with its rotated predecessors.
const LOGS: &str = "logs";
const INPUT: &str = "logs/followed.jsonl";
const SEED: u64 = 0x6b69_6c6c_2d39;
/// Kill points in the campaign.
const KILLS: usize = 60;
/// The first kills all aim at the first backfill (the database does not exist yet).
const FIRST_BUILD_KILLS: usize = 5;
/// Lines generated in all; the followed file starts with about 40 % of them.
const LINES: usize = 30_000;
/// Whether the writer rotates and truncates the followed file.
const ROTATE: bool = true;
/// Lines between two rotations: uniform in half to one and a half times this.
const ROTATE_EVERY: u64 = 400;
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
// One `ingestor --follow` process ([`Proc`] from tests/util: output collected, killed when
// dropped).

/// Starts `ingestor --input INPUT --db DB --follow` in `dir`.
fn follow(dir: &Dir) -> Proc {
    let (input, db) = (dir.path(INPUT), dir.path(DB));
    ProcBuilder::new(
        dir,
        &[
            "--input",
            input.to_str().expect("utf-8 temp path"),
            "--db",
            db.to_str().expect("utf-8 temp path"),
            "--follow",
        ],
    )
    .patience(PATIENCE)
    .spawn()
}

fn announced_live(p: &Proc) -> bool {
    p.stderr().contains("live from offset")
}

/// Spins (no sleep, unlike [`Proc::wait_for`]: the hand-over window is a few milliseconds) until
/// `cond` holds. Fails if nothing happens within [`PATIENCE`]. Returns false if the process ended
/// first (the caller looks at how).
fn spin_until(p: &mut Proc, what: &str, cond: impl Fn(&Proc) -> bool) -> bool {
    let start = Instant::now();
    while !cond(p) {
        if !p.alive() {
            return false;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "no {what} within {PATIENCE:?}; stderr:\n{}",
            p.stderr()
        );
        thread::yield_now();
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Rotations and the incarnations of the followed file.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Rotation {
    /// `mv f f.N`, then a new `f`.
    Rename,
    /// `rm f`, then a new `f`.
    DeleteRecreate,
    /// `cp f f.N; truncate -s 0 f`, once the follower has all of `f`.
    CopyTruncate,
    /// The same without waiting for the follower, which may be behind or not running: it is to
    /// read on in the copy (named from the file's stem, same head, same bytes before its
    /// position) before taking the cut file from 0.
    CopyTruncateNoWait,
}

impl Rotation {
    const ALL: [Rotation; 4] = [
        Rotation::Rename,
        Rotation::DeleteRecreate,
        Rotation::CopyTruncate,
        Rotation::CopyTruncateNoWait,
    ];

    /// Whether the follower must have committed the whole current file first (and be running).
    fn needs_caught_up(self) -> bool {
        matches!(self, Rotation::DeleteRecreate | Rotation::CopyTruncate)
    }

    fn name(self) -> &'static str {
        match self {
            Rotation::Rename => "rename",
            Rotation::DeleteRecreate => "delete+recreate",
            Rotation::CopyTruncate => "copy-truncate",
            Rotation::CopyTruncateNoWait => "copy-truncate (no wait)",
        }
    }
}

/// Where the writer rotates (offsets in the source just past a line end, after `from`) and how:
/// every `ROTATE_EVERY` lines on average, the kinds dealt from a deck shuffled for each round.
fn rotation_plan(src: &[u8], from: usize, rng: &mut Rng) -> Vec<(usize, Rotation)> {
    let mut plan = Vec::new();
    if !ROTATE {
        return plan;
    }
    let mut deck: Vec<Rotation> = Vec::new();
    let mut gap = rng.range(ROTATE_EVERY / 2, ROTATE_EVERY * 3 / 2);
    for (i, &b) in src.iter().enumerate().skip(from) {
        if b != b'\n' || i + 1 >= src.len() {
            continue;
        }
        gap -= 1;
        if gap == 0 {
            if deck.is_empty() {
                deck = Rotation::ALL.to_vec();
                for j in (1..deck.len()).rev() {
                    deck.swap(j, rng.range(0, j as u64) as usize);
                }
            }
            plan.push((i + 1, deck.pop().expect("deck")));
            gap = rng.range(ROTATE_EVERY / 2, ROTATE_EVERY * 3 / 2);
        }
    }
    plan
}

/// One file the followed path named, from its creation (or truncation) to the next rotation.
#[derive(Clone, Debug)]
struct Incarnation {
    /// Offset in the source of its first byte: it holds `src[start..next start]`.
    start: usize,
    ino: u64,
    /// How it came to be (`None`: the initial file).
    began: Option<Rotation>,
    /// The latest `ingest_sources` id when it appeared: its own rows come after.
    floor: i64,
    /// Where its bytes stayed after it stopped being the followed file (rename, copy).
    kept_as: Option<String>,
    /// The inode of its copy (copy-truncate): a source row may describe that file.
    copy_ino: Option<u64>,
}

/// The latest `ingest_sources` row.
#[derive(Clone)]
struct SourceRow {
    id: i64,
    ino: Option<i64>,
    head: Vec<u8>,
    offset: i64,
    tail: Vec<u8>,
}

impl std::fmt::Debug for SourceRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = String::from_utf8_lossy(&self.head[..self.head.len().min(40)]).into_owned();
        let tail =
            String::from_utf8_lossy(&self.tail[self.tail.len().saturating_sub(40)..]).into_owned();
        write!(
            f,
            "ingest_sources(id {}, ino {:?}, offset {}, head {head:?}.., tail ..{tail:?})",
            self.id, self.ino, self.offset
        )
    }
}

/// The last `n` items of a list, for reports that stay short.
fn last<T: std::fmt::Debug>(items: &[T], n: usize) -> String {
    let from = items.len().saturating_sub(n);
    format!("({from} earlier) {:?}", &items[from..])
}

fn latest_source(conn: &Connection) -> rusqlite::Result<Option<SourceRow>> {
    conn.query_row(
        "SELECT id, ino, head, offset, tail FROM ingest_sources ORDER BY id DESC LIMIT 1",
        [],
        |r| {
            Ok(SourceRow {
                id: r.get(0)?,
                ino: r.get(1)?,
                head: r.get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default(),
                offset: r.get(3)?,
                tail: r.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
            })
        },
    )
    .optional()
}

/// `id, ino, offset` of every `ingest_sources` row, for reports.
fn all_sources(db: &Path) -> Vec<(i64, Option<i64>, i64)> {
    let Ok(conn) = try_open(db) else {
        return Vec::new();
    };
    let Ok(mut stmt) = conn.prepare("SELECT id, ino, offset FROM ingest_sources ORDER BY id")
    else {
        return Vec::new();
    };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .unwrap_or_default()
}

/// The incarnations `row` may describe, with the source position it stands for: same inode, the
/// stored head and tail are where they should be in the bytes written so far.
fn locate(
    src: &[u8],
    incs: &[Incarnation],
    written: usize,
    row: &SourceRow,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, inc) in incs.iter().enumerate() {
        let end = incs.get(i + 1).map_or(written, |n| n.start);
        let content = &src[inc.start..end.max(inc.start)];
        let Ok(offset) = usize::try_from(row.offset) else {
            continue;
        };
        let ino = |i: u64| row.ino == Some(i as i64);
        if (ino(inc.ino) || inc.copy_ino.is_some_and(ino))
            && offset <= content.len()
            && content.starts_with(&row.head)
            && content[..offset].ends_with(&row.tail)
        {
            out.push((i, inc.start + offset));
        }
    }
    out
}

/// Whether the file that starts at `start` begins with a BOM and a line blank after it: the
/// oracle (and the contract) skips such a line, `line_ends` counts it.
fn bom_blank_line(src: &[u8], start: usize) -> bool {
    let Some(rest) = src[start..].strip_prefix(b"\xEF\xBB\xBF") else {
        return false;
    };
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    rest[..end]
        .iter()
        .all(|c| matches!(c, b' ' | b'\t' | b'\r'))
}

/// Non-blank lines (rows + bad lines) before source position `pos`, each incarnation framed on
/// its own; `None` if `pos` is not a line end.
fn stored_before(
    ends: &HashMap<usize, i64>,
    src: &[u8],
    incs: &[Incarnation],
    pos: usize,
) -> Option<i64> {
    let skipped = incs
        .iter()
        .filter(|inc| inc.start < pos && bom_blank_line(src, inc.start))
        .count() as i64;
    ends.get(&pos).map(|n| n - skipped)
}

// ---------------------------------------------------------------------------------------------
// The writer: appends `src[start..]` to the followed file, never past `budget`, in chunks cut at
// arbitrary byte positions, and rotates the file as planned.

struct Shared {
    src: Arc<Vec<u8>>,
    input: PathBuf,
    db: PathBuf,
    budget: AtomicUsize,
    written: AtomicUsize,
    stop: AtomicBool,
    incs: Mutex<Vec<Incarnation>>,
    /// Whether an ingestor runs. The harness holds it to kill; the writer holds it from its last
    /// look at the database until a delete + re-create or a copy-truncate is done.
    alive: Mutex<bool>,
    /// Rotations done, in order.
    done: Mutex<Vec<Rotation>>,
    /// Time the writer spent waiting for a rotation to be allowed.
    waited: Mutex<Duration>,
}

impl Shared {
    fn incarnations(&self) -> Vec<Incarnation> {
        self.incs.lock().unwrap().clone()
    }

    fn alive(&self) -> MutexGuard<'_, bool> {
        self.alive.lock().unwrap()
    }

    /// Rotates the followed file once the database allows it (or gives up when told to stop).
    fn rotate(&self, kind: Rotation, n: usize, f: &mut File, pos: usize, rng: &mut Rng) {
        let kept = format!("{}.{n}", self.input.display());
        let waiting = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            let cur = self.incarnations().pop().expect("an incarnation");
            let size = pos - cur.start;
            let alive = kind.needs_caught_up().then(|| self.alive());
            let row = match &alive {
                Some(a) if !**a => None,
                _ => try_open(&self.db)
                    .and_then(|c| latest_source(&c))
                    .ok()
                    .flatten(),
            };
            let ready = row.as_ref().is_some_and(|r| {
                r.id > cur.floor
                    && r.ino == Some(cur.ino as i64)
                    && (!kind.needs_caught_up() || r.offset == size as i64)
            });
            if !ready {
                drop(alive);
                thread::sleep(Duration::from_millis(10));
                continue;
            }
            let floor = row.expect("row").id;
            let pause = rng.millis(0, 20);
            let new_file = |incs: &mut Vec<Incarnation>| -> File {
                let nf = OpenOptions::new()
                    .append(true)
                    .create_new(true)
                    .open(&self.input)
                    .expect("create the followed file again");
                incs.push(Incarnation {
                    start: pos,
                    ino: nf.metadata().expect("stat").ino(),
                    began: Some(kind),
                    floor,
                    kept_as: None,
                    copy_ino: None,
                });
                nf
            };
            match kind {
                Rotation::Rename => {
                    fs::rename(&self.input, &kept).expect("rename the followed file");
                    thread::sleep(pause);
                    let mut incs = self.incs.lock().unwrap();
                    incs.last_mut().expect("inc").kept_as = Some(kept);
                    *f = new_file(&mut incs);
                }
                Rotation::DeleteRecreate => {
                    fs::remove_file(&self.input).expect("remove the followed file");
                    thread::sleep(pause);
                    *f = new_file(&mut self.incs.lock().unwrap());
                }
                Rotation::CopyTruncate | Rotation::CopyTruncateNoWait => {
                    let mut incs = self.incs.lock().unwrap();
                    fs::copy(&self.input, &kept).expect("copy the followed file");
                    f.set_len(0).expect("truncate the followed file");
                    let last = incs.last_mut().expect("inc");
                    last.copy_ino = Some(fs::metadata(&kept).expect("stat the copy").ino());
                    last.kept_as = Some(kept);
                    let ino = last.ino;
                    incs.push(Incarnation {
                        start: pos,
                        ino,
                        began: Some(kind),
                        floor,
                        kept_as: None,
                        copy_ino: None,
                    });
                }
            }
            drop(alive);
            self.done.lock().unwrap().push(kind);
            *self.waited.lock().unwrap() += waiting.elapsed();
            return;
        }
    }
}

struct Writer {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    fn start(shared: Arc<Shared>, start: usize, plan: Vec<(usize, Rotation)>, seed: u64) -> Writer {
        let sh = shared.clone();
        let handle = thread::spawn(move || {
            let src = sh.src.clone();
            let mut rng = Rng(seed);
            let mut f = OpenOptions::new()
                .append(true)
                .open(&sh.input)
                .expect("open followed file for append");
            let mut pos = start;
            let mut plan = plan.into_iter().enumerate().peekable();
            while pos < src.len() && !sh.stop.load(Ordering::SeqCst) {
                if let Some(&(n, (at, kind))) = plan.peek()
                    && at == pos
                {
                    sh.rotate(kind, n + 1, &mut f, pos, &mut rng);
                    plan.next();
                    continue;
                }
                let next = plan.peek().map_or(src.len(), |&(_, (at, _))| at);
                let limit = sh.budget.load(Ordering::SeqCst).min(next);
                if pos < limit {
                    let n = (rng.range(1, 40_000) as usize).min(limit - pos);
                    f.write_all(&src[pos..pos + n]).expect("append");
                    pos += n;
                    sh.written.store(pos, Ordering::SeqCst);
                }
                thread::sleep(rng.millis(0, 6));
            }
        });
        Writer {
            shared,
            handle: Some(handle),
        }
    }

    fn allow(&self, upto: usize) {
        self.shared.budget.store(upto, Ordering::SeqCst);
    }

    fn written(&self) -> usize {
        self.shared.written.load(Ordering::SeqCst)
    }

    /// Lets the writer write everything and waits for it; `tick` keeps an ingestor running
    /// meanwhile (a delete or a copy-truncate may wait for one).
    fn finish(&mut self, len: usize, mut tick: impl FnMut()) {
        self.allow(len);
        let start = Instant::now();
        if let Some(h) = self.handle.take() {
            while !h.is_finished() {
                tick();
                assert!(
                    start.elapsed() < PATIENCE,
                    "the writer did not finish within {PATIENCE:?}"
                );
                thread::sleep(Duration::from_millis(5));
            }
            h.join().expect("writer thread");
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Let a failing test end: the writer waits at its budget and for rotations.
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.budget.store(usize::MAX, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------------
// Database checks after a kill.

const SQLITE_READONLY_ROLLBACK: i32 = 8 | (3 << 8);

/// What a kill left in the database.
struct Inspection {
    integrity: String,
    latest: Option<SourceRow>,
    rows: i64,
    bad: i64,
}

/// Inspects the database left by a kill.
///
/// Read-only first. A kill inside a rollback-journal transaction leaves a hot journal that a
/// read-only connection may not roll back (`SQLITE_READONLY_ROLLBACK`); then the same check
/// runs on a copy of the database and its journal, so that the original is left exactly as
/// the killed process left it, for the next `ingestor` to recover.
fn inspect(dir: &Dir) -> Inspection {
    let db = dir.path(DB);
    let query = |conn: &Connection| -> rusqlite::Result<Inspection> {
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let lines: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(Inspection {
            integrity: lines.join("\n"),
            latest: latest_source(conn)?,
            rows: conn.query_row("SELECT count(*) FROM sse_lines", [], |r| r.get(0))?,
            bad: conn.query_row("SELECT count(*) FROM bad_lines", [], |r| r.get(0))?,
        })
    };
    match try_open(&db).and_then(|c| query(&c)) {
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

fn count_kinds(kinds: &[Rotation]) -> String {
    Rotation::ALL
        .iter()
        .map(|k| format!("{} {}", k.name(), kinds.iter().filter(|&x| x == k).count()))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// The campaign, in named steps. Each step prints its name first: the test's captured output,
// shown on failure, ends with the step that broke.

fn step(name: &str) {
    println!("-- step: {name}");
}

/// What the campaign counted, for the summary.
#[derive(Default)]
struct Tally {
    kills_by_phase: HashMap<&'static str, usize>,
    restarts: usize,
    integrity_checks: usize,
    /// Kills after which the database's latest source was an earlier file than the one the path
    /// names: the next start had a rotated (or deleted/truncated) predecessor behind it.
    kills_behind_rotation: usize,
}

#[test]
fn kill9_at_random_moments_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let dir = Dir::new();
    let src = generate_the_source(&dir);
    let ends = line_ends(&src);
    let initial = create_the_followed_file_cut_inside_a_line(&dir, &src);
    let mut backfill_time = calibrate_a_first_backfill(&dir, &src, initial);
    let (shared, mut writer, planned) = start_the_writer(&dir, &src, initial);

    let mut rng = Rng(SEED);
    let mut tally = Tally::default();
    for k in 0..KILLS {
        // The writer spreads the rest of the source over the campaign (most of it; the last
        // part arrives before the final run).
        writer.allow(initial + (src.len() - initial) * (k + 1) / (KILLS + 2));
        let killed = start_and_kill9_at_an_aimed_moment(
            &dir,
            &shared,
            k,
            &mut rng,
            &mut backfill_time,
            &mut tally,
        );
        committed_rows_are_exactly_the_lines_before_the_committed_position(
            &dir, &src, &ends, &shared, &killed, &mut tally,
        );
    }

    let incs = a_final_run_takes_in_every_file_and_stops_cleanly(&dir, &src, &shared, &mut writer);
    tally.restarts += 1;
    let cmp = compare_every_file_with_the_oracle(&dir, &src, &incs);
    print_the_summary(&src, &incs, &shared, &planned, &tally, &cmp, started);
    final_database_is_sound(&cmp);
    every_planned_rotation_was_done(&shared, &planned);
    no_line_is_lost_or_duplicated(&cmp);
    both_tables_hold_as_many_lines_as_written(&cmp);
    every_file_matches_the_oracle_in_write_order(&cmp);
}

/// Every byte the writer will ever append, in order: both products, lines up to 1 MB, 2 %
/// adversarial lines, ending with a newline.
fn generate_the_source(dir: &Dir) -> Arc<Vec<u8>> {
    step("generate the source");
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
    src
}

/// The followed file starts with 40 % of the source, cut inside a line; returns its length.
fn create_the_followed_file_cut_inside_a_line(dir: &Dir, src: &[u8]) -> usize {
    step("create the followed file, cut inside a line");
    let initial = src.len() * 2 / 5 + 17;
    fs::create_dir(dir.path(LOGS)).expect("mkdir logs");
    dir.create(INPUT, &src[..initial]);
    initial
}

/// How long a first backfill of the initial file takes here (a one-shot run on a copy), so that
/// the first kills can be spread over it whatever the machine's speed. Two runs, the faster one
/// counts: an overestimate would make the first-build kills miss.
fn calibrate_a_first_backfill(dir: &Dir, src: &[u8], initial: usize) -> Duration {
    step("calibrate a first backfill");
    dir.create("calibrate.jsonl", &src[..initial]);
    let mut backfill_time = Duration::MAX;
    for round in 0..2 {
        let db = format!("calibrate-{round}.db");
        let calibrate = Instant::now();
        dir.command()
            .args(["--input", "calibrate.jsonl", "--db", &db, "--quiet"])
            .assert_ok();
        backfill_time = backfill_time.min(calibrate.elapsed());
    }
    backfill_time
}

/// Starts the writer thread on the rest of the source, with its rotation plan; returns the
/// rotations planned, in order.
fn start_the_writer(
    dir: &Dir,
    src: &Arc<Vec<u8>>,
    initial: usize,
) -> (Arc<Shared>, Writer, Vec<Rotation>) {
    step("start the writer");
    let plan = rotation_plan(src, initial, &mut Rng(SEED ^ 0x0707));
    let planned: Vec<Rotation> = plan.iter().map(|p| p.1).collect();
    let shared = Arc::new(Shared {
        src: src.clone(),
        input: dir.path(INPUT),
        db: dir.path(DB),
        budget: AtomicUsize::new(initial),
        written: AtomicUsize::new(initial),
        stop: AtomicBool::new(false),
        incs: Mutex::new(vec![Incarnation {
            start: 0,
            ino: fs::metadata(dir.path(INPUT)).expect("stat").ino(),
            began: None,
            floor: 0,
            kept_as: None,
            copy_ino: None,
        }]),
        alive: Mutex::new(false),
        done: Mutex::new(Vec::new()),
        waited: Mutex::new(Duration::ZERO),
    });
    let writer = Writer::start(shared.clone(), initial, plan, SEED ^ 0xa5a5);
    (shared, writer, planned)
}

/// A killed run, for the checks that follow.
struct Killed {
    k: usize,
    phase: &'static str,
    /// Its stderr, for reports.
    proc: Proc,
    /// One line on the kill: aim, phase, timing, what was written.
    what: String,
}

/// Kill #k's aim: the first kills all aim at the first backfill (the database does not exist
/// yet), then a seeded draw. Sometimes the ingestor stays down a while first, so that the next
/// start has a backlog to backfill.
fn draw_an_aim(k: usize, rng: &mut Rng) -> Aim {
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
        thread::sleep(rng.millis(20, 250));
    }
    aim
}

/// Starts `ingestor --follow`, waits for the aimed moment, SIGKILLs it (never in the middle of a
/// delete + re-create or a copy-truncate) and establishes that the kill is what ended it.
fn start_and_kill9_at_an_aimed_moment(
    dir: &Dir,
    shared: &Shared,
    k: usize,
    rng: &mut Rng,
    backfill_time: &mut Duration,
    tally: &mut Tally,
) -> Killed {
    step(&format!("start and kill -9 #{k} at an aimed moment"));
    let aim = draw_an_aim(k, rng);
    let first_build = !dir.exists(DB);
    let spawned = Instant::now();
    let mut p = follow(dir);
    *shared.alive() = true;
    if k > 0 {
        tally.restarts += 1;
    }
    match aim {
        Aim::Backfill => {
            // A moment within the expected backfill (the last one measured, or the calibration
            // for the first, of which the last part builds indexes after the rename), start-up
            // included.
            let frac = rng.range(0, if first_build { 600 } else { 1000 }) as u32;
            thread::sleep(*backfill_time * frac / 1000);
        }
        Aim::Announced => {
            spin_until(&mut p, "`live from offset` line", announced_live);
        }
        Aim::Execed => {
            spin_until(&mut p, "exec into live mode", Proc::execed);
        }
        Aim::Live => {
            if spin_until(&mut p, "exec into live mode", |p| {
                p.execed() && announced_live(p)
            }) {
                thread::sleep(rng.millis(5, 400));
            }
        }
    }
    if matches!(aim, Aim::Announced) && !first_build && announced_live(&p) {
        // Waited for the end of a resumed backfill: its length guides the next aims.
        *backfill_time = spawned.elapsed();
    }
    let phase = if p.execed() {
        match aim {
            Aim::Execed => "switch (just after exec)",
            _ => "live",
        }
    } else if announced_live(&p) {
        "switch (before exec)"
    } else if first_build {
        "first backfill"
    } else {
        "resumed backfill"
    };
    {
        // Not in the middle of a delete + re-create or a copy-truncate.
        let mut alive = shared.alive();
        if p.alive() {
            p.signal(libc::SIGKILL);
        }
        *alive = false;
    }
    let status = p.wait_exit();
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "kill #{k}: ingestor ended on its own with {status} ({phase}); stderr:\n{}",
            p.stderr()
        );
    }
    *tally.kills_by_phase.entry(phase).or_default() += 1;
    let what = format!(
        "kill #{k}: aimed {aim:?}, {phase}, {:.0} ms after start, {} bytes written, file #{} \
         being written",
        spawned.elapsed().as_secs_f64() * 1000.0,
        shared.written.load(Ordering::SeqCst),
        shared.incarnations().len() - 1
    );
    Killed {
        k,
        phase,
        proc: p,
        what,
    }
}

/// No ingestor runs now: the database must be sound (`PRAGMA integrity_check`), and what is
/// committed must be exactly the lines written before the committed position, which the latest
/// `ingest_sources` row places in one incarnation of the followed file.
fn committed_rows_are_exactly_the_lines_before_the_committed_position(
    dir: &Dir,
    src: &[u8],
    ends: &HashMap<usize, i64>,
    shared: &Shared,
    killed: &Killed,
    tally: &mut Tally,
) {
    let Killed { k, phase, what, .. } = killed;
    step(&format!(
        "after kill #{k}, the committed rows are exactly the lines before the committed position"
    ));
    if !dir.exists(DB) {
        println!("{what}; no database yet");
        return;
    }
    let ins = inspect(dir);
    tally.integrity_checks += 1;
    assert_eq!(
        ins.integrity, "ok",
        "kill #{k} ({phase}): PRAGMA integrity_check"
    );
    let (rows, bad) = (ins.rows, ins.bad);
    // Read after the database: every byte a committed position can cover is counted.
    let written = shared.written.load(Ordering::SeqCst);
    let incs = shared.incarnations();
    let Some(latest) = ins.latest else {
        assert_eq!(
            rows + bad,
            0,
            "kill #{k} ({phase}): rows without any ingest_sources row"
        );
        println!("{what}; database without a source");
        return;
    };
    let at = locate(src, &incs, written, &latest);
    assert!(
        !at.is_empty(),
        "kill #{k} ({phase}): the latest ingest_sources row {latest:?} is no position in any \
         file written ({written} bytes written; files {}; sources {}); stderr of the killed \
         run:\n{}",
        last(&incs, 6),
        last(&all_sources(&dir.path(DB)), 6),
        killed.proc.stderr()
    );
    let fits = at
        .iter()
        .find(|&&(_, pos)| stored_before(ends, src, &incs, pos) == Some(rows + bad));
    let Some(&(file, _)) = fits else {
        let want: Vec<_> = at
            .iter()
            .map(|&(i, pos)| (i, pos, stored_before(ends, src, &incs, pos)))
            .collect();
        panic!(
            "kill #{k} ({phase}): {rows} rows + {bad} bad lines committed, but the latest \
             ingest_sources row {latest:?} stands for (file, source position, non-blank lines \
             before it) {want:?} (fewer rows: missing, more: duplicated); files {}; sources {}; \
             stderr of the killed run:\n{}",
            last(&incs, 6),
            last(&all_sources(&dir.path(DB)), 6),
            killed.proc.stderr()
        );
    };
    if file + 1 < incs.len() {
        tally.kills_behind_rotation += 1;
    }
    println!(
        "{what}; database on file #{file}, source {} at offset {}, {rows} rows + {bad} bad",
        latest.id, latest.offset
    );
}

/// One more run; the writer finishes (its last rotations may wait for this run), the run takes
/// in the last file to its end without ending on its own, and stops cleanly on SIGTERM. Returns
/// every incarnation of the followed file.
fn a_final_run_takes_in_every_file_and_stops_cleanly(
    dir: &Dir,
    src: &[u8],
    shared: &Shared,
    writer: &mut Writer,
) -> Vec<Incarnation> {
    step("a final run takes in every file and stops cleanly");
    let mut p = follow(dir);
    *shared.alive() = true;
    let assert_running = |p: &mut Proc| {
        if !p.alive() {
            let status = p.wait_exit();
            panic!(
                "the final run ended on its own with {status}; stderr:\n{}",
                p.stderr()
            );
        }
    };
    writer.finish(src.len(), || assert_running(&mut p));
    assert_eq!(writer.written(), src.len());
    let incs = shared.incarnations();
    let last = incs.last().expect("a file");
    let size = fs::metadata(dir.path(INPUT)).expect("stat").len() as usize;
    assert_eq!(size, src.len() - last.start, "size of the last file");
    let db_path = dir.path(DB);
    let start = Instant::now();
    loop {
        let latest = try_open(&db_path).and_then(|c| latest_source(&c));
        if let Ok(Some(r)) = &latest
            && r.id > last.floor
            && r.ino == Some(last.ino as i64)
            && r.offset as usize == size
        {
            break;
        }
        assert_running(&mut p);
        assert!(
            start.elapsed() < PATIENCE,
            "the final run did not reach offset {size} of the last file (latest source: \
             {latest:?}); stderr:\n{}",
            p.stderr()
        );
        thread::sleep(Duration::from_millis(20));
    }
    {
        let mut alive = shared.alive();
        p.signal(libc::SIGTERM);
        *alive = false;
    }
    let status = p.wait_exit();
    assert!(
        status.success(),
        "final run exited with {status}; stderr:\n{}",
        p.stderr()
    );
    incs
}

/// The source bytes each incarnation holds.
fn contents<'a>(src: &'a [u8], incs: &[Incarnation]) -> Vec<&'a [u8]> {
    incs.iter()
        .enumerate()
        .map(|(i, inc)| &src[inc.start..incs.get(i + 1).map_or(src.len(), |n| n.start)])
        .collect()
}

/// The final database against the oracle.
struct Comparison {
    integrity: String,
    exp_rows: usize,
    exp_bad: usize,
    exp_lines: usize,
    rows: usize,
    bad: usize,
    dup_rows: usize,
    missing_rows: usize,
    dup_bad: usize,
    missing_bad: usize,
    /// One report per file whose share of the tables differs from its oracle.
    mismatches: Vec<String>,
    sources: Vec<(i64, Option<i64>, i64)>,
}

/// The oracle, one file after the other (each file is framed on its own): every line ever
/// written, as a multiset (lost or duplicated) and, where the counts agree, row by row in id
/// order, each file's share against that file's oracle.
fn compare_every_file_with_the_oracle(dir: &Dir, src: &[u8], incs: &[Incarnation]) -> Comparison {
    step("compare every file with the oracle");
    let db = dir.db(DB);
    let integrity = db.integrity_check();
    let contents = contents(src, incs);
    let exps: Vec<oracle::Expected> = contents.iter().map(|c| oracle::expect(c)).collect();
    let exp_rows: usize = exps.iter().map(|e| e.rows.len()).sum();
    let exp_bad: usize = exps.iter().map(|e| e.bad.len()).sum();
    let exp_lines: usize = exps.iter().map(|e| e.lines).sum();
    let rows = db.rows();
    let bad = db.bad_lines();
    let (dup_rows, missing_rows) = surplus_and_missing(
        exps.iter()
            .flat_map(|e| e.rows.iter().map(|r| text_key(&r.line))),
        rows.iter().map(|r| text_key(&r.line)),
    );
    let (dup_bad, missing_bad) = surplus_and_missing(
        exps.iter()
            .flat_map(|e| e.bad.iter().map(|b| (b.src_offset as i64, b.raw.clone()))),
        bad.iter().map(|b| match b.src_offset {
            Value::Integer(i) => (i, text_key(&b.raw)),
            _ => (-1, text_key(&b.raw)),
        }),
    );
    // Rows and bad lines in id order, cut into each file's share, against that file's oracle.
    let mut mismatches = Vec::new();
    if rows.len() == exp_rows && bad.len() == exp_bad {
        let (mut r, mut b) = (0, 0);
        for (i, (content, exp)) in contents.iter().zip(&exps).enumerate() {
            let (nr, nb) = (exp.rows.len(), exp.bad.len());
            if let Err(report) = oracle::check(content, exp, &rows[r..r + nr], &bad[b..b + nb]) {
                mismatches.push(format!("file #{i} ({:?}):\n{report}", incs[i]));
            }
            r += nr;
            b += nb;
        }
    }
    Comparison {
        integrity,
        exp_rows,
        exp_bad,
        exp_lines,
        rows: rows.len(),
        bad: bad.len(),
        dup_rows,
        missing_rows,
        dup_bad,
        missing_bad,
        mismatches,
        sources: all_sources(&dir.path(DB)),
    }
}

/// The files, the sources and one line of figures, printed before the final checks.
fn print_the_summary(
    src: &[u8],
    incs: &[Incarnation],
    shared: &Shared,
    planned: &[Rotation],
    tally: &Tally,
    cmp: &Comparison,
    started: Instant,
) {
    let contents = contents(src, incs);
    for (i, inc) in incs.iter().enumerate() {
        println!(
            "file #{i}: {}, inode {}, {} bytes from source offset {}{}",
            inc.began.map_or("initial", Rotation::name),
            inc.ino,
            contents[i].len(),
            inc.start,
            inc.kept_as
                .as_ref()
                .map_or(String::new(), |k| format!(", kept as {k}"))
        );
    }
    println!("ingest_sources (id, ino, offset): {:?}", cmp.sources);
    let done = shared.done.lock().unwrap().clone();
    let mut phases: Vec<_> = tally.kills_by_phase.iter().collect();
    phases.sort();
    let Comparison {
        exp_rows,
        exp_bad,
        exp_lines,
        dup_rows,
        missing_rows,
        dup_bad,
        missing_bad,
        ..
    } = cmp;
    println!(
        "kill -9 campaign: {KILLS} kills {phases:?}, {} restarts, {} integrity checks after \
         kills; rotations {} ({}) of {} planned, {} kills left the database on an earlier file \
         than the path named, the writer waited {:.1} s for rotations to be allowed; {} files, \
         {} ingest_sources rows; {exp_lines} lines written ({} bytes, {} non-blank); {} rows + \
         {} bad lines in the database ({exp_rows} + {exp_bad} expected); duplicates {dup_rows} \
         rows / {dup_bad} bad; missing {missing_rows} rows / {missing_bad} bad; integrity {}; \
         oracle {}; {:.1} s",
        tally.restarts,
        tally.integrity_checks,
        done.len(),
        count_kinds(&done),
        planned.len(),
        tally.kills_behind_rotation,
        shared.waited.lock().unwrap().as_secs_f64(),
        incs.len(),
        cmp.sources.len(),
        src.len(),
        exp_rows + exp_bad,
        cmp.rows,
        cmp.bad,
        cmp.integrity,
        if cmp.mismatches.is_empty() && cmp.rows == *exp_rows && cmp.bad == *exp_bad {
            "ok"
        } else {
            "MISMATCH"
        },
        started.elapsed().as_secs_f64()
    );
}

fn final_database_is_sound(cmp: &Comparison) {
    step("the final database is sound");
    assert_eq!(cmp.integrity, "ok", "final PRAGMA integrity_check");
}

fn every_planned_rotation_was_done(shared: &Shared, planned: &[Rotation]) {
    step("every planned rotation was done");
    let done = shared.done.lock().unwrap().clone();
    assert_eq!(done, planned, "rotations done");
}

fn no_line_is_lost_or_duplicated(cmp: &Comparison) {
    step("no line is lost or duplicated");
    assert_eq!(
        (cmp.dup_rows, cmp.missing_rows, cmp.dup_bad, cmp.missing_bad),
        (0, 0, 0, 0),
        "duplicated or missing lines (rows dup/missing, bad dup/missing); files and sources \
         are listed above"
    );
}

fn both_tables_hold_as_many_lines_as_written(cmp: &Comparison) {
    step("both tables hold as many lines as written");
    assert_eq!(cmp.rows, cmp.exp_rows, "rows in sse_lines");
    assert_eq!(cmp.bad, cmp.exp_bad, "rows in bad_lines");
}

fn every_file_matches_the_oracle_in_write_order(cmp: &Comparison) {
    step("every file matches the oracle, in write order");
    assert!(
        cmp.mismatches.is_empty(),
        "database differs from the oracle:\n{}",
        cmp.mismatches.join("\n")
    );
}
