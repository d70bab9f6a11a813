//! Differential check of one input line: `ingestor`'s own line → row path
//! (`batch::Builder::push`, the code the binary runs) against an independent
//! model of `schema.md` built on `serde_json`.
//!
//! # The oracle
//!
//! Nothing here calls `ingestor::scan::envelope` or `ingestor::scan::json`. All JSON lexing of
//! keys, strings (escapes, surrogates, control characters) and scalars
//! (numbers, `true`/`false`/`null`) is done by `serde_json`'s stream
//! deserializer; the hand-written part only steps over white space, `{`, `:`,
//! `,`, `}`, and checks nested values for balance. That last part is not
//! serde_json's job: `schema.md` keeps a nested object/array raw and asks only
//! that it be *balanced* ("its brackets matched outside strings"), which
//! serde_json cannot judge (it would reject `[1,,2]`). `tests/oracle/mod.rs`
//! leaves that case to handwritten tests; here it is modelled, so random
//! input can exercise it.
//!
//! Settled reading of `schema.md` (version 2): the metadata text "is a JSON
//! object" when it has a valid top level by the same rule as the envelope (so
//! a balanced-but-invalid nested value inside it is allowed). `tests/oracle`
//! applies the same rule.
//!
//! As a check of the oracle itself, whenever `serde_json` accepts the whole
//! line as an object (`serde_json::Value`, `preserve_order`, whose duplicate
//! keys keep their first place and take their last value, as `JSON.parse`),
//! the oracle must accept it too and agree with it on every member.
//!
//! # Comparison
//!
//! Accepted vs bad vs blank; a bad line's `raw` must be the line and its
//! `reason` non-empty. Every TEXT column byte for byte (`Cell::Text` or
//! `Cell::Null` only). `extra` is parsed back (with the oracle's parser) into
//! `(decoded key, raw value)` pairs and compared in order. The two INTEGER
//! columns are compared as SQLite stores them (see [`same_integer_cell`]); a
//! decimal integer outside i64 must be the BLOB of its exact text.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;

use ingestor::scan::batch::{Batch, Builder, COLUMNS, Cell};
use ingestor::input::reader::Line;
use rusqlite::Connection;
use rusqlite::types::Value as Sql;
use serde_json::value::RawValue;

/// Top-level keys with their own column; every other key goes to `extra`.
pub const KNOWN_KEYS: [&str; 8] = [
    "event",
    "t",
    "flow_id",
    "round",
    "data_count",
    "sid",
    "metadata",
    "line",
];

/// `(decoded key, raw JSON text of the value)`, in input order, duplicates kept.
pub type Members = Vec<(String, String)>;

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// End (exclusive) of the balanced nested value opening at `open`: brackets
/// matched by kind outside strings; a string runs to an unescaped `"`
/// (a `\` takes the next character whatever it is).
fn balanced_end(text: &str, open: usize) -> Result<usize, String> {
    let mut stack = Vec::new();
    let mut in_string = false;
    let mut escape = false;
    for (i, c) in text[open..].char_indices() {
        if in_string {
            if escape {
                escape = false;
            } else if c == '\\' {
                escape = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => stack.push('}'),
            '[' => stack.push(']'),
            '}' | ']' => {
                if stack.pop() != Some(c) {
                    return Err(format!("mismatched {c:?} at {}", open + i));
                }
                if stack.is_empty() {
                    return Ok(open + i + c.len_utf8());
                }
            }
            _ => {}
        }
    }
    Err(format!("nested value at {open} is not closed"))
}

/// Parses `text` as one object with a valid top level (schema.md's rule) and
/// returns its members.
pub fn parse_object(text: &str) -> Result<Members, String> {
    let b = text.as_bytes();
    let mut pos = skip_ws(b, 0);
    if b.get(pos) != Some(&b'{') {
        return Err(format!("no '{{' at {pos}"));
    }
    pos = skip_ws(b, pos + 1);
    let mut members = Vec::new();
    if b.get(pos) == Some(&b'}') {
        pos += 1;
    } else {
        loop {
            if b.get(pos) != Some(&b'"') {
                return Err(format!("no key at {pos}"));
            }
            let mut keys = serde_json::Deserializer::from_str(&text[pos..]).into_iter::<String>();
            let key = match keys.next() {
                Some(Ok(k)) => k,
                Some(Err(e)) => return Err(format!("key at {pos}: {e}")),
                None => return Err(format!("no key at {pos}")),
            };
            pos = skip_ws(b, pos + keys.byte_offset());
            if b.get(pos) != Some(&b':') {
                return Err(format!("no ':' at {pos}"));
            }
            pos = skip_ws(b, pos + 1);
            let start = pos;
            let end = match b.get(pos) {
                None => return Err(format!("no value at {pos}")),
                Some(b'{' | b'[') => balanced_end(text, pos)?,
                Some(_) => {
                    let mut values = serde_json::Deserializer::from_str(&text[pos..])
                        .into_iter::<Box<RawValue>>();
                    let raw = match values.next() {
                        Some(Ok(v)) => v,
                        Some(Err(e)) => return Err(format!("value at {pos}: {e}")),
                        None => return Err(format!("no value at {pos}")),
                    };
                    let end = pos + values.byte_offset();
                    assert_eq!(raw.get(), &text[pos..end], "oracle bug: raw value span");
                    if raw.get().starts_with('"') {
                        // Escapes, surrogate pairs, control characters.
                        serde_json::from_str::<String>(raw.get())
                            .map_err(|e| format!("string at {pos} does not decode: {e}"))?;
                    }
                    end
                }
            };
            members.push((key, text[start..end].to_owned()));
            pos = skip_ws(b, end);
            match b.get(pos) {
                Some(b',') => pos = skip_ws(b, pos + 1),
                Some(b'}') => {
                    pos += 1;
                    break;
                }
                _ => return Err(format!("no ',' or '}}' at {pos}")),
            }
        }
    }
    pos = skip_ws(b, pos);
    if pos != b.len() {
        return Err(format!("data after the object at {pos}"));
    }
    Ok(members)
}

fn last<'a>(members: &'a Members, key: &str) -> Option<&'a str> {
    members
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn last_non_null<'a>(members: &'a Members, key: &str) -> Option<&'a str> {
    last(members, key).filter(|v| *v != "null")
}

/// The text a column gets bound with: absent/null → NULL, a string → its
/// decoded value, anything else → its raw JSON text.
fn bound_text(raw: Option<&str>) -> Option<String> {
    match raw? {
        "null" => None,
        s if s.starts_with('"') => Some(serde_json::from_str(s).expect("validated string")),
        s => Some(s.to_owned()),
    }
}

/// What the oracle expects of one row. Every column is the text it is bound
/// with (`None` = NULL); the INTEGER columns then go through SQLite affinity.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedRow {
    /// The 13 columns of `COLUMNS` except `extra` (which is `None` here).
    pub cells: [Option<String>; 13],
    /// `extra` as pairs, repeated keys folded (first place, last value).
    pub extra: Option<Members>,
}

#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Expected {
    Blank,
    Bad(String),
    Row(ExpectedRow),
}

const DATA_COUNT: usize = 4;
const META_PID: usize = 7;
const EXTRA: usize = 11;

/// The oracle: what `schema.md` says one line (without terminator) becomes.
pub fn expect(line: &[u8]) -> Expected {
    if line.iter().all(|&b| is_ws(b)) {
        return Expected::Blank;
    }
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => return Expected::Bad(format!("invalid UTF-8: {e}")),
    };
    let members = match parse_object(text) {
        Ok(m) => m,
        Err(e) => return Expected::Bad(e),
    };
    let metadata_raw = last(&members, "metadata");
    let metadata = bound_text(metadata_raw);
    let meta: Option<Members> = match metadata_raw {
        Some(v) if v.starts_with('"') || v.starts_with('{') => {
            parse_object(metadata.as_deref().expect("not null")).ok()
        }
        _ => None,
    };
    let meta_key = |key: &str| {
        bound_text(
            meta.as_ref()
                .and_then(|m| last_non_null(m, key))
                .or_else(|| last_non_null(&members, key)),
        )
    };
    let mut extra: Members = Vec::new();
    for (k, v) in members
        .iter()
        .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
    {
        match extra.iter_mut().find(|(seen, _)| seen == k) {
            Some(slot) => slot.1.clone_from(v),
            None => extra.push((k.clone(), v.clone())),
        }
    }
    let top = |key: &str| bound_text(last(&members, key));
    Expected::Row(ExpectedRow {
        cells: [
            top("event"),
            top("t"),
            top("flow_id"),
            top("round"),
            top("data_count"),
            top("sid"),
            meta_key("ver"),
            meta_key("pid"),
            meta_key("cwd"),
            meta_key("turn_id"),
            metadata,
            None,
            top("line"),
        ],
        extra: (!extra.is_empty()).then_some(extra),
    })
}

/// Self-check of the oracle: where serde_json accepts the whole line as an
/// object, the oracle must have accepted it with the same members.
fn check_oracle(line: &[u8], exp: &Expected) -> Result<(), String> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(line)
    else {
        return Ok(());
    };
    let Expected::Row(row) = exp else {
        return Err(format!(
            "oracle bug: serde_json accepts the object but the oracle says {exp:?}"
        ));
    };
    let text = std::str::from_utf8(line).expect("serde_json accepted it");
    let members = parse_object(text).expect("row, so it parses");
    for (k, v) in &map {
        let mine = last(&members, k).ok_or(format!("oracle bug: key {k:?} missing"))?;
        let mine: serde_json::Value = serde_json::from_str(mine).expect("valid JSON value");
        if &mine != v {
            return Err(format!("oracle bug: key {k:?}: {mine} vs serde_json {v}"));
        }
    }
    let unknown: Vec<&String> = map
        .keys()
        .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
        .collect();
    let extra_keys: Vec<&String> = row.extra.iter().flatten().map(|(k, _)| k).collect();
    if unknown != extra_keys {
        return Err(format!(
            "oracle bug: extra keys {extra_keys:?} vs serde_json's {unknown:?}"
        ));
    }
    Ok(())
}

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

/// Bound TEXT that SQLite would store in an INTEGER-affinity column, as
/// SQLite itself computes it (memoised; one in-memory table per thread).
pub fn integer_affinity(text: &str) -> Sql {
    thread_local! {
        static AFF: RefCell<(Connection, HashMap<String, Sql>)> = RefCell::new({
            let conn = Connection::open_in_memory().expect("in-memory sqlite");
            conn.execute_batch("CREATE TABLE t(v INTEGER)").expect("create");
            (conn, HashMap::new())
        });
    }
    AFF.with(|aff| {
        let (conn, cache) = &mut *aff.borrow_mut();
        if let Some(v) = cache.get(text) {
            return v.clone();
        }
        conn.execute("DELETE FROM t", []).expect("delete");
        conn.execute("INSERT INTO t(v) VALUES (?1)", [text])
            .expect("insert");
        let v: Sql = conn
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .expect("select");
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(text.to_owned(), v.clone());
        v
    })
}

/// Whether `text` is a decimal integer (`-?[0-9]+`, leading zeros allowed)
/// that does not fit 64 bits: schema.md stores it as its exact text, which
/// only a BLOB keeps (SQLite turns integer-looking TEXT into a rounded REAL).
pub fn is_integer_beyond_i64(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && text.parse::<i64>().is_err()
}

/// Whether the binary's cell for an INTEGER column ends up stored as the
/// oracle's bound text would be. A decimal integer outside i64 must be the
/// BLOB of its exact text. Otherwise the binary binds an integer when the
/// text is an in-range decimal integer and the text itself for anything else;
/// the oracle binds the text. So: the same text is the same stored value; an
/// `Int(v)` matches when SQLite's INTEGER affinity turns the oracle's text into
/// exactly `v` (decided by SQLite, except for the canonical spelling of `v`,
/// which SQLite documents to store as that integer); and different texts
/// still match if SQLite stores both as the same value.
pub fn same_integer_cell(expected: &str, actual: &ActualCell) -> bool {
    if is_integer_beyond_i64(expected) {
        return *actual == ActualCell::Blob(expected.as_bytes().to_vec());
    }
    match actual {
        ActualCell::Null | ActualCell::Blob(_) => false,
        ActualCell::Int(v) => {
            v.to_string() == expected || integer_affinity(expected) == Sql::Integer(*v)
        }
        ActualCell::Text(t) => {
            t.as_slice() == expected.as_bytes()
                || std::str::from_utf8(t)
                    .is_ok_and(|t| integer_affinity(t) == integer_affinity(expected))
        }
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
pub fn compare(line: &[u8], exp: &Expected, act: &Actual) -> Result<(), String> {
    let mut report = String::new();
    match (exp, act) {
        (Expected::Blank, Actual::Blank) => {}
        (Expected::Bad(_), Actual::Bad { reason, raw }) => {
            if raw.as_slice() != line {
                let _ = writeln!(report, "bad line raw is b\"{}\"", escaped(raw));
            }
            if reason.trim().is_empty() {
                let _ = writeln!(report, "bad line reason is empty");
            }
        }
        (Expected::Row(e), Actual::Row(a)) => {
            for (i, name) in COLUMNS.iter().enumerate() {
                let ok = match (i, &e.cells[i], &a[i]) {
                    (EXTRA, _, _) => match (&e.extra, &a[i]) {
                        (None, ActualCell::Null) => true,
                        (Some(pairs), ActualCell::Text(t)) => std::str::from_utf8(t)
                            .ok()
                            .and_then(|t| parse_object(t).ok())
                            .is_some_and(|got| &got == pairs),
                        _ => false,
                    },
                    (_, None, ActualCell::Null) => true,
                    (DATA_COUNT | META_PID, Some(want), got) => same_integer_cell(want, got),
                    (_, Some(want), ActualCell::Text(got)) => got.as_slice() == want.as_bytes(),
                    _ => false,
                };
                if !ok {
                    let want = if i == EXTRA {
                        format!("{:?}", e.extra)
                    } else {
                        match &e.cells[i] {
                            None => "NULL".into(),
                            Some(s) => format!("b\"{}\"", escaped(s.as_bytes())),
                        }
                    };
                    let _ = writeln!(
                        report,
                        "column {name}: oracle {want}, ingestor {}",
                        show_cell(&a[i])
                    );
                }
            }
        }
        _ => {
            let _ = writeln!(report, "oracle: {exp:?}\ningestor: {act:?}");
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
    let exp = expect(line);
    if let Err(e) = check_oracle(line, &exp) {
        panic!("{e}\nline b\"{}\"", escaped(line));
    }
    let primer = expect(PRIMER);
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
        panic!("DIVERGENCE from the oracle:\n{}", failures.join("\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: &str) -> ExpectedRow {
        match expect(line.as_bytes()) {
            Expected::Row(r) => r,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn oracle_follows_the_contract() {
        assert_eq!(expect(b" \t\r"), Expected::Blank);
        for bad in [
            &b"[1]"[..],
            b"{}{}",
            b"{\"a\":1",
            b"{\"a\":1,}",
            b"{\"a\":01}",
            b"{\"a\":1x}",
            b"{\"a\":tru}",
            b"{\"a\":true\"\"}",
            b"{\"a\":\"\\ud800\"}",
            b"{\"\\udc00\":1}",
            b"{\"a\":\"\t\"}",
            b"{\"a\":[1,2}]}",
            b"{\"a\":[1,2}",
            b"\xEF\xBB\xBF{}",
            b"{\"a\":\"\xff\"}",
        ] {
            assert!(matches!(expect(bad), Expected::Bad(_)), "{}", escaped(bad));
        }
        let r = row(r#" {"x":[1,,2],"y":{"a"},"z":["]"],"w":1e400} "#);
        assert_eq!(
            r.extra.unwrap(),
            [
                ("x".into(), "[1,,2]".into()),
                ("y".into(), r#"{"a"}"#.into()),
                ("z".into(), r#"["]"]"#.into()),
                ("w".into(), "1e400".into()),
            ]
        );
        let r = row(
            r#"{"event":"a","ev\u0065nt":"b","x":1,"y":0,"x":2,"\u0079":3,"metadata":"{\"pid\":null,\"cwd\":\"/m\"}","pid":"81551","data_count":"007"}"#,
        );
        assert_eq!(r.cells[0].as_deref(), Some("b"));
        assert_eq!(r.cells[DATA_COUNT].as_deref(), Some("007"));
        assert_eq!(r.cells[META_PID].as_deref(), Some("81551"));
        assert_eq!(r.cells[8].as_deref(), Some("/m"));
        assert_eq!(
            r.extra.unwrap(),
            [
                ("x".into(), "2".into()),
                ("y".into(), "3".into()),
                ("pid".into(), r#""81551""#.into()),
            ]
        );
        assert!(is_integer_beyond_i64("9223372036854775808"));
        assert!(is_integer_beyond_i64("-000009223372036854775809"));
        assert!(!is_integer_beyond_i64("-000009223372036854775808"));
        assert!(!is_integer_beyond_i64("1e400"));
        assert!(!is_integer_beyond_i64("+9223372036854775808"));
        assert!(!is_integer_beyond_i64(" 9223372036854775808"));
        assert_eq!(integer_affinity("007"), Sql::Integer(7));
        assert_eq!(integer_affinity("1.5"), Sql::Real(1.5));
        assert_eq!(integer_affinity("x"), Sql::Text("x".into()));
    }

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
            let kind = match expect(line) {
                Expected::Blank => "blank",
                Expected::Bad(_) if strict => "bad (but serde_json Value accepts: not an object)",
                Expected::Bad(_) => "bad",
                Expected::Row(r) => {
                    let c = &r.cells;
                    for (name, hit) in [
                        ("rows with metadata", c[10].is_some()),
                        (
                            "rows with a meta_* column",
                            c[6..10].iter().any(Option::is_some),
                        ),
                        ("rows with data_count", c[DATA_COUNT].is_some()),
                        ("rows with meta_pid", c[META_PID].is_some()),
                        ("rows with extra", r.extra.is_some()),
                        ("rows with line", c[12].is_some()),
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
