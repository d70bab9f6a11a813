//! Writing batches into SQLite: the row statements, transactions, and the
//! source positions that are committed with every transaction.
//!
//! A writer holds one position per source it writes (a backfill has one, a
//! live follower one per followed file). A batch holds the lines of one
//! source; a transaction may hold batches of several, and its commit saves
//! the position of every source it wrote to, so that each source's rows and
//! position are durable together.
//!
//! A new source's `ingest_sources` row is inserted in the transaction that
//! first writes to it, never before: a row durable without its first lines
//! would hold only the file's first bytes as a fingerprint, and after a
//! copy-truncate those can match an older, longer copy that starts alike, so
//! that a restart reads that copy again as the new source's continuation.
//! Until then the source's predecessor is the latest row for its path, which
//! a restart finishes (nothing left) before taking the new file from 0. (A
//! source started at a chosen offset is stored at once, by `input::source`:
//! only its row says where it starts.)

use anyhow::Result;
use rusqlite::Connection;

use crate::db::{self, RawStmt, SourceRow, WriteError};
use crate::report::Stats;
use crate::scan::batch::Batch;
use crate::sys::failpoint;

/// Which `ingest_sources` row a source's lines go to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceRef {
    Stored(i64),
    /// Not stored yet (`id` 0): inserted with the first lines written to it.
    New(SourceRow),
}

impl From<SourceRow> for SourceRef {
    fn from(row: SourceRow) -> SourceRef {
        if row.id == 0 {
            SourceRef::New(row)
        } else {
            SourceRef::Stored(row.id)
        }
    }
}

pub struct Writer<'c> {
    conn: &'c Connection,
    insert_row: RawStmt<'c>,
    insert_bad: RawStmt<'c>,
    /// One per source, in the order given; a source's index is its slot.
    slots: Vec<Slot>,
    /// Stats as of the last commit, to go back to after a failure.
    committed_stats: Stats,
    in_tx: bool,
    lines_in_tx: u64,
    pub stats: Stats,
}

/// One source's position.
struct Slot {
    /// `None` while the slot has no source yet (an awaited path).
    source: Option<SourceRef>,
    /// A new source's row inserted in the open transaction: the slot's
    /// source again if that transaction is rolled back.
    inserted: Option<SourceRow>,
    /// Position and fingerprint after the last written batch.
    end_offset: u64,
    tail: Vec<u8>,
    /// The source's first bytes as far as its batches have shown them (empty when it is
    /// not read from its start), saved with each position.
    head: Vec<u8>,
    /// What the last commit made durable, to go back to after a failure.
    committed_offset: u64,
    committed_tail: Vec<u8>,
    /// Written to in the open transaction: its position is saved at commit.
    touched: bool,
}

impl Slot {
    fn new(source: Option<SourceRef>, offset: u64) -> Slot {
        Slot {
            source,
            inserted: None,
            end_offset: offset,
            tail: Vec::new(),
            head: Vec::new(),
            committed_offset: offset,
            committed_tail: Vec::new(),
            touched: false,
        }
    }
}

/// Where a source stands: its `ingest_sources` row (0 while not stored) and
/// the offset just past its last committed-or-pending line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub source_id: i64,
    pub offset: u64,
}

impl<'c> Writer<'c> {
    /// A writer of one source (slot 0), from `start_offset`.
    pub fn new(conn: &'c Connection, source: SourceRef, start_offset: u64) -> Result<Self> {
        Self::with_sources(conn, vec![(Some(source), start_offset)])
    }

    /// A writer of several sources, `(source, start offset)` each; slot `i`
    /// is `sources[i]`. `None` is a slot with no source yet, which
    /// [`Writer::switch_source`] gives one.
    pub fn with_sources(
        conn: &'c Connection,
        sources: Vec<(Option<SourceRef>, u64)>,
    ) -> Result<Self> {
        Ok(Writer {
            conn,
            insert_row: RawStmt::prepare(conn, db::INSERT_ROW)?,
            insert_bad: RawStmt::prepare(conn, db::INSERT_BAD)?,
            slots: sources
                .into_iter()
                .map(|(source, at)| Slot::new(source, at))
                .collect(),
            committed_stats: Stats::default(),
            in_tx: false,
            lines_in_tx: 0,
            stats: Stats::default(),
        })
    }

    /// Inserts a batch of the first source inside the open transaction
    /// (opening one if needed).
    pub fn write(&mut self, batch: &Batch) -> Result<(), WriteError> {
        self.write_to(0, batch)
    }

    /// Inserts a batch of the source in `slot` inside the open transaction
    /// (opening one if needed).
    pub fn write_to(&mut self, slot: usize, batch: &Batch) -> Result<(), WriteError> {
        self.try_write(slot, batch)
            .map_err(|e| db::write_error(self.conn, e))
    }

    /// Commits the open transaction with the position of every source it
    /// wrote to.
    pub fn commit(&mut self) -> Result<(), WriteError> {
        self.try_commit().map_err(|e| db::write_error(self.conn, e))
    }

    /// Moves the source in `slot` on to `next`, a new source: the finished
    /// one's final position is committed now (with whatever else the
    /// transaction holds), `next`'s row with its first lines, so that a crash
    /// leaves the old file finished or the new one begun, never a new source
    /// recorded with nothing read from it.
    pub fn switch_source(&mut self, slot: usize, next: &SourceRow) -> Result<(), WriteError> {
        self.try_switch_source(slot, next)
            .map_err(|e| db::write_error(self.conn, e))
    }

    fn try_write(&mut self, slot: usize, batch: &Batch) -> rusqlite::Result<()> {
        let at = &mut self.slots[slot];
        if batch.lines == 0 && batch.end_offset == at.end_offset {
            return Ok(());
        }
        if !self.in_tx {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.in_tx = true;
        }
        at.touched = true;
        let source_id = match &at.source {
            Some(SourceRef::Stored(id)) => *id,
            Some(SourceRef::New(new)) => {
                let id = db::insert_source(self.conn, new)?;
                let Some(SourceRef::New(new)) = at.source.replace(SourceRef::Stored(id)) else {
                    unreachable!()
                };
                at.inserted = Some(new);
                id
            }
            None => unreachable!("only a slot with a source has lines"),
        };
        for row in &batch.rows {
            self.insert_row.execute_row(batch, source_id, row)?;
        }
        for bad in &batch.bad {
            self.insert_bad.execute_bad(batch, source_id, bad)?;
        }
        let at = &mut self.slots[slot];
        let s = &mut self.stats;
        s.lines += batch.lines;
        s.rows += batch.rows.len() as u64;
        s.bad += batch.bad.len() as u64;
        s.blank += batch.blank;
        s.bytes += batch.end_offset.saturating_sub(at.end_offset);
        self.lines_in_tx += batch.lines;
        at.end_offset = batch.end_offset;
        at.tail.clone_from(&batch.tail);
        if batch.head.len() > at.head.len() {
            at.head.clone_from(&batch.head);
        }
        Ok(())
    }

    fn try_commit(&mut self) -> rusqlite::Result<()> {
        if !self.in_tx {
            return Ok(());
        }
        failpoint::hit("before-position")?;
        for at in self.slots.iter().filter(|s| s.touched) {
            if let Some(SourceRef::Stored(id)) = at.source {
                db::save_position(self.conn, id, at.end_offset, &at.tail, &at.head)?;
            }
        }
        failpoint::hit("before-commit")?;
        self.conn.execute_batch("COMMIT")?;
        self.in_tx = false;
        self.lines_in_tx = 0;
        for at in &mut self.slots {
            if at.touched {
                at.touched = false;
                at.inserted = None;
                at.committed_offset = at.end_offset;
                at.committed_tail.clone_from(&at.tail);
            }
        }
        self.committed_stats = self.stats;
        failpoint::hit("after-commit")?;
        Ok(())
    }

    fn try_switch_source(&mut self, slot: usize, next: &SourceRow) -> rusqlite::Result<()> {
        // Lines of the finished source still pending are committed now, with
        // its final position. Nothing pending, its stored position is final
        // already: saving it again would store this process's fingerprint,
        // empty if it read nothing of that source, and without one no copy
        // of the file could be found again after a restart.
        failpoint::hit("rotate-before-commit")?;
        self.try_commit()?;
        failpoint::hit("rotate-after-commit")?;
        let at = &mut self.slots[slot];
        at.source = Some(SourceRef::New(next.clone()));
        at.inserted = None;
        at.end_offset = next.offset;
        at.tail.clear();
        at.head.clear();
        at.committed_offset = next.offset;
        at.committed_tail.clear();
        Ok(())
    }

    /// Abandons the open transaction (after a failed write or commit: SQLite
    /// may already have rolled it back) and returns every source to its last
    /// committed position ([`Writer::offset`], [`Writer::tail`]).
    pub fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.in_tx = false;
        self.lines_in_tx = 0;
        for at in &mut self.slots {
            at.touched = false;
            if let Some(new) = at.inserted.take() {
                at.source = Some(SourceRef::New(new));
            }
            at.end_offset = at.committed_offset;
            at.tail.clone_from(&at.committed_tail);
        }
        self.stats = self.committed_stats;
    }

    pub fn lines_in_tx(&self) -> u64 {
        self.lines_in_tx
    }

    pub fn in_tx(&self) -> bool {
        self.in_tx
    }

    /// The offset just past the last committed-or-pending line of the source
    /// in `slot`.
    pub fn offset(&self, slot: usize) -> u64 {
        self.slots[slot].end_offset
    }

    /// The source bytes just before [`Writer::offset`], as far as this
    /// writer has seen them (empty until its first batch).
    pub fn tail(&self, slot: usize) -> &[u8] {
        &self.slots[slot].tail
    }

    /// The source in `slot`, as stored now or still to store.
    pub fn source(&self, slot: usize) -> Option<&SourceRef> {
        self.slots[slot].source.as_ref()
    }

    /// Every source's position, in slot order.
    pub fn positions(&self) -> impl Iterator<Item = Position> + '_ {
        self.slots.iter().map(|s| Position {
            source_id: match s.source {
                Some(SourceRef::Stored(id)) => id,
                _ => 0,
            },
            offset: s.end_offset,
        })
    }
}
