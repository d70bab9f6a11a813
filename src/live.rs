//! Live mode: follow a growing file or an open pipe forever, committing each
//! new line within a fraction of a second, inside a resident-memory budget.
//!
//! One thread does everything here: a second one would cost memory and buy
//! nothing at a trickle. Commits are sized by the backlog: when caught up, a
//! commit follows each short poll; while behind, each commit may take longer
//! (up to `MAX_TX_AGE`), so a burst is absorbed in big transactions.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rusqlite::Connection;

use crate::batch::{Batch, Builder, Limits};
use crate::pipeline::seal;
use crate::reader::{Framing, LineReader};
use crate::report::Stats;
use crate::signals;
use crate::source::Input;
use crate::{db, mem, writer::Writer};

/// Small batches: their arena is most of live mode's own memory.
const LIVE_LIMITS: Limits = Limits {
    lines: 256,
    arena_bytes: 256 << 10,
};

/// Read buffer in live mode; it grows only while a longer line passes.
pub const LIVE_READ_BUFFER: usize = 64 << 10;

/// How long a caught-up follower sleeps before looking for more (files).
const POLL: Duration = Duration::from_millis(10);
/// Transaction age that forces a commit when not caught up; it doubles while
/// a backlog lasts, up to `MAX_TX_AGE`.
const MIN_TX_AGE: Duration = Duration::from_millis(50);
const MAX_TX_AGE: Duration = Duration::from_millis(800);
/// A caught-up transaction this old is committed rather than extended.
const CAUGHT_UP_TX_AGE: Duration = Duration::from_millis(5);
const MAX_TX_LINES: u64 = 200_000;
/// WAL size above which a checkpoint waits (briefly) for readers to move on,
/// checked at most once per `WAL_CHECK_EVERY`.
const WAL_LIMIT: u64 = 64 << 20;
const WAL_CHECK_EVERY: Duration = Duration::from_secs(1);
/// Quiet time after which memory a burst used is handed back.
const REST_AFTER: Duration = Duration::from_secs(1);
/// A process younger than this does not re-execute: were it over budget
/// already, a fresh one would be too, and they would loop.
const MIN_LIFETIME: Duration = Duration::from_secs(2);
/// How often the budget is checked while lines flow.
const BUDGET_EVERY: Duration = Duration::from_millis(250);

pub enum End {
    /// The pipe was closed by its writer.
    Closed,
    /// SIGINT or SIGTERM.
    Stopped,
    /// Over the memory budget after freeing what could be freed: the caller
    /// re-executes (file input only).
    OverBudget,
}

pub struct Followed {
    pub stats: Stats,
    pub end: End,
    pub offset: u64,
}

/// Follows `reader` until the pipe closes, a stop signal, or (files) the
/// budget needs a fresh process. `conn` must already be in live settings.
pub fn follow(
    conn: &Connection,
    source_id: i64,
    path: Option<&Path>,
    mut reader: LineReader<Input>,
    mut builder: Builder,
    rss_budget: u64,
    log: &dyn Fn(&str),
) -> Result<Followed> {
    let is_pipe = matches!(reader.get_mut(), Input::Stdin(_));
    reader.get_mut().set_wait(Some(POLL));
    // A pipe's last line is complete once the pipe closes; a file's last
    // line may still be being written.
    let framing = if is_pipe {
        Framing::ToEof
    } else {
        Framing::Follow
    };
    let started = Instant::now();
    let mut writer = Writer::new(conn, source_id, reader.offset())?;
    let mut batch = Batch::with_limits(LIVE_LIMITS);
    let mut tx_started: Option<Instant> = None;
    let mut max_age = MIN_TX_AGE;
    let mut last_budget_check = Instant::now();
    let mut last_line = Instant::now();
    let mut wal_checked = Instant::now();
    let mut rested = false;
    let mut watch = match (path, reader.get_mut()) {
        (Some(path), Input::File(f)) => Some(Watch::new(path, &f.metadata()?)),
        _ => None,
    };
    loop {
        if signals::stop_requested() {
            return finish(&mut writer, &mut batch, &reader, started, End::Stopped);
        }
        let caught_up = match reader.next_line(framing) {
            Ok(Some(line)) => {
                builder.push(&mut batch, &line);
                tx_started.get_or_insert_with(Instant::now);
                last_line = Instant::now();
                rested = false;
                false
            }
            Ok(None) => true,
            Err(e) if e.kind() == ErrorKind::TimedOut => true,
            Err(e) => return Err(e).context("cannot read the input"),
        };
        if batch.is_full(LIVE_LIMITS) || (caught_up && batch.lines > 0) {
            seal(&mut batch, &reader);
            writer.write(&batch)?;
            batch.clear(LIVE_LIMITS);
        }
        let age = tx_started.map_or(Duration::ZERO, |t| t.elapsed());
        let due = age >= max_age || writer.lines_in_tx() >= MAX_TX_LINES;
        if writer.in_tx() && (due || (caught_up && age >= CAUGHT_UP_TX_AGE)) {
            writer.commit()?;
            tx_started = None;
            if wal_checked.elapsed() >= WAL_CHECK_EVERY {
                wal_checked = Instant::now();
                db::restrain_wal(conn, WAL_LIMIT)?;
            }
            // A commit forced while lines kept coming means a backlog:
            // let the next transaction grow; catching up resets it.
            max_age = if caught_up {
                MIN_TX_AGE
            } else {
                (max_age * 2).min(MAX_TX_AGE)
            };
        }
        if caught_up && !writer.in_tx() && is_pipe && reader.get_mut().closed() {
            return finish(&mut writer, &mut batch, &reader, started, End::Closed);
        }
        if caught_up && !writer.in_tx() && !rested && last_line.elapsed() >= REST_AFTER {
            // Quiet again after a burst: hand back what the burst used, so
            // idle RSS does not keep the burst's high-water mark.
            release(conn, &mut reader);
            rested = true;
        }
        if (caught_up || last_budget_check.elapsed() >= BUDGET_EVERY) && !writer.in_tx() {
            last_budget_check = Instant::now();
            let rss = mem::current_rss();
            // A fresh process would have to read a long partial line again:
            // re-executing helps only once it has been committed.
            let can_reexec = !is_pipe
                && reader.pending() <= LIVE_READ_BUFFER
                && started.elapsed() >= MIN_LIFETIME;
            if rss > rss_budget && !shed(conn, &mut reader, rss_budget, log) && can_reexec {
                return finish(&mut writer, &mut batch, &reader, started, End::OverBudget);
            }
        }
        if caught_up && !is_pipe {
            if let Some(w) = watch.as_mut() {
                w.check(log);
            }
            std::thread::sleep(POLL);
        }
    }
}

fn finish(
    writer: &mut Writer<'_>,
    batch: &mut Batch,
    reader: &LineReader<Input>,
    started: Instant,
    end: End,
) -> Result<Followed> {
    if batch.lines > 0 {
        seal(batch, reader);
        writer.write(batch)?;
    }
    writer.commit()?;
    let mut stats = writer.stats;
    stats.load = started.elapsed();
    Ok(Followed {
        stats,
        end,
        offset: writer.offset(),
    })
}

/// Notices when the followed path stops naming the file being read. Until
/// rotation is handled, the old file keeps being followed and the change is
/// logged once, rather than failing or spinning.
struct Watch<'a> {
    path: &'a Path,
    id: (u64, u64),
    checked: Instant,
    reported: bool,
}

impl<'a> Watch<'a> {
    fn new(path: &'a Path, meta: &std::fs::Metadata) -> Self {
        Watch {
            path,
            id: (meta.dev(), meta.ino()),
            checked: Instant::now(),
            reported: false,
        }
    }

    fn check(&mut self, log: &dyn Fn(&str)) {
        if self.checked.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.checked = Instant::now();
        let now = std::fs::metadata(self.path).map(|m| (m.dev(), m.ino()));
        let same = matches!(now, Ok(id) if id == self.id);
        if !same && !self.reported {
            let what = if now.is_err() {
                "was removed"
            } else {
                "now names another file"
            };
            log(&format!(
                "{} {what}; still following the file that was opened (restart to pick up the new one)",
                self.path.display()
            ));
        }
        self.reported = !same;
    }
}

/// Hands back what live mode can spare: SQLite's unused cache pages, the
/// read buffer beyond its resting size, free heap, and WAL disk space.
fn release(conn: &Connection, reader: &mut LineReader<Input>) {
    reader.shrink();
    let _ = conn.release_memory();
    mem::release_heap();
    // Also fold the WAL back and truncate it: a burst's big transactions
    // grew it, and at rest no commit would trigger a checkpoint. A reader
    // holding a snapshot only makes this partial.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

/// Frees what live mode can spare; returns whether RSS is back in budget.
fn shed(
    conn: &Connection,
    reader: &mut LineReader<Input>,
    budget: u64,
    log: &dyn Fn(&str),
) -> bool {
    let before = mem::current_rss();
    release(conn, reader);
    let after = mem::current_rss();
    if after > budget {
        log(&format!(
            "live RSS {:.1} MB is over the {:.1} MB budget (was {:.1} MB before freeing)",
            after as f64 / 1e6,
            budget as f64 / 1e6,
            before as f64 / 1e6
        ));
    }
    after <= budget
}
