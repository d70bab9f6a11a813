//! What one line becomes: blank, a bad line, or a row with every column as SQLite stores it.

use std::collections::HashMap;

use rusqlite::types::Value;

use crate::affinity::integer_cell;
use crate::object::{Member, Members, is_json_ws, last, parse_object};

/// Top-level keys that have their own column; every other key goes to `extra`.
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

/// The columns of INTEGER type: their text goes through SQLite's INTEGER affinity.
pub const INTEGER_COLUMNS: [&str; 2] = ["data_count", "meta_pid"];

/// What the contract makes of one line (without its terminator).
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// Empty or only white space: skipped and counted.
    Blank,
    /// Not one JSON object with a valid top level: a `bad_lines` row. The text says why (for
    /// reports; the binary's `reason` is never compared with it).
    Bad(String),
    /// An `sse_lines` row.
    Row(Row),
}

/// An `sse_lines` row as SQLite stores it (`id`, `source_id` and `src_offset` are the caller's).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
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
    /// The members without a column, folded as `JSON.parse` does: a repeated key keeps its first
    /// place (and spelling) and takes its last value. Empty: `extra` is NULL.
    pub extra: Vec<Member>,
    pub line: Value,
}

impl Row {
    /// The twelve plain columns, by name, in contract order (`extra` is compared apart: its
    /// text is a JSON object whose key spelling is free).
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

    /// A plain column by name.
    pub fn column(&self, name: &str) -> Option<&Value> {
        self.plain_columns()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// `extra` as `(decoded key, raw value text)` pairs in order; `None` means SQL NULL. The
    /// binary's `extra` text, parsed back with [`crate::parse_object`], must give the same.
    pub fn extra_pairs(&self) -> Option<Vec<(String, String)>> {
        (!self.extra.is_empty()).then(|| {
            self.extra
                .iter()
                .map(|m| (m.key.clone(), m.value.clone()))
                .collect()
        })
    }

    /// Bytes of the row's values as SQLite's record holds them (an integer or a real counts 8):
    /// what must fit the limit of one record. `extra` is counted as the binary writes it: each
    /// key as written where it first stood, `:`, its last value, separated by commas, in braces.
    pub fn size(&self) -> usize {
        let value_size = |v: &Value| match v {
            Value::Null => 0,
            Value::Integer(_) | Value::Real(_) => 8,
            Value::Text(s) => s.len(),
            Value::Blob(b) => b.len(),
        };
        let extra_len = match self.extra.len() {
            0 => 0,
            n => {
                2 + (n - 1)
                    + self
                        .extra
                        .iter()
                        .map(|m| m.raw_key.len() + 1 + m.value.len())
                        .sum::<usize>()
            }
        };
        self.plain_columns()
            .iter()
            .map(|(_, v)| value_size(v))
            .sum::<usize>()
            + extra_len
    }
}

/// Whether a line is blank: empty or only white space.
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|&b| is_json_ws(b))
}

/// The model: what schema.md says one framed line (without its terminator) becomes.
pub fn line(bytes: &[u8]) -> Outcome {
    if is_blank(bytes) {
        return Outcome::Blank;
    }
    match parse_object(bytes) {
        Ok(members) => Outcome::Row(row(&members)),
        Err(why) => Outcome::Bad(why),
    }
}

/// The last member named `key`, a JSON `null` counting as absent.
fn last_non_null<'a>(members: &'a [Member], key: &str) -> Option<&'a str> {
    last(members, key).filter(|v| *v != "null")
}

/// Decodes a raw JSON string value.
fn decode(raw: &str) -> String {
    serde_json::from_str(raw).expect("string value validated by parse_object")
}

/// TEXT column rule: absent/null → NULL, string → decoded, anything else → raw JSON text.
fn text_cell(raw: Option<&str>) -> Value {
    match raw {
        None | Some("null") => Value::Null,
        Some(v) if v.starts_with('"') => Value::Text(decode(v)),
        Some(v) => Value::Text(v.to_owned()),
    }
}

/// The text an INTEGER column is bound with: a string decoded, anything else its raw JSON text.
fn integer_text(raw: Option<&str>) -> Option<String> {
    match raw? {
        "null" => None,
        v if v.starts_with('"') => Some(decode(v)),
        v => Some(v.to_owned()),
    }
}

/// The members without a column, folded (first place and spelling, last value).
fn fold_extra(members: &[Member]) -> Vec<Member> {
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

/// The row of one valid line.
fn row(members: &[Member]) -> Row {
    let metadata_raw = last(members, "metadata");
    // The members of the metadata value, when it is (or holds the text of) a JSON object by the
    // line rule (schema.md, settled readings): a balanced-but-invalid nested value is allowed.
    let meta: Option<Members> = match metadata_raw {
        Some(v) if v.starts_with('"') => parse_object(decode(v).as_bytes()).ok(),
        Some(v) if v.starts_with('{') => parse_object(v.as_bytes()).ok(),
        _ => None,
    };
    // Inside metadata, else the same key at the top level; nulls count as absent in both.
    let meta_key = |key: &str| {
        meta.as_deref()
            .and_then(|m| last_non_null(m, key))
            .or_else(|| last_non_null(members, key))
    };
    let top = |key: &str| last(members, key);
    Row {
        event: text_cell(top("event")),
        t: text_cell(top("t")),
        flow_id: text_cell(top("flow_id")),
        round: text_cell(top("round")),
        data_count: integer_cell(integer_text(top("data_count"))),
        sid: text_cell(top("sid")),
        meta_ver: text_cell(meta_key("ver")),
        meta_pid: integer_cell(integer_text(meta_key("pid"))),
        meta_cwd: text_cell(meta_key("cwd")),
        meta_turn_id: text_cell(meta_key("turn_id")),
        metadata: text_cell(metadata_raw),
        extra: fold_extra(members),
        line: text_cell(top("line")),
    }
}
