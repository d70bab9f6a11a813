//! The two-thread backfill: one thread reads and scans lines into batches,
//! the calling thread inserts them. Batches circulate between the two through
//! a pair of bounded channels, so memory stays at a few batches whatever the
//! input size, and both cores work when SQLite is the bottleneck.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result};
use rusqlite::Connection;

use crate::db;
use crate::db::writer::{SourceRef, Writer};
use crate::input::reader::{Framing, LineReader, Next, ReadError, Source};
use crate::report::{Progress, Stats};
use crate::scan::batch::{Batch, Builder, Limits};

/// Batches alive at once: one being filled, one queued, one being written.
const IN_FLIGHT: usize = 3;

/// Read buffer for bulk reading; it grows only for longer lines.
pub const READ_BUFFER: usize = 1 << 20;

pub const BATCH_LIMITS: Limits = Limits {
    lines: 4096,
    arena_bytes: 4 << 20,
};

type Filled = std::result::Result<Batch, ReadError>;

/// Why the backfill stopped reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The input ended, or a followed file has been read to its end.
    Eof,
    /// Standard input has been idle for the configured time.
    Idle,
    /// SIGINT, SIGTERM or SIGHUP.
    Stopped,
}

pub struct Loaded<R> {
    pub stats: Stats,
    /// The reader, positioned after the last committed line, for live mode.
    pub reader: LineReader<R>,
    /// The source read, stored now if any line of it was committed.
    pub source: SourceRef,
    pub ending: Ending,
}

/// Reads `reader` until it ends (see [`Ending`]) into the database,
/// committing the source's position with every transaction of `tx_lines`.
pub fn load<R: Source + Send + 'static>(
    conn: &Connection,
    source: SourceRef,
    reader: LineReader<R>,
    framing: Framing,
    builder: Builder,
    tx_lines: u64,
    progress: &Progress,
) -> Result<Loaded<R>> {
    let started = Instant::now();
    let mut writer = Writer::new(conn, source, reader.offset())?;
    let (full_tx, full_rx) = sync_channel::<Filled>(IN_FLIGHT);
    let (empty_tx, empty_rx) = sync_channel::<Batch>(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        empty_tx
            .send(Batch::with_limits(BATCH_LIMITS))
            .expect("receiver alive");
    }
    let scanner = thread::Builder::new()
        .name("scan".into())
        .spawn(move || scan_all(reader, framing, builder, empty_rx, full_tx))
        .context("cannot start the reading thread")?;

    let database = db::DbFile::of(conn)?;
    let written = write_all(
        &mut writer,
        database.as_ref(),
        tx_lines,
        &full_rx,
        &empty_tx,
        progress,
    );
    // Unblock the scanner if writing stopped early, then reap it.
    drop(full_rx);
    drop(empty_tx);
    let (reader, ending) = scanner
        .join()
        .map_err(|_| anyhow::anyhow!("the reading thread failed"))?;
    written?;
    let mut stats = writer.stats;
    stats.load = started.elapsed();
    Ok(Loaded {
        stats,
        reader,
        source: writer.source(0).cloned().expect("slot 0 has its source"),
        ending,
    })
}

fn scan_all<R: Source>(
    mut reader: LineReader<R>,
    framing: Framing,
    mut builder: Builder,
    empty: Receiver<Batch>,
    full: SyncSender<Filled>,
) -> (LineReader<R>, Ending) {
    let Ok(mut batch) = empty.recv() else {
        return (reader, Ending::Stopped);
    };
    // The reader looks at the stop flag before each read (lines it already
    // holds are taken first), so a stop ends this loop within a buffer.
    let ending = loop {
        let line = match reader.next(framing) {
            Ok(Next::Line(line)) => line,
            Ok(Next::AtEnd) => break Ending::Eof,
            Ok(Next::Idle) => break Ending::Idle,
            Ok(Next::Stopped) => break Ending::Stopped,
            Err(e) => {
                let _ = full.send(Err(e));
                return (reader, Ending::Eof);
            }
        };
        builder.push(&mut batch, &line);
        if batch.is_full(BATCH_LIMITS) {
            seal(&mut batch, &reader);
            if full.send(Ok(batch)).is_err() {
                return (reader, Ending::Stopped);
            }
            let Ok(next) = empty.recv() else {
                return (reader, Ending::Stopped);
            };
            batch = next;
        }
    };
    seal(&mut batch, &reader);
    let _ = full.send(Ok(batch));
    (reader, ending)
}

/// Records where a batch ends in the source and the source's fingerprints, for the
/// position commit.
pub fn seal<R>(batch: &mut Batch, reader: &LineReader<R>) {
    batch.end_offset = reader.offset();
    batch.tail.clear();
    batch.tail.extend_from_slice(reader.tail());
    batch.head.clear();
    batch.head.extend_from_slice(reader.first_bytes());
}

fn write_all(
    writer: &mut Writer<'_>,
    database: Option<&db::DbFile>,
    tx_lines: u64,
    full: &Receiver<Filled>,
    empty: &SyncSender<Batch>,
    progress: &Progress,
) -> Result<()> {
    // In WAL mode SQLite goes on writing into a database file that was
    // unlinked or renamed away: rows no one will see. Each commit checks
    // first that the path still names the file (one stat per transaction).
    let commit = |writer: &mut Writer<'_>| {
        if let Some(database) = database {
            database.check()?;
        }
        Ok(writer.commit()?)
    };
    for filled in full.iter() {
        let mut batch = filled.context("cannot read the input")?;
        writer.write(&batch)?;
        if writer.lines_in_tx() >= tx_lines {
            commit(writer)?;
        }
        progress.update(&writer.stats);
        batch.clear(BATCH_LIMITS);
        // The scanner stops taking batches once it has sent its last one.
        let _ = empty.send(batch);
    }
    commit(writer)
}
