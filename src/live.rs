//! Live mode: follow a growing file or an open pipe forever, committing each
//! new line within a fraction of a second, inside a resident-memory budget.
//!
//! One thread does everything here: a second one would cost memory and buy
//! nothing at a trickle. Commits are sized by the backlog: when caught up, a
//! commit follows each short poll; while behind, each commit may take longer
//! (up to `MAX_TX_AGE`), so a burst is absorbed in big transactions.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rusqlite::Connection;

use crate::batch::{Batch, Builder, Limits};
use crate::db::SourceRow;
use crate::pipeline::seal;
use crate::reader::{Framing, LineReader, Next, Rewritten};
use crate::report::Stats;
use crate::signals;
use crate::source::Input;
use crate::watch::{Event, Watch};
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
/// A process younger than this does not re-execute: re-executions are at
/// least this far apart, whatever happens.
const MIN_LIFETIME: Duration = Duration::from_secs(2);
/// A re-execution is worth it only when freeing left at least this much
/// more than the process had when it started following: a fresh process
/// comes back at about that level, so one over the budget from its start
/// (a budget below what a live process needs) would re-execute in a loop.
const REEXEC_GAIN: u64 = 4 << 20;
/// How often the budget is checked while lines flow.
const BUDGET_EVERY: Duration = Duration::from_millis(250);

pub enum End {
    /// The pipe was closed by its writer.
    Closed,
    /// SIGINT, SIGTERM or SIGHUP.
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

/// Longest wait between retries of a failed database write.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// Follows `reader` until the pipe closes, a stop signal, or (files) the
/// budget needs a fresh process. `conn` must already be in live settings.
/// A followed file's path is watched for rotation and truncation (see
/// [`crate::watch`]).
pub fn follow(
    conn: &Connection,
    source_id: i64,
    path: Option<&Path>,
    mut reader: LineReader<Input>,
    builder: Builder,
    rss_budget: u64,
    log: &dyn Fn(&str),
) -> Result<Followed> {
    // About what a fresh process needs: nothing read or cached yet.
    let fresh_rss = mem::current_rss();
    let is_pipe = matches!(reader.get_mut(), Input::Stdin(_));
    reader.get_mut().set_wait(Some(POLL));
    let watch = match (path, reader.get_ref()) {
        (Some(path), Input::File(f)) => Some(Watch::new(path, f, db::FileIdentity::of(conn)?)?),
        _ => None,
    };
    let mut f = Follower {
        conn,
        writer: Writer::new(conn, source_id, reader.offset())?,
        reader,
        builder,
        batch: Batch::with_limits(LIVE_LIMITS),
        watch,
        path,
        is_pipe,
        rss_budget,
        fresh_rss,
        over_budget: false,
        reexec_helps: false,
        log,
        started: Instant::now(),
        tx_started: None,
        max_age: MIN_TX_AGE,
        last_budget_check: Instant::now(),
        last_line: Instant::now(),
        wal_checked: Instant::now(),
        rested: false,
        settled: false,
    };
    let mut failing: Option<Duration> = None;
    loop {
        match f.step() {
            Ok(None) => {
                // A failure episode ends once everything read is committed.
                if failing.is_some() && f.settled {
                    failing = None;
                    log(&format!(
                        "writing to the database again; caught up at offset {}",
                        f.writer.offset()
                    ));
                }
            }
            Ok(Some(end)) => return f.finish(end),
            // A full disk (or a failing one) while following a file: what
            // was committed stays, the rest is read again once writes work.
            Err(e) if !f.is_pipe && retryable(&e) => {
                let offset = f.back_to_committed()?;
                let wait =
                    failing.map_or(Duration::from_millis(100), |w| (w * 2).min(MAX_RETRY_WAIT));
                if failing.is_none() {
                    log(&format!(
                        "{e:#}; retrying from offset {offset} until the database can be written"
                    ));
                }
                failing = Some(wait);
                let until = Instant::now() + wait;
                while Instant::now() < until && !signals::stop_requested() {
                    std::thread::sleep(POLL);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Errors that may go away by themselves: no space (or quota) left, or an
/// I/O error from the disk. Anything else is a bug or a broken database.
fn retryable(e: &anyhow::Error) -> bool {
    e.downcast_ref::<db::WriteError>()
        .is_some_and(|w| w.transient)
}

struct Follower<'c, 'p> {
    conn: &'c Connection,
    writer: Writer<'c>,
    reader: LineReader<Input>,
    builder: Builder,
    batch: Batch,
    watch: Option<Watch>,
    path: Option<&'p Path>,
    is_pipe: bool,
    rss_budget: u64,
    /// RSS when this process started following.
    fresh_rss: u64,
    /// Over the budget since the last check that found it within: memory is
    /// freed (and the fact logged) once per such episode, not at every check.
    over_budget: bool,
    /// In this episode, whether a fresh process would be clearly smaller.
    reexec_helps: bool,
    log: &'p dyn Fn(&str),
    started: Instant,
    tx_started: Option<Instant>,
    max_age: Duration,
    last_budget_check: Instant,
    last_line: Instant,
    wal_checked: Instant,
    rested: bool,
    /// Caught up with everything read committed, as of the last step.
    settled: bool,
}

impl Follower<'_, '_> {
    /// Takes one line (or notices there is none yet) and does what is due:
    /// commit, rest, budget, watching the path. `Some` ends the following.
    fn step(&mut self) -> Result<Option<End>> {
        // A pipe's last line is complete once the pipe closes; a file's last
        // line may still be being written.
        let framing = if self.is_pipe {
            Framing::ToEof
        } else {
            Framing::Follow
        };
        // The reader takes a stop request before reading more (lines it
        // already holds first: a pipe's cannot be read again).
        let caught_up = match self.reader.next(framing) {
            Ok(Next::Line(line)) => {
                self.builder.push(&mut self.batch, &line);
                if self.reader.capacity() > LIVE_READ_BUFFER {
                    // A long line is in the batch now: let its bytes in the
                    // read buffer go before SQLite makes a third copy.
                    self.reader.shrink();
                }
                self.tx_started.get_or_insert_with(Instant::now);
                self.last_line = Instant::now();
                self.rested = false;
                false
            }
            Ok(Next::AtEnd | Next::Idle) => true,
            Ok(Next::Stopped) => return Ok(Some(End::Stopped)),
            Err(e) if Rewritten::is(&e) => {
                self.rewritten()?;
                return Ok(None);
            }
            Err(e) => return Err(e).context("cannot read the input"),
        };
        if self.batch.is_full(LIVE_LIMITS) || (caught_up && self.batch.lines > 0) {
            self.flush()?;
        }
        let age = self.tx_started.map_or(Duration::ZERO, |t| t.elapsed());
        let due = age >= self.max_age || self.writer.lines_in_tx() >= MAX_TX_LINES;
        if self.writer.in_tx() && (due || (caught_up && age >= CAUGHT_UP_TX_AGE)) {
            self.writer.commit()?;
            self.tx_started = None;
            if self.wal_checked.elapsed() >= WAL_CHECK_EVERY {
                self.wal_checked = Instant::now();
                db::restrain_wal(self.conn, WAL_LIMIT)?;
            }
            // A commit forced while lines kept coming means a backlog:
            // let the next transaction grow; catching up resets it.
            self.max_age = if caught_up {
                MIN_TX_AGE
            } else {
                (self.max_age * 2).min(MAX_TX_AGE)
            };
        }
        let settled = caught_up && !self.writer.in_tx();
        self.settled = settled;
        if settled && self.is_pipe && self.reader.get_mut().closed() {
            return Ok(Some(End::Closed));
        }
        if self.settled && !self.rested && self.last_line.elapsed() >= REST_AFTER {
            // Quiet again after a burst: hand back what the burst used, so
            // idle RSS does not keep the burst's high-water mark.
            release(self.conn, &mut self.reader);
            self.rested = true;
        }
        if (caught_up || self.last_budget_check.elapsed() >= BUDGET_EVERY) && !self.writer.in_tx() {
            self.last_budget_check = Instant::now();
            if self.over_budget() {
                return Ok(Some(End::OverBudget));
            }
        }
        if caught_up && !self.is_pipe {
            std::thread::sleep(POLL);
            self.look()?;
        } else if let Some(w) = self.watch.as_mut() {
            // Behind: no switching yet, but a new file at the path is pinned
            // now, in case it is rotated away again before its turn.
            w.look(self.log)?;
        }
        Ok(None)
    }

    /// Keeps to the memory budget: over it, frees what live mode can spare,
    /// once per episode over the budget (a process that stays over, such as
    /// one given a budget below its needs, neither frees nor logs in a
    /// loop). True when re-executing is the remedy left, and possible now.
    fn over_budget(&mut self) -> bool {
        let rss = mem::current_rss();
        if rss <= self.rss_budget {
            self.over_budget = false;
            return false;
        }
        if !self.over_budget {
            self.over_budget = true;
            release(self.conn, &mut self.reader);
            let after = mem::current_rss();
            if after <= self.rss_budget {
                self.over_budget = false;
                return false;
            }
            self.reexec_helps =
                !self.is_pipe && after >= self.fresh_rss.saturating_add(REEXEC_GAIN);
            let why = if self.is_pipe || self.reexec_helps {
                String::new()
            } else {
                format!(
                    "; not re-executing: a fresh process would need about as much (this one \
                     started at {:.1} MiB)",
                    mib(self.fresh_rss)
                )
            };
            (self.log)(&format!(
                "live RSS {:.1} MiB is over the {:.1} MiB budget (was {:.1} MiB before \
                 freeing){why}",
                mib(after),
                mib(self.rss_budget),
                mib(rss)
            ));
        }
        // A fresh process would have to read a long partial line again:
        // re-executing helps only once it has been committed.
        self.reexec_helps
            && self.reader.pending() <= LIVE_READ_BUFFER
            && self.started.elapsed() >= MIN_LIFETIME
    }

    fn flush(&mut self) -> Result<()> {
        seal(&mut self.batch, &self.reader);
        let written = self.writer.write(&self.batch);
        self.batch.clear(LIVE_LIMITS);
        written
    }

    /// The file was cut before its first bytes were read: it is handled as
    /// any cut, with the head recorded when its source was.
    fn rewritten(&mut self) -> Result<()> {
        let (Some(watch), Input::File(file)) = (self.watch.as_ref(), self.reader.get_ref()) else {
            anyhow::bail!("{Rewritten}");
        };
        let event = watch.cut(
            file,
            "was truncated and rewritten before it was read",
            self.reader.offset(),
            self.reader.tail(),
            self.reader.expected_head(),
        )?;
        self.act(event)
    }

    /// Watches the followed file and moves on when it was rotated or cut.
    fn look(&mut self) -> Result<()> {
        let (Some(watch), Input::File(file)) = (self.watch.as_mut(), self.reader.get_ref()) else {
            return Ok(());
        };
        let read_to = self.reader.offset() + self.reader.pending() as u64;
        let event = watch.check(
            file,
            read_to,
            self.reader.offset(),
            self.reader.tail(),
            self.log,
        )?;
        self.act(event)
    }

    /// Moves on as `event` says: to a copy, a new file, or the start of the
    /// same one.
    fn act(&mut self, event: Event) -> Result<()> {
        let path = self.path.expect("only followed files have events");
        let (file, row) = match event {
            Event::Quiet => return Ok(()),
            Event::Cut {
                why,
                copy: Some((copy, at)),
                file,
                row,
            } => {
                (self.log)(&format!(
                    "{why}; reading on from offset {} in its copy {}, then it from offset 0",
                    self.reader.offset(),
                    at.display()
                ));
                return self.read_copy(copy, file, row);
            }
            Event::Cut {
                why,
                copy: None,
                file,
                row,
            } => {
                (self.log)(&format!("{why}; reading it again from offset 0"));
                (file, row)
            }
            Event::Rotated { file, row, copy } => {
                let end = self.reader.offset() + self.reader.pending() as u64;
                (self.log)(&if copy {
                    format!(
                        "finished the copy at offset {end}; following {} from offset 0",
                        path.display()
                    )
                } else {
                    format!(
                        "{} was rotated: the previous file is finished at offset {end}; \
                         following the new one from offset 0",
                        path.display()
                    )
                });
                (file, row)
            }
        };
        self.move_to(file, row)
    }

    /// Finishes the current source (its unterminated last line is a line:
    /// nothing more will come to it) and continues with `file` from 0, both
    /// positions committed in one transaction.
    fn move_to(&mut self, mut file: File, mut row: SourceRow) -> Result<()> {
        if let Some(line) = self.reader.take_partial() {
            self.builder.push(&mut self.batch, &line);
        }
        self.flush()?;
        self.writer.switch_source(&mut row)?;
        self.tx_started = None;
        file.seek(SeekFrom::Start(0))?;
        if let Some(w) = self.watch.as_mut() {
            w.moved_to(&file)?;
        }
        self.reader.restart(Input::File(file), 0);
        self.reader.expect_head(&row.head);
        Ok(())
    }

    /// Reads on in a copy of the file just cut, from the end of the last line
    /// taken (a partial line is read again from the copy, whole); the cut
    /// file follows as a new source once the copy is finished.
    fn read_copy(&mut self, mut copy: File, file: File, row: SourceRow) -> Result<()> {
        let offset = self.reader.offset();
        copy.seek(SeekFrom::Start(offset))?;
        if let Some(w) = self.watch.as_mut() {
            w.reading_copy(&copy, file, row)?;
        }
        self.reader.restart(Input::File(copy), offset);
        Ok(())
    }

    /// After a failed write: back to the committed position, in the same
    /// file, to read the uncommitted lines again.
    fn back_to_committed(&mut self) -> Result<u64> {
        self.batch.clear(LIVE_LIMITS);
        self.tx_started = None;
        let offset = self.writer.rollback();
        let Input::File(file) = self.reader.get_ref() else {
            unreachable!("pipes are not retried")
        };
        let mut file = file.try_clone()?;
        file.seek(SeekFrom::Start(offset))?;
        self.reader.restart(Input::File(file), offset);
        Ok(offset)
    }

    fn finish(mut self, end: End) -> Result<Followed> {
        if self.batch.lines > 0 {
            self.flush()?;
        }
        self.writer.commit()?;
        let mut stats = self.writer.stats;
        stats.load = self.started.elapsed();
        Ok(Followed {
            stats,
            end,
            offset: self.writer.offset(),
        })
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

/// Bytes in MiB, the unit of the memory flags.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}
