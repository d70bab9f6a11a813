//! JSON lexical primitives over raw bytes: string bodies, escapes, numbers,
//! literals and balanced nested values.
//!
//! Everything here works on a `&[u8]` that the caller has already checked to
//! be UTF-8, and reports failures as a [`SyntaxError`] carrying the byte
//! position, so that `bad_lines.reason` can say where a line went wrong.

use memchr::memchr2;

/// What was wrong with a line, and at which byte (0-based, within the line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub at: usize,
    pub what: &'static str,
}

impl SyntaxError {
    pub fn new(at: usize, what: &'static str) -> Self {
        SyntaxError { at, what }
    }
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

pub type Result<T> = std::result::Result<T, SyntaxError>;

/// The body of a JSON string: `buf[start..end]` lies between the quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrSpan {
    pub start: usize,
    pub end: usize,
    /// Whether the body holds any backslash escape; without one the raw bytes
    /// are already the decoded value and can be used without a copy.
    pub escaped: bool,
}

#[inline]
pub fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

#[inline]
pub fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && is_ws(buf[i]) {
        i += 1;
    }
    i
}

/// Scans a string whose opening quote is at `open`, validating escapes and
/// rejecting raw control characters, as a conforming parser does. Returns the
/// body span; the closing quote is at `span.end`.
pub fn scan_string(buf: &[u8], open: usize) -> Result<StrSpan> {
    let start = open + 1;
    let mut i = start;
    let mut escaped = false;
    loop {
        let Some(k) = find_special(&buf[i..]) else {
            return Err(SyntaxError::new(open, "unterminated string"));
        };
        let j = i + k;
        match buf[j] {
            b'"' => {
                return Ok(StrSpan {
                    start,
                    end: j,
                    escaped,
                });
            }
            b'\\' => {
                escaped = true;
                i = j + escape_len(buf, j)?;
            }
            _ => return Err(SyntaxError::new(j, "control character in string")),
        }
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Flags (high bit of each byte) the bytes of `x` equal to `b`. Borrows can
/// only add false flags above a true one, so the lowest flag is exact.
#[inline(always)]
fn eq_flags(x: u64, b: u8) -> u64 {
    let y = x ^ (LO * b as u64);
    y.wrapping_sub(LO) & !y & HI
}

/// Position of the first byte that `flags` marks, eight bytes at a time with
/// word arithmetic (SWAR): portable, and unlike a memchr call it costs
/// nothing to restart, which matters because SSE payloads are escaped JSON
/// with a backslash every few bytes. `stop` says the same of one byte.
#[inline(always)]
fn swar_find(s: &[u8], flags: impl Fn(u64) -> u64, stop: impl Fn(u8) -> bool) -> Option<usize> {
    let mut chunks = s.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let m = flags(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        if m != 0 {
            return Some(base + (m.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| stop(c))
        .map(|p| base + p)
}

/// Position of the first `"`, `\` or control character: where plain string
/// content stops.
#[inline]
fn find_special(s: &[u8]) -> Option<usize> {
    swar_find(
        s,
        // The last term flags bytes below 0x20 (same borrow argument).
        |x| eq_flags(x, b'"') | eq_flags(x, b'\\') | (x.wrapping_sub(LO * 0x20) & !x & HI),
        |c| c == b'"' || c == b'\\' || c < 0x20,
    )
}

/// Position of the first `needle`.
#[inline]
fn find_byte(s: &[u8], needle: u8) -> Option<usize> {
    swar_find(s, |x| eq_flags(x, needle), |c| c == needle)
}

/// Length of the escape sequence starting with the backslash at `j`
/// (2 for `\n`, 6 for `\u00e9`, 12 for a surrogate pair).
fn escape_len(buf: &[u8], j: usize) -> Result<usize> {
    match buf.get(j + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(2),
        Some(b'u') => {
            let unit = hex4(buf, j + 2).ok_or(SyntaxError::new(j, "invalid \\u escape"))?;
            match unit {
                0xD800..=0xDBFF => {
                    let low = (buf.get(j + 6) == Some(&b'\\') && buf.get(j + 7) == Some(&b'u'))
                        .then(|| hex4(buf, j + 8))
                        .flatten();
                    match low {
                        Some(0xDC00..=0xDFFF) => Ok(12),
                        _ => Err(SyntaxError::new(j, "unpaired surrogate escape")),
                    }
                }
                0xDC00..=0xDFFF => Err(SyntaxError::new(j, "unpaired surrogate escape")),
                _ => Ok(6),
            }
        }
        Some(_) => Err(SyntaxError::new(j, "invalid escape")),
        None => Err(SyntaxError::new(j, "unterminated string")),
    }
}

fn hex4(buf: &[u8], at: usize) -> Option<u32> {
    let digits = buf.get(at..at + 4)?;
    let mut v = 0u32;
    for &d in digits {
        v = v * 16 + (d as char).to_digit(16)?;
    }
    Some(v)
}

/// Appends the decoded value of a validated string body to `out`.
pub fn unescape_into(body: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while let Some(k) = find_byte(&body[i..], b'\\') {
        out.extend_from_slice(&body[i..i + k]);
        let j = i + k;
        let simple = match body[j + 1] {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0C),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            i = j + 2;
            continue;
        }
        // `\u`: validated by scan_string, so the digits and any pair are there.
        let unit = hex4(body, j + 2).unwrap_or(0xFFFD);
        let (cp, len) = if (0xD800..=0xDBFF).contains(&unit) {
            let low = hex4(body, j + 8).unwrap_or(0xDC00);
            (0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), 12)
        } else {
            (unit, 6)
        };
        let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
        out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
        i = j + len;
    }
    out.extend_from_slice(&body[i..]);
}

/// Scans a number starting at `i` per RFC 8259's grammar; returns its end.
pub fn scan_number(buf: &[u8], mut i: usize) -> Result<usize> {
    let start = i;
    let bad = |at| Err(SyntaxError::new(at, "invalid number"));
    if buf.get(i) == Some(&b'-') {
        i += 1;
    }
    match buf.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits_end(buf, i),
        _ => return bad(start),
    }
    if buf.get(i) == Some(&b'.') {
        let d = digits_end(buf, i + 1);
        if d == i + 1 {
            return bad(start);
        }
        i = d;
    }
    if matches!(buf.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(buf.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let d = digits_end(buf, i);
        if d == i {
            return bad(start);
        }
        i = d;
    }
    // `01` or `1x`: a number must not run straight into more word characters.
    if matches!(
        buf.get(i),
        Some(b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'.' | b'+' | b'-')
    ) {
        return bad(start);
    }
    Ok(i)
}

fn digits_end(buf: &[u8], mut i: usize) -> usize {
    while matches!(buf.get(i), Some(b'0'..=b'9')) {
        i += 1;
    }
    i
}

/// Scans `true`, `false` or `null` at `i`; returns its end.
pub fn scan_literal(buf: &[u8], i: usize) -> Result<usize> {
    for word in [&b"true"[..], b"false", b"null"] {
        if buf[i..].starts_with(word) {
            let end = i + word.len();
            if matches!(
                buf.get(end),
                Some(b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'_')
            ) {
                break;
            }
            return Ok(end);
        }
    }
    Err(SyntaxError::new(i, "invalid literal"))
}

/// Skips a nested object or array starting at `open`. The contract keeps such
/// values raw, so they need only be balanced: brackets matched by kind outside
/// strings, strings terminated. `stack` is caller-owned scratch so deep
/// nesting allocates at most once per run.
pub fn skip_nested(buf: &[u8], open: usize, stack: &mut Vec<u8>) -> Result<usize> {
    stack.clear();
    let mut i = open;
    while i < buf.len() {
        match buf[i] {
            b'{' => stack.push(b'}'),
            b'[' => stack.push(b']'),
            c @ (b'}' | b']') => {
                if stack.pop() != Some(c) {
                    return Err(SyntaxError::new(i, "mismatched bracket"));
                }
                if stack.is_empty() {
                    return Ok(i + 1);
                }
            }
            b'"' => i = skip_raw_string(buf, i)?,
            _ => {}
        }
        i += 1;
    }
    Err(SyntaxError::new(open, "unbalanced brackets"))
}

/// Finds the closing quote of a string inside a nested value without
/// validating its escapes (the contract only asks for balance there).
fn skip_raw_string(buf: &[u8], open: usize) -> Result<usize> {
    let unterminated = SyntaxError::new(open, "unterminated string");
    let mut i = open + 1;
    loop {
        // Past the end when the line ends in the middle of an escape.
        let rest = buf.get(i..).ok_or(unterminated)?;
        match memchr2(b'"', b'\\', rest) {
            Some(k) if rest[k] == b'"' => return Ok(i + k),
            Some(k) => i += k + 2,
            None => return Err(unterminated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Vec<u8> {
        let bytes = format!("\"{s}\"");
        let span = scan_string(bytes.as_bytes(), 0).unwrap();
        let mut out = Vec::new();
        unescape_into(&bytes.as_bytes()[span.start..span.end], &mut out);
        out
    }

    #[test]
    fn escapes_decode_like_serde_json() {
        for s in [
            r#"plain"#,
            r#"a\"b\\c\/d\b\f\n\r\t"#,
            r#"\u00e9\u4e2d\ud83d\ude00"#,
            r#"\\\\\\\\\"\\"#,
            r#"\u001b[31m"#,
        ] {
            let want: String = serde_json::from_str(&format!("\"{s}\"")).unwrap();
            assert_eq!(decode(s), want.as_bytes(), "{s}");
        }
    }

    #[test]
    fn invalid_strings_are_rejected_where_serde_json_rejects_them() {
        for s in [
            "\"\\x\"",
            "\"\\u12G4\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"a\tb\"",
            "\"abc",
            "\"abc\\",
            // A high surrogate followed by what is only *almost* the `\u`
            // of a low one: both of those bytes must be there.
            "\"\\ud800Xudc00\"",
            "\"\\ud800\\xdc00\"",
            "\"\\ud800\\ud800\"",
        ] {
            assert!(serde_json::from_str::<String>(s).is_err(), "{s}");
            assert!(scan_string(s.as_bytes(), 0).is_err(), "{s}");
        }
    }

    proptest::proptest! {
        #[test]
        fn find_special_finds_the_first_stop_byte(
            s in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)
        ) {
            let naive = s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            proptest::prop_assert_eq!(find_special(&s), naive);
            proptest::prop_assert_eq!(find_byte(&s, b'\\'), s.iter().position(|&c| c == b'\\'));
        }
    }

    #[test]
    fn numbers_follow_the_grammar() {
        for ok in ["0", "-0", "12", "1.5", "-1.5e+3", "1E9", "0.0e-0"] {
            assert_eq!(scan_number(ok.as_bytes(), 0), Ok(ok.len()), "{ok}");
        }
        for bad in ["01", "1.", "-", "+1", ".5", "1e", "1e+", "--1", "1x"] {
            assert!(scan_number(bad.as_bytes(), 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn nested_values_need_balance_only() {
        let mut stack = Vec::new();
        let s = br#"{"a":[1,,2],"b":"}\"]"}x"#;
        assert_eq!(skip_nested(s, 0, &mut stack), Ok(s.len() - 1));
        assert!(skip_nested(b"{[}]", 0, &mut stack).is_err());
        assert!(skip_nested(b"[[]", 0, &mut stack).is_err());
    }

    #[test]
    fn a_nested_string_cut_after_a_backslash_is_unterminated() {
        // The escape's second byte would lie past the end of the buffer.
        let mut stack = Vec::new();
        for s in [&br#"["ab\"#[..], br#"["\"#, br#"{"a":"\"#, br#"["ab\x"#] {
            let open = s.iter().rposition(|&c| c == b'"').unwrap();
            assert_eq!(
                skip_nested(s, 0, &mut stack),
                Err(SyntaxError::new(open, "unterminated string")),
                "{}",
                String::from_utf8_lossy(s)
            );
        }
    }
}
