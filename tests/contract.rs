//! The contract's edge cases (schema.md, "Settled readings", and issue 14 items 4, 5, 6 and 25),
//! each through the real binary and compared with the independent oracle in `tests/oracle`,
//! plus a few checks of the public `ingestor::input::reader` API.

use crate::oracle;

use std::io::{self, Read};

use rusqlite::types::Value;

use crate::oracle::{Expected, Options};
use crate::util::{Dir, numbers_in};
use ingestor::input::reader::{Framing, LONG_LINE_HEAD, Line, LineReader, ReadError};

const DB: &str = "out.db";

/// Ingests `input` (as a file) with `args`, checks a clean run and a sound database, and
/// compares the database with the oracle's expectation under `opts`. Returns the directory.
fn ingest_and_compare(input: &[u8], args: &[&str], opts: &Options) -> (Dir, Expected) {
    let dir = Dir::new();
    let path = dir.create("in.jsonl", input);
    dir.command()
        .arg("--input")
        .arg(&path)
        .arg("--db")
        .arg(dir.path(DB))
        .args(args)
        .assert_ok();
    let db = dir.db(DB);
    db.assert_integrity();
    let exp = oracle::expect_with(input, opts);
    if let Err(report) = oracle::check(input, &exp, &db.rows(), &db.bad_lines()) {
        panic!(
            "database differs from the oracle ({} rows, {} bad expected):\n{report}",
            exp.rows.len(),
            exp.bad.len()
        );
    }
    (dir, exp)
}

/// Lines joined with `\n`, with a final newline.
fn lines(lines: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    out
}

/// One column of every `sse_lines` row, in id order, as SQL `expr` gives it.
fn column(dir: &Dir, expr: &str) -> Vec<Value> {
    let conn = dir.db(DB).open();
    let mut stmt = conn
        .prepare(&format!("SELECT {expr} FROM sse_lines ORDER BY id"))
        .expect("prepare");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Item 4: many extra keys

/// A line with 200,000 distinct extra keys (quadratic before: 144 s on the reviewer's machine),
/// then lines whose repeated keys straddle the switch from linear search to the hash index,
/// spelled with and without escapes: first place, last value, decoded names compared.
#[test]
fn a_line_with_200k_distinct_extra_keys_is_ingested() {
    let mut big = String::from(r#"{"event":"many","#);
    for i in 0..200_000 {
        big += &format!(r#""k{i}":{i},"#);
    }
    // Repeats of an early and a late key, one of them escaped, then the end.
    big += r#""k\u0031":"again","k199999":"last","\u006b7":null}"#;
    let mut repeats = Vec::new();
    for n in [31, 32, 33, 100] {
        let mut l = format!(r#"{{"event":"n{n}","#);
        for i in 0..n {
            l += &format!(r#""x{i}":{i},"#);
        }
        l += &format!(
            r#""\u0078{}":"dup","x0":"first","x\u0030":"first again","new\u0021":1}}"#,
            n - 1
        );
        repeats.push(l);
    }
    let mut all = vec![big.as_str()];
    all.extend(repeats.iter().map(String::as_str));
    let input = lines(&all);
    let (_dir, exp) = ingest_and_compare(&input, &[], &Options::default());
    let extra = exp.rows[0].extra.as_ref().expect("extra");
    assert_eq!(extra.len(), 200_000);
    assert_eq!(extra[1], ("k1".into(), r#""again""#.into()));
    assert_eq!(extra[7], ("k7".into(), "null".into()));
    assert_eq!(extra[199_999], ("k199999".into(), r#""last""#.into()));
    for (row, n) in exp.rows[1..].iter().zip([31, 32, 33, 100]) {
        let extra = row.extra.as_ref().expect("extra");
        assert_eq!(extra.len(), n + 1);
        assert_eq!(extra[0].1, r#""first again""#);
        assert_eq!(extra[n - 1].1, r#""dup""#);
    }
}

// ---------------------------------------------------------------------------------------------
// Item 5: a row too big for SQLite while its line is not

/// A huge top-level `cwd` fills both `meta_cwd` and `extra`: the row is about twice its line.
/// Such a line goes to `bad_lines` like an over-long one, the run goes on.
#[test]
fn a_row_bigger_than_one_record_goes_to_bad_lines() {
    const MAX: usize = 1000;
    let cwd = |n: usize| "c".repeat(n);
    let fits = format!(r#"{{"event":"fits","cwd":"{}"}}"#, cwd(400));
    let too_big = format!(r#"{{"event":"row too big","cwd":"{}"}}"#, cwd(600));
    // In metadata, the value is copied into meta_cwd and kept in metadata.
    let meta_too_big = format!(r#"{{"metadata":{{"cwd":"{}"}}}}"#, cwd(600));
    let long_line = format!(
        r#"{{"event":"line too long","line":"{}"}}"#,
        "x".repeat(MAX)
    );
    let input = lines(&[
        r#"{"event":"before"}"#,
        &fits,
        &too_big,
        &meta_too_big,
        &long_line,
        r#"{"event":"after"}"#,
    ]);
    let opts = Options {
        max_line_bytes: Some(MAX),
    };
    let (dir, exp) = ingest_and_compare(&input, &["--max-line-bytes", &MAX.to_string()], &opts);
    let events: Vec<Value> = exp.rows.iter().map(|r| r.event.clone()).collect();
    assert_eq!(events, [text("before"), text("fits"), text("after")]);
    assert_eq!(exp.bad.len(), 3);
    let bad = dir.db(DB).bad_lines();
    // The reason of a refused row gives the row's size and the limit: event, meta_cwd and
    // extra (`{"cwd":"…"}`); then metadata (`{"cwd":"…"}`) and meta_cwd.
    for (b, size) in bad[..2].iter().zip([11 + 600 + 610, 610 + 600]) {
        let Value::Text(reason) = &b.reason else {
            panic!("reason {:?}", b.reason)
        };
        let nums = numbers_in(reason);
        assert!(
            nums.contains(&size) && nums.contains(&(MAX as u64)),
            "reason does not give the row size {size} and the limit {MAX}: {reason:?}"
        );
    }
}

/// The same past one MiB: `raw` holds the line's first MiB, as for an over-long line.
#[test]
fn a_refused_big_row_keeps_the_first_mib_of_its_line() {
    const MAX: usize = 3 << 20;
    let line = format!(r#"{{"event":"e","cwd":"{}"}}"#, "c".repeat(2 << 20));
    let input = lines(&[&line, r#"{"event":"after"}"#]);
    let opts = Options {
        max_line_bytes: Some(MAX),
    };
    let (dir, exp) = ingest_and_compare(&input, &["--max-line-bytes", &MAX.to_string()], &opts);
    assert_eq!(exp.rows.len(), 1);
    assert_eq!(exp.bad[0].raw.len(), LONG_LINE_HEAD);
    let bad = dir.db(DB).bad_lines();
    assert_eq!(
        bad[0].raw,
        Value::Blob(line.as_bytes()[..LONG_LINE_HEAD].to_vec())
    );
}

// ---------------------------------------------------------------------------------------------
// Item 6 and the settled reading: a number outside i64 in an INTEGER column keeps its text

#[test]
fn integers_too_big_for_64_bits_are_stored_as_their_exact_text() {
    let input = lines(&[
        r#"{"event":"a","data_count":9223372036854775809}"#,
        r#"{"event":"b","data_count":"9223372036854775809"}"#,
        r#"{"event":"c","data_count":-9223372036854775809}"#,
        r#"{"event":"d","data_count":123456789012345678901234567890}"#,
        r#"{"event":"e","metadata":"{\"pid\":18446744073709551616}"}"#,
        r#"{"event":"f","metadata":{"pid":"-18446744073709551616"}}"#,
        r#"{"event":"g","pid":"99999999999999999999"}"#,
        // Within i64, whatever the spelling: an integer.
        r#"{"event":"h","data_count":9223372036854775807,"pid":"-9223372036854775808"}"#,
        r#"{"event":"i","data_count":"000000000000000000000000042","pid":-0}"#,
        // Not a decimal integer: left to SQLite's affinity, as before.
        r#"{"event":"j","data_count":"1e3","pid":"1.5"}"#,
        r#"{"event":"k","data_count":" 12","pid":"+5"}"#,
        r#"{"event":"l","data_count":1e400,"pid":"12abc"}"#,
        r#"{"event":"m","data_count":"9223372036854775809 ","pid":1.0}"#,
    ]);
    let (dir, _) = ingest_and_compare(&input, &[], &Options::default());
    let blob = |s: &str| Value::Blob(s.as_bytes().to_vec());
    assert_eq!(
        column(&dir, "data_count")[..4],
        [
            blob("9223372036854775809"),
            blob("9223372036854775809"),
            blob("-9223372036854775809"),
            blob("123456789012345678901234567890"),
        ]
    );
    assert_eq!(
        column(&dir, "meta_pid")[4..7],
        [
            blob("18446744073709551616"),
            blob("-18446744073709551616"),
            blob("99999999999999999999"),
        ]
    );
    // What a user gets back with SQL.
    assert_eq!(
        column(&dir, "CAST(data_count AS TEXT)")[0],
        text("9223372036854775809")
    );
    assert_eq!(
        column(&dir, "typeof(data_count) || ' ' || typeof(meta_pid)")[7..],
        [
            "integer integer",
            "integer integer",
            "integer real",
            "integer integer",
            "real text",
            "real integer",
        ]
        .map(text)
    );
}

// ---------------------------------------------------------------------------------------------
// Settled readings (schema.md, version 2)

/// A metadata text is "a JSON object" by the same top-level rule as a line: nested values need
/// only be balanced. One that is not falls back to the top-level keys alone.
#[test]
fn metadata_text_is_an_object_by_the_line_rule() {
    let input = lines(&[
        // Balanced but not valid JSON inside: still an object.
        r#"{"event":"a","metadata":"{\"pid\":5,\"x\":[1,,2],\"y\":{\"k\"}}","pid":1}"#,
        r#"{"event":"b","metadata":{"pid":6,"x":[1,,2]},"pid":1}"#,
        // Unbalanced, or not one object: the top-level fallback alone.
        r#"{"event":"c","metadata":"{\"pid\":7,\"x\":[1,2}","pid":1}"#,
        r#"{"event":"d","metadata":"{\"pid\":8} {}","pid":1}"#,
        r#"{"event":"e","metadata":"{\"pid\":9,}","cwd":"/top"}"#,
        r#"{"event":"f","metadata":"[{\"pid\":10}]","pid":1}"#,
        // A string inside the metadata text must itself be valid.
        r#"{"event":"g","metadata":"{\"pid\":11,\"cwd\":\"\\ud800\"}","cwd":"/top"}"#,
        r#"{"event":"h","metadata":{"pid":12,"cwd":"\ud800"},"cwd":"/top"}"#,
        r#"{"event":"i","metadata":" \t{\"pid\":13}\r\n","pid":1}"#,
    ]);
    let (dir, exp) = ingest_and_compare(&input, &[], &Options::default());
    assert_eq!(exp.rows.len(), 9);
    let (int, null) = (Value::Integer, Value::Null);
    assert_eq!(
        column(&dir, "meta_pid"),
        [
            int(5),
            int(6),
            int(1),
            int(1),
            null.clone(),
            int(1),
            null.clone(),
            null,
            int(13)
        ]
    );
    assert_eq!(
        column(&dir, "meta_cwd")[4..8],
        [text("/top"), Value::Null, text("/top"), text("/top")]
    );
}

/// A `null` inside metadata counts as absent there: the top-level key applies.
#[test]
fn null_inside_metadata_falls_back_to_the_top_level() {
    let input = lines(&[
        r#"{"metadata":{"pid":null,"cwd":null,"ver":"v"},"pid":7,"cwd":"/top","ver":"top"}"#,
        r#"{"metadata":"{\"pid\":null,\"turn_id\":null}","pid":"8","turn_id":"t"}"#,
        // The last of repeated inner keys decides, null included.
        r#"{"metadata":{"pid":1,"pid":null},"pid":9}"#,
        r#"{"metadata":{"pid":null,"pid":2},"pid":9}"#,
        // Null at both levels: NULL.
        r#"{"metadata":{"cwd":null},"cwd":null}"#,
    ]);
    let (dir, _) = ingest_and_compare(&input, &[], &Options::default());
    let int = Value::Integer;
    assert_eq!(
        column(&dir, "meta_pid"),
        [int(7), int(8), int(9), int(2), Value::Null]
    );
    assert_eq!(column(&dir, "meta_cwd")[0], text("/top"));
    assert_eq!(column(&dir, "meta_ver")[0], text("v"));
    assert_eq!(column(&dir, "meta_turn_id")[1], text("t"));
}

/// A metadata value that is neither a string, an object nor null is stored as its raw text,
/// and the meta columns come from the top level.
#[test]
fn metadata_that_is_a_number_array_or_literal_is_kept_raw() {
    let input = lines(&[
        r#"{"metadata":42,"pid":1}"#,
        r#"{"metadata":-1.5e3,"pid":2}"#,
        r#"{"metadata":[{"pid":3}, 4],"pid":3}"#,
        r#"{"metadata":true,"cwd":"/t"}"#,
        r#"{"metadata":false}"#,
        r#"{"metadata":null,"pid":6}"#,
    ]);
    let (dir, _) = ingest_and_compare(&input, &[], &Options::default());
    assert_eq!(
        column(&dir, "metadata"),
        [
            text("42"),
            text("-1.5e3"),
            text(r#"[{"pid":3}, 4]"#),
            text("true"),
            text("false"),
            Value::Null
        ]
    );
}

/// A `\uXXXX` escape that decodes to a lone surrogate cannot be stored as UTF-8: bad line.
/// `\ud800Xudc00` and `\ud800\xdc00` are not a pair (a mutant of the pair check let them pass).
#[test]
fn lone_surrogates_are_bad_lines() {
    let input = lines(&[
        r#"{"event":"\ud800"}"#,
        r#"{"event":"\udc00x"}"#,
        r#"{"\ud800":1}"#,
        r#"{"line":"a\ud800Xudc00b"}"#,
        r#"{"line":"a\ud800\xdc00b"}"#,
        r#"{"line":"a\ud800\ud800b"}"#,
        r#"{"line":"\ud83d\ude00 a pair is fine"}"#,
        r#"{"event":"\uDBFF\uDFFF"}"#,
    ]);
    let (_dir, exp) = ingest_and_compare(&input, &[], &Options::default());
    assert_eq!(exp.bad.len(), 6);
    assert_eq!(exp.rows.len(), 2);
}

/// After a byte-order mark at byte 0 the first line starts at byte 3, and a bad first line's
/// `raw` does not hold the mark; a mark anywhere else is part of its line. (`sse_lines` has no
/// `src_offset` column yet, so a row's offset is checked through the reader below.)
#[test]
fn bom_at_byte_0_is_skipped_and_offsets_count_it() {
    type Case<'a> = (&'a [u8], usize, Vec<(i64, &'a [u8])>);
    let cases: [Case; 5] = [
        (
            b"\xEF\xBB\xBF{\"event\":\"a\"}\n{\"event\":\"b\"}\n",
            2,
            vec![],
        ),
        (
            b"\xEF\xBB\xBFnot json\n{\"event\":\"b\"}\n",
            1,
            vec![(3, b"not json")],
        ),
        (b"\xEF\xBB\xBF{\"a\":1", 0, vec![(3, b"{\"a\":1")]),
        (b"\xEF\xBB\xBF\n\xEF\xBB\xBF", 0, vec![(4, b"\xEF\xBB\xBF")]),
        (
            b"{\"event\":\"a\"}\n\xEF\xBB\xBF{\"event\":\"b\"}\n",
            1,
            vec![(14, b"\xEF\xBB\xBF{\"event\":\"b\"}")],
        ),
    ];
    for (input, rows, bad) in cases {
        let (dir, exp) = ingest_and_compare(input, &[], &Options::default());
        assert_eq!(exp.rows.len(), rows);
        assert_eq!(dir.db(DB).rows().len(), rows);
        let got: Vec<(Value, Value)> = dir
            .db(DB)
            .bad_lines()
            .into_iter()
            .map(|b| (b.src_offset, b.raw))
            .collect();
        let want: Vec<(Value, Value)> = bad
            .into_iter()
            .map(|(o, raw)| (Value::Integer(o), Value::Blob(raw.to_vec())))
            .collect();
        assert_eq!(got, want);
    }
}

/// The reader gives the first line after a BOM offset 3, however the bytes arrive.
#[test]
fn reader_starts_the_first_line_after_a_bom_at_offset_3() {
    let data = b"\xEF\xBB\xBF{\"a\":1}\n\xEF\xBB\xBFx\r\n";
    for chunk in 1..=data.len() {
        let got = read_all(data, chunk, 64, 1 << 20);
        assert_eq!(
            got,
            [
                (b"{\"a\":1}".to_vec(), 3, None),
                (b"\xEF\xBB\xBFx".to_vec(), 11, None)
            ],
            "chunk {chunk}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Item 25: inputs that kill the mutants the review found

/// A nested string that ends in a backslash at the very end of a line: the escape's second byte
/// would lie past the line (a mutant of the bound check sliced past the buffer and aborted).
#[test]
fn nested_string_ending_in_a_backslash_at_the_end_of_a_line_is_a_bad_line() {
    for last in [&b""[..], b"\n"] {
        let mut input =
            b"{\"event\":\"ok\"}\n{\"event\":\"e\",\"x\":[\"ab\\\n{\"x\":{\"a\":\"\\".to_vec();
        input.extend_from_slice(last);
        let (_dir, exp) = ingest_and_compare(&input, &[], &Options::default());
        assert_eq!((exp.rows.len(), exp.bad.len()), (1, 2));
    }
}

// ---------------------------------------------------------------------------------------------
// reader.rs through its public API

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

/// A framed line: its bytes (the head of a too-long one), offset, and full length if too long.
type Framed = (Vec<u8>, u64, Option<u64>);

/// Every line of `data`, read to the end.
fn read_all(data: &[u8], chunk: usize, initial: usize, max_line: usize) -> Vec<Framed> {
    let mut r = LineReader::new(Trickle { data, chunk }, 0, initial, max_line);
    let mut out = Vec::new();
    while let Some(line) = r.next_line(Framing::ToEof).expect("read") {
        out.push(match line {
            Line::Text { bytes, offset } => (bytes.to_vec(), offset, None),
            Line::TooLong { head, len, offset } => (head.to_vec(), offset, Some(len)),
        });
    }
    out
}

/// The framing schema.md describes, written out naively: lines split at `\n`, one final `\r`
/// dropped, a BOM skipped at byte 0 only, a line longer than `max_line` kept as its first
/// [`LONG_LINE_HEAD`] bytes and its length; a last line without newline is a line.
fn frame_naively(data: &[u8], max_line: usize) -> Vec<Framed> {
    let mut out = Vec::new();
    let mut pos = if data.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    while pos < data.len() {
        let end = data[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |i| pos + i);
        let mut line = &data[pos..end];
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        out.push(if line.len() > max_line {
            let head = line[..line.len().min(LONG_LINE_HEAD)].to_vec();
            (head, pos as u64, Some(line.len() as u64))
        } else {
            (line.to_vec(), pos as u64, None)
        });
        pos = end + 1;
    }
    out
}

/// Lines of every length around the limit, with and without `\r`, blank ones, a BOM at the start
/// and one later, and a last line without newline: framed as the naive model says, whatever the
/// read sizes and the buffer size, with `offset()` and `tail()` right after each line.
#[test]
fn reader_frames_lines_as_the_contract_says_whatever_the_reads() {
    const MAX: usize = 40;
    let mut data = b"\xEF\xBB\xBF".to_vec();
    for len in [0, 1, 38, 39, 40, 41, 42, 100, 300] {
        for cr in [false, true] {
            data.extend(std::iter::repeat_n(b'a' + (len % 26) as u8, len));
            if cr {
                data.push(b'\r');
            }
            data.push(b'\n');
        }
    }
    data.extend_from_slice(b"\xEF\xBB\xBFmid\n\r\n \nlast");
    let want = frame_naively(&data, MAX);
    for chunk in [1, 2, 3, 7, 64, 1000] {
        for initial in [1, 64, 300] {
            let mut r = LineReader::new(Trickle { data: &data, chunk }, 0, initial, MAX);
            let mut got = Vec::new();
            while let Some(line) = r.next_line(Framing::ToEof).expect("read") {
                got.push(match line {
                    Line::Text { bytes, offset } => (bytes.to_vec(), offset, None),
                    Line::TooLong { head, len, offset } => (head.to_vec(), offset, Some(len)),
                });
                // Just past this line's terminator (or the end): where the next one starts.
                let next = want
                    .get(got.len())
                    .map_or(data.len() as u64, |(_, o, _)| *o);
                let at = r.offset();
                assert_eq!(at, next, "offset after line {} (chunk {chunk})", got.len());
                let (at, keep) = (at as usize, (at as usize).min(64));
                assert_eq!(
                    r.tail(),
                    &data[at - keep..at],
                    "tail at {at} (chunk {chunk})"
                );
            }
            assert_eq!(got, want, "chunk {chunk}, initial {initial}");
            assert_eq!(r.pending(), 0);
        }
    }
}

/// A read interrupted by a signal (EINTR) is retried, not taken for an error.
#[test]
fn reader_retries_an_interrupted_read() {
    struct Jumpy<'a> {
        data: &'a [u8],
        interrupt: bool,
    }
    impl Read for Jumpy<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = self.data.len().min(3).min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }
    let data = b"{\"a\":1}\n{\"b\":2}\n";
    let src = Jumpy {
        data,
        interrupt: false,
    };
    let mut r = LineReader::new(src, 0, 64, 1 << 20);
    let mut n = 0;
    while let Some(line) = r.next_line(Framing::ToEof).expect("EINTR is retried") {
        assert!(matches!(line, Line::Text { .. }));
        n += 1;
    }
    assert_eq!((n, r.offset()), (2, data.len() as u64));
}

/// A recorded start longer than the buffer is still checked right after the buffer has moved
/// its bytes down (short lines consumed, small buffer, small reads).
#[test]
fn reader_checks_a_long_recorded_start_across_buffer_moves() {
    let data: Vec<u8> = (0..120)
        .flat_map(|i| format!("{{\"n\":{i:03}}}\n").into_bytes())
        .collect();
    for chunk in [7, 50, 300] {
        let mut r = LineReader::new(Trickle { data: &data, chunk }, 0, 64, 1 << 20);
        r.expect_head(&data[..900]);
        let mut n = 0;
        while r.next_line(Framing::Follow).expect("same start").is_some() {
            n += 1;
        }
        assert_eq!((n, r.expected_head()), (120, &b""[..]), "chunk {chunk}");

        let mut other = data.clone();
        other[850] = b'9';
        let mut r = LineReader::new(
            Trickle {
                data: &other,
                chunk,
            },
            0,
            64,
            1 << 20,
        );
        r.expect_head(&data[..900]);
        let err = loop {
            match r.next_line(Framing::Follow) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("a different start was not noticed (chunk {chunk})"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, ReadError::Rewritten), "{err}");
    }
}

/// Any other read error is the caller's to handle, not retried.
#[test]
fn reader_reports_a_failed_read() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }
    let mut r = LineReader::new(Broken, 0, 64, 1 << 20);
    let err = r.next_line(Framing::ToEof).unwrap_err();
    assert_eq!(err.to_string(), "disk on fire");
}

/// After a long line, the buffer goes back to the resting size, which live mode sets smaller
/// than a backfill's (memory only, hence checked through `capacity()`).
#[test]
fn reader_returns_to_its_resting_size() {
    let mut data = vec![b'x'; 100_000];
    data.extend_from_slice(b"\nab\n");
    let mut r = LineReader::new(io::Cursor::new(data), 0, 64 << 10, 1 << 20);
    assert!(matches!(
        r.next_line(Framing::Follow).unwrap(),
        Some(Line::Text { bytes, .. }) if bytes.len() == 100_000
    ));
    assert!(r.capacity() >= 100_000);
    r.set_resting_size(4096);
    assert!(r.capacity() <= 4096, "{}", r.capacity());
    assert!(matches!(
        r.next_line(Framing::Follow).unwrap(),
        Some(Line::Text { bytes: b"ab", .. })
    ));
    assert!(r.capacity() <= 4096);
}

/// Following: a line is taken only with its newline; what is held is `pending()`, and
/// `take_partial` takes it as a one-shot run would. `restart` continues with another source at
/// an offset (a BOM is skipped only at offset 0).
#[test]
fn reader_follow_take_partial_and_restart() {
    let mut r = LineReader::new(io::Cursor::new(b"ab\nhalf".to_vec()), 0, 64, 1 << 20);
    assert_eq!(
        r.next_line(Framing::Follow).unwrap(),
        Some(Line::Text {
            bytes: b"ab",
            offset: 0
        })
    );
    assert_eq!(r.next_line(Framing::Follow).unwrap(), None);
    assert_eq!((r.offset(), r.pending()), (3, 4));
    assert_eq!(
        r.take_partial(),
        Some(Line::Text {
            bytes: b"half",
            offset: 3
        })
    );
    assert_eq!((r.offset(), r.pending()), (7, 0));
    assert_eq!(r.take_partial(), None);

    r.restart(io::Cursor::new(b"\xEF\xBB\xBFx\ny\n".to_vec()), 0);
    assert_eq!(
        r.next_line(Framing::Follow).unwrap(),
        Some(Line::Text {
            bytes: b"x",
            offset: 3
        })
    );
    r.restart(io::Cursor::new(b"\xEF\xBB\xBFz\n".to_vec()), 50);
    assert_eq!(
        r.next_line(Framing::Follow).unwrap(),
        Some(Line::Text {
            bytes: b"\xEF\xBB\xBFz",
            offset: 50
        })
    );
    assert_eq!(r.offset(), 55);
}

/// A source that no longer starts as recorded is refused with an error that says so and that
/// is [`ReadError::Rewritten`]; a seeded tail is the fingerprint until lines are read.
#[test]
fn reader_refuses_a_rewritten_source_and_keeps_the_fingerprint() {
    let mut r = LineReader::new(io::Cursor::new(b"{\"b\":1}\n".to_vec()), 0, 64, 1 << 20);
    r.expect_head(b"{\"a\":1}\n");
    assert_eq!(r.expected_head(), b"{\"a\":1}\n");
    let err = r.next_line(Framing::Follow).unwrap_err();
    assert!(matches!(err, ReadError::Rewritten));
    // The refused bytes are not held as input.
    assert_eq!(r.pending(), 0);
    assert!(err.to_string().contains("rewritten"), "{err}");
    assert!(matches!(
        ReadError::from(io::Error::other("other")),
        ReadError::Io(_)
    ));

    // The recorded start is checked only by a reader that starts at offset 0 and has read
    // nothing yet; otherwise it is ignored.
    let mut r = LineReader::new(io::Cursor::new(b"zz\n".to_vec()), 10, 64, 1 << 20);
    r.expect_head(&[b'a'; 64]);
    assert!(r.expected_head().is_empty());
    assert!(r.next_line(Framing::Follow).unwrap().is_some());
    let mut r = LineReader::new(io::Cursor::new(b"ab\ncd\n".to_vec()), 0, 64, 1 << 20);
    assert!(r.next_line(Framing::Follow).unwrap().is_some());
    r.expect_head(b"xx\nyy\n");
    assert!(r.expected_head().is_empty());
    assert!(r.next_line(Framing::Follow).unwrap().is_some());

    let mut r = LineReader::new(io::Cursor::new(b"xy\n".to_vec()), 100, 64, 1 << 20);
    r.seed_tail(&[b'.'; 100]);
    assert_eq!((r.tail(), r.offset()), (&[b'.'; 64][..], 100));
    assert!(r.next_line(Framing::ToEof).unwrap().is_some());
    let mut want = vec![b'.'; 61];
    want.extend_from_slice(b"xy\n");
    assert_eq!((r.tail(), r.offset()), (&want[..], 103));
}
