//! Differential check of one input line: `ingestor`'s own line → row path
//! (`batch::Builder::push`, the code the binary runs) against `contract-model`
//! (`../crates/contract-model`), the serde_json model of `schema.md` that the
//! integration tests' oracle (`tests/oracle`) uses too: the fuzzer and the
//! tests cannot disagree on what the contract says.
//!
//! # The model
//!
//! Nothing in it calls `ingestor::scan`: keys, strings (escapes, surrogates,
//! control characters) and scalars are lexed and decoded by `serde_json`'s
//! stream deserializer; the hand-written part only steps over white space,
//! `{`, `:`, `,`, `}`, and judges nested values by schema.md's rule: they need
//! only be *balanced* ("its brackets matched outside strings"), which
//! serde_json cannot judge (it would reject `[1,,2]`). A metadata text "is a
//! JSON object" by the same rule (schema.md, settled readings).
//!
//! As a check of the model itself ([`contract_model::self_check`]), whenever
//! `serde_json` accepts the whole line as an object, the model must accept it
//! too and agree with it on every member and on the order of `extra`'s keys.
//!
//! # Comparison
//!
//! Accepted vs bad vs blank; a bad line's `raw` must be the line and its
//! `reason` non-empty. Every column is compared as SQLite would store the
//! binary's cell ([`stored`]) with the model's stored value: TEXT byte for
//! byte; INTEGER after SQLite's own INTEGER affinity on bound text (a decimal
//! integer outside i64 must be the BLOB of its exact text). `extra` is parsed
//! back (with the model's parser) into `(decoded key, raw value)` pairs and
//! compared in order.

use std::fmt::Write as _;

use contract_model::{INTEGER_COLUMNS, Outcome, Value, integer_affinity, parse_object};
use ingestor::input::reader::Line;
use ingestor::scan::batch::{Batch, Builder, COLUMNS, Cell};

/// What `ingestor` made of the line.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Actual {
    Blank,
    Bad { reason: String, raw: Vec<u8> },
    Row([ActualCell; 13]),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ActualCell {
    Null,
    Int(i64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

/// A line the builder sees first in every run, so that state left over from a
/// previous line (scratch vectors, metadata scanner) is exercised too.
pub const PRIMER: &[u8] = br#"{"event":"turn.token_count","t":"2025-11-18T21:55:53.328","line":"data: {\"pid\":1,\"sid\":\"x\"}","metadata":"{\"turn_id\":\"1\",\"ver\":\"codex.0.58.0\",\"pid\":59784,\"cwd\":\"/Users/s\"}","flow_id":"f","round":"r","data_count":6,"sid":"s","pid":"7","x":[1,{"a":"]"}],"\u0079":true}"#;

/// Runs `lines` through one `Builder` into one `Batch`, as the binary does,
/// and reads each line's outcome back out of the batch.
pub fn run_ingestor(lines: &[&[u8]]) -> Vec<Actual> {
    let mut batch = Batch::default();
    let mut builder = Builder::new(usize::MAX);
    let mut out = Vec::new();
    for (n, &bytes) in lines.iter().enumerate() {
        let (rows, bad, blank) = (batch.rows.len(), batch.bad.len(), batch.blank);
        builder.push(
            &mut batch,
            &Line::Text {
                bytes,
                offset: n as u64,
            },
        );
        let added = (
            batch.rows.len() - rows,
            batch.bad.len() - bad,
            batch.blank - blank,
        );
        out.push(match added {
            (0, 0, 1) => Actual::Blank,
            (0, 1, 0) => {
                let b = batch.bad[bad];
                assert_eq!(b.offset, n as u64, "bad line offset");
                Actual::Bad {
                    reason: String::from_utf8(batch.text(b.reason.0, b.reason.1).to_vec())
                        .expect("reason is UTF-8"),
                    raw: batch.text(b.raw.0, b.raw.1).to_vec(),
                }
            }
            (1, 0, 0) => Actual::Row(batch.rows[rows].cells.map(|c| match c {
                Cell::Null => ActualCell::Null,
                Cell::Int(v) => ActualCell::Int(v),
                Cell::Text { start, len } => ActualCell::Text(batch.text(start, len).to_vec()),
                Cell::Blob { start, len } => ActualCell::Blob(batch.text(start, len).to_vec()),
            })),
            other => panic!("one line gave (rows, bad, blank) = {other:?}"),
        });
    }
    assert_eq!(batch.lines, lines.len() as u64, "batch.lines");
    out
}

/// What SQLite would store for the binary's cell in column `name`: the binary binds an
/// integer, a blob, or text, and SQLite applies the column's affinity to text.
pub fn stored(name: &str, cell: &ActualCell) -> Value {
    match cell {
        ActualCell::Null => Value::Null,
        ActualCell::Int(v) => Value::Integer(*v),
        ActualCell::Blob(b) => Value::Blob(b.clone()),
        // Not UTF-8: the batch promises UTF-8; a blob can never equal the model's text.
        ActualCell::Text(t) => match std::str::from_utf8(t) {
            Err(_) => Value::Blob(t.clone()),
            Ok(s) if INTEGER_COLUMNS.contains(&name) => integer_affinity(s),
            Ok(s) => Value::Text(s.to_owned()),
        },
    }
}

/// Printable form of possibly non-UTF-8 bytes (Rust byte-string escapes).
pub fn escaped(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

fn show_cell(c: &ActualCell) -> String {
    match c {
        ActualCell::Null => "NULL".into(),
        ActualCell::Int(v) => format!("Int({v})"),
        ActualCell::Text(t) => format!("Text(b\"{}\")", escaped(t)),
        ActualCell::Blob(b) => format!("Blob(b\"{}\")", escaped(b)),
    }
}

/// Compares one line's outcome; `Err` describes every difference.
pub fn compare(line: &[u8], exp: &Outcome, act: &Actual) -> Result<(), String> {
    let mut report = String::new();
    match (exp, act) {
        (Outcome::Blank, Actual::Blank) => {}
        (Outcome::Bad(_), Actual::Bad { reason, raw }) => {
            if raw.as_slice() != line {
                let _ = writeln!(report, "bad line raw is b\"{}\"", escaped(raw));
            }
            if reason.trim().is_empty() {
                let _ = writeln!(report, "bad line reason is empty");
            }
        }
        (Outcome::Row(e), Actual::Row(a)) => {
            for (name, cell) in COLUMNS.iter().zip(a) {
                let (ok, want) = if *name == "extra" {
                    let want = e.extra_pairs();
                    let ok = match (&want, cell) {
                        (None, ActualCell::Null) => true,
                        (Some(pairs), ActualCell::Text(t)) => parse_object(t).is_ok_and(|got| {
                            got.iter()
                                .map(|m| (&m.key, &m.value))
                                .eq(pairs.iter().map(|(k, v)| (k, v)))
                        }),
                        _ => false,
                    };
                    (ok, format!("{want:?}"))
                } else {
                    let want = e.column(name).expect("the model has every column");
                    (*want == stored(name, cell), format!("{want:?}"))
                };
                if !ok {
                    let _ = writeln!(
                        report,
                        "column {name}: model {want}, ingestor {}",
                        show_cell(cell)
                    );
                }
            }
        }
        _ => {
            let _ = writeln!(report, "model: {exp:?}\ningestor: {act:?}");
        }
    }
    if report.is_empty() {
        Ok(())
    } else {
        Err(format!("line b\"{}\"\n{report}", escaped(line)))
    }
}

/// The whole differential check of one fuzz input, taken as one line: as the
/// reader frames it, one final `\r` is not part of the line. Panics on any
/// divergence. Inputs holding a `\n` are not one line and are skipped.
pub fn check(data: &[u8]) {
    if data.contains(&b'\n') {
        return;
    }
    let line = data.strip_suffix(b"\r").unwrap_or(data);
    let exp = contract_model::line(line);
    if let Err(e) = contract_model::self_check(line, &exp) {
        panic!("{e}\nline b\"{}\"", escaped(line));
    }
    let primer = contract_model::line(PRIMER);
    // The primer first (left-over state), then the line twice (its own).
    let act = run_ingestor(&[PRIMER, line, line]);
    let mut failures = Vec::new();
    if let Err(e) = compare(PRIMER, &primer, &act[0]) {
        failures.push(e);
    }
    for a in &act[1..] {
        if let Err(e) = compare(line, &exp, a) {
            failures.push(e);
        }
    }
    if !failures.is_empty() {
        panic!("DIVERGENCE from the model:\n{}", failures.join("\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handwritten_lines_agree() {
        for line in [
            &b"{}"[..],
            PRIMER,
            b"{\"event\":\"e\",\"x\":[1,,2]}",
            b"{\"metadata\":{\"pid\":\"0012\",\"x\":[}]},\"pid\":3}",
            b"{\"metadata\":\"[1]\",\"cwd\":{\"a\":1}}",
            b"{\"data_count\":-0,\"metadata\":\"{\\\"pid\\\":\\\" 12 \\\"}\"}",
            b"{\"data_count\":9223372036854775808}",
            b"{\"data_count\":\"-00000000000000000000009223372036854775809\",\"pid\":\"00000000000000000000000042\"}",
            b"{\"metadata\":\"{\\\"pid\\\":99999999999999999999,\\\"x\\\":[1,,2]}\"}",
            b"{\"metadata\":{\"pid\":null,\"x\":{\"a\"}},\"pid\":7}",
            b"{\"event\":\"\\ud800Xudc00\"}",
            b"{\"x\":[\"ab\\",
            b"{\"line\":\"\\u0000\\ud83d\\ude00\"}",
        ] {
            check(line);
        }
    }

    /// What a corpus exercises: `FUZZ_STATS_DIR=DIR cargo test --release --lib
    /// corpus_stats -- --ignored --nocapture` (replays it too).
    #[test]
    #[ignore]
    fn corpus_stats() {
        let dir = std::env::var("FUZZ_STATS_DIR")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/envelope").to_owned());
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for entry in std::fs::read_dir(dir).expect("dir") {
            let data = std::fs::read(entry.expect("entry").path()).expect("read");
            *counts.entry("files").or_default() += 1;
            if data.contains(&b'\n') {
                *counts.entry("skipped (holds \\n)").or_default() += 1;
                continue;
            }
            check(&data);
            let line = data.strip_suffix(b"\r").unwrap_or(&data);
            let strict = serde_json::from_slice::<serde_json::Value>(line).is_ok();
            let kind = match contract_model::line(line) {
                Outcome::Blank => "blank",
                Outcome::Bad(_) if strict => "bad (but serde_json Value accepts: not an object)",
                Outcome::Bad(_) => "bad",
                Outcome::Row(r) => {
                    let meta = [&r.meta_ver, &r.meta_pid, &r.meta_cwd, &r.meta_turn_id];
                    for (name, hit) in [
                        ("rows with metadata", r.metadata != Value::Null),
                        (
                            "rows with a meta_* column",
                            meta.iter().any(|v| **v != Value::Null),
                        ),
                        ("rows with data_count", r.data_count != Value::Null),
                        ("rows with meta_pid", r.meta_pid != Value::Null),
                        ("rows with extra", !r.extra.is_empty()),
                        ("rows with line", r.line != Value::Null),
                    ] {
                        if hit {
                            *counts.entry(name).or_default() += 1;
                        }
                    }
                    if strict {
                        "row (serde_json accepts it too)"
                    } else {
                        "row (serde_json rejects: balanced-only nested value or big number)"
                    }
                }
            };
            *counts.entry(kind).or_default() += 1;
        }
        for (k, v) in counts {
            println!("{v:>8}  {k}");
        }
    }

    /// Replays the committed corpus (`cargo test --lib` on any toolchain).
    #[test]
    fn corpus_replays() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/envelope");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("corpus/envelope") {
            check(&std::fs::read(entry.expect("entry").path()).expect("read"));
            n += 1;
        }
        assert!(n > 0, "empty corpus");
    }
}

/// Structure-aware inputs: the fuzz bytes drive a small grammar of envelopes
/// (known, look-alike and escaped keys, duplicates, metadata as an escaped
/// string or a raw object with inner nulls and integer-ish texts, balanced
/// and unbalanced nested values, odd numbers), then optionally a few raw byte
/// edits. Byte-level mutation alone rarely builds the combinations that only
/// differ in meaning (an inner `"pid":null` next to a top-level `"pid"`, say),
/// since they add no coverage; this target makes them common.
pub mod structured {
    use libfuzzer_sys::arbitrary::{Result, Unstructured};

    const KEYS: &[&str] = &[
        "event",
        "t",
        "flow_id",
        "round",
        "data_count",
        "sid",
        "metadata",
        "line",
        "pid",
        "cwd",
        "ver",
        "turn_id",
        "released",
        "x",
        "",
        "ev\\u0065nt",
        "\\u0070id",
        "c\\u0077d",
        "metad\\u0061ta",
        "d\\u0061ta_count",
        "line\\u0000",
        "Event",
        "pid ",
        "\\/",
        "\\ud83d\\ude00",
        "é",
    ];
    const META_KEYS: &[&str] = &[
        "pid",
        "cwd",
        "ver",
        "turn_id",
        "\\u0070id",
        "a",
        "metadata",
        "event",
    ];
    const PIECES: &[&str] = &[
        "a",
        "pid",
        "é",
        "😀",
        "\\\"",
        "\\\\",
        "\\/",
        "\\b",
        "\\f",
        "\\n",
        "\\r",
        "\\t",
        "\\u0041",
        "\\u001b",
        "\\u0000",
        "\\u00e9",
        "\\ud83d\\ude00",
        "\\uDBFF\\uDFFF",
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        " ",
        "\\\\\\\"",
        "data: {\\\"pid\\\":1,\\\"cwd\\\":\\\"/x\\\"}",
        "\\\"event\\\":\\\"fake\\\"",
        "\u{7f}",
        "\u{2028}",
    ];
    const BAD_PIECES: &[&str] = &[
        "\\ud800",
        "\\udc00",
        "\\ud800\\u0041",
        "\\x",
        "\\u12G4",
        "\t",
        "\u{1}",
        "\\",
    ];
    const INTEGERISH: &[&str] = &[
        "0",
        "7",
        "-0",
        "007",
        "-007",
        "59784",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "00000000000000000000001",
        "1.0",
        "1.5",
        "1e3",
        "1E+2",
        " 12 ",
        "12 ",
        "+5",
        "0x10",
        "12abc",
        "",
        "-",
        "1e400",
        "٣",
    ];
    /// Valid JSON numbers for INTEGER columns.
    const JSON_INTS: &[&str] = &[
        "0",
        "7",
        "-0",
        "59784",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "1.0",
        "1e3",
        "1.5",
        "-1e-400",
        "2E+1",
    ];
    const NUMBERS: &[&str] = &[
        "0",
        "-0",
        "12",
        "007",
        "01",
        "1.",
        ".5",
        "-",
        "1.5e+3",
        "1e400",
        "-1e-400",
        "3.0",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "1x",
        "1_000",
        "2e",
        "0e0",
        "-01",
    ];
    const LITERALS: &[&str] = &[
        "true", "false", "null", "nul", "nulls", "truex", "tru", "NULL",
    ];

    fn pick<'a>(u: &mut Unstructured, from: &[&'a str]) -> Result<&'a str> {
        u.choose(from).copied()
    }

    fn ws(u: &mut Unstructured, out: &mut String) -> Result<()> {
        if u.ratio(1, 6)? {
            out.push_str(pick(u, &[" ", "\t", "\r", "  ", " \t\r "])?);
        }
        Ok(())
    }

    fn string_body(u: &mut Unstructured, out: &mut String) -> Result<()> {
        for _ in 0..u.int_in_range(0..=5)? {
            if u.ratio(1, 40)? {
                out.push_str(pick(u, BAD_PIECES)?);
            } else {
                out.push_str(pick(u, PIECES)?);
            }
        }
        Ok(())
    }

    /// JSON-escapes `text` into a string literal, choosing among equivalent
    /// spellings (`\"` or `\u0022`, `/` or `\/`, ...).
    fn escape(u: &mut Unstructured, text: &str, out: &mut String) -> Result<()> {
        out.push('"');
        for c in text.chars() {
            let alt = u.ratio(1, 5)?;
            match c {
                '"' if alt => out.push_str("\\u0022"),
                '"' => out.push_str("\\\""),
                '\\' if alt => out.push_str("\\u005C"),
                '\\' => out.push_str("\\\\"),
                '/' if alt => out.push_str("\\/"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c if alt && c.is_ascii_alphabetic() => {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                }
                c => out.push(c),
            }
        }
        out.push('"');
        Ok(())
    }

    fn nested(u: &mut Unstructured, depth: u32, out: &mut String) -> Result<()> {
        let object = u.arbitrary::<bool>()?;
        out.push(if object { '{' } else { '[' });
        for i in 0..u.int_in_range(0..=3)? {
            if i > 0 {
                out.push_str(pick(u, &[",", ",", ",", ",,", ""])?);
            }
            if object {
                out.push('"');
                out.push_str(pick(u, META_KEYS)?);
                out.push_str("\":");
            }
            value(u, depth + 1, out)?;
        }
        if u.ratio(1, 30)? {
            out.push_str(pick(u, &["]", "}", "\"", "\\\"", "[", "{"])?);
        }
        out.push(if object { '}' } else { ']' });
        Ok(())
    }

    /// An object text with meta keys, for a metadata value.
    fn meta_object(u: &mut Unstructured, depth: u32) -> Result<String> {
        let mut s = String::new();
        ws(u, &mut s)?;
        s.push('{');
        for i in 0..u.int_in_range(0..=5)? {
            if i > 0 {
                s.push(',');
            }
            ws(u, &mut s)?;
            s.push('"');
            s.push_str(pick(u, META_KEYS)?);
            s.push_str("\":");
            match u.int_in_range(0..=5)? {
                0 => s.push_str("null"),
                1 => s.push_str(pick(u, JSON_INTS)?),
                2 => {
                    s.push('"');
                    s.push_str(pick(u, INTEGERISH)?);
                    s.push('"');
                }
                _ => value(u, depth + 1, &mut s)?,
            }
            ws(u, &mut s)?;
        }
        s.push('}');
        if u.ratio(1, 20)? {
            s.push_str(pick(u, &["x", "}", " ", "{}", ","])?);
        }
        Ok(s)
    }

    fn value(u: &mut Unstructured, depth: u32, out: &mut String) -> Result<()> {
        let choice = if depth > 3 {
            u.int_in_range(0..=2)?
        } else {
            u.int_in_range(0..=7)?
        };
        match choice {
            0 | 1 => {
                out.push('"');
                string_body(u, out)?;
                out.push('"');
            }
            2 => {
                let from = if u.arbitrary()? { NUMBERS } else { LITERALS };
                out.push_str(pick(u, from)?);
            }
            3 => {
                out.push('"');
                out.push_str(pick(u, INTEGERISH)?);
                out.push('"');
            }
            4 | 5 => nested(u, depth, out)?,
            _ => {
                let inner = meta_object(u, depth)?;
                if u.arbitrary()? {
                    escape(u, &inner, out)?;
                } else {
                    out.push_str(&inner);
                }
            }
        }
        Ok(())
    }

    /// One line built from `u`.
    pub fn line(u: &mut Unstructured) -> Result<Vec<u8>> {
        let mut s = String::new();
        ws(u, &mut s)?;
        s.push('{');
        let n = u.int_in_range(0..=10)?;
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            ws(u, &mut s)?;
            s.push('"');
            if u.ratio(1, 12)? {
                string_body(u, &mut s)?;
            } else {
                s.push_str(pick(u, KEYS)?);
            }
            s.push('"');
            ws(u, &mut s)?;
            s.push(':');
            ws(u, &mut s)?;
            value(u, 0, &mut s)?;
            ws(u, &mut s)?;
        }
        s.push('}');
        ws(u, &mut s)?;
        let mut bytes = s.into_bytes();
        // A few raw edits, to reach the bad-line paths from valid shapes.
        if !bytes.is_empty() && u.ratio(1, 8)? {
            for _ in 0..u.int_in_range(1..=3)? {
                let at = u.choose_index(bytes.len() + 1)?;
                match u.int_in_range(0..=2)? {
                    0 => bytes.insert(at, u.arbitrary()?),
                    1 if at < bytes.len() => drop(bytes.remove(at)),
                    _ => bytes.truncate(at),
                }
                if bytes.is_empty() {
                    break;
                }
            }
        }
        Ok(bytes)
    }
}
