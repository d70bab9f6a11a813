//! Batches: what the reading thread hands to the writing thread.
//!
//! A batch owns one byte arena that holds every decoded value of its rows, so
//! a row is a fixed array of [`Cell`]s pointing into it and the writer can
//! bind the values to SQLite without copying them. Batches travel back empty
//! and are reused: in steady state nothing is allocated per line.

use std::io::Write;

use crate::input::reader::{LONG_LINE_HEAD, Line, TAIL_KEEP};
use crate::scan::envelope::{Envelope, Key, MetaKey, MetaScanner, Token};
use crate::scan::json;
use crate::scan::unescape::unescape_into;

/// Columns of `sse_lines` after `id`, in the contract's physical order.
pub const COLUMNS: [&str; 13] = [
    "event",
    "t",
    "flow_id",
    "round",
    "data_count",
    "sid",
    "meta_ver",
    "meta_pid",
    "meta_cwd",
    "meta_turn_id",
    "metadata",
    "extra",
    "line",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Null,
    Int(i64),
    /// `arena[start..start + len]`, valid UTF-8.
    Text {
        start: usize,
        len: usize,
    },
    /// `arena[start..start + len]`, bound as a BLOB: the exact text of an
    /// integer too big for 64 bits, which an INTEGER column would otherwise
    /// round to a REAL (SQLite converts any integer-looking TEXT).
    Blob {
        start: usize,
        len: usize,
    },
}

impl Cell {
    /// The text at `arena[start..end]`.
    fn text_at((start, end): (usize, usize)) -> Cell {
        Cell::Text {
            start,
            len: end - start,
        }
    }

    /// Bytes the value takes in a row record (an integer at most 8).
    fn size(self) -> usize {
        match self {
            Cell::Null => 0,
            Cell::Int(_) => 8,
            Cell::Text { len, .. } | Cell::Blob { len, .. } => len,
        }
    }
}

/// The cells of one row, in [`COLUMNS`] order.
pub type Cells = [Cell; COLUMNS.len()];

/// One accepted line: where it starts in its source (`src_offset`), and its
/// cells.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub offset: u64,
    pub cells: Cells,
}

#[derive(Clone, Copy, Debug)]
pub struct BadLine {
    pub offset: u64,
    pub reason: (usize, usize),
    pub raw: (usize, usize),
}

/// Size limits at which a batch is handed over.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub lines: usize,
    pub arena_bytes: usize,
}

#[derive(Default)]
pub struct Batch {
    pub arena: Vec<u8>,
    pub rows: Vec<Row>,
    pub bad: Vec<BadLine>,
    pub lines: u64,
    pub blank: u64,
    /// Source offset just past the batch's last line.
    pub end_offset: u64,
    /// Source bytes just before `end_offset` (the resume fingerprint).
    pub tail: Vec<u8>,
    /// The source's first bytes as its reader saw them, if it read from the source's start
    /// (`LineReader::first_bytes`): they complete the stored fingerprint.
    pub head: Vec<u8>,
}

impl Batch {
    pub fn with_limits(limits: Limits) -> Self {
        Batch {
            arena: Vec::with_capacity(limits.arena_bytes + (limits.arena_bytes >> 2)),
            rows: Vec::with_capacity(limits.lines),
            bad: Vec::new(),
            tail: Vec::with_capacity(TAIL_KEEP),
            ..Batch::default()
        }
    }

    pub fn is_full(&self, limits: Limits) -> bool {
        self.lines as usize >= limits.lines || self.arena.len() >= limits.arena_bytes
    }

    /// Empties the batch for reuse, returning the memory a huge line made it
    /// take beyond its usual size.
    pub fn clear(&mut self, limits: Limits) {
        self.arena.clear();
        self.rows.clear();
        self.bad.clear();
        self.lines = 0;
        self.blank = 0;
        let usual = limits.arena_bytes + (limits.arena_bytes >> 2);
        if self.arena.capacity() > 2 * usual {
            self.arena.shrink_to(usual);
        }
    }

    pub fn text(&self, start: usize, len: usize) -> &[u8] {
        &self.arena[start..start + len]
    }
}

/// Turns lines into rows or bad lines of a batch. Owns the scanners' scratch
/// space so that it is allocated once per run, not once per line. (No
/// `Default`: a limit of 0 would refuse every row.)
pub struct Builder {
    env: Envelope,
    meta: MetaScanner,
    /// Scratch for a meta value with escapes, decoded from the arena.
    meta_text: Vec<u8>,
    /// The limit a line's length, and the total size of its row's values,
    /// must stay within for the line to be stored as a row.
    pub max_line: usize,
}

impl Builder {
    pub fn new(max_line: usize) -> Self {
        Builder {
            env: Envelope::default(),
            meta: MetaScanner::default(),
            meta_text: Vec::new(),
            max_line,
        }
    }

    pub fn push(&mut self, batch: &mut Batch, line: &Line<'_>) {
        batch.lines += 1;
        match *line {
            Line::Text { bytes, offset } => self.push_text(batch, bytes, offset),
            Line::TooLong { head, len, offset } => {
                let reason = format_args!(
                    "line of {len} bytes exceeds the {} bytes one SQLite value can hold; \
                     raw holds its first {} bytes",
                    self.max_line,
                    head.len().min(LONG_LINE_HEAD)
                );
                push_bad(batch, offset, reason, head);
            }
        }
    }

    fn push_text(&mut self, batch: &mut Batch, line: &[u8], offset: u64) {
        if crate::scan::envelope::is_blank(line) {
            batch.blank += 1;
            return;
        }
        // simdutf8 checks a whole line at memory speed where std checks a
        // word at a time; std then says where a bad line goes wrong.
        if simdutf8::basic::from_utf8(line).is_err() {
            let at = std::str::from_utf8(line).map_or_else(|e| e.valid_up_to(), |_| line.len());
            let reason = format_args!("invalid UTF-8 at byte {at}");
            return push_bad(batch, offset, reason, line);
        }
        let start = batch.arena.len();
        if let Err(e) = self.env.scan(line, &mut batch.arena) {
            batch.arena.truncate(start);
            return push_bad(batch, offset, format_args!("{e}"), line);
        }
        let cells = self.build_row(&mut batch.arena, line);
        // A value copied into two columns (a top-level `cwd` is also kept in
        // `extra`) can make the row too big for one SQLite record while the
        // line is not: such a line is refused like an over-long one rather
        // than failing the run.
        let size: usize = cells.iter().map(|c| c.size()).sum();
        if size > self.max_line {
            batch.arena.truncate(start);
            let head = &line[..line.len().min(LONG_LINE_HEAD)];
            let reason = format_args!(
                "row of {size} bytes exceeds the {} bytes one SQLite row can hold; \
                 raw holds the line's first {} bytes",
                self.max_line,
                head.len()
            );
            return push_bad(batch, offset, reason, head);
        }
        batch.rows.push(Row { offset, cells });
    }

    fn build_row(&mut self, arena: &mut Vec<u8>, line: &[u8]) -> Cells {
        let env = &self.env;
        let text = |arena: &mut Vec<u8>, key| text_cell(arena, line, env.get(key));
        let event = text(arena, Key::Event);
        let t = text(arena, Key::T);
        let flow_id = text(arena, Key::FlowId);
        let round = text(arena, Key::Round);
        let data_count = int_cell(arena, line, env.get(Key::DataCount));
        let sid = text(arena, Key::Sid);

        // The metadata value is decoded once, straight into the arena as its
        // own cell (a string during the envelope scan), and scanned there;
        // the meta columns that need no decoding then point into it instead
        // of being copied again.
        let (metadata, has_meta, base) =
            match (env.text[Key::Metadata as usize], env.get(Key::Metadata)) {
                (Some((start, end)), _) => (
                    Cell::text_at((start, end)),
                    self.meta.scan(&arena[start..end]),
                    start,
                ),
                // An object or array: its raw text.
                (None, Some(tok @ Token::Raw { .. })) => {
                    let base = arena.len();
                    decode_token(arena, line, tok);
                    let cell = Cell::Text {
                        start: base,
                        len: arena.len() - base,
                    };
                    (cell, self.meta.scan(&arena[base..]), base)
                }
                _ => (Cell::Null, false, 0),
            };
        let mut meta = [Cell::Null; MetaKey::COUNT];
        for (i, cell) in meta.iter_mut().enumerate() {
            let inner = if has_meta { self.meta.found[i] } else { None };
            let is_pid = i == MetaKey::Pid as usize;
            *cell = match inner {
                Some(tok) if tok != Token::Null => {
                    arena_cell(arena, base, tok, is_pid, &mut self.meta_text)
                }
                _ => value_cell_opt(arena, line, env.top_meta[i], is_pid),
            };
        }
        let extra = extra_cell(arena, line, env);
        let line_cell = match env.text[Key::Line as usize] {
            Some(span) => Cell::text_at(span),
            None => text(arena, Key::Line),
        };
        [
            event,
            t,
            flow_id,
            round,
            data_count,
            sid,
            meta[MetaKey::Ver as usize],
            meta[MetaKey::Pid as usize],
            meta[MetaKey::Cwd as usize],
            meta[MetaKey::TurnId as usize],
            metadata,
            extra,
            line_cell,
        ]
    }
}

fn push_bad(batch: &mut Batch, offset: u64, reason: std::fmt::Arguments<'_>, raw: &[u8]) {
    let start = batch.arena.len();
    // Writing into a Vec cannot fail.
    let _ = batch.arena.write_fmt(reason);
    let reason = (start, batch.arena.len() - start);
    let raw_start = batch.arena.len();
    batch.arena.extend_from_slice(raw);
    batch.bad.push(BadLine {
        offset,
        reason,
        raw: (raw_start, raw.len()),
    });
}

/// Appends a token's value: strings decoded, anything else as raw JSON text.
fn decode_token(out: &mut Vec<u8>, src: &[u8], tok: Token) {
    match tok {
        Token::Null => {}
        Token::Str(s) if s.escaped => unescape_into(&src[s.start..s.end], out),
        Token::Str(s) => out.extend_from_slice(&src[s.start..s.end]),
        Token::Raw { start, end } => out.extend_from_slice(&src[start..end]),
    }
}

fn text_cell(arena: &mut Vec<u8>, src: &[u8], tok: Option<Token>) -> Cell {
    value_cell_opt(arena, src, tok, false)
}

fn int_cell(arena: &mut Vec<u8>, src: &[u8], tok: Option<Token>) -> Cell {
    value_cell_opt(arena, src, tok, true)
}

fn value_cell_opt(arena: &mut Vec<u8>, src: &[u8], tok: Option<Token>, integer: bool) -> Cell {
    match tok {
        None => Cell::Null,
        Some(tok) => value_cell(arena, src, tok, integer),
    }
}

/// A column value. For INTEGER columns a decimal integer (`-?[0-9]+`, as a
/// number or in a string) is bound as one when it fits 64 bits and as the
/// BLOB of its exact text when it does not; anything else is bound as text
/// and left to the column's affinity, as SQLite would treat the same text
/// from any other client.
fn value_cell(arena: &mut Vec<u8>, src: &[u8], tok: Token, integer: bool) -> Cell {
    if tok == Token::Null {
        return Cell::Null;
    }
    let start = arena.len();
    decode_token(arena, src, tok);
    let len = arena.len() - start;
    if integer {
        match parse_integer(&arena[start..]) {
            Some(Integer::Fits(v)) => {
                arena.truncate(start);
                return Cell::Int(v);
            }
            Some(Integer::TooBig) => return Cell::Blob { start, len },
            None => {}
        }
    }
    Cell::Text { start, len }
}

/// A column value found in text already in the arena at `base` (the decoded
/// metadata): as [`value_cell`], but a value that needs no decoding is the
/// same bytes, so its cell points at them rather than at a copy.
fn arena_cell(
    arena: &mut Vec<u8>,
    base: usize,
    tok: Token,
    integer: bool,
    scratch: &mut Vec<u8>,
) -> Cell {
    let (start, end) = match tok {
        Token::Null => return Cell::Null,
        Token::Str(s) if s.escaped => {
            // Rare: decoding appends to the arena it would read from.
            scratch.clear();
            scratch.extend_from_slice(&arena[base + s.start..base + s.end]);
            let whole = json::StrSpan {
                start: 0,
                end: scratch.len(),
                escaped: true,
            };
            return value_cell(arena, scratch, Token::Str(whole), integer);
        }
        Token::Str(s) => (base + s.start, base + s.end),
        Token::Raw { start, end } => (base + start, base + end),
    };
    let len = end - start;
    if integer {
        match parse_integer(&arena[start..end]) {
            Some(Integer::Fits(v)) => return Cell::Int(v),
            Some(Integer::TooBig) => return Cell::Blob { start, len },
            None => {}
        }
    }
    Cell::Text { start, len }
}

/// What a decimal integer text is to an INTEGER column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Integer {
    Fits(i64),
    /// Outside i64: SQLite would store it as a rounded REAL.
    TooBig,
}

/// Reads `-?[0-9]+` (leading zeros allowed, as SQLite allows them); `None`
/// for any other text, which is left to SQLite.
fn parse_integer(s: &[u8]) -> Option<Integer> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        let d = (d - b'0') as i64;
        let next = v.checked_mul(10).and_then(|v| {
            if neg {
                v.checked_sub(d)
            } else {
                v.checked_add(d)
            }
        });
        match next {
            Some(n) => v = n,
            None => return Some(Integer::TooBig),
        }
    }
    Some(Integer::Fits(v))
}

/// The `extra` object: every member without a column, raw, in input order.
fn extra_cell(arena: &mut Vec<u8>, line: &[u8], env: &Envelope) -> Cell {
    if env.extra.is_empty() {
        return Cell::Null;
    }
    let start = arena.len();
    arena.push(b'{');
    for (i, m) in env.extra.iter().enumerate() {
        if i > 0 {
            arena.push(b',');
        }
        arena.push(b'"');
        arena.extend_from_slice(&line[m.key.0..m.key.1]);
        arena.extend_from_slice(b"\":");
        arena.extend_from_slice(&line[m.value.0..m.value.1]);
    }
    arena.push(b'}');
    Cell::Text {
        start,
        len: arena.len() - start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row_of(line: &str) -> (Batch, Cells) {
        let mut batch = Batch::default();
        let mut b = Builder::new(usize::MAX);
        b.push(
            &mut batch,
            &Line::Text {
                bytes: line.as_bytes(),
                offset: 0,
            },
        );
        assert!(batch.bad.is_empty(), "{line}");
        let row = batch.rows[0].cells;
        (batch, row)
    }

    fn show(batch: &Batch, cell: Cell) -> String {
        match cell {
            Cell::Null => "NULL".into(),
            Cell::Int(v) => v.to_string(),
            Cell::Text { start, len } => {
                String::from_utf8(batch.text(start, len).to_vec()).unwrap()
            }
            Cell::Blob { start, len } => format!(
                "BLOB {}",
                String::from_utf8(batch.text(start, len).to_vec()).unwrap()
            ),
        }
    }

    #[test]
    fn meta_columns_come_from_metadata_then_top_level() {
        let (b, r) = row_of(
            r#"{"event":"e","line":"data: {\"pid\":7}","metadata":"{\"pid\":59784,\"ver\":\"v\",\"cwd\":null}","cwd":"/top","pid":"1","data_count":"42"}"#,
        );
        let cols: Vec<String> = r.iter().map(|&c| show(&b, c)).collect();
        assert_eq!(cols[4], "42");
        assert_eq!(cols[6], "v");
        assert_eq!(cols[7], "59784");
        assert_eq!(cols[8], "/top");
        assert_eq!(cols[9], "NULL");
        assert_eq!(cols[10], r#"{"pid":59784,"ver":"v","cwd":null}"#);
        assert_eq!(cols[11], r#"{"cwd":"/top","pid":"1"}"#);
        assert_eq!(cols[12], r#"data: {"pid":7}"#);
    }

    /// The meta columns point into the decoded metadata where they can: at
    /// any place in the arena (second line of a batch), from an object or a
    /// string, with and without escapes, as integers, big integers and text.
    #[test]
    fn meta_columns_read_from_the_decoded_metadata_anywhere_in_the_arena() {
        let mut batch = Batch::default();
        let mut b = Builder::new(usize::MAX);
        let lines = [
            r#"{"event":"first","metadata":{"cwd":"/a"}}"#,
            r#"{"metadata":"{\"ver\":\"v\\u00e9\\\\x\",\"pid\":\"0012\",\"cwd\":\"/d\\\\ir\",\"turn_id\":[1, 2]}"}"#,
            r#"{"metadata":{"ver":1.5,"pid":"\u0031\u0032","cwd":"\/x","turn_id":"t"}}"#,
            r#"{"metadata":{"pid":99999999999999999999,"cwd":"é"},"ver":"top"}"#,
            r#"{"metadata":{"pid":"-\u0039\u0039999999999999999999"}}"#,
        ];
        for line in lines {
            b.push(
                &mut batch,
                &Line::Text {
                    bytes: line.as_bytes(),
                    offset: 0,
                },
            );
        }
        assert!(batch.bad.is_empty());
        let metas: Vec<[String; 4]> = batch
            .rows
            .iter()
            .map(|r| std::array::from_fn(|i| show(&batch, r.cells[6 + i])))
            .collect();
        let want = [
            ["NULL", "NULL", "/a", "NULL"],
            ["vé\\x", "12", "/d\\ir", "[1, 2]"],
            ["1.5", "12", "/x", "t"],
            ["top", "BLOB 99999999999999999999", "é", "NULL"],
            ["NULL", "BLOB -99999999999999999999", "NULL", "NULL"],
        ];
        for (got, want) in metas.iter().zip(want) {
            assert_eq!(got, &want.map(String::from));
        }
        assert_eq!(
            show(&batch, batch.rows[1].cells[10]),
            r#"{"ver":"v\u00e9\\x","pid":"0012","cwd":"/d\\ir","turn_id":[1, 2]}"#
        );
    }

    /// Only memory, not content, depends on these: they are checked here
    /// because nothing that reads the database can see them.
    #[test]
    fn batches_are_handed_over_at_their_limits_and_give_back_huge_arenas() {
        let limits = Limits {
            lines: 3,
            arena_bytes: 1000,
        };
        let usual = 1250;
        let mut batch = Batch::with_limits(limits);
        assert!(batch.arena.capacity() >= usual);
        assert!(batch.rows.capacity() >= 3);
        assert!(batch.tail.capacity() >= TAIL_KEEP);
        let mut b = Builder::new(usize::MAX);
        for n in 1..=3 {
            assert!(!batch.is_full(limits), "{n}");
            b.push(
                &mut batch,
                &Line::Text {
                    bytes: b"{}",
                    offset: 0,
                },
            );
        }
        assert!(batch.is_full(limits), "by lines");
        batch.clear(limits);
        assert_eq!(
            (batch.lines, batch.rows.len(), batch.arena.len()),
            (0, 0, 0)
        );
        batch.arena.resize(999, b'x');
        assert!(!batch.is_full(limits));
        batch.arena.push(b'x');
        assert!(batch.is_full(limits), "by bytes");

        // Up to twice its usual size, a batch keeps its memory (no churn);
        // beyond, it goes back to its usual size.
        for (cap, kept) in [
            (usual, true),
            (2000, true),
            (2 * usual, true),
            (100_000, false),
        ] {
            batch.arena = Vec::with_capacity(cap);
            batch.arena.push(b'x');
            batch.clear(limits);
            let after = batch.arena.capacity();
            if kept {
                assert_eq!(after, cap);
            } else {
                assert!((usual..=2 * usual).contains(&after), "{after}");
            }
        }
    }

    #[test]
    fn integers_only_when_exact() {
        use Integer::*;
        for (text, want) in [
            ("-0", Some(Fits(0))),
            ("007", Some(Fits(7))),
            ("00000000000000000000000000042", Some(Fits(42))),
            (
                "-000000000000000000009223372036854775808",
                Some(Fits(i64::MIN)),
            ),
            ("9223372036854775807", Some(Fits(i64::MAX))),
            ("-9223372036854775808", Some(Fits(i64::MIN))),
            ("9223372036854775808", Some(TooBig)),
            ("-9223372036854775809", Some(TooBig)),
            ("99999999999999999999999", Some(TooBig)),
            ("1.5", None),
            ("1e3", None),
            (" 12", None),
            ("+5", None),
            ("12x", None),
            ("", None),
            ("-", None),
        ] {
            assert_eq!(parse_integer(text.as_bytes()), want, "{text:?}");
        }
    }

    #[test]
    fn integers_too_big_for_64_bits_keep_their_exact_text() {
        let (b, r) = row_of(
            r#"{"data_count":9223372036854775809,"metadata":{"pid":"-99999999999999999999"}}"#,
        );
        assert_eq!(show(&b, r[4]), "BLOB 9223372036854775809");
        assert_eq!(show(&b, r[7]), "BLOB -99999999999999999999");
        let (b, r) = row_of(r#"{"data_count":"1e3","pid":1.5}"#);
        assert_eq!(
            (show(&b, r[4]), show(&b, r[7])),
            ("1e3".into(), "1.5".into())
        );
    }

    #[test]
    fn a_row_too_big_for_one_record_is_a_bad_line() {
        let cwd = "c".repeat(600);
        let line = format!(r#"{{"event":"e","cwd":"{cwd}"}}"#);
        let mut b = Builder::new(1000);
        let mut batch = Batch::default();
        b.push(
            &mut batch,
            &Line::Text {
                bytes: b"{\"event\":\"kept\"}",
                offset: 0,
            },
        );
        let before = batch.arena.len();
        b.push(
            &mut batch,
            &Line::Text {
                bytes: line.as_bytes(),
                offset: 20,
            },
        );
        assert_eq!(batch.rows.len(), 1);
        assert_eq!(batch.lines, 2);
        let bad = batch.bad[0];
        assert_eq!(bad.offset, 20);
        assert_eq!(batch.text(bad.raw.0, bad.raw.1), line.as_bytes());
        let reason = String::from_utf8(batch.text(bad.reason.0, bad.reason.1).to_vec()).unwrap();
        // meta_cwd 600 + extra 610 + event 1.
        assert!(
            reason.contains("1211") && reason.contains("1000"),
            "{reason}"
        );
        // Nothing of the refused row is left in the arena.
        assert_eq!(batch.arena.len() - before, bad.reason.1 + bad.raw.1);
        // Exactly at the limit, the row is kept.
        let mut b = Builder::new(1211);
        b.push(
            &mut batch,
            &Line::Text {
                bytes: line.as_bytes(),
                offset: 40,
            },
        );
        assert_eq!(batch.rows.len(), 2);
    }
}
