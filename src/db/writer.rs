//! Writing batches into SQLite: the row statements, transactions, and the
//! source positions that are committed with every transaction.
//!
//! A writer holds one position per source it writes (a backfill has one, a
//! live follower one per followed file). A batch holds the lines of one
//! source; a transaction may hold batches of several, and its commit saves
//! the position of every source it wrote to, so that each source's rows and
//! position are durable together.

use anyhow::Result;
use rusqlite::Connection;

use crate::db::{self, RawStmt, SourceRow, WriteError};
use crate::report::Stats;
use crate::scan::batch::Batch;
use crate::sys::failpoint;

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
    source_id: i64,
    /// Position and fingerprint after the last written batch.
    end_offset: u64,
    tail: Vec<u8>,
    /// What the last commit made durable, to go back to after a failure.
    committed_offset: u64,
    committed_tail: Vec<u8>,
    /// Written to in the open transaction: its position is saved at commit.
    touched: bool,
}

impl Slot {
    fn new(source_id: i64, offset: u64) -> Slot {
        Slot {
            source_id,
            end_offset: offset,
            tail: Vec::new(),
            committed_offset: offset,
            committed_tail: Vec::new(),
            touched: false,
        }
    }
}

/// Where a source stands: its `ingest_sources` row and the offset just past
/// its last committed-or-pending line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub source_id: i64,
    pub offset: u64,
}

impl<'c> Writer<'c> {
    /// A writer of one source (slot 0), from `start_offset`.
    pub fn new(conn: &'c Connection, source_id: i64, start_offset: u64) -> Result<Self> {
        Self::with_sources(conn, &[(source_id, start_offset)])
    }

    /// A writer of several sources, `(source id, start offset)` each; slot
    /// `i` is `sources[i]`. Id 0 is a slot with no source yet, which
    /// [`Writer::switch_source`] gives one.
    pub fn with_sources(conn: &'c Connection, sources: &[(i64, u64)]) -> Result<Self> {
        Ok(Writer {
            conn,
            insert_row: RawStmt::prepare(conn, db::INSERT_ROW)?,
            insert_bad: RawStmt::prepare(conn, db::INSERT_BAD)?,
            slots: sources.iter().map(|&(id, at)| Slot::new(id, at)).collect(),
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

    /// Moves the source in `slot` on to another: its final position and the
    /// new source's row are committed in one transaction (with whatever else
    /// the transaction holds), so that a crash leaves either the old file
    /// still to finish or the new one begun.
    pub fn switch_source(&mut self, slot: usize, next: &mut SourceRow) -> Result<(), WriteError> {
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
        let source_id = at.source_id;
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
        Ok(())
    }

    fn try_commit(&mut self) -> rusqlite::Result<()> {
        if !self.in_tx {
            return Ok(());
        }
        failpoint::hit("before-position")?;
        for at in self.slots.iter().filter(|s| s.touched) {
            db::save_position(self.conn, at.source_id, at.end_offset, &at.tail)?;
        }
        failpoint::hit("before-commit")?;
        self.conn.execute_batch("COMMIT")?;
        self.in_tx = false;
        self.lines_in_tx = 0;
        for at in &mut self.slots {
            if at.touched {
                at.touched = false;
                at.committed_offset = at.end_offset;
                at.committed_tail.clone_from(&at.tail);
            }
        }
        self.committed_stats = self.stats;
        failpoint::hit("after-commit")?;
        Ok(())
    }

    fn try_switch_source(&mut self, slot: usize, next: &mut SourceRow) -> rusqlite::Result<()> {
        if !self.in_tx {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.in_tx = true;
        }
        // The finished source's final position goes with the new row, even
        // when nothing was written to it in this transaction (a slot with no
        // source yet has none).
        let at = &mut self.slots[slot];
        at.touched |= at.source_id != 0;
        next.id = db::insert_source(self.conn, next)?;
        failpoint::hit("rotate-before-commit")?;
        self.try_commit()?;
        let at = &mut self.slots[slot];
        at.source_id = next.id;
        at.end_offset = next.offset;
        at.tail.clear();
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

    /// Every source's position, in slot order.
    pub fn positions(&self) -> impl Iterator<Item = Position> + '_ {
        self.slots.iter().map(|s| Position {
            source_id: s.source_id,
            offset: s.end_offset,
        })
    }
}
