//! Live mode: follow growing files (or an open pipe) forever, committing each
//! new line within a fraction of a second, inside a resident-memory budget.
//!
//! One thread does everything here: a second one would cost memory and buy
//! nothing at a trickle. Commits are sized by the backlog: when caught up, a
//! commit follows each short poll; while behind, each commit may take longer
//! (up to `MAX_TX_AGE`), so a burst is absorbed in big transactions.
//!
//! Several files are followed in turns: a turn takes one source's lines
//! until it is caught up or a batch is full, so a busy source cannot starve
//! the others, and the follower sleeps only once a whole round found every
//! source caught up. A batch holds one source's lines; a transaction may hold
//! several sources' batches, and its commit saves each one's position.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use rusqlite::Connection;

use crate::db;
use crate::db::writer::{SourceRef, Writer};
use crate::db::{DbFile, SourceRow, WriteError};
use crate::follow::watch::{Event, LOOK_EVERY, Watch};
use crate::input::reader::{Framing, LineReader, Next, ReadError};
use crate::input::source::{self, CatchUp, Input};
use crate::pipeline::seal;
use crate::report::{self, Log, Stats, mib};
use crate::scan::batch::{Batch, Builder, Limits};
use crate::sys::mem;
use crate::sys::signals;

pub use crate::db::writer::Position;

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
/// The heartbeat's period: at most one line a minute in an operator's log,
/// and only when lines, the lag or the RSS changed since the last one.
const HEARTBEAT: Duration = Duration::from_secs(60);
/// Overrides [`HEARTBEAT`], in seconds, for tests only: they cannot wait
/// minutes for a line.
const HEARTBEAT_ENV: &str = "INGESTOR_HEARTBEAT_SECS";
/// An RSS change smaller than this is not news: an idle process's RSS moves
/// by a few pages.
const HEARTBEAT_RSS_CHANGE: u64 = 1 << 20;

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
    /// Where each source stands, all committed, in the order the sources
    /// were given (a rotated file's successor in its place; source id 0
    /// for a path still awaited).
    pub positions: Vec<Position>,
}

/// One input to follow: a reader positioned where following starts in its
/// source, and the path it was opened at.
pub struct Tailed {
    /// `None` while the path names no file yet.
    reader: Option<LineReader<Input>>,
    source: Option<SourceRef>,
    path: Option<PathBuf>,
}

impl Tailed {
    /// Follows `reader`, positioned in `source`. `path` is the file
    /// it was opened at, watched for rotation and truncation (see
    /// [`crate::follow::watch`]); `None` for standard input, which can only be
    /// followed alone.
    pub fn new(reader: LineReader<Input>, source: SourceRef, path: Option<PathBuf>) -> Tailed {
        Tailed {
            reader: Some(reader),
            source: Some(source),
            path,
        }
    }

    /// A path that names no file yet: waited for, as `tail -F` does, while
    /// the other sources are followed, then followed from offset 0 as a new
    /// source.
    pub fn awaited(path: PathBuf) -> Tailed {
        Tailed {
            reader: None,
            source: None,
            path: Some(path),
        }
    }
}

/// Longest wait between retries of a failed database write.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// Follows `sources` until the pipe closes, a stop signal, or (files) the
/// budget needs a fresh process. `conn` must already be in live settings.
/// Each followed file's path is watched for rotation and truncation (see
/// [`crate::follow::watch`]).
pub fn follow(
    conn: &Connection,
    sources: Vec<Tailed>,
    builder: Builder,
    rss_budget: u64,
    checkpoint: db::Checkpoint,
    log: &Log,
) -> Result<Followed> {
    // About what a fresh process needs: nothing read or cached yet.
    let fresh_rss = mem::current_rss();
    let is_pipe = sources.iter().any(|s| {
        matches!(
            s.reader.as_ref().map(|r| r.get_ref()),
            Some(Input::Stdin(_))
        )
    });
    if sources.is_empty() {
        bail!("no input to follow");
    }
    if is_pipe && sources.len() > 1 {
        bail!("standard input can only be followed alone, not with other inputs");
    }
    let starts: Vec<(Option<SourceRef>, u64)> = sources
        .iter()
        .map(|s| {
            (
                s.source.clone(),
                s.reader.as_ref().map_or(0, |r| r.offset()),
            )
        })
        .collect();
    let mut tails = Vec::with_capacity(sources.len());
    for s in sources {
        let mut reader = s.reader;
        let mut watch = None;
        if let Some(r) = reader.as_mut() {
            r.get_mut().set_catch_up(Some(CatchUp::poll(POLL)));
            if let (Some(path), Input::File(f)) = (s.path.as_deref(), r.get_ref()) {
                watch = Some(Watch::new(path, f)?);
            }
        }
        tails.push(Tail {
            reader,
            path: s.path,
            watch,
            told: None,
        });
    }
    let now = Instant::now();
    let mut f = Follower {
        conn,
        writer: Writer::with_sources(conn, starts)?,
        tails,
        turn: 0,
        idle_turns: 0,
        builder,
        batch: Batch::with_limits(LIVE_LIMITS),
        is_pipe,
        db: if is_pipe { None } else { DbFile::of(conn)? },
        db_looked: now,
        rss_budget,
        checkpoint,
        fresh_rss,
        over_budget: false,
        reexec_helps: false,
        log,
        beat: Heartbeat {
            every: heartbeat_every(),
            last: now,
            lines: 0,
            lag: None,
            rss: fresh_rss,
        },
        started: now,
        tx_started: None,
        max_age: MIN_TX_AGE,
        last_budget_check: now,
        last_line: now,
        wal_checked: now,
        rested: false,
        settled: false,
    };
    f.beat.lag = f.lag();
    let mut failing: Option<Duration> = None;
    loop {
        match f.step() {
            Ok(None) => {
                // A failure episode ends once everything read is committed.
                if failing.is_some() && f.settled {
                    failing = None;
                    log.info(format_args!(
                        "writing to the database again; caught up at {}",
                        f.offsets()
                    ));
                }
            }
            Ok(Some(end)) => return f.finish(end),
            // A full disk (or a failing one) while following files: what
            // was committed stays, the rest is read again once writes work.
            // Anything else is a bug or a broken database.
            Err(Failure::Write(e)) if !f.is_pipe && e.is_transient() => {
                f.back_to_committed()?;
                let wait =
                    failing.map_or(Duration::from_millis(100), |w| (w * 2).min(MAX_RETRY_WAIT));
                if failing.is_none() {
                    log.warn(format_args!(
                        "{e}; retrying from {} until the database can be written",
                        f.offsets()
                    ));
                }
                failing = Some(wait);
                let until = Instant::now() + wait;
                while Instant::now() < until && !signals::stop_requested() {
                    std::thread::sleep(POLL);
                }
                f.heartbeat(Instant::now());
            }
            Err(e) => return Err(e.into_anyhow()),
        }
    }
}

/// Why a step of following failed: a write, which live mode retries while
/// the disk may recover ([`WriteError::is_transient`]), or anything else.
enum Failure {
    Write(WriteError),
    Other(anyhow::Error),
}

impl Failure {
    fn into_anyhow(self) -> anyhow::Error {
        match self {
            Failure::Write(e) => e.into(),
            Failure::Other(e) => e,
        }
    }
}

impl From<WriteError> for Failure {
    fn from(e: WriteError) -> Self {
        Failure::Write(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Other(e.into())
    }
}

/// The outcome of a step of following, or of what it calls.
type Step<T> = std::result::Result<T, Failure>;

/// The heartbeat period: [`HEARTBEAT`], or the test override.
fn heartbeat_every() -> Duration {
    std::env::var(HEARTBEAT_ENV)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(HEARTBEAT)
}

/// What the last heartbeat (or the start) saw, to tell whether anything
/// happened since.
struct Heartbeat {
    every: Duration,
    /// When the current period began.
    last: Instant,
    /// Lines committed when the period began.
    lines: u64,
    /// Bytes not yet committed of the followed files, and the RSS, as last
    /// reported.
    lag: Option<u64>,
    rss: u64,
}

/// A followed source; its index is its slot in the writer.
struct Tail {
    /// `None` while an awaited path names no file.
    reader: Option<LineReader<Input>>,
    path: Option<PathBuf>,
    watch: Option<Watch>,
    /// Why an awaited path cannot be read yet, once reported.
    told: Option<String>,
}

struct Follower<'c, 'p> {
    conn: &'c Connection,
    writer: Writer<'c>,
    tails: Vec<Tail>,
    /// The source being read; the batch holds lines of this one only.
    turn: usize,
    /// Turns in a row that found their source caught up: once they make a
    /// whole round, every source is caught up.
    idle_turns: usize,
    builder: Builder,
    batch: Batch,
    is_pipe: bool,
    /// The database file as opened, to stop if it is removed or replaced
    /// (rows would go to a file no one sees); looked at every `LOOK_EVERY`.
    db: Option<DbFile>,
    db_looked: Instant,
    rss_budget: u64,
    /// Whether the checkpoints that wait for readers are ours to run.
    checkpoint: db::Checkpoint,
    /// RSS when this process started following.
    fresh_rss: u64,
    /// Over the budget since the last check that found it within: memory is
    /// freed (and the fact logged) once per such episode, not at every check.
    over_budget: bool,
    /// In this episode, whether a fresh process would be clearly smaller.
    reexec_helps: bool,
    log: &'p Log,
    beat: Heartbeat,
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
    /// Takes one line from the source whose turn it is (or notices there is
    /// none yet) and does what is due: commit, rest, budget, watching the
    /// path, the next turn. `Some` ends the following.
    fn step(&mut self) -> Step<Option<End>> {
        let cur = self.turn;
        // A pipe's last line is complete once the pipe closes; a file's last
        // line may still be being written.
        let framing = if self.is_pipe {
            Framing::ToEof
        } else {
            Framing::Follow
        };
        // The reader takes a stop request before reading more (lines it
        // already holds first: a pipe's cannot be read again).
        let caught_up = match self.tails[cur].reader.as_mut() {
            // An awaited path: nothing to read until it names a file.
            None => true,
            Some(reader) => match reader.next(framing) {
                Ok(Next::Line(line)) => {
                    self.builder.push(&mut self.batch, &line);
                    if reader.capacity() > LIVE_READ_BUFFER {
                        // A long line is in the batch now: let its bytes in
                        // the read buffer go before SQLite makes a third copy.
                        reader.shrink();
                    }
                    self.idle_turns = 0;
                    false
                }
                Ok(Next::AtEnd | Next::Idle) => true,
                Ok(Next::Stopped) => return Ok(Some(End::Stopped)),
                Err(ReadError::Rewritten) => {
                    self.rewritten(cur)?;
                    return Ok(None);
                }
                Err(e) => return Err(anyhow!(e).context(self.cannot_read(cur)).into()),
            },
        };
        let now = Instant::now();
        if !caught_up {
            self.tx_started.get_or_insert(now);
            self.last_line = now;
            self.rested = false;
        }
        // A turn lasts until its source is caught up or a batch is full, so
        // that a busy source cannot starve the others.
        let turn_over = caught_up || self.batch.is_full(LIVE_LIMITS);
        if turn_over && self.batch.lines > 0 {
            self.flush(cur)?;
        }
        let n = self.tails.len();
        if caught_up {
            self.idle_turns += 1;
        }
        let all_caught_up = self.idle_turns >= n;
        let age = self.tx_started.map_or(Duration::ZERO, |t| now - t);
        let due = age >= self.max_age || self.writer.lines_in_tx() >= MAX_TX_LINES;
        if self.writer.in_tx() && (due || (all_caught_up && age >= CAUGHT_UP_TX_AGE)) {
            self.writer.commit()?;
            self.tx_started = None;
            if self.wal_checked.elapsed() >= WAL_CHECK_EVERY {
                self.wal_checked = Instant::now();
                db::restrain_wal(self.conn, WAL_LIMIT, self.checkpoint)?;
            }
            // A commit forced while lines kept coming means a backlog:
            // let the next transaction grow; catching up resets it.
            self.max_age = if all_caught_up {
                MIN_TX_AGE
            } else {
                (self.max_age * 2).min(MAX_TX_AGE)
            };
        }
        let settled = all_caught_up && !self.writer.in_tx();
        self.settled = settled;
        if settled
            && self.is_pipe
            && self.tails[0]
                .reader
                .as_ref()
                .is_some_and(|r| r.get_ref().closed())
        {
            return Ok(Some(End::Closed));
        }
        if settled && !self.rested && now - self.last_line >= REST_AFTER {
            // Quiet again after a burst: hand back what the burst used, so
            // idle RSS does not keep the burst's high-water mark.
            release(self.conn, &mut self.tails, self.checkpoint);
            self.rested = true;
        }
        if (all_caught_up || now - self.last_budget_check >= BUDGET_EVERY) && !self.writer.in_tx() {
            self.last_budget_check = now;
            if self.over_budget() {
                return Ok(Some(End::OverBudget));
            }
        }
        if caught_up && !self.is_pipe {
            // Waits only once a whole round found every source caught up.
            if self.idle_turns.is_multiple_of(n) {
                std::thread::sleep(POLL);
            }
            self.look(cur)?;
        } else if let Some(w) = self.tails[cur].watch.as_mut() {
            // Behind: no switching yet, but a new file at the path is pinned
            // now, in case it is rotated away again before its turn.
            w.look(self.log)?;
        }
        if let Some(db) = &self.db
            && now - self.db_looked >= LOOK_EVERY
        {
            self.db_looked = now;
            db.check()?;
        }
        if turn_over {
            self.turn = (cur + 1) % n;
        }
        self.heartbeat(now);
        Ok(None)
    }

    /// Logs one line on what happened since the last heartbeat, when one is
    /// due and anything did: lines committed, the lag or the RSS changed.
    /// Only between transactions, when the counts are the committed ones.
    fn heartbeat(&mut self, now: Instant) {
        let since = now.saturating_duration_since(self.beat.last);
        if since < self.beat.every || self.writer.in_tx() {
            return;
        }
        let lines = self.writer.stats.lines;
        let lag = self.lag();
        let rss = mem::current_rss();
        let new_lines = lines.saturating_sub(self.beat.lines);
        let happened = new_lines > 0
            || lag != self.beat.lag
            || rss.abs_diff(self.beat.rss) >= HEARTBEAT_RSS_CHANGE;
        self.beat.last = now;
        self.beat.lines = lines;
        if !happened {
            return;
        }
        self.beat.lag = lag;
        self.beat.rss = rss;
        let secs = since.as_secs_f64().round() as u64;
        let mut fields = vec![("lines", new_lines), ("secs", secs), ("rss_bytes", rss)];
        let lag_text = match lag {
            Some(bytes) => {
                fields.push(("lag_bytes", bytes));
                format!(", lag {}", report::human_bytes(bytes))
            }
            None => String::new(),
        };
        self.log.info_with(
            format_args!(
                "live: {new_lines} lines in {secs} s{lag_text}, rss {:.1} MiB",
                mib(rss)
            ),
            &fields,
        );
    }

    /// Bytes in the followed files past what is committed; `None` for a pipe,
    /// whose backlog cannot be seen.
    fn lag(&self) -> Option<u64> {
        if self.is_pipe {
            return None;
        }
        let mut lag = 0;
        for (slot, tail) in self.tails.iter().enumerate() {
            if let Some(Input::File(file)) = tail.reader.as_ref().map(|r| r.get_ref()) {
                let len = file.metadata().map_or(0, |m| m.len());
                lag += len.saturating_sub(self.writer.offset(slot));
            }
        }
        Some(lag)
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
            release(self.conn, &mut self.tails, self.checkpoint);
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
            self.log.warn(format_args!(
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
            && self.tails.iter().all(|t| {
                t.reader
                    .as_ref()
                    .is_none_or(|r| r.pending() <= LIVE_READ_BUFFER)
            })
            && self.started.elapsed() >= MIN_LIFETIME
    }

    /// Writes the batch, which holds lines of the source in `slot`.
    fn flush(&mut self, slot: usize) -> Result<(), WriteError> {
        let reader = self.tails[slot]
            .reader
            .as_ref()
            .expect("a source with lines has a reader");
        seal(&mut self.batch, reader);
        let written = self.writer.write_to(slot, &self.batch);
        self.batch.clear(LIVE_LIMITS);
        written
    }

    /// The file was cut before its first bytes were read: it is handled as
    /// any cut, with the head recorded when its source was.
    fn rewritten(&mut self, slot: usize) -> Step<()> {
        // Without a path to watch, there is no file to read again: the error
        // ends the run (as text: it is not the backfill's to start over).
        let rewritten = || Failure::Other(anyhow!("{}", ReadError::Rewritten));
        let tail = &self.tails[slot];
        let (Some(watch), Some(reader)) = (tail.watch.as_ref(), tail.reader.as_ref()) else {
            return Err(rewritten());
        };
        let Input::File(file) = reader.get_ref() else {
            return Err(rewritten());
        };
        let event = watch.cut(
            file,
            "was truncated and rewritten before it was read",
            reader.offset(),
            reader.tail(),
            reader.expected_head(),
        )?;
        self.act(slot, event)
    }

    /// Watches a caught-up followed file and moves on when it was rotated or
    /// cut; opens an awaited path once it names a file.
    fn look(&mut self, slot: usize) -> Step<()> {
        let tail = &mut self.tails[slot];
        let Some(reader) = tail.reader.as_ref() else {
            return self.appear(slot);
        };
        let (Some(watch), Input::File(file)) = (tail.watch.as_mut(), reader.get_ref()) else {
            return Ok(());
        };
        let read_to = reader.offset() + reader.pending() as u64;
        let event = watch.check(file, read_to, reader.offset(), reader.tail(), self.log)?;
        self.act(slot, event)
    }

    /// Moves the source in `slot` on as `event` says: to a copy, a new
    /// file, or the start of the same one.
    fn act(&mut self, slot: usize, event: Event) -> Step<()> {
        let tail = &self.tails[slot];
        let path = tail
            .path
            .as_deref()
            .expect("only followed files have events");
        let reader = tail
            .reader
            .as_ref()
            .expect("only files being read have events");
        let (file, row) = match event {
            Event::Quiet => return Ok(()),
            Event::Cut {
                why,
                copy: Some(copy),
                file,
                row,
            } => {
                self.log.info(format_args!(
                    "{why}; reading on from offset {} in its copy {}, then it from offset 0",
                    reader.offset(),
                    copy.path.display()
                ));
                return self.read_copy(slot, copy.file, file, row);
            }
            Event::Cut {
                why,
                copy: None,
                file,
                row,
            } => {
                self.log
                    .info(format_args!("{why}; reading it again from offset 0"));
                (file, row)
            }
            Event::Rotated { file, row, copy } => {
                let end = reader.offset() + reader.pending() as u64;
                self.log.info(if copy {
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
        self.move_to(slot, file, row)
    }

    /// Finishes the source in `slot` (its unterminated last line is a line:
    /// nothing more will come to it) and continues with `file` from 0: the
    /// finished position is committed now, the new source with its first
    /// lines.
    fn move_to(&mut self, slot: usize, mut file: File, row: SourceRow) -> Step<()> {
        let reader = self.tails[slot]
            .reader
            .as_mut()
            .expect("only files being read move on");
        if let Some(line) = reader.take_partial() {
            self.builder.push(&mut self.batch, &line);
        }
        self.flush(slot)?;
        self.writer.switch_source(slot, &row)?;
        self.tx_started = None;
        file.seek(SeekFrom::Start(0))?;
        let tail = &mut self.tails[slot];
        if let Some(w) = tail.watch.as_mut() {
            w.moved_to(&file)?;
        }
        let reader = tail.reader.as_mut().expect("only files being read move on");
        reader.restart(Input::File(file), 0);
        reader.expect_head(&row.head);
        Ok(())
    }

    /// Reads on in a copy of the file just cut, from the end of the last line
    /// taken (a partial line is read again from the copy, whole); the cut
    /// file follows as a new source once the copy is finished.
    fn read_copy(&mut self, slot: usize, mut copy: File, file: File, row: SourceRow) -> Step<()> {
        let tail = &mut self.tails[slot];
        let reader = tail.reader.as_mut().expect("only files being read are cut");
        let offset = reader.offset();
        copy.seek(SeekFrom::Start(offset))?;
        if let Some(w) = tail.watch.as_mut() {
            w.reading_copy(&copy, file, row)?;
        }
        reader.restart(Input::File(copy), offset);
        Ok(())
    }

    /// Opens an awaited path once it names a readable file, and follows it
    /// from offset 0 as a new source (its row stored with its first lines).
    fn appear(&mut self, slot: usize) -> Step<()> {
        let tail = &mut self.tails[slot];
        let path = tail.path.as_deref().expect("awaited sources have a path");
        let (mut file, row) = match source::successor(path) {
            Ok(found) => found,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                let msg = format!(
                    "{} names a file that cannot be read yet ({e}); still waiting",
                    path.display()
                );
                if tail.told.as_ref() != Some(&msg) {
                    self.log.warn(&msg);
                    tail.told = Some(msg);
                }
                return Ok(());
            }
        };
        self.log.info(format_args!(
            "{} appeared; following it from offset 0",
            path.display()
        ));
        let watch = Watch::new(path, &file)?;
        file.seek(SeekFrom::Start(0))?;
        self.writer.switch_source(slot, &row)?;
        self.tx_started = None;
        let mut reader = LineReader::new(
            Input::File(file),
            0,
            LIVE_READ_BUFFER,
            self.builder.max_line,
        );
        reader.expect_head(&row.head);
        let tail = &mut self.tails[slot];
        tail.reader = Some(reader);
        tail.watch = Some(watch);
        tail.told = None;
        Ok(())
    }

    /// After a failed write: every source back to its committed position, in
    /// the file it is reading, to read the uncommitted lines again.
    fn back_to_committed(&mut self) -> Result<()> {
        self.batch.clear(LIVE_LIMITS);
        self.tx_started = None;
        self.writer.rollback();
        for (slot, tail) in self.tails.iter_mut().enumerate() {
            let Some(reader) = tail.reader.as_mut() else {
                continue;
            };
            let Input::File(file) = reader.get_ref() else {
                unreachable!("pipes are not retried")
            };
            let mut file = file.try_clone()?;
            let offset = self.writer.offset(slot);
            file.seek(SeekFrom::Start(offset))?;
            reader.restart(Input::File(file), offset);
            reader.seed_tail(self.writer.tail(slot));
        }
        Ok(())
    }

    /// "offset N", or "offsets N, M" for several sources, for messages.
    fn offsets(&self) -> String {
        let all: Vec<String> = self
            .writer
            .positions()
            .map(|p| p.offset.to_string())
            .collect();
        let s = if all.len() == 1 { "" } else { "s" };
        format!("offset{s} {}", all.join(", "))
    }

    fn cannot_read(&self, slot: usize) -> String {
        match (&self.tails[slot].path, self.tails.len()) {
            (Some(path), 2..) => format!("cannot read the input {}", path.display()),
            _ => "cannot read the input".to_owned(),
        }
    }

    fn finish(mut self, end: End) -> Result<Followed> {
        if self.batch.lines > 0 {
            self.flush(self.turn)?;
        }
        self.writer.commit()?;
        let mut stats = self.writer.stats;
        stats.load = self.started.elapsed();
        Ok(Followed {
            stats,
            end,
            positions: self.writer.positions().collect(),
        })
    }
}

/// Hands back what live mode can spare: SQLite's unused cache pages, the
/// read buffers beyond their resting size, free heap, and WAL disk space.
fn release(conn: &Connection, tails: &mut [Tail], checkpoint: db::Checkpoint) {
    for reader in tails.iter_mut().filter_map(|t| t.reader.as_mut()) {
        reader.shrink();
    }
    let _ = conn.release_memory();
    mem::release_heap();
    db::rest_wal(conn, checkpoint);
}
