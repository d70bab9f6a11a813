//! One JSON object's top level, by schema.md's rule: what is a valid line, and its members.

use serde_json::value::RawValue;

/// One top-level member of a JSON object.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// The decoded key.
    pub key: String,
    /// The key's JSON text as written, quotes included (`extra` keeps this spelling).
    pub raw_key: String,
    /// The value's JSON text as written.
    pub value: String,
}

/// A JSON object's top-level members, in input order, duplicates kept.
pub type Members = Vec<Member>;

/// JSON white space (a framed line holds no `\n`, a metadata text may).
pub(crate) fn is_json_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// End (exclusive) of the balanced nested value opening at `open`: brackets matched by kind
/// outside strings; a string runs to an unescaped `"` (a `\` takes the next character, whatever
/// it is). Nothing else inside is judged: schema.md keeps a nested value raw, so `[1,,2]` is
/// fine and serde_json, which would reject it, is not asked.
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
            assert_eq!(raw.get(), &text[..len], "model bug: raw value span");
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

/// The JSON text of the last member named `key`, if any (the last one wins, as in `JSON.parse`).
pub fn last<'a>(members: &'a [Member], key: &str) -> Option<&'a str> {
    members
        .iter()
        .rev()
        .find(|m| m.key == key)
        .map(|m| m.value.as_str())
}
