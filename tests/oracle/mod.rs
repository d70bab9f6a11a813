//! The integration tests' oracle: what a one-shot run over an input must write, and a comparison
//! of that with the database, with reports that name the step that failed.
//!
//! What a line becomes is not decided here: [`contract_model`] (`crates/contract-model`) is the
//! one serde_json model of `schema.md`, shared with the differential fuzzer in `fuzz/`, and
//! independent of the code under test. This module adds what only a whole input and a database
//! have: line numbers and offsets, the `--max-line-bytes` limit, and reading rows back.

use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};

use contract_model::{Outcome, parse_object};
use rusqlite::types::Value;

use crate::util::{BadRow, SseRow};

pub use contract_model::frame;

/// `raw` of an over-long line holds this many bytes at most (one MiB).
pub const RAW_CAP: usize = 1 << 20;

/// Knobs of the model that mirror flags of the binary.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Mirrors `--max-line-bytes N`: a line longer than this (terminator excluded) is a bad line,
    /// and so is a line whose row would be bigger than this ([`contract_model::Row::size`]).
    pub max_line_bytes: Option<usize>,
}

/// A row the oracle expects in `sse_lines`: the model's row, where it stands in the input.
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
    fn new(row: contract_model::Row, line_no: usize, src_offset: usize) -> ExpectedRow {
        let extra = row.extra_pairs();
        ExpectedRow {
            line_no,
            src_offset,
            event: row.event,
            t: row.t,
            flow_id: row.flow_id,
            round: row.round,
            data_count: row.data_count,
            sid: row.sid,
            meta_ver: row.meta_ver,
            meta_pid: row.meta_pid,
            meta_cwd: row.meta_cwd,
            meta_turn_id: row.meta_turn_id,
            metadata: row.metadata,
            extra,
            line: row.line,
        }
    }

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

/// The expected outcome of a one-shot run over `input` with default options.
pub fn expect(input: &[u8]) -> Expected {
    expect_with(input, &Options::default())
}

/// The expected outcome of a one-shot run over `input`.
pub fn expect_with(input: &[u8], opts: &Options) -> Expected {
    let mut exp = Expected::default();
    for f in frame(input) {
        exp.lines += 1;
        let too_long = |why: String| ExpectedBad {
            line_no: f.line_no,
            src_offset: f.offset,
            raw: f.bytes[..f.bytes.len().min(RAW_CAP)].to_vec(),
            full_len: f.bytes.len(),
            too_long: true,
            why,
        };
        if contract_model::is_blank(f.bytes) {
            exp.blank += 1;
            exp.blank_offsets.push(f.offset);
            continue;
        }
        if let Some(max) = opts.max_line_bytes
            && f.bytes.len() > max
        {
            exp.bad.push(too_long(format!("longer than {max} bytes")));
            continue;
        }
        match contract_model::line(f.bytes) {
            Outcome::Blank => unreachable!("blank lines are skipped above"),
            Outcome::Row(row) => match opts.max_line_bytes {
                Some(max) if row.size() > max => exp.bad.push(too_long(format!(
                    "row of {} bytes, more than {max}",
                    row.size()
                ))),
                _ => exp.rows.push(ExpectedRow::new(row, f.line_no, f.offset)),
            },
            Outcome::Bad(why) => exp.bad.push(ExpectedBad {
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

// ---------------------------------------------------------------------------------------------
// The check, in named steps: each establishes one thing and reports in its own words, and the
// report says which step found what, so a failure names what broke.

/// What every step looks at: the input, the oracle's expectations and what the binary wrote.
struct Written<'a> {
    input: &'a [u8],
    exp: &'a Expected,
    rows: &'a [SseRow],
    bad: &'a [BadRow],
    /// `src_offset` of each `bad_lines` row (`None`: not an INTEGER).
    bad_offsets: Vec<Option<i64>>,
}

impl Written<'_> {
    /// The input line at `offset`, shortened.
    fn line_at(&self, offset: usize) -> String {
        let rest = &self.input[offset.min(self.input.len())..];
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        show_bytes(&rest[..end])
    }

    fn is_actual_bad(&self, offset: usize) -> bool {
        self.bad_offsets.contains(&Some(offset as i64))
    }
}

/// At most this many differences are described per step.
const SHOWN: usize = 10;

/// Checks that rows and bad lines written by the binary are exactly those expected.
pub fn check(input: &[u8], exp: &Expected, rows: &[SseRow], bad: &[BadRow]) -> Result<(), String> {
    let w = Written {
        input,
        exp,
        rows,
        bad,
        bad_offsets: bad
            .iter()
            .map(|b| match b.src_offset {
                Value::Integer(i) => Some(i),
                _ => None,
            })
            .collect(),
    };
    /// Runs each step, naming it in the report when it finds something.
    macro_rules! steps {
        ($($step:ident),* $(,)?) => {{
            let mut report = String::new();
            $(
                let found = $step(&w);
                if !found.is_empty() {
                    let _ = write!(report, "step `{}`:\n{found}", stringify!($step));
                }
            )*
            report
        }};
    }
    let report = steps!(
        ids_ascend_in_input_order,
        bad_lines_are_exactly_the_expected_lines,
        bad_lines_hold_as_many_lines_as_expected,
        bad_lines_keep_their_bytes_and_a_reason,
        bad_lines_are_in_input_order,
        rows_hold_the_expected_columns,
        sse_lines_holds_as_many_rows_as_expected,
    );
    if report.is_empty() {
        Ok(())
    } else {
        Err(report)
    }
}

/// `id` ascends in both tables (input order).
fn ids_ascend_in_input_order(w: &Written) -> String {
    let mut out = String::new();
    let rows = w.rows.iter().map(|r| r.id);
    let bad = w.bad.iter().map(|b| b.id);
    for (table, ids) in [
        ("sse_lines", rows.collect::<Vec<_>>()),
        ("bad_lines", bad.collect()),
    ] {
        if let Some(pair) = ids.windows(2).find(|p| p[0] >= p[1]) {
            let _ = writeln!(
                out,
                "{table} ids not ascending: {} then {}",
                pair[0], pair[1]
            );
        }
    }
    out
}

/// Every line the oracle calls bad is in `bad_lines`, and nothing else is (matched by offset).
fn bad_lines_are_exactly_the_expected_lines(w: &Written) -> String {
    let mut out = String::new();
    let mut misclassified = 0;
    for b in &w.exp.bad {
        if !w.is_actual_bad(b.src_offset) {
            misclassified += 1;
            if misclassified <= SHOWN {
                let _ = writeln!(
                    out,
                    "line {} (offset {}) should be a bad line ({}) but is not in bad_lines: {}",
                    b.line_no,
                    b.src_offset,
                    b.why,
                    w.line_at(b.src_offset)
                );
            }
        }
    }
    let expected: Vec<usize> = w.exp.bad.iter().map(|b| b.src_offset).collect();
    for (b, off) in w.bad.iter().zip(&w.bad_offsets) {
        match off {
            Some(o) if expected.contains(&(*o as usize)) => {}
            _ => {
                misclassified += 1;
                if misclassified <= SHOWN {
                    let line = off.map(|o| w.line_at(o as usize)).unwrap_or_default();
                    let _ = writeln!(
                        out,
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
    out
}

/// `bad_lines` holds as many lines as the oracle expects.
fn bad_lines_hold_as_many_lines_as_expected(w: &Written) -> String {
    if w.bad.len() == w.exp.bad.len() {
        return String::new();
    }
    format!(
        "bad_lines holds {} lines, expected {}\n",
        w.bad.len(),
        w.exp.bad.len()
    )
}

/// A bad line present on both sides (matched by offset; order is its own step) keeps the line's
/// bytes exactly (capped for an over-long line) and says why in a non-empty `reason`.
fn bad_lines_keep_their_bytes_and_a_reason(w: &Written) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for (i, e) in w.exp.bad.iter().enumerate() {
        let Some(a) = w
            .bad
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
            if shown <= SHOWN {
                let _ = writeln!(
                    out,
                    "bad line #{i} (line {}, offset {}, {}):\n    {}",
                    e.line_no,
                    e.src_offset,
                    e.why,
                    diffs.join("\n    ")
                );
            }
        }
    }
    out
}

/// `bad_lines`, in id order, have ascending offsets.
fn bad_lines_are_in_input_order(w: &Written) -> String {
    let order: Vec<i64> = w.bad_offsets.iter().flatten().copied().collect();
    if order.is_sorted() {
        return String::new();
    }
    "bad_lines ids are not in input order\n".into()
}

/// Each row holds, column by column, what the model says of its line. Rows are aligned with
/// input lines: every non-blank line the binary did not put in `bad_lines` should be a row, in
/// order; if that does not add up (counted in the steps on either table), rows are compared
/// naively in order.
fn rows_hold_the_expected_columns(w: &Written) -> String {
    let mut out = String::new();
    let mut stored: Vec<(usize, Option<&ExpectedRow>)> = w
        .exp
        .rows
        .iter()
        .map(|r| (r.src_offset, Some(r)))
        .chain(w.exp.bad.iter().map(|b| (b.src_offset, None)))
        .filter(|(o, _)| !w.is_actual_bad(*o))
        .collect();
    stored.sort_by_key(|(o, _)| *o);
    let pairs: Vec<(Option<&ExpectedRow>, &SseRow)> = if stored.len() == w.rows.len() {
        stored.iter().map(|(_, e)| *e).zip(w.rows).collect()
    } else {
        w.exp.rows.iter().map(Some).zip(w.rows).collect()
    };
    let mut shown = 0;
    for (i, (e, a)) in pairs.into_iter().enumerate() {
        // `None`: the oracle expected a bad line here; the bad-line steps report it.
        let Some(e) = e else { continue };
        let diffs = diff_row(e, a);
        if !diffs.is_empty() {
            shown += 1;
            if shown <= SHOWN {
                let _ = writeln!(
                    out,
                    "row #{i} (id {}, input line {}, offset {}): {}\n    {}",
                    a.id,
                    e.line_no,
                    e.src_offset,
                    w.line_at(e.src_offset),
                    diffs.join("\n    ")
                );
            }
        }
    }
    if shown > SHOWN {
        let _ = writeln!(out, "... {shown} rows differ in all");
    }
    out
}

/// `sse_lines` holds as many rows as the oracle expects: the pairing of the step above stops at
/// the shorter side, so missing or extra rows at the end fail here.
fn sse_lines_holds_as_many_rows_as_expected(w: &Written) -> String {
    if w.rows.len() == w.exp.rows.len() {
        return String::new();
    }
    format!(
        "sse_lines holds {} rows, expected {}\n",
        w.rows.len(),
        w.exp.rows.len()
    )
}

/// The check itself: it passes on a faithful database, and each kind of damage is reported by
/// the step named for it (and only that one).
#[cfg(test)]
mod check_steps {
    use super::*;

    const INPUT: &[u8] = b"{\"event\":\"a\",\"x\":[1,,2]}\nnot json\n\n{\"event\":\"b\"}\n[1]\n";

    /// What a faithful binary would have written for [`INPUT`].
    fn written(exp: &Expected) -> (Vec<SseRow>, Vec<BadRow>) {
        let rows = exp
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| SseRow {
                id: i as i64 + 1,
                source_id: Value::Integer(1),
                src_offset: Value::Integer(r.src_offset as i64),
                event: r.event.clone(),
                t: r.t.clone(),
                flow_id: r.flow_id.clone(),
                round: r.round.clone(),
                data_count: r.data_count.clone(),
                sid: r.sid.clone(),
                meta_ver: r.meta_ver.clone(),
                meta_pid: r.meta_pid.clone(),
                meta_cwd: r.meta_cwd.clone(),
                meta_turn_id: r.meta_turn_id.clone(),
                metadata: r.metadata.clone(),
                extra: match &r.extra {
                    None => Value::Null,
                    Some(pairs) => Value::Text(format!(
                        "{{{}}}",
                        pairs
                            .iter()
                            .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
                            .collect::<Vec<_>>()
                            .join(",")
                    )),
                },
                line: r.line.clone(),
            })
            .collect();
        let bad = exp
            .bad
            .iter()
            .enumerate()
            .map(|(i, b)| BadRow {
                id: i as i64 + 1,
                source_id: Value::Integer(1),
                src_offset: Value::Integer(b.src_offset as i64),
                reason: Value::Text("not an object".into()),
                raw: Value::Blob(b.raw.clone()),
            })
            .collect();
        (rows, bad)
    }

    /// Something done to a faithful database.
    type Damage = fn(&mut Vec<SseRow>, &mut Vec<BadRow>);

    /// The steps a report names, in order.
    fn failed_steps(
        exp: &Expected,
        damage: impl FnOnce(&mut Vec<SseRow>, &mut Vec<BadRow>),
    ) -> Vec<String> {
        let (mut rows, mut bad) = written(exp);
        damage(&mut rows, &mut bad);
        match check(INPUT, exp, &rows, &bad) {
            Ok(()) => Vec::new(),
            Err(report) => report
                .split("step `")
                .skip(1)
                .map(|s| s[..s.find('`').expect("closing backquote")].to_owned())
                .collect(),
        }
    }

    #[test]
    fn each_kind_of_damage_names_its_step() {
        let exp = expect(INPUT);
        assert_eq!((exp.rows.len(), exp.bad.len(), exp.blank), (2, 2, 1));
        assert_eq!(failed_steps(&exp, |_, _| {}), Vec::<String>::new());
        let cases: [(&str, Damage); 7] = [
            ("ids_ascend_in_input_order", |rows, _| rows[1].id = 0),
            ("bad_lines_are_exactly_the_expected_lines", |_, bad| {
                bad[0].src_offset = Value::Integer(1)
            }),
            ("bad_lines_hold_as_many_lines_as_expected", |_, bad| {
                bad.push(bad[1].clone());
                bad[2].id = 3;
            }),
            ("bad_lines_keep_their_bytes_and_a_reason", |_, bad| {
                bad[1].reason = Value::Text(" ".into())
            }),
            ("bad_lines_are_in_input_order", |_, bad| {
                let first = bad[0].clone();
                bad[0].src_offset = bad[1].src_offset.clone();
                bad[0].raw = bad[1].raw.clone();
                bad[1].src_offset = first.src_offset;
                bad[1].raw = first.raw;
            }),
            ("rows_hold_the_expected_columns", |rows, _| {
                rows[0].extra = Value::Text(r#"{"x":[1,2]}"#.into())
            }),
            ("sse_lines_holds_as_many_rows_as_expected", |rows, _| {
                rows.pop();
            }),
        ];
        for (step, damage) in cases {
            assert_eq!(failed_steps(&exp, damage), [step], "damage for {step}");
        }
    }
}
