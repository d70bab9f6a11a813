//! An independent model of `schema.md`, built on `serde_json` and SQLite's own type affinity.
//!
//! Nothing here calls the code under test. Given the bytes of a whole input, [`expect`] says which
//! rows `sse_lines` must hold (in order), which lines belong in `bad_lines` (with their offsets and
//! raw bytes) and how many blank lines were skipped.
//!
//! Parsing strategy. `serde` itself is not a dependency of this crate, so a custom
//! `Deserialize`/`Visitor` cannot be written here, and `serde_json::Map` folds duplicate keys.
//! Instead the top level is walked by hand, and every key and every scalar value is lexed and
//! decoded by a `serde_json` stream deserializer (grammar, escapes, UTF-8, numbers, literals; a
//! string must decode to a Rust `String`, which rejects lone surrogates). The hand-written part
//! only steps over white space, `{`, `:`, `,` and `}`, and judges a nested object or array by
//! the contract's rule, which is not serde_json's: it need only be *balanced* (brackets matched
//! by kind outside strings; a `\` in a string takes the next character), since it is kept raw.
//! The same rule decides whether a metadata text is a JSON object (schema.md, settled readings).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};

use rusqlite::Connection;
use rusqlite::types::Value;
use serde_json::value::RawValue;

use crate::util::{BadRow, SseRow};

/// `raw` of an over-long line holds this many bytes at most (one MiB).
pub const RAW_CAP: usize = 1 << 20;

/// Top-level keys that have their own column; everything else goes to `extra`.
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

/// JSON white space allowed inside a line (a `\n` cannot occur inside a line).
fn is_json_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Knobs of the model that mirror flags of the binary.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Mirrors `--max-line-bytes N`: a line longer than this (terminator excluded) is a bad line,
    /// and so is a line whose row would be bigger than this ([`row_size`]).
    pub max_line_bytes: Option<usize>,
}

/// One line as framed from the input.
#[derive(Clone, Debug)]
pub struct Framed<'a> {
    /// 1-based line number in the source (blank lines count).
    pub line_no: usize,
    /// Offset of the line's first byte in the source.
    pub offset: usize,
    /// The line's bytes without `\n` and without one trailing `\r`.
    pub bytes: &'a [u8],
}

/// Splits a whole input into lines as `schema.md` describes.
pub fn frame(input: &[u8]) -> Vec<Framed<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    if input.starts_with(b"\xEF\xBB\xBF") {
        pos = 3;
    }
    let mut line_no = 0;
    while pos < input.len() {
        line_no += 1;
        let (end, next) = match input[pos..].iter().position(|&b| b == b'\n') {
            Some(i) => (pos + i, pos + i + 1),
            None => (input.len(), input.len()),
        };
        let mut bytes = &input[pos..end];
        if let Some(stripped) = bytes.strip_suffix(b"\r") {
            bytes = stripped;
        }
        out.push(Framed {
            line_no,
            offset: pos,
            bytes,
        });
        pos = next;
    }
    out
}

/// A row the oracle expects in `sse_lines`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedRow {
    pub line_no: usize,
    pub src_offset: usize,
    pub event: Value,
    pub t: Value,
    pub flow_id: Value,
    pub round: Value,
    pub data_count: Value,
    pub sid: Value,
    pub meta_ver: Value,
    pub meta_pid: Value,
    pub meta_cwd: Value,
    pub meta_turn_id: Value,
    pub metadata: Value,
    /// `(decoded key, raw value text)` pairs in input order; `None` means SQL NULL.
    pub extra: Option<Vec<(String, String)>>,
    pub line: Value,
}

impl ExpectedRow {
    /// The twelve plain columns, by name, in contract order (`extra` is compared apart).
    pub fn plain_columns(&self) -> [(&'static str, &Value); 12] {
        [
            ("event", &self.event),
            ("t", &self.t),
            ("flow_id", &self.flow_id),
            ("round", &self.round),
            ("data_count", &self.data_count),
            ("sid", &self.sid),
            ("meta_ver", &self.meta_ver),
            ("meta_pid", &self.meta_pid),
            ("meta_cwd", &self.meta_cwd),
            ("meta_turn_id", &self.meta_turn_id),
            ("metadata", &self.metadata),
            ("line", &self.line),
        ]
    }
}

/// A line the oracle expects in `bad_lines`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedBad {
    pub line_no: usize,
    pub src_offset: usize,
    /// Expected `raw`: the line's bytes, capped at [`RAW_CAP`] for over-long lines.
    pub raw: Vec<u8>,
    /// Full length of the line (terminator excluded).
    pub full_len: usize,
    /// Whether the line was refused for its length alone.
    pub too_long: bool,
    /// Why the oracle refused it (for diagnostics only; never compared with `reason`).
    pub why: String,
}

/// Everything a one-shot run over an input must produce.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    pub rows: Vec<ExpectedRow>,
    pub bad: Vec<ExpectedBad>,
    pub blank: usize,
    /// Offsets of the blank lines.
    pub blank_offsets: Vec<usize>,
    /// Lines seen, blank ones included.
    pub lines: usize,
}

/// One top-level member of a JSON object.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// The decoded key.
    pub key: String,
    /// The key's JSON text as written, quotes included.
    pub raw_key: String,
    /// The value's JSON text as written.
    pub value: String,
}

/// A JSON object's top-level members, in input order, duplicates kept.
pub type Members = Vec<Member>;

/// End (exclusive) of the balanced nested value opening at `open`: brackets matched by kind
/// outside strings; a string runs to an unescaped `"` (a `\` takes the next character).
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
                    return Err(format!("mismatched {c:?} at byte {}", open + i));
                }
                if stack.is_empty() {
                    return Ok(open + i + 1);
                }
            }
            _ => {}
        }
    }
    Err(format!("nested value at byte {open} is not closed"))
}

/// The first JSON value of `text` (a key or a scalar), lexed by serde_json: its length.
fn lex_one(text: &str) -> Result<usize, String> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Box<RawValue>>();
    match values.next() {
        Some(Ok(raw)) => {
            let len = values.byte_offset();
            assert_eq!(raw.get(), &text[..len], "oracle bug: raw value span");
            if raw.get().starts_with('"') {
                // Escapes, surrogate pairs, control characters.
                serde_json::from_str::<String>(raw.get())
                    .map_err(|e| format!("string does not decode: {e}"))?;
            }
            Ok(len)
        }
        Some(Err(e)) => Err(format!("serde_json: {e}")),
        None => Err("no value".into()),
    }
}

/// Parses `text` as one JSON object with a valid top level (schema.md's rule: optional white
/// space, `{`, members, `}`, optional white space; strings that decode, well-formed scalars,
/// balanced nested values) and returns its members.
pub fn parse_object(text: &[u8]) -> Result<Members, String> {
    let text = std::str::from_utf8(text).map_err(|e| format!("invalid UTF-8: {e}"))?;
    let b = text.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < b.len() && is_json_ws(b[i]) {
            i += 1;
        }
        i
    };
    let mut pos = skip_ws(0);
    if b.get(pos) != Some(&b'{') {
        return Err(format!(
            "no '{{' at byte {pos}: the top level is not an object"
        ));
    }
    pos = skip_ws(pos + 1);
    let mut members = Vec::new();
    if b.get(pos) == Some(&b'}') {
        pos += 1;
    } else {
        loop {
            if b.get(pos) != Some(&b'"') {
                return Err(format!("no key at byte {pos}"));
            }
            let key_len = lex_one(&text[pos..]).map_err(|e| format!("key at byte {pos}: {e}"))?;
            let raw_key = &text[pos..pos + key_len];
            let key: String = serde_json::from_str(raw_key).expect("lexed as a string");
            pos = skip_ws(pos + key_len);
            if b.get(pos) != Some(&b':') {
                return Err(format!("no ':' at byte {pos}"));
            }
            pos = skip_ws(pos + 1);
            let start = pos;
            let end = match b.get(pos) {
                None => return Err(format!("no value at byte {pos}")),
                Some(b'{' | b'[') => balanced_end(text, pos)?,
                Some(_) => {
                    pos + lex_one(&text[pos..]).map_err(|e| format!("value at byte {pos}: {e}"))?
                }
            };
            members.push(Member {
                key,
                raw_key: raw_key.to_owned(),
                value: text[start..end].to_owned(),
            });
            pos = skip_ws(end);
            match b.get(pos) {
                Some(b',') => pos = skip_ws(pos + 1),
                Some(b'}') => {
                    pos += 1;
                    break;
                }
                _ => return Err(format!("no ',' or '}}' at byte {pos}")),
            }
        }
    }
    pos = skip_ws(pos);
    if pos != b.len() {
        return Err(format!("data after the object at byte {pos}"));
    }
    Ok(members)
}

/// The JSON text of the last member named `key`, if any.
pub fn last<'a>(members: &'a Members, key: &str) -> Option<&'a str> {
    members
        .iter()
        .rev()
        .find(|m| m.key == key)
        .map(|m| m.value.as_str())
}

/// Like [`last`] but a JSON `null` counts as absent.
fn last_non_null<'a>(members: &'a Members, key: &str) -> Option<&'a str> {
    last(members, key).filter(|v| *v != "null")
}

/// Decodes a raw JSON string value.
fn decode(raw: &str) -> String {
    serde_json::from_str(raw).expect("string value validated by parse_object")
}

/// TEXT column rule: absent/null → NULL, string → decoded, anything else → raw JSON text.
fn text_value(raw: Option<&str>) -> Value {
    match raw {
        None => Value::Null,
        Some("null") => Value::Null,
        Some(v) if v.starts_with('"') => Value::Text(decode(v)),
        Some(v) => Value::Text(v.to_owned()),
    }
}

/// SQLite's INTEGER affinity, computed by SQLite itself on an in-memory table.
pub struct Affinity {
    conn: Connection,
    cache: HashMap<String, Value>,
}

impl Default for Affinity {
    fn default() -> Self {
        Self::new()
    }
}

impl Affinity {
    pub fn new() -> Affinity {
        let conn = Connection::open_in_memory().expect("in-memory sqlite");
        conn.execute_batch("CREATE TABLE t(v INTEGER)")
            .expect("create affinity table");
        Affinity {
            conn,
            cache: HashMap::new(),
        }
    }

    /// What SQLite stores when `text` is bound as TEXT into an INTEGER-affinity column.
    pub fn integer(&mut self, text: &str) -> Value {
        if let Some(v) = self.cache.get(text) {
            return v.clone();
        }
        self.conn.execute("DELETE FROM t", []).expect("delete");
        self.conn
            .execute("INSERT INTO t(v) VALUES (?1)", [text])
            .expect("insert");
        let v: Value = self
            .conn
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .expect("select");
        if text.len() < 256 {
            self.cache.insert(text.to_owned(), v.clone());
        }
        v
    }

    /// INTEGER column rule: absent/null → NULL; otherwise the text (a string decoded, anything
    /// else its raw JSON text): a decimal integer outside i64 is its exact text (a BLOB, since
    /// SQLite turns any integer-looking TEXT into a rounded REAL), the rest goes through affinity.
    fn integer_value(&mut self, raw: Option<&str>) -> Value {
        let text = match raw {
            None | Some("null") => return Value::Null,
            Some(v) if v.starts_with('"') => decode(v),
            Some(v) => v.to_owned(),
        };
        let digits = text.strip_prefix('-').unwrap_or(&text);
        if !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && text.parse::<i64>().is_err()
        {
            return Value::Blob(text.into_bytes());
        }
        self.integer(&text)
    }
}

/// `key` inside the metadata object, else the same key at the top level; nulls count as absent.
fn meta_value<'a>(meta: Option<&'a Members>, members: &'a Members, key: &str) -> Option<&'a str> {
    meta.and_then(|m| last_non_null(m, key))
        .or_else(|| last_non_null(members, key))
}

/// The members without a column, for `extra`: as JSON.parse gives them, a repeated key keeps
/// its first place (and spelling) and takes its last value.
fn fold_extra(members: &Members) -> Vec<Member> {
    let mut extra: Vec<Member> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for m in members
        .iter()
        .filter(|m| !KNOWN_KEYS.contains(&m.key.as_str()))
    {
        match at.get(m.key.as_str()) {
            Some(&i) => extra[i].value.clone_from(&m.value),
            None => {
                at.insert(&m.key, extra.len());
                extra.push(m.clone());
            }
        }
    }
    extra
}

/// Builds the expected row of one valid line.
pub fn expected_row(
    members: &Members,
    aff: &mut Affinity,
    line_no: usize,
    src_offset: usize,
) -> ExpectedRow {
    let metadata_raw = last(members, "metadata");
    let metadata = text_value(metadata_raw);
    // The members of the metadata value, when it is (or holds the text of) a JSON object.
    let meta: Option<Members> = match metadata_raw {
        Some(v) if v.starts_with('"') => parse_object(decode(v).as_bytes()).ok(),
        Some(v) if v.starts_with('{') => parse_object(v.as_bytes()).ok(),
        _ => None,
    };
    let meta_key = |key: &str| meta_value(meta.as_ref(), members, key);
    // JSON.parse semantics: a repeated key keeps its first place, takes its last value.
    let extra: Vec<(String, String)> = fold_extra(members)
        .into_iter()
        .map(|m| (m.key.clone(), m.value.clone()))
        .collect();
    ExpectedRow {
        line_no,
        src_offset,
        event: text_value(last(members, "event")),
        t: text_value(last(members, "t")),
        flow_id: text_value(last(members, "flow_id")),
        round: text_value(last(members, "round")),
        data_count: aff.integer_value(last(members, "data_count")),
        sid: text_value(last(members, "sid")),
        meta_ver: text_value(meta_key("ver")),
        meta_pid: aff.integer_value(meta_key("pid")),
        meta_cwd: text_value(meta_key("cwd")),
        meta_turn_id: text_value(meta_key("turn_id")),
        metadata,
        extra: if extra.is_empty() { None } else { Some(extra) },
        line: text_value(last(members, "line")),
    }
}

/// Bytes of a row's values as SQLite's record holds them (an integer or a real counts 8): what
/// must fit the limit of one record. `extra` is counted as the binary writes it: each key as
/// written where it first stood, `:`, its last value, separated by commas, in braces.
pub fn row_size(row: &ExpectedRow, members: &Members) -> usize {
    let value_size = |v: &Value| match v {
        Value::Null => 0,
        Value::Integer(_) | Value::Real(_) => 8,
        Value::Text(s) => s.len(),
        Value::Blob(b) => b.len(),
    };
    let extra = fold_extra(members);
    let extra_len = match extra.len() {
        0 => 0,
        n => {
            2 + (n - 1)
                + extra
                    .iter()
                    .map(|m| m.raw_key.len() + 1 + m.value.len())
                    .sum::<usize>()
        }
    };
    row.plain_columns()
        .iter()
        .map(|(_, v)| value_size(v))
        .sum::<usize>()
        + extra_len
}

/// The expected outcome of a one-shot run over `input` with default options.
pub fn expect(input: &[u8]) -> Expected {
    expect_with(input, &Options::default())
}

/// The expected outcome of a one-shot run over `input`.
pub fn expect_with(input: &[u8], opts: &Options) -> Expected {
    let mut aff = Affinity::new();
    let mut exp = Expected::default();
    for f in frame(input) {
        exp.lines += 1;
        if f.bytes.iter().all(|&b| matches!(b, b' ' | b'\t' | b'\r')) {
            exp.blank += 1;
            exp.blank_offsets.push(f.offset);
            continue;
        }
        if let Some(max) = opts.max_line_bytes
            && f.bytes.len() > max
        {
            exp.bad.push(ExpectedBad {
                line_no: f.line_no,
                src_offset: f.offset,
                raw: f.bytes[..f.bytes.len().min(RAW_CAP)].to_vec(),
                full_len: f.bytes.len(),
                too_long: true,
                why: format!("longer than {max} bytes"),
            });
            continue;
        }
        match parse_object(f.bytes) {
            Ok(members) => {
                let row = expected_row(&members, &mut aff, f.line_no, f.offset);
                let size = row_size(&row, &members);
                match opts.max_line_bytes {
                    Some(max) if size > max => exp.bad.push(ExpectedBad {
                        line_no: f.line_no,
                        src_offset: f.offset,
                        raw: f.bytes[..f.bytes.len().min(RAW_CAP)].to_vec(),
                        full_len: f.bytes.len(),
                        too_long: true,
                        why: format!("row of {size} bytes, more than {max}"),
                    }),
                    _ => exp.rows.push(row),
                }
            }
            Err(why) => exp.bad.push(ExpectedBad {
                line_no: f.line_no,
                src_offset: f.offset,
                raw: f.bytes.to_vec(),
                full_len: f.bytes.len(),
                too_long: false,
                why,
            }),
        }
    }
    exp
}

// ---------------------------------------------------------------------------------------------
// Comparison with what the binary wrote, with reports that stay short even for 100 MB values.

/// A short, printable description of a possibly huge value.
pub fn show(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Integer(i) => format!("INTEGER {i}"),
        Value::Real(r) => format!("REAL {r:?}"),
        Value::Text(s) => format!("TEXT {}", show_bytes(s.as_bytes())),
        Value::Blob(b) => format!("BLOB {}", show_bytes(b)),
    }
}

/// A short, printable description of possibly huge bytes.
pub fn show_bytes(b: &[u8]) -> String {
    const LIMIT: usize = 160;
    if b.len() <= LIMIT {
        return format!("{:?}", String::from_utf8_lossy(b));
    }
    let mut h = DefaultHasher::new();
    b.hash(&mut h);
    format!(
        "[{} bytes, hash {:016x}] {:?} ... {:?}",
        b.len(),
        h.finish(),
        String::from_utf8_lossy(&b[..100]),
        String::from_utf8_lossy(&b[b.len() - 40..])
    )
}

fn value_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Text(s) => Some(s.as_bytes()),
        Value::Blob(b) => Some(b),
        _ => None,
    }
}

/// Describes how two values differ; `None` when equal.
pub fn diff_values(expected: &Value, actual: &Value) -> Option<String> {
    if expected == actual {
        return None;
    }
    let mut msg = format!(
        "expected {}\n      actual   {}",
        show(expected),
        show(actual)
    );
    if let (Some(e), Some(a)) = (value_bytes(expected), value_bytes(actual)) {
        let at = e
            .iter()
            .zip(a)
            .position(|(x, y)| x != y)
            .unwrap_or(e.len().min(a.len()));
        let from = at.saturating_sub(20);
        let _ = write!(
            msg,
            "\n      first difference at byte {at}: expected {:?} actual {:?}",
            String::from_utf8_lossy(&e[from..e.len().min(at + 40)]),
            String::from_utf8_lossy(&a[from..a.len().min(at + 40)])
        );
    }
    Some(msg)
}

/// Parses an `extra` value from the database into comparable pairs.
pub fn actual_extra(v: &Value) -> Result<Option<Vec<(String, String)>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Text(s) => parse_object(s.as_bytes())
            .map(|m| Some(m.into_iter().map(|m| (m.key, m.value)).collect()))
            .map_err(|e| format!("extra is not a valid JSON object ({e}): {}", show(v))),
        other => Err(format!("extra is not TEXT: {}", show(other))),
    }
}

/// Compares one row; returns the list of differences.
pub fn diff_row(expected: &ExpectedRow, actual: &SseRow) -> Vec<String> {
    let mut out = Vec::new();
    for ((name, e), (aname, a)) in expected
        .plain_columns()
        .into_iter()
        .zip(actual.plain_columns())
    {
        assert_eq!(name, aname);
        if let Some(d) = diff_values(e, a) {
            out.push(format!("{name}: {d}"));
        }
    }
    match actual_extra(&actual.extra) {
        Ok(a) if a == expected.extra => {}
        Ok(a) => out.push(format!(
            "extra: expected {:?}\n      actual   {:?} (text {})",
            expected.extra,
            a,
            show(&actual.extra)
        )),
        Err(e) => out.push(format!("extra: {e}; expected {:?}", expected.extra)),
    }
    out
}

/// Checks that rows and bad lines written by the binary are exactly those expected.
pub fn check(input: &[u8], exp: &Expected, rows: &[SseRow], bad: &[BadRow]) -> Result<(), String> {
    let mut report = String::new();
    let line_at = |offset: usize| -> String {
        let rest = &input[offset.min(input.len())..];
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        show_bytes(&rest[..end])
    };

    // Ids ascend in input order.
    for w in rows.windows(2) {
        if w[0].id >= w[1].id {
            let _ = writeln!(
                report,
                "sse_lines ids not ascending: {} then {}",
                w[0].id, w[1].id
            );
            break;
        }
    }
    for w in bad.windows(2) {
        if w[0].id >= w[1].id {
            let _ = writeln!(
                report,
                "bad_lines ids not ascending: {} then {}",
                w[0].id, w[1].id
            );
            break;
        }
    }

    // Classification: which lines went to bad_lines.
    let expected_bad: Vec<usize> = exp.bad.iter().map(|b| b.src_offset).collect();
    let actual_bad: Vec<Option<i64>> = bad
        .iter()
        .map(|b| match b.src_offset {
            Value::Integer(i) => Some(i),
            _ => None,
        })
        .collect();
    let mut misclassified = 0;
    for b in &exp.bad {
        if !actual_bad.contains(&Some(b.src_offset as i64)) {
            misclassified += 1;
            if misclassified <= 10 {
                let _ = writeln!(
                    report,
                    "line {} (offset {}) should be a bad line ({}) but is not in bad_lines: {}",
                    b.line_no,
                    b.src_offset,
                    b.why,
                    line_at(b.src_offset)
                );
            }
        }
    }
    for (b, off) in bad.iter().zip(&actual_bad) {
        match off {
            Some(o) if expected_bad.contains(&(*o as usize)) => {}
            _ => {
                misclassified += 1;
                if misclassified <= 10 {
                    let line = off.map(|o| line_at(o as usize)).unwrap_or_default();
                    let _ = writeln!(
                        report,
                        "bad_lines id {} (src_offset {}, reason {}) is not an expected bad line: {}",
                        b.id,
                        show(&b.src_offset),
                        show(&b.reason),
                        line
                    );
                }
            }
        }
    }

    // Bad lines, in order.
    if bad.len() != exp.bad.len() {
        let _ = writeln!(
            report,
            "bad_lines holds {} lines, expected {}",
            bad.len(),
            exp.bad.len()
        );
    }
    // Bad lines present on both sides are compared by offset; order is checked apart.
    let mut shown = 0;
    for (i, e) in exp.bad.iter().enumerate() {
        let Some(a) = bad
            .iter()
            .find(|a| a.src_offset == Value::Integer(e.src_offset as i64))
        else {
            continue;
        };
        let mut diffs = Vec::new();
        if let Some(d) = diff_values(&Value::Blob(e.raw.clone()), &a.raw) {
            diffs.push(format!("raw: {d}"));
        }
        match &a.reason {
            Value::Text(s) if !s.trim().is_empty() => {}
            other => diffs.push(format!(
                "reason: expected non-empty TEXT, got {}",
                show(other)
            )),
        }
        if !diffs.is_empty() {
            shown += 1;
            if shown <= 10 {
                let _ = writeln!(
                    report,
                    "bad line #{i} (line {}, offset {}, {}):\n    {}",
                    e.line_no,
                    e.src_offset,
                    e.why,
                    diffs.join("\n    ")
                );
            }
        }
    }
    let actual_order: Vec<i64> = actual_bad.iter().flatten().copied().collect();
    let mut sorted = actual_order.clone();
    sorted.sort_unstable();
    if actual_order != sorted {
        let _ = writeln!(report, "bad_lines ids are not in input order");
    }

    // Align actual rows with input lines: every non-blank line the binary did not put in
    // bad_lines should be a row, in order. If that does not add up, compare naively in order.
    let mut stored: Vec<(usize, Option<&ExpectedRow>)> = exp
        .rows
        .iter()
        .map(|r| (r.src_offset, Some(r)))
        .chain(exp.bad.iter().map(|b| (b.src_offset, None)))
        .filter(|(o, _)| !actual_bad.contains(&Some(*o as i64)))
        .collect();
    stored.sort_by_key(|(o, _)| *o);
    let pairs: Vec<(Option<&ExpectedRow>, &SseRow)> = if stored.len() == rows.len() {
        stored.iter().map(|(_, e)| *e).zip(rows).collect()
    } else {
        exp.rows.iter().map(Some).zip(rows).collect()
    };
    let mut shown = 0;
    for (i, (e, a)) in pairs.into_iter().enumerate() {
        // `None`: the oracle expected a bad line here; already reported above.
        let Some(e) = e else { continue };
        let diffs = diff_row(e, a);
        if !diffs.is_empty() {
            shown += 1;
            if shown <= 10 {
                let _ = writeln!(
                    report,
                    "row #{i} (id {}, input line {}, offset {}): {}\n    {}",
                    a.id,
                    e.line_no,
                    e.src_offset,
                    line_at(e.src_offset),
                    diffs.join("\n    ")
                );
            }
        }
    }
    if shown > 10 {
        let _ = writeln!(report, "... {} rows differ in all", shown);
    }
    // The pairing above stops at the shorter side: missing or extra rows at
    // the end must fail on their own.
    if rows.len() != exp.rows.len() {
        let _ = writeln!(
            report,
            "sse_lines holds {} rows, expected {}",
            rows.len(),
            exp.rows.len()
        );
    }

    if report.is_empty() {
        Ok(())
    } else {
        Err(report)
    }
}
