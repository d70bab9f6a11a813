//! Line framing over any byte source, with bounded memory.
//!
//! Modelled on grep-searcher's line buffer: one buffer, read into in place,
//! that grows (doubling) while a line does not fit and shrinks back to its
//! initial size once the long line has gone. A line longer than `max_line`
//! is never held whole: its first [`LONG_LINE_HEAD`] bytes are kept and the
//! rest is counted and dropped, so a 10 GB line costs 1 MiB.
//!
//! Reading ends with a typed outcome ([`Next`]): a line, the end of what the
//! source holds for now, a quiet pipe, or a stop request. A stop is looked at
//! before every read, so it takes effect within one buffer's worth of input
//! whatever the input is, even inside a line that never ends.

use std::io::{self, Read};

use memchr::memchr;

use super::source::HEAD_LEN;

/// How much of an over-long line is kept for `bad_lines.raw`.
pub const LONG_LINE_HEAD: usize = 1 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Smallest line buffer: room for the kept tail plus a short line.
const MIN_BUFFER: usize = 4 * TAIL_KEEP;

/// How many bytes before the current offset stay readable through `tail`.
pub const TAIL_KEEP: usize = 64;

/// What happens to an unterminated last line at end of input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// One-shot run: the input is complete, a last line without `\n` counts.
    ToEof,
    /// Following a growing source: a writer may be half-way through the last
    /// line, so it is taken only once its newline arrives.
    Follow,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A complete line without its terminator (`\n` or `\r\n`). A blank line
    /// over the limit comes as an empty one: blank either way, and counted so.
    Text { bytes: &'a [u8], offset: u64 },
    /// A line over the limit: its first bytes and its full length.
    TooLong {
        head: &'a [u8],
        len: u64,
        offset: u64,
    },
}

/// What [`LineReader::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<'a> {
    Line(Line<'a>),
    /// The source has no more bytes for now: the end of the input in a
    /// one-shot run, the end of what a followed file holds so far, or a pipe
    /// closed by its writer.
    AtEnd,
    /// Nothing arrived within the source's wait (a quiet pipe).
    Idle,
    /// A stop was requested (SIGINT, SIGTERM, SIGHUP). Lines already read
    /// were handed out first; [`LineReader::offset`] is where to resume.
    Stopped,
}

/// What one read from a [`Source`] gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pulled {
    /// This many bytes; 0 at the end of the input (for now).
    Bytes(usize),
    /// Nothing arrived within the source's wait.
    Quiet,
    /// A signal interrupted the read or the wait: the reader looks at the
    /// stop flag and reads again if no stop was requested.
    Interrupted,
}

/// Where a [`LineReader`] gets its bytes: anything readable, or a source that
/// can also give up waiting (standard input, see `source::Stdin`).
pub trait Source {
    fn pull(&mut self, buf: &mut [u8]) -> io::Result<Pulled>;
}

impl<T: Read> Source for T {
    fn pull(&mut self, buf: &mut [u8]) -> io::Result<Pulled> {
        match self.read(buf) {
            Ok(n) => Ok(Pulled::Bytes(n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Pulled::Interrupted),
            Err(e) => Err(e),
        }
    }
}

pub struct LineReader<R> {
    src: R,
    /// `buf[start..end]` holds unconsumed input; `buf.len()` is the capacity
    /// in use (kept initialised so reads go straight into it).
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// `buf[start..scanned]` is known to hold no newline.
    scanned: usize,
    /// Source offset of `buf[0]`.
    base: u64,
    initial: usize,
    max_line: usize,
    bom_pending: bool,
    /// The first bytes the source is known to start with, checked as they
    /// are read (see [`LineReader::expect_head`]); empty once checked.
    head: Vec<u8>,
    /// The source's first bytes as read (see [`LineReader::first_bytes`]).
    first: Vec<u8>,
    long: LongLine,
    /// Whether a stop was requested; [`crate::sys::signals::stop_requested`]
    /// outside unit tests.
    stop: fn() -> bool,
}

/// Why a line could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The source failed (an I/O error of the file or the pipe).
    Io(io::Error),
    /// The source no longer starts with the bytes it started with when it
    /// was opened: it was truncated and rewritten in between (a
    /// copytruncate). The caller reads it again as a new file.
    Rewritten,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => e.fmt(f),
            ReadError::Rewritten => {
                f.write_str("the input was truncated and rewritten while it was being opened")
            }
        }
    }
}

impl std::error::Error for ReadError {
    // `Io` shows its error as its own text: its cause is the error's cause.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => e.source(),
            ReadError::Rewritten => None,
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// An over-limit line being skipped: its first bytes and its length so far.
#[derive(Default)]
struct LongLine {
    head: Vec<u8>,
    len: u64,
    offset: u64,
    active: bool,
    ends_in_cr: bool,
    /// Every byte so far is JSON white space: the line is blank, however
    /// long, and is skipped as blank lines are.
    blank: bool,
    /// The source bytes just before the line: the resume fingerprint while
    /// the line's own bytes stream past (see [`LineReader::tail`]).
    tail: Vec<u8>,
}

impl LongLine {
    fn begin(&mut self, offset: u64, tail: &[u8]) {
        self.head.clear();
        self.len = 0;
        self.offset = offset;
        self.active = true;
        self.ends_in_cr = false;
        self.blank = true;
        self.tail.clear();
        self.tail.extend_from_slice(tail);
    }

    fn absorb(&mut self, bytes: &[u8]) {
        let room = LONG_LINE_HEAD.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.len += bytes.len() as u64;
        self.blank = self.blank && crate::scan::envelope::is_blank(bytes);
        if let Some(&last) = bytes.last() {
            self.ends_in_cr = last == b'\r';
        }
    }

    fn finish(&mut self) -> Line<'_> {
        self.active = false;
        if self.blank {
            return Line::Text {
                bytes: &self.head[..0],
                offset: self.offset,
            };
        }
        if self.ends_in_cr {
            self.len -= 1;
            self.head
                .truncate(self.len.min(LONG_LINE_HEAD as u64) as usize);
        }
        Line::TooLong {
            head: &self.head,
            len: self.len,
            offset: self.offset,
        }
    }
}

impl<R> LineReader<R> {
    /// `offset` is where `src` is positioned; a BOM is skipped only at 0.
    pub fn new(src: R, offset: u64, initial: usize, max_line: usize) -> Self {
        LineReader {
            src,
            buf: vec![0; initial.max(MIN_BUFFER)],
            start: 0,
            end: 0,
            scanned: 0,
            base: offset,
            initial: initial.max(MIN_BUFFER),
            max_line,
            bom_pending: offset == 0,
            head: Vec::new(),
            first: Vec::new(),
            long: LongLine::default(),
            stop: crate::sys::signals::stop_requested,
        }
    }

    /// The first bytes still to be checked (see [`LineReader::expect_head`]).
    pub fn expected_head(&self) -> &[u8] {
        &self.head
    }

    /// The source's first [`HEAD_LEN`] bytes, or as many as have been read, when reading
    /// began at its offset 0 (empty otherwise): the fingerprint its row stores, which is
    /// short when the file was shorter than that as the source was recorded (a file just
    /// truncated by a copy-truncate is empty), and completed from these.
    pub fn first_bytes(&self) -> &[u8] {
        &self.first
    }

    /// Resuming past the source's start, takes `head` (its first bytes, checked
    /// when it was opened) as [`LineReader::first_bytes`], which it will not read.
    pub fn seed_first(&mut self, head: &[u8]) {
        if self.base > 0 && self.end == 0 {
            self.first.clear();
            self.first
                .extend_from_slice(&head[..head.len().min(HEAD_LEN)]);
        }
    }

    /// Reading from offset 0, fails with [`ReadError::Rewritten`] unless the bytes read
    /// start with `head` (the first bytes seen when the source was recorded):
    /// a file cut between then and now must not be read as if it were the
    /// one recorded.
    pub fn expect_head(&mut self, head: &[u8]) {
        if self.base == 0 && self.end == 0 {
            self.head.clear();
            self.head.extend_from_slice(head);
        }
    }

    /// Makes `tail` (the bytes just before the start offset, as stored with
    /// a committed position) the fingerprint until lines have been read.
    pub fn seed_tail(&mut self, tail: &[u8]) {
        let n = tail.len().min(TAIL_KEEP).min(self.base as usize);
        if self.end == 0 && n > 0 {
            let tail = &tail[tail.len() - n..];
            self.buf[..n].copy_from_slice(tail);
            self.start = n;
            self.end = n;
            self.scanned = n;
            self.base -= n as u64;
            self.bom_pending = false;
        }
    }

    /// Source offset just past the last line returned (also while an
    /// over-limit line streams past: it starts there).
    pub fn offset(&self) -> u64 {
        if self.long.active {
            return self.long.offset;
        }
        self.base + self.start as u64
    }

    /// Up to [`TAIL_KEEP`] source bytes just before `offset()` (fewer only
    /// when less than that has been read since the reader started): the fingerprint of a resume point.
    pub fn tail(&self) -> &[u8] {
        if self.long.active {
            return &self.long.tail;
        }
        &self.buf[self.start.saturating_sub(TAIL_KEEP)..self.start]
    }

    /// Bytes read past `offset()` for an incomplete line (a follower's
    /// backlog), counting those of an over-limit line already let go.
    pub fn pending(&self) -> usize {
        let absorbed = if self.long.active { self.long.len } else { 0 };
        (absorbed as usize).saturating_add(self.end - self.start)
    }

    /// Memory held by the line buffer.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    pub fn get_ref(&self) -> &R {
        &self.src
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.src
    }

    /// Replaces the stop check (unit tests: the real flag is process-wide).
    #[cfg(test)]
    fn set_stop(&mut self, stop: fn() -> bool) {
        self.stop = stop;
    }

    /// The line in `buf[start..end]`, without a final `\r`.
    fn framed(&self, start: usize, end: usize, offset: u64) -> Line<'_> {
        let mut bytes = &self.buf[start..end];
        if let [rest @ .., b'\r'] = bytes {
            bytes = rest;
        }
        if bytes.len() > self.max_line {
            if crate::scan::envelope::is_blank(bytes) {
                return Line::Text {
                    bytes: &bytes[..0],
                    offset,
                };
            }
            return Line::TooLong {
                head: &bytes[..bytes.len().min(LONG_LINE_HEAD)],
                len: bytes.len() as u64,
                offset,
            };
        }
        Line::Text { bytes, offset }
    }

    fn at_end(&mut self, framing: Framing) -> Option<Line<'_>> {
        if framing == Framing::Follow {
            return None;
        }
        if self.long.active {
            return Some(self.long.finish());
        }
        if self.start == self.end {
            return None;
        }
        let (start, offset) = (self.start, self.base + self.start as u64);
        self.start = self.end;
        self.scanned = self.end;
        Some(self.framed(start, self.end, offset))
    }

    /// The unterminated line held at the end of a source that will not grow
    /// any more (rotated away or cut short), as a one-shot run would take it.
    /// Reads nothing: bytes arriving now belong to no line we have.
    pub fn take_partial(&mut self) -> Option<Line<'_>> {
        self.at_end(Framing::ToEof)
    }

    /// Continues with another source (the next file at a followed path, or
    /// the same one read again from the start), positioned at `offset`.
    pub fn restart(&mut self, src: R, offset: u64) {
        self.src = src;
        self.start = 0;
        self.end = 0;
        self.scanned = 0;
        self.base = offset;
        self.bom_pending = offset == 0;
        self.head.clear();
        self.first.clear();
        self.long.active = false;
        self.shrink();
    }

    /// Sets the size the buffer returns to between long lines (live mode
    /// rests smaller than a backfill) and returns any excess now.
    pub fn set_resting_size(&mut self, bytes: usize) {
        self.initial = bytes.max(MIN_BUFFER);
        self.shrink();
    }

    /// Gives back buffer memory above the resting size, if the unconsumed
    /// input fits in it.
    pub fn shrink(&mut self) {
        // Compaction keeps the last TAIL_KEEP consumed bytes: they fingerprint
        // the resume point (see `tail`).
        let keep = self.start.min(TAIL_KEEP);
        let from = self.start - keep;
        let live = self.end - from;
        if from > 0 && (self.end == self.buf.len() || self.buf.len() > self.initial || live == keep)
        {
            self.buf.copy_within(from..self.end, 0);
            self.base += from as u64;
            self.scanned -= from;
            self.start = keep;
            self.end = live;
        }
        if self.buf.len() > self.initial && self.end < self.initial {
            // The long line has gone: give its memory back.
            self.buf.truncate(self.initial);
            self.buf.shrink_to_fit();
        }
        if !self.long.active && self.long.head.capacity() > 0 {
            self.long.head = Vec::new();
        }
    }

    fn make_room(&mut self) {
        self.shrink();
        if self.end == self.buf.len() {
            let grown =
                (self.buf.len() * 2).min(self.max_line.saturating_add(2).max(self.buf.len() + 1));
            // A fresh zeroed allocation is mapped lazily: only the pages a
            // long line really fills become resident (resize would touch all).
            let mut bigger = vec![0; grown];
            bigger[..self.end].copy_from_slice(&self.buf[..self.end]);
            self.buf = bigger;
        }
    }
}

impl<R: Source> LineReader<R> {
    /// The next complete line, or why there is none: see [`Next`].
    pub fn next(&mut self, framing: Framing) -> Result<Next<'_>, ReadError> {
        loop {
            if let Some(nl) = memchr(b'\n', &self.buf[self.scanned..self.end]) {
                let nl = self.scanned + nl;
                let (start, offset) = (self.start, self.base + self.start as u64);
                self.start = nl + 1;
                self.scanned = self.start;
                if self.long.active {
                    self.long.absorb(&self.buf[start..nl]);
                    return Ok(Next::Line(self.long.finish()));
                }
                return Ok(Next::Line(self.framed(start, nl, offset)));
            }
            self.scanned = self.end;
            if self.long.active {
                self.long.absorb(&self.buf[self.start..self.end]);
                self.start = self.end;
            } else if self.end - self.start > self.max_line.saturating_add(1) {
                // Over the limit even if it ends in `\r`: stop holding it.
                let offset = self.base + self.start as u64;
                let tail = &self.buf[self.start.saturating_sub(TAIL_KEEP)..self.start];
                self.long.begin(offset, tail);
                self.long.absorb(&self.buf[self.start..self.end]);
                self.start = self.end;
                self.scanned = self.end;
            }
            // Complete lines already read have been handed out (a pipe's
            // cannot be read again); a stop now ends the reading, even in
            // the middle of a line that never ends.
            if (self.stop)() {
                return Ok(Next::Stopped);
            }
            match self.fill()? {
                Pulled::Bytes(0) => {
                    // A stop that came with the end (Ctrl-C ends a whole
                    // pipeline: the writer too) is still a stop.
                    let stopped = (self.stop)();
                    return Ok(match self.at_end(framing) {
                        Some(line) => Next::Line(line),
                        None if stopped => Next::Stopped,
                        None => Next::AtEnd,
                    });
                }
                Pulled::Bytes(_) | Pulled::Interrupted => {}
                Pulled::Quiet => return Ok(Next::Idle),
            }
        }
    }

    /// The next complete line, or `None` for any other outcome of
    /// [`LineReader::next`] (for callers that read files to their end).
    pub fn next_line(&mut self, framing: Framing) -> Result<Option<Line<'_>>, ReadError> {
        match self.next(framing)? {
            Next::Line(line) => Ok(Some(line)),
            Next::AtEnd | Next::Idle | Next::Stopped => Ok(None),
        }
    }

    /// Makes room and reads once.
    fn fill(&mut self) -> Result<Pulled, ReadError> {
        self.make_room();
        // A buffer grown for a long line is filled a resting size at a time:
        // its fresh pages then become resident only as far as the line
        // reaches, not as far as a backlog would fill them (a 2 MiB line in a
        // 4 MiB buffer, a 40 MiB one in 64 MiB).
        let limit = if self.buf.len() > self.initial {
            (self.end + self.initial).min(self.buf.len())
        } else {
            self.buf.len()
        };
        let n = match self.src.pull(&mut self.buf[self.end..limit])? {
            Pulled::Bytes(n) => n,
            other => return Ok(other),
        };
        self.end += n;
        if !self.head.is_empty() {
            // The bytes just read span source offsets [from, to).
            let to = self.base as usize + self.end;
            let from = to - n;
            let upto = to.min(self.head.len());
            let differs = from < upto
                && self.buf[from - self.base as usize..upto - self.base as usize]
                    != self.head[from..upto];
            if differs || (n == 0 && to < self.head.len()) {
                self.end -= n;
                return Err(ReadError::Rewritten);
            }
            if to >= self.head.len() {
                self.head.clear();
            }
        }
        let to = self.base as usize + self.end;
        if self.first.len() < HEAD_LEN && to - n == self.first.len() {
            let upto = to.min(HEAD_LEN) - self.base as usize;
            let from = self.end - n;
            self.first.extend_from_slice(&self.buf[from..upto]);
        }
        if self.bom_pending && (self.end >= BOM.len() || n == 0) {
            self.bom_pending = false;
            if self.buf[..self.end].starts_with(BOM) {
                self.start = BOM.len();
                self.scanned = self.start;
            }
        }
        Ok(Pulled::Bytes(n))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// A source that hands out at most `chunk` bytes per read, as pipes do.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.data.len().min(self.chunk).min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// Remembers the largest read asked of it.
    struct Greedy<'a> {
        data: &'a [u8],
        largest_ask: usize,
    }

    impl Read for Greedy<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.largest_ask = self.largest_ask.max(out.len());
            let n = self.data.len().min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_long_line_is_read_a_resting_size_at_a_time() {
        let mut data = vec![b'x'; 100_000];
        data.push(b'\n');
        data.extend(std::iter::repeat_n(b"{}\n", 100_000).flatten());
        let mut r = LineReader::new(
            Greedy {
                data: &data,
                largest_ask: 0,
            },
            0,
            4096,
            1 << 20,
        );
        let Ok(Some(Line::Text { bytes, .. })) = r.next_line(Framing::ToEof) else {
            panic!("no long line");
        };
        assert_eq!(bytes.len(), 100_000);
        assert!(r.capacity() >= 100_000);
        // The buffer grew to 128 KiB, but no read asked for more than the
        // resting size, though 300 KB more were there to be read.
        assert_eq!(r.get_mut().largest_ask, 4096);
    }

    /// The source's first bytes are kept as read, in any pieces, up to HEAD_LEN; not when
    /// reading began past its start; and afresh after a restart.
    #[test]
    fn first_bytes_are_the_sources_start_as_read() {
        let data: Vec<u8> = (0..40)
            .flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
            .collect();
        for chunk in [1, 3, 7, 64, 1000] {
            let mut r = LineReader::new(Trickle { data: &data, chunk }, 0, 256, 1 << 20);
            assert!(r.first_bytes().is_empty());
            assert!(matches!(r.next_line(Framing::Follow), Ok(Some(_))));
            let seen = r.first_bytes().len();
            assert_eq!(r.first_bytes(), &data[..seen], "chunk {chunk}");
            while let Ok(Some(_)) = r.next_line(Framing::Follow) {}
            assert_eq!(r.first_bytes(), &data[..HEAD_LEN], "chunk {chunk}");
        }
        let from = 3 * 8; // past the first three lines, {"n":0} to {"n":2}
        let mut r = LineReader::new(
            Trickle {
                data: &data[from..],
                chunk: 5,
            },
            from as u64,
            256,
            1 << 20,
        );
        while let Ok(Some(_)) = r.next_line(Framing::Follow) {}
        assert!(r.first_bytes().is_empty());
        r.restart(
            Trickle {
                data: b"{}\n",
                chunk: 2,
            },
            0,
        );
        assert!(matches!(r.next_line(Framing::Follow), Ok(Some(_))));
        assert_eq!(r.first_bytes(), b"{}\n");
    }

    #[test]
    fn a_source_that_no_longer_starts_as_recorded_is_refused_before_any_line() {
        let data = b"{\"b\":1}\n{\"b\":2}\n";
        // A different start: refused before any line. A source shorter than
        // its recorded start: its lines agree with it, and its end is refused.
        let cases = [
            (&b"{\"a\":1}"[..], 3, 0),
            (b"{\"b\":1}\n{\"b\":2}\n{", 64, 2),
        ];
        for (head, chunk, lines) in cases {
            let mut r = LineReader::new(Trickle { data, chunk }, 0, 256, 1 << 20);
            r.expect_head(head);
            let mut got = 0;
            let err = loop {
                match r.next_line(Framing::Follow) {
                    Ok(Some(_)) => got += 1,
                    Ok(None) => panic!("no error"),
                    Err(e) => break e,
                }
            };
            assert!(matches!(err, ReadError::Rewritten), "{err}");
            assert_eq!(got, lines);
        }
        // The recorded start, read in pieces: lines as usual.
        let mut r = LineReader::new(Trickle { data, chunk: 3 }, 0, 256, 1 << 20);
        r.expect_head(b"{\"b\":1}\n{\"b");
        assert!(matches!(r.next_line(Framing::Follow), Ok(Some(_))));
        assert!(matches!(r.next_line(Framing::Follow), Ok(Some(_))));
        assert!(r.expected_head().is_empty());
    }

    #[test]
    fn a_seeded_tail_is_the_fingerprint_until_lines_are_read() {
        let mut r = LineReader::new(
            Trickle {
                data: b"x\n",
                chunk: 8,
            },
            100,
            256,
            1 << 20,
        );
        r.seed_tail(b"0123456789");
        assert_eq!((r.tail(), r.offset()), (&b"0123456789"[..], 100));
        assert!(matches!(
            r.next_line(Framing::ToEof),
            Ok(Some(Line::Text { offset: 100, .. }))
        ));
        assert_eq!((r.tail(), r.offset()), (&b"0123456789x\n"[..], 102));
    }

    fn frame(
        data: &[u8],
        chunk: usize,
        initial: usize,
        max: usize,
    ) -> Vec<(String, u64, Option<u64>)> {
        let mut r = LineReader::new(Trickle { data, chunk }, 0, initial, max);
        let mut out = Vec::new();
        while let Some(line) = r.next_line(Framing::ToEof).unwrap() {
            out.push(match line {
                Line::Text { bytes, offset } => {
                    (String::from_utf8_lossy(bytes).into(), offset, None)
                }
                Line::TooLong { head, len, offset } => {
                    (String::from_utf8_lossy(head).into(), offset, Some(len))
                }
            });
        }
        assert!(
            r.capacity() <= initial.max(MIN_BUFFER),
            "buffer shrinks back after long lines"
        );
        out
    }

    #[test]
    fn frames_lines_across_any_chunking() {
        let data = b"\xEF\xBB\xBFab\r\n\ncd\n\xEF\xBB\xBFx\nlast";
        let want = vec![
            ("ab".to_string(), 3, None),
            ("".to_string(), 7, None),
            ("cd".to_string(), 8, None),
            ("\u{feff}x".to_string(), 11, None),
            ("last".to_string(), 16, None),
        ];
        for chunk in 1..data.len() + 1 {
            assert_eq!(frame(data, chunk, 64, 1 << 20), want, "chunk {chunk}");
        }
    }

    #[test]
    fn long_lines_grow_the_buffer_then_shrink_it() {
        let long = "y".repeat(10_000);
        let data = format!("a\n{long}\nb\n");
        let lines = frame(data.as_bytes(), 4096, 64, 1 << 20);
        assert_eq!(lines[1], (long, 2, None));
        assert_eq!(lines[2], ("b".to_string(), 10_003, None));
    }

    #[test]
    fn over_limit_lines_keep_only_their_head() {
        let long = "z".repeat(5000);
        let data = format!("a\n{long}\nb\n{long}");
        let lines = frame(data.as_bytes(), 100, 64, 1000);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[1].2, Some(5000));
        assert_eq!(lines[1].1, 2);
        assert_eq!(lines[2], ("b".to_string(), 5003, None));
        assert_eq!(lines[3].2, Some(5000));
    }

    #[test]
    fn follow_waits_for_the_newline() {
        let mut r = LineReader::new(io::Cursor::new(b"a\nhalf".to_vec()), 0, 64, 1 << 20);
        assert!(matches!(
            r.next_line(Framing::Follow).unwrap(),
            Some(Line::Text { bytes: b"a", .. })
        ));
        assert_eq!(r.next_line(Framing::Follow).unwrap(), None);
        assert_eq!(r.offset(), 2);
        assert_eq!(r.pending(), 4);
    }

    #[test]
    fn over_limit_blank_lines_are_blank_lines() {
        // Held whole (within the buffer) or let go as they stream past, with
        // `\r\n` or without, last or not: blank (empty), however long. One
        // that is not white space to its end is over the limit as usual.
        let blank = " \t".repeat(3000);
        let data = format!("a\n{blank}\n{blank}\r\n{blank}x\nb\n{blank}");
        let want = vec![
            ("a".to_string(), 0, None),
            (String::new(), 2, None),
            (String::new(), 6003, None),
            (format!("{blank}x"), 12005, Some(6001)),
            ("b".to_string(), 18007, None),
            (String::new(), 18009, None),
        ];
        for (initial, chunk) in [(64, 100), (64, 7), (1 << 16, 1 << 16)] {
            let lines = frame(data.as_bytes(), chunk, initial, 1000);
            assert_eq!(lines, want, "chunk {chunk}, buffer {initial}");
        }
    }

    fn stop_now() -> bool {
        true
    }

    #[test]
    fn a_stop_hands_out_the_lines_held_then_ends_inside_any_line() {
        // Two lines held, then a line over the limit that never ends.
        let mut data = b"{\"a\":1}\n{\"a\":2}\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 10_000));
        let mut r = LineReader::new(
            Trickle {
                data: &data,
                chunk: 5000,
            },
            0,
            256,
            1000,
        );
        // Reading into the long line: the fingerprint and the position stay
        // at its start while its bytes are let go.
        assert!(matches!(r.next(Framing::Follow), Ok(Next::Line(_))));
        assert!(matches!(r.next(Framing::Follow), Ok(Next::Line(_))));
        assert!(matches!(r.next(Framing::Follow), Ok(Next::AtEnd)));
        assert_eq!(r.offset(), 16);
        assert_eq!(r.tail(), b"{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(r.pending(), 10_000);

        let mut r = LineReader::new(
            Trickle {
                data: &data,
                chunk: 5000,
            },
            0,
            256,
            1000,
        );
        r.set_stop(stop_now);
        // Nothing read yet: the stop comes first.
        assert_eq!(r.next(Framing::ToEof).unwrap(), Next::Stopped);
        r.set_stop(|| false);
        r.fill().unwrap();
        r.set_stop(stop_now);
        // Lines already read are handed out, then no more reading.
        assert!(matches!(r.next(Framing::ToEof), Ok(Next::Line(_))));
        assert!(matches!(r.next(Framing::ToEof), Ok(Next::Line(_))));
        assert_eq!(r.next(Framing::ToEof).unwrap(), Next::Stopped);
        assert_eq!(r.offset(), 16);
        // Inside the long line, held, then let go: the resume point stays
        // its start.
        for reads in [1, 20] {
            READS_LEFT.with(|left| left.set(reads));
            r.set_stop(stop_after_reads);
            assert_eq!(r.next(Framing::ToEof).unwrap(), Next::Stopped);
            assert_eq!((r.offset(), r.tail()), (16, &data[..16]));
            assert!(r.pending() > 0);
        }
        assert!(r.pending() > 1000, "the long line was not let go");
    }

    thread_local! {
        /// Stop checks that find no stop before [`stop_after_reads`] finds one.
        static READS_LEFT: Cell<usize> = const { Cell::new(0) };
    }

    fn stop_after_reads() -> bool {
        READS_LEFT.with(|left| match left.get().checked_sub(1) {
            Some(n) => {
                left.set(n);
                false
            }
            None => true,
        })
    }

    /// A pipe: quiet, then a stop request's interruption, then bytes.
    struct Moody(Vec<Pulled>);

    impl Source for Moody {
        fn pull(&mut self, buf: &mut [u8]) -> io::Result<Pulled> {
            let next = self.0.remove(0);
            if let Pulled::Bytes(n) = next {
                buf[..n].fill(b'\n');
            }
            Ok(next)
        }
    }

    #[test]
    fn a_quiet_source_is_idle_and_an_interruption_without_a_stop_reads_on() {
        let pulls = vec![
            Pulled::Quiet,
            Pulled::Interrupted,
            Pulled::Bytes(1),
            Pulled::Bytes(0),
        ];
        let mut r = LineReader::new(Moody(pulls), 0, 256, 1000);
        r.set_stop(|| false);
        assert_eq!(r.next(Framing::ToEof).unwrap(), Next::Idle);
        assert!(matches!(
            r.next(Framing::ToEof).unwrap(),
            Next::Line(Line::Text { bytes: b"", .. })
        ));
        assert_eq!(r.next(Framing::ToEof).unwrap(), Next::AtEnd);

        // The end and a stop at once (Ctrl-C ends the writer too): the last
        // line, then the stop.
        let mut r = LineReader::new(
            Moody(vec![Pulled::Bytes(2), Pulled::Bytes(0)]),
            0,
            256,
            1000,
        );
        READS_LEFT.with(|left| left.set(2));
        r.set_stop(stop_after_reads);
        assert!(matches!(r.next(Framing::ToEof), Ok(Next::Line(_))));
        assert!(matches!(r.next(Framing::ToEof), Ok(Next::Line(_))));
        assert_eq!(r.next(Framing::ToEof).unwrap(), Next::Stopped);
    }
}
