//! One pass of one parser over every line of a file, timed: `parser-reference MODE FILE`.
//!
//! Every mode but `read`, `ours-read` and `ours-mmap` first reads the whole file into memory, untimed, so
//! that what is timed is the parsing alone (the lines come from DRAM, not from the CPU's
//! caches: the file is larger than them). Lines are framed by `memchr` in every mode. The
//! general parsers build a full document per line (every string checked as UTF-8 and decoded),
//! which is the part of ingestor's work they can be compared with; ingestor's `Builder` does
//! that and builds the row (columns, `extra`, the metadata scan) too.
//!
//! Prints one line: `MODE secs S lines N ok K` (K: lines the mode accepted). One thread, so
//! on an otherwise idle machine its wall time is its CPU time.

use std::fs::File;
use std::io::Read;
use std::time::Instant;

use ingestor::config::SQLITE_MAX_VALUE;
use ingestor::input::reader::{Framing, Line, LineReader};
use ingestor::pipeline::{BATCH_LIMITS, READ_BUFFER};
use ingestor::scan::batch::{Batch, Builder};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(mode), Some(path)) = (args.next(), args.next()) else {
        eprintln!("usage: parser-reference MODE FILE");
        std::process::exit(2);
    };
    let data = match mode.as_str() {
        "read" | "ours-mmap" | "ours-read" => Vec::new(),
        _ => std::fs::read(&path).expect("read the input"),
    };
    let started = Instant::now();
    let (lines, ok) = match mode.as_str() {
        "read" => read_only(&path),
        "frame" => count(&data, |_| true),
        "frame-utf8" => count(&data, |l| simdutf8::basic::from_utf8(l).is_ok()),
        "ours" => ours(&data),
        "ours-mmap" => ours_mmap(&path),
        "ours-read" => ours_read(&path),
        "serde_json" => count(&data, |l| {
            serde_json::from_slice::<serde_json::Value>(l).is_ok()
        }),
        "sonic-rs" => count(&data, |l| {
            sonic_rs::from_slice::<sonic_rs::Value>(l).is_ok()
        }),
        "simd-json" => {
            // simd-json parses in place: each line is copied into a reused buffer first.
            let (mut line, mut buffers) = (Vec::new(), simd_json::Buffers::default());
            count(&data, |l| {
                line.clear();
                line.extend_from_slice(l);
                simd_json::to_borrowed_value_with_buffers(&mut line, &mut buffers).is_ok()
            })
        }
        _ => {
            eprintln!("parser-reference: unknown mode {mode:?}");
            std::process::exit(2);
        }
    };
    let secs = started.elapsed().as_secs_f64();
    println!("{mode} secs {secs:.3} lines {lines} ok {ok}");
}

/// Calls `parse` on each line of `data`: (lines, lines accepted).
fn count(data: &[u8], mut parse: impl FnMut(&[u8]) -> bool) -> (u64, u64) {
    let (mut lines, mut ok) = (0, 0);
    for_each_line(data, |_, line| {
        lines += 1;
        ok += u64::from(parse(line));
    });
    (lines, ok)
}

fn for_each_line(data: &[u8], mut f: impl FnMut(usize, &[u8])) {
    let mut at = 0;
    while at < data.len() {
        let end = memchr::memchr(b'\n', &data[at..]).map_or(data.len(), |k| at + k);
        f(at, &data[at..end]);
        at = end + 1;
    }
}

/// ingestor's row builder over every line, one reused batch (as its scan-only bench does).
fn ours(data: &[u8]) -> (u64, u64) {
    let mut builder = Builder::new(SQLITE_MAX_VALUE);
    let mut batch = Batch::with_limits(BATCH_LIMITS);
    let (mut lines, mut ok) = (0, 0);
    for_each_line(data, |offset, bytes| {
        builder.push(
            &mut batch,
            &Line::Text {
                bytes,
                offset: offset as u64,
            },
        );
        if batch.is_full(BATCH_LIMITS) {
            (lines, ok) = (lines + batch.lines, ok + batch.rows.len() as u64);
            batch.clear(BATCH_LIMITS);
        }
    });
    (lines + batch.lines, ok + batch.rows.len() as u64)
}

/// As `ours`, over a read-only mapping of the file instead of a copy in memory: what the
/// scanner would cost without `read(2)` (the pages are faulted in as it goes).
fn ours_mmap(path: &str) -> (u64, u64) {
    use std::os::fd::AsRawFd;
    let file = File::open(path).expect("open the input");
    let len = file.metadata().expect("stat the input").len() as usize;
    if len == 0 {
        return (0, 0);
    }
    // SAFETY: a private read-only mapping of a file nobody truncates while this runs (a file
    // cut while mapped would end the process with SIGBUS: why ingestor itself reads).
    let data = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        );
        assert!(p != libc::MAP_FAILED, "mmap failed");
        libc::madvise(p, len, libc::MADV_SEQUENTIAL);
        std::slice::from_raw_parts(p as *const u8, len)
    };
    ours(data)
}

/// `read(2)` of the whole file into a reused buffer of ingestor's size, nothing else: the
/// kernel's copy alone.
fn read_only(path: &str) -> (u64, u64) {
    let mut file = File::open(path).expect("open the input");
    let mut buf = vec![0u8; READ_BUFFER];
    while file.read(&mut buf).expect("read the input") > 0 {}
    (0, 0)
}

/// ingestor's scan-only work as its `ceiling` bench measures it: the file read by its
/// `LineReader` (`read(2)`, framing), every line through the row builder.
fn ours_read(path: &str) -> (u64, u64) {
    let file = File::open(path).expect("open the input");
    let mut reader = LineReader::new(file, 0, READ_BUFFER, SQLITE_MAX_VALUE);
    let mut builder = Builder::new(SQLITE_MAX_VALUE);
    let mut batch = Batch::with_limits(BATCH_LIMITS);
    let (mut lines, mut ok) = (0, 0);
    while let Some(line) = reader.next_line(Framing::ToEof).expect("read the input") {
        builder.push(&mut batch, &line);
        if batch.is_full(BATCH_LIMITS) {
            (lines, ok) = (lines + batch.lines, ok + batch.rows.len() as u64);
            batch.clear(BATCH_LIMITS);
        }
    }
    (lines + batch.lines, ok + batch.rows.len() as u64)
}
