//! Input sources: opening them, recognising one seen before, and deciding
//! where to start reading.
//!
//! A file is recognised by content rather than by name or inode: resuming at
//! a stored offset is safe only if the bytes before it are the ones that were
//! ingested, so the stored fingerprint is the file's first bytes plus the
//! bytes just before the offset (as Fluent Bit's `offset_marker` does). A copy
//! or restore of the same file resumes; a rewritten file starts over.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rusqlite::Connection;

use crate::db::{self, SourceRow};
use crate::exit::UsageError;
use crate::input::reader::{Pulled, Source};
use crate::report::Log;
use crate::sys::file_id::FileId;

/// How many of a file's first bytes identify it.
pub const HEAD_LEN: usize = 64;

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

pub enum Input {
    File(File),
    Stdin(Stdin),
}

impl Source for Input {
    fn pull(&mut self, buf: &mut [u8]) -> io::Result<Pulled> {
        match self {
            Input::File(f) => f.pull(buf),
            Input::Stdin(s) => s.pull(buf),
        }
    }
}

impl Input {
    /// Whether a pipe has been closed by its writer (files never end).
    pub fn closed(&self) -> bool {
        matches!(self, Input::Stdin(s) if s.closed)
    }

    /// Makes a pipe report [`Pulled::Quiet`] once caught up; `None`: wait
    /// for input forever.
    pub fn set_catch_up(&mut self, catch_up: Option<CatchUp>) {
        if let Input::Stdin(s) = self {
            s.catch_up = catch_up;
        }
    }
}

/// Standard input, read straight from file descriptor 0 once it is known to
/// be readable: a caught-up pipe is then noticed ([`Pulled::Quiet`], see
/// [`CatchUp`]), and a stop request ends the wait ([`Pulled::Interrupted`]).
///
/// Never through `std::io::stdin()`: its buffer would take more than was
/// asked for and keep the rest where the readiness wait cannot see it, so
/// lines would sit there until the writer wrote again.
pub struct Stdin {
    catch_up: Option<CatchUp>,
    closed: bool,
}

/// When a pipe counts as caught up: its reader has spent `wait` waiting for
/// input within the last `2 × wait`, so the producer, not ingestion, sets the
/// pace. Waiting is counted across reads, not only as one unbroken silence,
/// so a producer that writes a line every few milliseconds is caught up too
/// (one silence of `wait` would never come), while a backlog poured in faster
/// than it is ingested (`cat big.jsonl |`) is not: the reader then waits on
/// the writing thread, not on the pipe.
///
/// A backlog producer can still pause: descheduled on a busy machine, it
/// left a reader waiting for a quarter of a second in a measured run, which
/// then followed the remaining 90% of a 1 GB file in live mode at a third of
/// the speed. So, for the end of a historical phase ([`CatchUp::phase`]), a
/// pipe that delivered [`BACKLOG_RATE`] or more in a window is not caught up
/// until [`BACKLOG_HOLD`] after it: no agent's stream comes near that rate.
pub struct CatchUp {
    wait: Duration,
    hold: Duration,
    window: Instant,
    waited: Duration,
    bytes: u64,
    /// When the last window that delivered a backlog ended.
    poured: Option<Instant>,
}

/// Input rate that marks a backlog being poured rather than a live stream.
pub const BACKLOG_RATE: u64 = 16 << 20;

/// How long after a backlog a pipe cannot count as caught up.
pub const BACKLOG_HOLD: Duration = Duration::from_secs(2);

impl CatchUp {
    /// For the end of a historical phase: caught up after `wait`, and not
    /// within [`BACKLOG_HOLD`] of a backlog.
    pub fn phase(wait: Duration) -> CatchUp {
        CatchUp::new(wait, BACKLOG_HOLD)
    }

    /// For live mode, where being caught up means committing now: after
    /// `wait`, whatever came before.
    pub fn poll(wait: Duration) -> CatchUp {
        CatchUp::new(wait, Duration::ZERO)
    }

    fn new(wait: Duration, hold: Duration) -> CatchUp {
        CatchUp {
            wait,
            hold,
            window: Instant::now(),
            waited: Duration::ZERO,
            bytes: 0,
            poured: None,
        }
    }

    /// Starts a new window once the current one is `2 × wait` old, or has
    /// been reported caught up (else the next read would not wait at all).
    fn roll(&mut self) {
        let age = self.window.elapsed();
        if self.left().is_zero() || age >= 2 * self.wait {
            if self.bytes as f64 >= BACKLOG_RATE as f64 * age.as_secs_f64() {
                self.poured = Some(Instant::now());
            }
            self.window = Instant::now();
            self.waited = Duration::ZERO;
            self.bytes = 0;
        }
    }

    /// How long the next wait may last before the pipe counts as caught up.
    fn left(&self) -> Duration {
        self.wait.saturating_sub(self.waited)
    }

    /// Whether the pipe has waited long enough, and not just after a backlog.
    fn caught_up(&self) -> bool {
        let age = self.window.elapsed().as_secs_f64();
        self.left().is_zero()
            && self.poured.is_none_or(|t| t.elapsed() >= self.hold)
            && (self.hold.is_zero() || (self.bytes as f64) < BACKLOG_RATE as f64 * age)
    }
}

/// How often a waiting read looks at the stop flag. A signal interrupts the
/// wait at once; this bounds the one that lands just before it begins.
const POLL_SLICE: Duration = Duration::from_millis(100);

impl Stdin {
    fn new() -> Stdin {
        Stdin {
            catch_up: None,
            closed: false,
        }
    }

    fn pull(&mut self, buf: &mut [u8]) -> io::Result<Pulled> {
        if let Some(c) = &mut self.catch_up {
            c.roll();
        }
        loop {
            if crate::sys::signals::stop_requested() {
                return Ok(Pulled::Interrupted);
            }
            // Past `wait` but held after a backlog: look again every slice.
            let slice = match &self.catch_up {
                Some(c) if !c.left().is_zero() => c.left().min(POLL_SLICE),
                _ => POLL_SLICE,
            };
            let waiting = Instant::now();
            let ready = readiness::wait(libc::STDIN_FILENO, slice)?;
            if let Some(c) = &mut self.catch_up {
                c.waited += waiting.elapsed();
            }
            match ready {
                readiness::Ready::Readable => {}
                readiness::Ready::Interrupted => return Ok(Pulled::Interrupted),
                readiness::Ready::TimedOut => {
                    if self.catch_up.as_ref().is_some_and(CatchUp::caught_up) {
                        return Ok(Pulled::Quiet);
                    }
                    continue;
                }
            }
            // Readable, closed or in error: read() tells which.
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the
            // duration of the call, and fd 0 is only read here.
            let n = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
            if let Ok(n) = usize::try_from(n) {
                self.closed |= n == 0;
                if let Some(c) = &mut self.catch_up {
                    c.bytes += n as u64;
                }
                return Ok(Pulled::Bytes(n));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => return Ok(Pulled::Interrupted),
                // A descriptor left non-blocking by whoever shares it, woken
                // for bytes another reader took: wait again.
                io::ErrorKind::WouldBlock => continue,
                _ => return Err(err),
            }
        }
    }
}

/// Waiting until a descriptor can be read, for at most a given time.
mod readiness {
    use std::io;
    use std::time::Duration;

    pub enum Ready {
        /// Readable, at its end, or in error: a read will not block.
        Readable,
        TimedOut,
        /// A signal arrived during the wait.
        Interrupted,
    }

    fn outcome(rc: libc::c_int) -> io::Result<Ready> {
        if rc > 0 {
            return Ok(Ready::Readable);
        }
        if rc == 0 {
            return Ok(Ready::TimedOut);
        }
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            Ok(Ready::Interrupted)
        } else {
            Err(err)
        }
    }

    /// poll(2), which Linux supports on every kind of descriptor.
    #[cfg(not(target_os = "macos"))]
    pub fn wait(fd: libc::c_int, timeout: Duration) -> io::Result<Ready> {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // Rounded up: a timeout below 1 ms must not become a busy loop.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `pfd` is one valid, initialised pollfd, and nfds is 1.
        outcome(unsafe { libc::poll(&mut pfd, 1, ms) })
    }

    /// select(2): Apple's poll(2) does not support devices (it reports
    /// POLLNVAL for a terminal, and the read would then block), select does.
    #[cfg(target_os = "macos")]
    pub fn wait(fd: libc::c_int, timeout: Duration) -> io::Result<Ready> {
        // SAFETY: an all-zero fd_set is a valid empty set (FD_ZERO's result).
        let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid fd_set and `fd` (0) is below FD_SETSIZE.
        unsafe { libc::FD_SET(fd, &mut set) };
        let mut tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: `set` and `tv` are valid for the call; the unused sets are
        // null, which select accepts.
        let rc = unsafe {
            libc::select(
                fd + 1,
                &mut set,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut tv,
            )
        };
        outcome(rc)
    }
}

/// An opened source, positioned where ingestion continues.
pub struct Opened {
    pub input: Input,
    /// Its source: stored, or new (`id` 0), to be stored with its first
    /// lines (see `db::writer`).
    pub row: SourceRow,
    /// Bytes left to read when known (files), for progress and rates.
    pub remaining: Option<u64>,
    /// Why the stored position was not used as it was, to tell the user.
    pub restarted: Option<String>,
    /// The input is the file the path named before a rotation, found again
    /// to be finished: once it is, the file now at the path follows as a new
    /// source (see [`successor`]).
    pub rotated: bool,
}

/// Where a run starts in its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Continue after the last committed line if the file is the same one.
    Resume,
    /// Start at this offset, as a new source, unless it is exactly where the
    /// source at this path stopped (the hand-over to live mode): then resume.
    At(u64),
}

/// An input opened but not yet matched against the database: opening it
/// first means a missing file fails before any database is created.
pub struct Unresolved {
    input: Input,
    file: Option<(PathBuf, std::fs::Metadata, Vec<u8>)>,
}

pub fn open_input(input: Option<&Path>) -> Result<Unresolved> {
    let Some(path) = input else {
        return Ok(Unresolved {
            input: Input::Stdin(Stdin::new()),
            file: None,
        });
    };
    let (file, meta, head) =
        open_file(path).with_context(|| format!("cannot open input {}", path.display()))?;
    if meta.is_dir() {
        anyhow::bail!("input {} is a folder, not a file", path.display());
    }
    if head.starts_with(SQLITE_HEADER) {
        // Ingested, it would be thousands of bad lines: the user most likely
        // swapped the two paths.
        return Err(anyhow::Error::new(UsageError(format!(
            "input {} is a SQLite database, not a JSONL log: did you swap --input and --db?",
            path.display()
        ))));
    }
    Ok(Unresolved {
        input: Input::File(file),
        file: Some((path.to_owned(), meta, head)),
    })
}

fn open_file(path: &Path) -> io::Result<(File, std::fs::Metadata, Vec<u8>)> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    let head = if meta.is_file() {
        read_at(&file, 0, HEAD_LEN)?
    } else {
        Vec::new()
    };
    Ok((file, meta, head))
}

impl Unresolved {
    /// Finds the source in the database, or makes a new one, and positions
    /// the input.
    pub fn resolve(self, conn: &Connection, start: Start) -> Result<Opened> {
        let (Input::File(file), Some((path, meta, head))) = (self.input, self.file) else {
            let row = new_source("-".into(), None, Vec::new(), 0);
            return Ok(Opened {
                input: Input::Stdin(Stdin::new()),
                row,
                remaining: None,
                restarted: None,
                rotated: false,
            });
        };
        let name = canonical(&path);
        let last = db::last_source(conn, &name)?;
        let mut opened = Opened::of_file(file);
        let Input::File(file) = &opened.input else {
            unreachable!()
        };
        match (start, last) {
            (Start::Resume, Some(last)) => opened.continue_from(&path, &meta, head, last)?,
            (Start::At(offset), Some(last)) if last.offset == offset => {
                opened.continue_from(&path, &meta, head, last)?
            }
            (Start::Resume, None) => opened.row = new_source(name, Some(&meta), head, 0),
            (Start::At(offset), _) => {
                check_start_offset(file, meta.len(), offset, &path)?;
                opened.row = new_source(name, Some(&meta), head, offset);
                // Unlike a source from 0, which a later run would start
                // from 0 anyway, one from a chosen offset is stored at once:
                // only its row says to skip what comes before. Its tail is
                // empty, so it never matches a copy on its first bytes alone
                // (see `find_previous`).
                if offset > 0 {
                    opened.row.id = db::insert_source(conn, &opened.row)?;
                }
            }
        }
        let Input::File(file) = &mut opened.input else {
            unreachable!()
        };
        file.seek(SeekFrom::Start(opened.row.offset))?;
        let len = file.metadata()?.len();
        opened.remaining = Some(len.saturating_sub(opened.row.offset));
        Ok(opened)
    }
}

impl Opened {
    /// A file not positioned yet (`row` is set by [`Unresolved::resolve`]).
    fn of_file(file: File) -> Opened {
        Opened {
            input: Input::File(file),
            row: SourceRow::default(),
            remaining: None,
            restarted: None,
            rotated: false,
        }
    }

    /// Continues source `last` in the file at `path` if it is the same file;
    /// else in the file the path named before, if a rotation left it in the
    /// same folder; else starts the file at `path` over as a new source.
    fn continue_from(
        &mut self,
        path: &Path,
        meta: &std::fs::Metadata,
        head: Vec<u8>,
        mut last: SourceRow,
    ) -> Result<()> {
        let Input::File(file) = &self.input else {
            unreachable!()
        };
        let Some(why) = mismatch(file, meta.len(), &head, &last)? else {
            if head.len() > last.head.len() {
                // Recorded while the file was shorter than its fingerprint (an
                // earlier release stored the first bytes seen then, none for a
                // file just cut): the same file, checked above, completes it, and
                // the next commit stores it.
                last.head = head;
            }
            self.row = last;
            return Ok(());
        };
        if let Some(previous) = find_previous(path, &last, FileId::of(meta), None) {
            self.restarted = Some(format!(
                "{} no longer holds what was ingested from it; finishing that from {} \
                 (offset {}) first",
                path.display(),
                previous.path.display(),
                last.offset
            ));
            self.input = Input::File(previous.file);
            self.row = last;
            self.rotated = true;
            return Ok(());
        }
        let lost = if last.offset > 0 {
            "; no rotated file or copy with the rest of the content ingested from it is in \
             its folder (lines past that position, if any, were not read)"
        } else {
            ""
        };
        self.restarted = Some(format!(
            "{} {why}{lost}; ingesting it as a new source from offset 0",
            path.display()
        ));
        // The first bytes again, now: `head` may have been read before the file
        // was cut (found above by its tail), and a new source recorded with the
        // old content's head would take that content's copy for its own.
        let head = read_at(file, 0, HEAD_LEN)?;
        self.row = new_source(canonical(path), Some(meta), head, 0);
        Ok(())
    }
}

/// A file found to hold the content ingested from a path before: the file
/// itself, renamed, or a copy of it.
pub struct Previous {
    pub file: File,
    pub path: PathBuf,
}

/// Where the content ingested as `last` went, when the file at `path` no
/// longer has it (`not` is that file): the same file
/// renamed (logrotate's default), or else a copy (logrotate's copytruncate)
/// beside it, the longest if several match. A match has the same first bytes
/// and the same bytes just before `last.offset`, so reading it on from there
/// is reading on in the content ingested.
///
/// Content alone cannot tell a copy from an unrelated file that merely
/// starts the same (an archive of the whole log, say), so a copy must also
/// be named as rotation names them (starting with the file's stem, as in
/// `x.jsonl.1` or `x-20261127.jsonl`), and, when `copied_after` is known,
/// have been written since then.
pub fn find_previous(
    path: &Path,
    last: &SourceRow,
    not: FileId,
    copied_after: Option<std::time::SystemTime>,
) -> Option<Previous> {
    let stem = path
        .file_stem()
        .map(|s| s.as_encoded_bytes())
        .unwrap_or_default();
    let named_as_copy =
        |name: &std::ffi::OsStr| !stem.is_empty() && name.as_encoded_bytes().starts_with(stem);
    // File times are coarse on some file systems (HFS+: 1 s).
    let recent = |m: &std::fs::Metadata| match (copied_after, m.modified()) {
        (Some(after), Ok(at)) => at + Duration::from_secs(2) >= after,
        _ => true,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // The renamed file itself beats any copy, then the longest copy.
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct Rank {
        same_file: bool,
        len: u64,
    }
    let mut best: Option<(Rank, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let id = FileId::of(&meta);
        if !meta.is_file() || id == not || meta.len() < last.offset {
            continue;
        }
        let rank = Rank {
            same_file: last.file == Some(id),
            len: meta.len(),
        };
        // Both fingerprints, unless nothing was read yet (offset 0).
        let copy_like = !last.head.is_empty()
            && (!last.tail.is_empty() || last.offset == 0)
            && named_as_copy(&entry.file_name())
            && recent(&meta);
        if !rank.same_file && !copy_like {
            continue;
        }
        if best.as_ref().is_some_and(|(b, _)| *b >= rank) {
            continue;
        }
        let Ok(file) = File::open(entry.path()) else {
            continue;
        };
        let Ok(head) = read_at(&file, 0, HEAD_LEN) else {
            continue;
        };
        if matches!(mismatch(&file, meta.len(), &head, last), Ok(None)) {
            best = Some((rank, entry.path()));
        }
    }
    let (_, path) = best?;
    Some(Previous {
        file: File::open(&path).ok()?,
        path,
    })
}

/// Opens the file now at a followed path as a new source from offset 0 (its
/// row is not stored yet: `id` is 0).
pub fn successor(path: &Path) -> io::Result<(File, SourceRow)> {
    let file = File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let row = row_from_start(path, &file)?;
    Ok((file, row))
}

/// A new source for `file` (at `path`) from offset 0, not stored yet.
pub fn row_from_start(path: &Path, file: &File) -> io::Result<SourceRow> {
    let meta = file.metadata()?;
    Ok(SourceRow {
        id: 0,
        path: canonical(path),
        file: Some(FileId::of(&meta)),
        head: read_at(file, 0, HEAD_LEN)?,
        offset: 0,
        tail: Vec::new(),
    })
}

/// Whether `file` no longer holds, just before `offset`, the bytes `tail`
/// read there, or is shorter than the `read_to` bytes already read: it was
/// truncated (copy-truncate) or rewritten in place.
pub fn cut_before(
    file: &File,
    len: u64,
    read_to: u64,
    offset: u64,
    tail: &[u8],
) -> io::Result<bool> {
    if len < read_to {
        return Ok(true);
    }
    let from = offset - tail.len() as u64;
    Ok(!tail.is_empty() && read_at(file, from, tail.len())? != tail)
}

/// Waits for a followed path to exist (`tail -F` does the same); returns
/// false if a stop signal came first.
pub fn wait_for(path: &Path, log: &Log) -> bool {
    let mut told = false;
    while !path.exists() {
        if crate::sys::signals::stop_requested() {
            return false;
        }
        if !told {
            log.info(format_args!("waiting for {} to appear", path.display()));
            told = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// The offset just past the file's last complete line: where
/// `--start-at-end` starts, so that a line being written is taken whole.
pub fn end_of_lines(path: &Path) -> Result<u64> {
    let file = File::open(path).with_context(|| format!("cannot open input {}", path.display()))?;
    let mut end = file.metadata()?.len();
    while end > 0 {
        let from = end.saturating_sub(64 << 10);
        let chunk = read_at(&file, from, (end - from) as usize)?;
        if let Some(nl) = memchr::memrchr(b'\n', &chunk) {
            return Ok(from + nl as u64 + 1);
        }
        end = from;
    }
    Ok(0)
}

/// A start offset must be a line start inside the file.
fn check_start_offset(file: &File, len: u64, offset: u64, path: &Path) -> Result<()> {
    if offset > len {
        anyhow::bail!(
            "--start-offset {offset} is beyond the end of {} ({len} bytes)",
            path.display()
        );
    }
    if offset > 0 && read_at(file, offset - 1, 1)? != b"\n" {
        anyhow::bail!(
            "--start-offset {offset} is not at the start of a line of {}",
            path.display()
        );
    }
    Ok(())
}

/// Why `last` is not a position in this file, if it is not.
fn mismatch(file: &File, len: u64, head: &[u8], last: &SourceRow) -> Result<Option<String>> {
    if len < last.offset {
        return Ok(Some(format!(
            "is shorter ({len} bytes) than the position already ingested ({})",
            last.offset
        )));
    }
    let stored_head = &last.head[..last.head.len().min(head.len())];
    if head[..stored_head.len()] != *stored_head {
        return Ok(Some(
            "no longer starts with the bytes ingested before".into(),
        ));
    }
    let tail_start = last.offset - last.tail.len() as u64;
    if read_at(file, tail_start, last.tail.len())? != last.tail {
        return Ok(Some(format!(
            "differs from what was ingested before offset {}",
            last.offset
        )));
    }
    Ok(None)
}

/// A new source from `offset`, not stored yet.
fn new_source(
    path: String,
    meta: Option<&std::fs::Metadata>,
    head: Vec<u8>,
    offset: u64,
) -> SourceRow {
    SourceRow {
        id: 0,
        path,
        file: meta.map(FileId::of),
        head,
        offset,
        tail: Vec::new(),
    }
}

pub fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// The absolute path a source is recorded (and locked) under.
pub fn canonical(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| PathBuf::from(path))
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file cut between the read of its first bytes and the check of its tail (a
    /// copy-truncate at that instant) starts over as a new source whose fingerprint is what
    /// the file holds now, not the first bytes read before the cut: with those, the new
    /// source took the old content's copy for its own and ingested it again (found by the
    /// kill -9 campaign).
    #[test]
    fn a_file_cut_while_it_is_checked_starts_over_with_its_head_as_it_is_now() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.jsonl");
        let old =
            "{\"event\":\"old\",\"line\":\"a line of the content the file held before the cut\"}\n";
        let new = "{\"event\":\"new\"}\n";
        std::fs::write(&path, new).expect("write");
        let last = SourceRow {
            id: 1,
            path: canonical(&path),
            file: None,
            head: old.as_bytes()[..HEAD_LEN].to_vec(),
            offset: old.len() as u64,
            tail: old.as_bytes()[old.len() - 8..].to_vec(),
        };
        let (file, meta, _) = open_file(&path).expect("open");
        let mut opened = Opened::of_file(file);
        // The first bytes as they were read before the cut.
        let stale_head = last.head.clone();
        opened
            .continue_from(&path, &meta, stale_head, last)
            .expect("continue_from");
        assert_eq!(opened.row.offset, 0);
        assert_eq!(opened.row.head, new.as_bytes());
        assert!(!opened.rotated);
    }
}
