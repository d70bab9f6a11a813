//! The two-thread backfill: one thread reads and scans lines into batches,
//! the calling thread inserts them. Batches circulate between the two through
//! a pair of bounded channels, so memory stays at a few batches whatever the
//! input size, and both cores work when SQLite is the bottleneck.

use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result};
use rusqlite::Connection;

use crate::batch::{Batch, Builder, Limits};
use crate::db::{self, RawStmt};
use crate::reader::{Framing, LineReader};
use crate::report::{Progress, Stats};

/// Batches alive at once: one being filled, one queued, one being written.
const IN_FLIGHT: usize = 3;

/// Read buffer for bulk reading; it grows only for longer lines.
pub const READ_BUFFER: usize = 1 << 20;

pub const BATCH_LIMITS: Limits = Limits {
    lines: 4096,
    arena_bytes: 4 << 20,
};

type Filled = std::io::Result<Batch>;

/// Reads `input` to its end into the database, committing the source's
/// position with every transaction of `tx_lines` lines.
pub fn load<R: Read + Send + 'static>(
    conn: &Connection,
    source_id: i64,
    reader: LineReader<R>,
    max_line: usize,
    tx_lines: u64,
    progress: &Progress,
) -> Result<Stats> {
    let started = Instant::now();
    let start_offset = reader.offset();
    let (full_tx, full_rx) = sync_channel::<Filled>(IN_FLIGHT);
    let (empty_tx, empty_rx) = sync_channel::<Batch>(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        empty_tx
            .send(Batch::with_limits(BATCH_LIMITS))
            .expect("receiver alive");
    }
    let scanner = thread::Builder::new()
        .name("scan".into())
        .spawn(move || scan_all(reader, Builder::new(max_line), empty_rx, full_tx))
        .context("cannot start the reading thread")?;

    let written = write_all(
        conn,
        source_id,
        start_offset,
        tx_lines,
        &full_rx,
        &empty_tx,
        progress,
    );
    // Unblock the scanner if writing stopped early, then reap it.
    drop(full_rx);
    drop(empty_tx);
    let _ = scanner.join();
    let mut stats = written?;
    stats.load = started.elapsed();
    Ok(stats)
}

fn scan_all<R: Read>(
    mut reader: LineReader<R>,
    mut builder: Builder,
    empty: Receiver<Batch>,
    full: SyncSender<Filled>,
) {
    let Ok(mut batch) = empty.recv() else { return };
    loop {
        let line = match reader.next_line(Framing::ToEof) {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                let _ = full.send(Err(e));
                return;
            }
        };
        builder.push(&mut batch, &line);
        if batch.is_full(BATCH_LIMITS) {
            seal(&mut batch, &reader);
            if full.send(Ok(batch)).is_err() {
                return;
            }
            let Ok(next) = empty.recv() else { return };
            batch = next;
        }
    }
    seal(&mut batch, &reader);
    let _ = full.send(Ok(batch));
}

fn seal<R: Read>(batch: &mut Batch, reader: &LineReader<R>) {
    batch.end_offset = reader.offset();
    batch.tail.clear();
    batch.tail.extend_from_slice(reader.tail());
}

fn write_all(
    conn: &Connection,
    source_id: i64,
    start_offset: u64,
    tx_lines: u64,
    full: &Receiver<Filled>,
    empty: &SyncSender<Batch>,
    progress: &Progress,
) -> Result<Stats> {
    let mut insert_row = RawStmt::prepare(conn, db::INSERT_ROW)?;
    let mut insert_bad = RawStmt::prepare(conn, db::INSERT_BAD)?;
    let mut stats = Stats::default();
    let mut in_tx = 0u64;
    let mut end = (start_offset, Vec::new());
    conn.execute_batch("BEGIN IMMEDIATE")?;
    for filled in full.iter() {
        let batch = filled.context("cannot read the input")?;
        for row in &batch.rows {
            insert_row.execute(&batch, row)?;
        }
        for bad in &batch.bad {
            insert_bad.execute_bad(&batch, bad)?;
        }
        stats.lines += batch.lines;
        stats.rows += batch.rows.len() as u64;
        stats.bad += batch.bad.len() as u64;
        stats.blank += batch.blank;
        stats.bytes = batch.end_offset - start_offset;
        in_tx += batch.lines;
        end.0 = batch.end_offset;
        end.1.clone_from(&batch.tail);
        if in_tx >= tx_lines {
            db::save_position(conn, source_id, end.0, &end.1)?;
            conn.execute_batch("COMMIT; BEGIN IMMEDIATE")?;
            in_tx = 0;
        }
        progress.update(&stats);
        let mut batch = batch;
        batch.clear(BATCH_LIMITS);
        // The scanner stops taking batches once it has sent its last one.
        let _ = empty.send(batch);
    }
    db::save_position(conn, source_id, end.0, &end.1)?;
    conn.execute_batch("COMMIT")?;
    Ok(stats)
}
