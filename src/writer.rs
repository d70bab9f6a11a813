//! Writing batches into SQLite: the row statements, transactions, and the
//! source position that is committed with every transaction.

use anyhow::Result;
use rusqlite::Connection;

use crate::batch::Batch;
use crate::db::{self, RawStmt, SourceRow};
use crate::failpoint;
use crate::report::Stats;

pub struct Writer<'c> {
    conn: &'c Connection,
    insert_row: RawStmt<'c>,
    insert_bad: RawStmt<'c>,
    source_id: i64,
    /// Position and fingerprint after the last written batch.
    end_offset: u64,
    tail: Vec<u8>,
    /// What the last commit made durable, to go back to after a failure.
    committed: (u64, Vec<u8>, Stats),
    in_tx: bool,
    lines_in_tx: u64,
    pub stats: Stats,
}

impl<'c> Writer<'c> {
    pub fn new(conn: &'c Connection, source_id: i64, start_offset: u64) -> Result<Self> {
        Ok(Writer {
            conn,
            insert_row: RawStmt::prepare(conn, db::INSERT_ROW)?,
            insert_bad: RawStmt::prepare(conn, db::INSERT_BAD)?,
            source_id,
            end_offset: start_offset,
            tail: Vec::new(),
            committed: (start_offset, Vec::new(), Stats::default()),
            in_tx: false,
            lines_in_tx: 0,
            stats: Stats::default(),
        })
    }

    /// Inserts a batch inside the open transaction (opening one if needed).
    pub fn write(&mut self, batch: &Batch) -> Result<()> {
        self.try_write(batch)
            .map_err(|e| db::write_error(self.conn, e))
    }

    /// Commits the open transaction with the position it reaches.
    pub fn commit(&mut self) -> Result<()> {
        self.try_commit().map_err(|e| db::write_error(self.conn, e))
    }

    /// Moves on to another source: the current one's final position and the
    /// new source's row are committed in one transaction, so that a crash
    /// leaves either the old file still to finish or the new one begun.
    pub fn switch_source(&mut self, next: &mut SourceRow) -> Result<()> {
        self.try_switch_source(next)
            .map_err(|e| db::write_error(self.conn, e))
    }

    fn try_write(&mut self, batch: &Batch) -> rusqlite::Result<()> {
        if batch.lines == 0 && batch.end_offset == self.end_offset {
            return Ok(());
        }
        if !self.in_tx {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.in_tx = true;
        }
        for row in &batch.rows {
            self.insert_row.execute_row(batch, self.source_id, row)?;
        }
        for bad in &batch.bad {
            self.insert_bad.execute_bad(batch, self.source_id, bad)?;
        }
        let s = &mut self.stats;
        s.lines += batch.lines;
        s.rows += batch.rows.len() as u64;
        s.bad += batch.bad.len() as u64;
        s.blank += batch.blank;
        s.bytes += batch.end_offset.saturating_sub(self.end_offset);
        self.lines_in_tx += batch.lines;
        self.end_offset = batch.end_offset;
        self.tail.clone_from(&batch.tail);
        Ok(())
    }

    fn try_commit(&mut self) -> rusqlite::Result<()> {
        if !self.in_tx {
            return Ok(());
        }
        failpoint::hit("before-position")?;
        db::save_position(self.conn, self.source_id, self.end_offset, &self.tail)?;
        failpoint::hit("before-commit")?;
        self.conn.execute_batch("COMMIT")?;
        self.in_tx = false;
        self.lines_in_tx = 0;
        self.committed.0 = self.end_offset;
        self.committed.1.clone_from(&self.tail);
        self.committed.2 = self.stats;
        failpoint::hit("after-commit")?;
        Ok(())
    }

    fn try_switch_source(&mut self, next: &mut SourceRow) -> rusqlite::Result<()> {
        if !self.in_tx {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.in_tx = true;
        }
        next.id = db::insert_source(self.conn, next)?;
        failpoint::hit("rotate-before-commit")?;
        self.try_commit()?;
        self.source_id = next.id;
        self.end_offset = next.offset;
        self.tail.clear();
        self.committed.0 = next.offset;
        self.committed.1.clear();
        Ok(())
    }

    /// Abandons the open transaction (after a failed write or commit: SQLite
    /// may already have rolled it back) and returns to the last committed
    /// position, which is returned.
    pub fn rollback(&mut self) -> u64 {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.in_tx = false;
        self.lines_in_tx = 0;
        self.end_offset = self.committed.0;
        self.tail.clone_from(&self.committed.1);
        self.stats = self.committed.2;
        self.end_offset
    }

    pub fn lines_in_tx(&self) -> u64 {
        self.lines_in_tx
    }

    pub fn in_tx(&self) -> bool {
        self.in_tx
    }

    /// The source offset just past the last committed-or-pending line.
    pub fn offset(&self) -> u64 {
        self.end_offset
    }
}
