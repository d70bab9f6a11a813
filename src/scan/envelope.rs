//! The envelope scanner: checks one line's top-level grammar and picks out the
//! known keys wherever they stand, without building a JSON tree.
//!
//! String bodies are skipped with a memchr search for `"` and `\`; nested
//! objects and arrays are only checked for balance (the contract keeps them
//! raw). Values come back as [`Token`]s, spans into the line, so nothing is
//! copied or decoded here; the batch builder decides what to decode.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use crate::scan::json::{self, StrSpan, SyntaxError, is_ws, skip_ws};
use crate::scan::unescape::{scan_string_into, unescape_into};

/// Top-level keys that have their own column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Event,
    T,
    FlowId,
    Round,
    DataCount,
    Sid,
    Metadata,
    Line,
}

impl Key {
    pub const COUNT: usize = 8;

    fn from_name(name: &[u8]) -> Option<Key> {
        Some(match name {
            b"event" => Key::Event,
            b"t" => Key::T,
            b"flow_id" => Key::FlowId,
            b"round" => Key::Round,
            b"data_count" => Key::DataCount,
            b"sid" => Key::Sid,
            b"metadata" => Key::Metadata,
            b"line" => Key::Line,
            _ => return None,
        })
    }
}

/// Keys read from inside the metadata value, with a top-level fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaKey {
    Ver,
    Pid,
    Cwd,
    TurnId,
}

impl MetaKey {
    pub const COUNT: usize = 4;

    fn from_name(name: &[u8]) -> Option<MetaKey> {
        Some(match name {
            b"ver" => MetaKey::Ver,
            b"pid" => MetaKey::Pid,
            b"cwd" => MetaKey::Cwd,
            b"turn_id" => MetaKey::TurnId,
            _ => return None,
        })
    }
}

/// One JSON value inside the buffer that was scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    Null,
    Str(StrSpan),
    /// Any other value (number, boolean, object, array): its raw text.
    Raw {
        start: usize,
        end: usize,
    },
}

/// A member whose key has no column: kept raw for the `extra` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// The key's raw body, escapes and all (it is re-emitted as is).
    pub key: (usize, usize),
    pub value: (usize, usize),
}

/// What one line holds. Reused from line to line so that scanning allocates
/// nothing once its vectors have grown.
#[derive(Debug, Default)]
pub struct Envelope {
    pub known: [Option<Token>; Key::COUNT],
    /// Per key, where its decoded string value lies in the `text` given to
    /// [`Envelope::scan`]: for `line` and `metadata` when they are strings.
    pub text: [Option<(usize, usize)>; Key::COUNT],
    /// Top-level `ver`/`pid`/`cwd`/`turn_id`: fallbacks for the meta columns.
    pub top_meta: [Option<Token>; MetaKey::COUNT],
    pub extra: Vec<Member>,
    key_scratch: Vec<u8>,
    dup_scratch: (Vec<u8>, Vec<u8>),
    index: ExtraIndex,
    stack: Vec<u8>,
}

impl Envelope {
    pub fn get(&self, key: Key) -> Option<Token> {
        self.known[key as usize]
    }

    /// Scans `line`, which must already be valid UTF-8, as an envelope. The
    /// string values of `line` and `metadata` are decoded onto the end of
    /// `text` in the same pass (`line` is most of the bytes of an SSE log,
    /// and reading it twice was a third of the scan): [`Envelope::text`]
    /// says where. On an error, `text` may hold bytes past its old length.
    pub fn scan(&mut self, line: &[u8], text: &mut Vec<u8>) -> Result<(), SyntaxError> {
        self.known = [None; Key::COUNT];
        self.text = [None; Key::COUNT];
        self.top_meta = [None; MetaKey::COUNT];
        self.extra.clear();
        if self.extra.capacity() > RESTING_KEYS {
            // A line with very many keys has gone: give its memory back.
            self.extra = Vec::new();
            self.index = ExtraIndex::default();
        }
        self.index.reset();
        let Envelope {
            known,
            text: decoded_at,
            top_meta,
            extra,
            key_scratch,
            dup_scratch,
            index,
            stack,
        } = self;
        let end = walk_object(
            line,
            skip_ws(line, 0),
            stack,
            key_scratch,
            Some(text),
            |name, key, value, raw, decoded| {
                if let Some(k) = Key::from_name(name) {
                    known[k as usize] = Some(value);
                    // The last of repeated keys wins, decoded or not.
                    decoded_at[k as usize] = decoded;
                    return;
                }
                if let Some(m) = MetaKey::from_name(name) {
                    top_meta[m as usize] = Some(value);
                }
                // As JSON.parse does: a repeated key keeps its first place and
                // takes its last value. A few keys are compared one by one
                // (no hashing, no copy); past that, a hash index keeps a line
                // with many keys linear.
                let seen = if extra.len() < LINEAR_KEYS {
                    extra
                        .iter()
                        .position(|m| same_key(line, m.key, key, dup_scratch))
                } else {
                    index.find_or_add(line, extra, name)
                };
                match seen {
                    Some(i) => extra[i].value = raw,
                    None => extra.push(Member { key, value: raw }),
                }
            },
        )?;
        let end = skip_ws(line, end);
        if end != line.len() {
            return Err(SyntaxError::new(end, "unexpected data after the object"));
        }
        Ok(())
    }
}

/// The `ver`/`pid`/`cwd`/`turn_id` members found inside a metadata text.
#[derive(Debug, Default)]
pub struct MetaScanner {
    pub found: [Option<Token>; MetaKey::COUNT],
    key_scratch: Vec<u8>,
    stack: Vec<u8>,
}

impl MetaScanner {
    /// Scans a metadata JSON text (already decoded). Returns false when it is
    /// not a JSON object, in which case only the top-level fallbacks apply.
    pub fn scan(&mut self, text: &[u8]) -> bool {
        self.found = [None; MetaKey::COUNT];
        let MetaScanner {
            found,
            key_scratch,
            stack,
        } = self;
        let walked = walk_object(
            text,
            skip_ws(text, 0),
            stack,
            key_scratch,
            None,
            |name, _, value, _, _| {
                if let Some(m) = MetaKey::from_name(name) {
                    found[m as usize] = Some(value);
                }
            },
        );
        let ok = matches!(walked, Ok(end) if skip_ws(text, end) == text.len());
        if !ok {
            self.found = [None; MetaKey::COUNT];
        }
        ok
    }
}

/// Whether a key's string value is decoded while it is scanned: the two
/// long escaped ones, [`Key::Line`] and [`Key::Metadata`] (the rest are short
/// and mostly hold no escape). Compared by name rather than through
/// [`Key::from_name`], which the member callback calls anyway: a second
/// lookup per member measured 2-3 % of the scan (a test keeps the two agreed).
fn decoded_in_scan(name: &[u8]) -> bool {
    matches!(name, b"line" | b"metadata")
}

/// Up to this many `extra` keys, a new key is compared with each earlier one.
const LINEAR_KEYS: usize = 32;

/// `extra` capacity (in members) kept from one line to the next.
const RESTING_KEYS: usize = 1 << 12;

/// A hash index over the decoded names of a line's `extra` keys, built once
/// the line has [`LINEAR_KEYS`] of them and emptied (capacity kept) for the
/// next line.
#[derive(Debug, Default)]
struct ExtraIndex<S = RandomState> {
    hasher: S,
    /// Hash of a decoded name → the latest indexed member with that hash.
    heads: HashMap<u64, u32>,
    /// Per indexed member: the previous member with the same hash.
    chain: Vec<u32>,
    /// Decoded names of the indexed members, `names[spans[i].0..spans[i].1]`.
    names: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

const NO_MEMBER: u32 = u32::MAX;

impl<S: BuildHasher> ExtraIndex<S> {
    fn reset(&mut self) {
        self.heads.clear();
        self.chain.clear();
        self.names.clear();
        self.spans.clear();
    }

    /// The member of `extra` named `name` (decoded), if any; otherwise
    /// indexes `name` as the member about to be pushed at `extra.len()`.
    fn find_or_add(&mut self, line: &[u8], extra: &[Member], name: &[u8]) -> Option<usize> {
        // First use on this line: index the members compared one by one so far.
        while self.spans.len() < extra.len() {
            let (start, end) = extra[self.spans.len()].key;
            let from = self.names.len();
            unescape_into(&line[start..end], &mut self.names);
            self.add(from);
        }
        let hash = self.hasher.hash_one(name);
        let mut at = self.heads.get(&hash).copied().unwrap_or(NO_MEMBER);
        while at != NO_MEMBER {
            let (start, end) = self.spans[at as usize];
            if &self.names[start..end] == name {
                return Some(at as usize);
            }
            at = self.chain[at as usize];
        }
        let from = self.names.len();
        self.names.extend_from_slice(name);
        self.add(from);
        None
    }

    /// Indexes the name at `names[from..]` as the next member.
    fn add(&mut self, from: usize) {
        let i = self.spans.len() as u32;
        let hash = self.hasher.hash_one(&self.names[from..]);
        self.spans.push((from, self.names.len()));
        self.chain
            .push(self.heads.insert(hash, i).unwrap_or(NO_MEMBER));
    }
}

/// Whether two raw key bodies name the same key once decoded.
fn same_key(
    buf: &[u8],
    a: (usize, usize),
    b: (usize, usize),
    scratch: &mut (Vec<u8>, Vec<u8>),
) -> bool {
    let (a, b) = (&buf[a.0..a.1], &buf[b.0..b.1]);
    if !a.contains(&b'\\') && !b.contains(&b'\\') {
        return a == b;
    }
    scratch.0.clear();
    scratch.1.clear();
    unescape_into(a, &mut scratch.0);
    unescape_into(b, &mut scratch.1);
    scratch.0 == scratch.1
}

/// Walks the members of the object whose `{` is at `open`, calling
/// `member(decoded_name, raw_key_span, value, raw_value_span, decoded)` for
/// each in order; returns the position just past the closing `}`. The
/// string value of a key [`decoded_in_scan`] is decoded into `decode`, when
/// given, in the same pass that checks it (`decoded`: where it went).
fn walk_object(
    buf: &[u8],
    open: usize,
    stack: &mut Vec<u8>,
    key_scratch: &mut Vec<u8>,
    mut decode: Option<&mut Vec<u8>>,
    mut member: impl FnMut(&[u8], (usize, usize), Token, (usize, usize), Option<(usize, usize)>),
) -> Result<usize, SyntaxError> {
    if buf.get(open) != Some(&b'{') {
        return Err(SyntaxError::new(open, "expected '{'"));
    }
    let mut i = skip_ws(buf, open + 1);
    if buf.get(i) == Some(&b'}') {
        return Ok(i + 1);
    }
    loop {
        if buf.get(i) != Some(&b'"') {
            return Err(SyntaxError::new(i, "expected a key"));
        }
        let key = json::scan_string(buf, i)?;
        i = skip_ws(buf, key.end + 1);
        if buf.get(i) != Some(&b':') {
            return Err(SyntaxError::new(i, "expected ':'"));
        }
        i = skip_ws(buf, i + 1);
        let name = if key.escaped {
            key_scratch.clear();
            unescape_into(&buf[key.start..key.end], key_scratch);
            &key_scratch[..]
        } else {
            &buf[key.start..key.end]
        };
        let (value, end, decoded) = match decode.as_deref_mut() {
            Some(out) if buf.get(i) == Some(&b'"') && decoded_in_scan(name) => {
                let from = out.len();
                let s = scan_string_into(buf, i, out)?;
                (Token::Str(s), s.end + 1, Some((from, out.len())))
            }
            _ => {
                let (value, end) = scan_value(buf, i, stack)?;
                (value, end, None)
            }
        };
        member(name, (key.start, key.end), value, (i, end), decoded);
        i = skip_ws(buf, end);
        match buf.get(i) {
            Some(b',') => i = skip_ws(buf, i + 1),
            Some(b'}') => return Ok(i + 1),
            _ => return Err(SyntaxError::new(i, "expected ',' or '}'")),
        }
    }
}

/// Scans one value at `i`; returns it and the position just past it.
fn scan_value(buf: &[u8], i: usize, stack: &mut Vec<u8>) -> Result<(Token, usize), SyntaxError> {
    match buf.get(i) {
        Some(b'"') => {
            let s = json::scan_string(buf, i)?;
            Ok((Token::Str(s), s.end + 1))
        }
        Some(b'{' | b'[') => {
            let end = json::skip_nested(buf, i, stack)?;
            Ok((Token::Raw { start: i, end }, end))
        }
        Some(b'-' | b'0'..=b'9') => {
            let end = json::scan_number(buf, i)?;
            Ok((Token::Raw { start: i, end }, end))
        }
        Some(b'n') => {
            let end = json::scan_literal(buf, i)?;
            Ok((Token::Null, end))
        }
        Some(b't' | b'f') => {
            let end = json::scan_literal(buf, i)?;
            Ok((Token::Raw { start: i, end }, end))
        }
        Some(_) => Err(SyntaxError::new(i, "expected a value")),
        None => Err(SyntaxError::new(i, "unexpected end of line")),
    }
}

/// Whether a line is empty or only JSON white space (skipped, counted).
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|&b| is_ws(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(line: &[u8], t: Option<Token>) -> Option<String> {
        match t? {
            Token::Null => None,
            Token::Str(s) => {
                let mut out = Vec::new();
                unescape_into(&line[s.start..s.end], &mut out);
                Some(String::from_utf8(out).unwrap())
            }
            Token::Raw { start, end } => {
                Some(String::from_utf8(line[start..end].to_vec()).unwrap())
            }
        }
    }

    #[test]
    fn picks_known_keys_in_any_order_and_leaves_lookalikes() {
        let line = br#"{"line":"data: {\"event\":\"x\",\"sid\":\"fake\"}","sid":"s1","event":"e","pid":"81551","x":{"event":1}}"#;
        let mut env = Envelope::default();
        env.scan(line, &mut Vec::new()).unwrap();
        assert_eq!(text(line, env.get(Key::Event)).as_deref(), Some("e"));
        assert_eq!(text(line, env.get(Key::Sid)).as_deref(), Some("s1"));
        assert_eq!(
            text(line, env.get(Key::Line)).as_deref(),
            Some(r#"data: {"event":"x","sid":"fake"}"#)
        );
        // Decoded in the scan, after what the buffer held.
        let mut decoded = b"kept".to_vec();
        env.scan(line, &mut decoded).unwrap();
        let (start, end) = env.text[Key::Line as usize].unwrap();
        assert_eq!(&decoded[..start], b"kept");
        assert_eq!(&decoded[start..end], br#"data: {"event":"x","sid":"fake"}"#);
        assert_eq!(
            text(line, env.top_meta[MetaKey::Pid as usize]).as_deref(),
            Some("81551")
        );
        let keys: Vec<&[u8]> = env.extra.iter().map(|m| &line[m.key.0..m.key.1]).collect();
        assert_eq!(keys, [&b"pid"[..], b"x"]);
    }

    #[test]
    fn the_keys_decoded_in_the_scan_are_line_and_metadata() {
        // Every column name (most are key names too) and two that are not.
        let names = crate::scan::batch::COLUMNS.iter().chain(&["ver", "x"]);
        for name in names.map(|n| n.as_bytes()) {
            let want = matches!(Key::from_name(name), Some(Key::Line | Key::Metadata));
            assert_eq!(
                decoded_in_scan(name),
                want,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn line_and_metadata_strings_are_decoded_in_the_scan() {
        let mut arena = Vec::new();
        let mut env = Envelope::default();
        let line = br#"{"metadata":"{\"pid\":1}","line":"a\nb","sid":"s"}"#;
        env.scan(line, &mut arena).unwrap();
        let decoded = |env: &Envelope, arena: &[u8], k: Key| {
            env.text[k as usize].map(|(a, b)| String::from_utf8(arena[a..b].to_vec()).unwrap())
        };
        assert_eq!(
            decoded(&env, &arena, Key::Metadata).as_deref(),
            Some(r#"{"pid":1}"#)
        );
        assert_eq!(decoded(&env, &arena, Key::Line).as_deref(), Some("a\nb"));
        assert_eq!(env.text[Key::Sid as usize], None);
        // A later value that is not a string takes the key back from the text.
        let line = br#"{"metadata":"x","line":"y","metadata":{"pid":2},"line":null}"#;
        env.scan(line, &mut arena).unwrap();
        assert_eq!(env.text[Key::Metadata as usize], None);
        assert_eq!(env.text[Key::Line as usize], None);
        assert_eq!(
            text(line, env.get(Key::Metadata)).as_deref(),
            Some(r#"{"pid":2}"#)
        );
    }

    #[test]
    fn last_duplicate_wins_and_escaped_keys_match() {
        let line = br#"{"event":"a","ev\u0065nt":"b"}"#;
        let mut env = Envelope::default();
        env.scan(line, &mut Vec::new()).unwrap();
        assert_eq!(text(line, env.get(Key::Event)).as_deref(), Some("b"));
    }

    /// `(raw key, raw value)` of each `extra` member, in order.
    fn extra_of(line: &[u8], env: &Envelope) -> Vec<(String, String)> {
        let s = |(a, b): (usize, usize)| String::from_utf8(line[a..b].to_vec()).unwrap();
        env.extra.iter().map(|m| (s(m.key), s(m.value))).collect()
    }

    #[test]
    fn many_extra_keys_keep_first_place_and_last_value() {
        for n in [
            LINEAR_KEYS - 1,
            LINEAR_KEYS,
            LINEAR_KEYS + 1,
            3 * LINEAR_KEYS,
        ] {
            let mut line = String::from("{");
            for i in 0..n {
                line += &format!("\"k{i}\":{i},");
            }
            // Repeats of the first, the last and a middle key, two of them
            // spelled with escapes; then a new key spelled with one.
            line += &format!(
                "\"k0\":\"a\",\"\\u006b{}\":\"b\",\"k\\u0031\":\"c\",\"\\u006bnew\":\"d\",\"k{}\":\"e\"}}",
                n - 1,
                n / 2
            );
            let mut env = Envelope::default();
            // Twice: the index must not keep the first scan's keys.
            for _ in 0..2 {
                env.scan(line.as_bytes(), &mut Vec::new()).unwrap();
                let got = extra_of(line.as_bytes(), &env);
                let mut want: Vec<(String, String)> =
                    (0..n).map(|i| (format!("k{i}"), i.to_string())).collect();
                want[0].1 = "\"a\"".into();
                want[n - 1].1 = "\"b\"".into();
                want[1].1 = "\"c\"".into();
                want[n / 2].1 = "\"e\"".into();
                want.push(("\\u006bnew".into(), "\"d\"".into()));
                assert_eq!(got, want, "{n} keys");
            }
        }
    }

    /// Speed and memory only, so checked from inside: an ordinary line is
    /// searched without hashing, and a line with very many keys does not
    /// keep its memory once it has gone.
    #[test]
    fn only_lines_with_many_keys_use_the_index_and_keep_no_memory() {
        let line_of = |n: usize| {
            let keys: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
            format!("{{{}}}", keys.join(","))
        };
        let mut env = Envelope::default();
        env.scan(line_of(LINEAR_KEYS).as_bytes(), &mut Vec::new())
            .unwrap();
        assert_eq!(env.index.spans.len(), 0);
        env.scan(line_of(LINEAR_KEYS + 1).as_bytes(), &mut Vec::new())
            .unwrap();
        assert_eq!(env.index.spans.len(), LINEAR_KEYS + 1);
        env.scan(line_of(2).as_bytes(), &mut Vec::new()).unwrap();
        assert_eq!(env.index.spans.len(), 0);

        env.scan(line_of(RESTING_KEYS + 1).as_bytes(), &mut Vec::new())
            .unwrap();
        assert!(env.extra.capacity() > RESTING_KEYS);
        env.scan(line_of(2).as_bytes(), &mut Vec::new()).unwrap();
        assert!(env.extra.capacity() < RESTING_KEYS);
        assert!(env.index.names.capacity() < RESTING_KEYS);
        // Up to the resting size, it is kept (no churn).
        env.extra = Vec::with_capacity(RESTING_KEYS);
        env.scan(line_of(2).as_bytes(), &mut Vec::new()).unwrap();
        assert_eq!(env.extra.capacity(), RESTING_KEYS);
    }

    #[test]
    fn the_key_index_tells_names_apart_whose_hashes_collide() {
        #[derive(Default)]
        struct Same;
        impl std::hash::Hasher for Same {
            fn finish(&self) -> u64 {
                7
            }
            fn write(&mut self, _: &[u8]) {}
        }
        let mut index = ExtraIndex::<std::hash::BuildHasherDefault<Same>>::default();
        let line = br#"a\u0062c"#;
        let mut extra = vec![
            Member {
                key: (0, 1),
                value: (0, 0),
            },
            Member {
                key: (1, 8),
                value: (0, 0),
            },
        ];
        assert_eq!(index.find_or_add(line, &extra, b"bc"), Some(1));
        assert_eq!(index.find_or_add(line, &extra, b"c"), None);
        extra.push(Member {
            key: (7, 8),
            value: (0, 0),
        });
        assert_eq!(index.find_or_add(line, &extra, b"a"), Some(0));
        assert_eq!(index.find_or_add(line, &extra, b"c"), Some(2));
        assert_eq!(index.find_or_add(line, &extra, b"bc"), Some(1));
        assert_eq!(index.find_or_add(line, &extra, b"b"), None);
        index.reset();
        assert_eq!(index.find_or_add(line, &extra[..1], b"bc"), None);
        assert_eq!(index.find_or_add(line, &extra[..2], b"a"), Some(0));
    }

    #[test]
    fn rejects_what_is_not_one_object() {
        let mut env = Envelope::default();
        for bad in [
            &b"[1]"[..],
            b"{}{}",
            b"{\"a\":1",
            b"{\"a\" 1}",
            b"{\"a\":1,}",
            b"{,}",
            b"\"s\"",
            b"{\"a\":tru}",
            b"{\"a\":nul}",
            b"{\"a\":01}",
            b"{\"a\":1}x",
        ] {
            assert!(
                env.scan(bad, &mut Vec::new()).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        env.scan(b"  { } ", &mut Vec::new()).unwrap();
        env.scan(b"{ \"a\" : [1,,2] , \"b\":null}", &mut Vec::new())
            .unwrap();
    }

    #[test]
    fn metadata_text_must_be_an_object() {
        let mut meta = MetaScanner::default();
        assert!(meta.scan(br#"{"pid":1,"cwd":"/x","inner":{"pid":2}}"#));
        assert_eq!(
            meta.found[MetaKey::Pid as usize],
            Some(Token::Raw { start: 7, end: 8 })
        );
        assert!(!meta.scan(b"[1,2]"));
        assert!(!meta.scan(b"not json"));
        assert!(meta.found.iter().all(Option::is_none));
    }
}
