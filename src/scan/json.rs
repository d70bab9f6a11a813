//! JSON lexical primitives over raw bytes: string bodies, escapes, numbers,
//! literals and balanced nested values.
//!
//! Everything here works on a `&[u8]` that the caller has already checked to
//! be UTF-8, and reports failures as a [`SyntaxError`] carrying the byte
//! position, so that `bad_lines.reason` can say where a line went wrong.

use memchr::memchr2;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
use crate::scan::lanes;
use crate::scan::unescape::UNESCAPED;

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
///
/// SSE payloads are escaped JSON inside a JSON string, with an escape every
/// dozen bytes or so. Stopping at each one costs two unpredictable branches
/// (which byte stopped, which escape it is), so strings are first read 64
/// bytes at a time as bit masks (`block_string`), which decides without
/// a branch per escape. Whatever that path cannot vouch for (a `\u` escape,
/// any error) is scanned again from the start byte by byte, so errors and
/// their positions come from one place.
///
/// Always inlined: it runs for every key and short value (about twenty
/// per line), and the call measured 2 % of the scan-only time.
#[inline(always)]
pub fn scan_string(buf: &[u8], open: usize) -> Result<StrSpan> {
    // Keys and most short values hold no escape: their first stop byte is
    // the closing quote, found sixteen bytes at a time without the masks.
    let start = open + 1;
    let head = buf
        .get(start..buf.len().min(start + 64))
        .unwrap_or_default();
    if let Some(k) = find_special(head)
        && head[k] == b'"'
    {
        return Ok(StrSpan {
            start,
            end: start + k,
            escaped: false,
        });
    }
    match block_string(buf, open + 1) {
        Block::Done(span) => Ok(span),
        Block::Rest { at, escaped } => scan_string_from(buf, open, at, escaped),
    }
}

/// What [`block_string`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Done(StrSpan),
    /// The bytewise scan is to go on from `at` (what lies before is plain
    /// content and simple escapes; `escaped` if any of those).
    Rest {
        at: usize,
        escaped: bool,
    },
}

/// One 64-byte block as bit masks: bit `i` for byte `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Masks {
    quote: u64,
    backslash: u64,
    /// Bytes below 0x20.
    control: u64,
}

const EVEN_BITS: u64 = 0x5555_5555_5555_5555;

/// The bytes escaped by a backslash (the byte after each backslash that is
/// not itself escaped), from the block's backslash mask and whether its
/// first byte is escaped by the previous block (`carry`, updated). Branch
/// free, after simdjson's `find_escaped`: runs of backslashes starting on an
/// odd bit are told apart from those starting on an even bit by one add.
#[inline(always)]
pub(super) fn find_escaped(backslash: u64, carry: &mut u64) -> u64 {
    let backslash = backslash & !*carry;
    let follows_escape = (backslash << 1) | *carry;
    let odd_starts = backslash & !EVEN_BITS & !follows_escape;
    let (even_starts, overflow) = odd_starts.overflowing_add(backslash);
    *carry = overflow as u64;
    (EVEN_BITS ^ (even_starts << 1)) & follows_escape
}

/// The fast path of [`scan_string`] from the first byte of the body, while
/// 64 bytes remain: it finishes a terminated string without control
/// characters whose escapes are all simple, exactly as the bytewise scan
/// would, and otherwise says where that scan is to take over. The last
/// bytes of a line, fewer than a block, are left to it rather than copied
/// into a padded block: a copy of variable length costs a `memcpy` call.
#[inline(always)]
fn block_string(buf: &[u8], start: usize) -> Block {
    let mut p = start;
    let mut carry = 0;
    let mut any_escape = 0;
    loop {
        let Some(block) = buf.get(p..).and_then(|rest| rest.first_chunk::<64>()) else {
            // `carry`: byte `p` is escaped, so its backslash goes too.
            return Block::Rest {
                at: p - carry as usize,
                escaped: any_escape != 0,
            };
        };
        let m = classify(block);
        // Byte `p` is escaped: a restart must begin at its backslash.
        let entry = p - carry as usize;
        let escaped = find_escaped(m.backslash, &mut carry);
        let quote = m.quote & !escaped;
        // The bytes of the body in this block: those before the closing quote.
        let body = if quote == 0 {
            u64::MAX
        } else {
            (quote & quote.wrapping_neg()) - 1
        };
        let mut esc = escaped & body;
        let mut simple = m.control & body == 0;
        while esc != 0 {
            // `UNESCAPED` is 0 for `\u` and for invalid escapes.
            simple &= UNESCAPED[block[esc.trailing_zeros() as usize] as usize] != 0;
            esc &= esc - 1;
        }
        if !simple {
            // Rare: the bytewise scan decodes `\u` and reports errors.
            return Block::Rest {
                at: entry,
                escaped: any_escape != 0,
            };
        }
        any_escape |= m.backslash & body;
        if quote != 0 {
            return Block::Done(StrSpan {
                start,
                end: p + quote.trailing_zeros() as usize,
                escaped: any_escape != 0,
            });
        }
        p += 64;
    }
}

/// Classifies 64 bytes: with the vector unit where one is compiled in,
/// else with word arithmetic.
#[inline(always)]
fn classify(block: &[u8; 64]) -> Masks {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        // SAFETY: `block` is 64 bytes.
        let v = unsafe { lanes::Block::load(block.as_ptr()) };
        Masks {
            quote: v.eq(b'"'),
            backslash: v.eq(b'\\'),
            control: v.control(),
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return swar_classify(block);
}

/// The portable [`classify`], eight bytes at a time. Unlike [`eq_flags`],
/// every flag here is exact: the adds work on seven-bit values and cannot
/// carry into the next byte.
#[cfg(any(test, not(any(target_arch = "x86_64", target_arch = "aarch64"))))]
#[inline(always)]
fn swar_classify(block: &[u8; 64]) -> Masks {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let exact_eq = |x: u64, b: u8| {
        let y = x ^ (LO * b as u64);
        !(((y & LOW7) + LOW7) | y) & HI
    };
    // A byte is below 0x20 when its high bit is clear and its low seven
    // bits plus 0x60 stay below 0x80.
    let below_space = |x: u64| !(((x & LOW7) + LO * 0x60) | x) & HI;
    // Gathers the high bit of each byte into one bit per byte.
    let gather = |flags: u64| ((flags >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
    let mut m = Masks {
        quote: 0,
        backslash: 0,
        control: 0,
    };
    for (k, word) in block.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        m.quote |= gather(exact_eq(x, b'"')) << (8 * k);
        m.backslash |= gather(exact_eq(x, b'\\')) << (8 * k);
        m.control |= gather(below_space(x)) << (8 * k);
    }
    m
}

/// The string scan one stop byte at a time: the reference, and the path
/// for `\u` escapes and errors.
#[cfg(test)]
fn scan_string_bytewise(buf: &[u8], open: usize) -> Result<StrSpan> {
    scan_string_from(buf, open, open + 1, false)
}

/// The bytewise scan of the string opened at `open`, from `i`, a byte that
/// is not escaped (`escaped`: whether an escape came before it).
pub(super) fn scan_string_from(
    buf: &[u8],
    open: usize,
    mut i: usize,
    mut escaped: bool,
) -> Result<StrSpan> {
    let start = open + 1;
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
/// word arithmetic (SWAR): the portable path, used where no vector path is
/// compiled in and for the last bytes of a slice. Unlike a memchr call it
/// costs nothing to restart, which matters because SSE payloads are escaped
/// JSON with a backslash every few bytes. `stop` says the same of one byte.
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

/// The portable [`find_special`].
#[inline(always)]
fn swar_find_special(s: &[u8]) -> Option<usize> {
    swar_find(
        s,
        // The last term flags bytes below 0x20 (same borrow argument).
        |x| eq_flags(x, b'"') | eq_flags(x, b'\\') | (x.wrapping_sub(LO * 0x20) & !x & HI),
        |c| c == b'"' || c == b'\\' || c < 0x20,
    )
}

/// The portable [`find_byte`].
#[inline(always)]
fn swar_find_byte(s: &[u8], needle: u8) -> Option<usize> {
    swar_find(s, |x| eq_flags(x, needle), |c| c == needle)
}

/// Position of the first byte of `s` that `mask16` marks, sixteen bytes at
/// a time with the vector unit every CPU of the target has (SSE2 on x86-64,
/// NEON on aarch64), so no run-time detection is needed; the SWAR `tail`
/// finishes. AVX2 is not used: string content stops every dozen bytes or so
/// in SSE logs (an escaped quote), so a wider load would mostly be thrown
/// away.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
fn vector_find(
    s: &[u8],
    mask16: impl Fn(*const u8) -> u64,
    tail: impl Fn(&[u8]) -> Option<usize>,
) -> Option<usize> {
    let mut i = 0;
    while i + 16 <= s.len() {
        let m = mask16(s[i..].as_ptr());
        if m != 0 {
            return Some(i + (m.trailing_zeros() / lanes::BITS_PER_BYTE) as usize);
        }
        i += 16;
    }
    tail(&s[i..]).map(|k| i + k)
}

/// Position of the first `"`, `\` or control character: where plain string
/// content stops.
#[inline]
fn find_special(s: &[u8]) -> Option<usize> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    // SAFETY: `vector_find` passes pointers with 16 bytes left in `s`.
    return vector_find(s, |p| unsafe { lanes::stops16(p) }, swar_find_special);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return swar_find_special(s);
}

/// Position of the first `needle`.
#[inline]
pub(super) fn find_byte(s: &[u8], needle: u8) -> Option<usize> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    // SAFETY: `vector_find` passes pointers with 16 bytes left in `s`.
    return vector_find(
        s,
        |p| unsafe { lanes::eq16(p, needle) },
        |t| swar_find_byte(t, needle),
    );
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return swar_find_byte(s, needle);
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

pub(super) fn hex4(buf: &[u8], at: usize) -> Option<u32> {
    let digits = buf.get(at..at + 4)?;
    let mut v = 0u32;
    for &d in digits {
        v = v * 16 + (d as char).to_digit(16)?;
    }
    Some(v)
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
pub(crate) mod tests {
    use super::*;

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
            // Mostly plain text, so that the stop bytes fall anywhere in
            // and past the first sixteen-byte blocks.
            s in proptest::collection::vec(
                proptest::prop_oneof![12 => proptest::prelude::Just(b'a'), 1 => proptest::prelude::any::<u8>()],
                0..200,
            )
        ) {
            let naive = s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            proptest::prop_assert_eq!(find_special(&s), naive);
            proptest::prop_assert_eq!(swar_find_special(&s), naive);
            let naive = s.iter().position(|&c| c == b'\\');
            proptest::prop_assert_eq!(find_byte(&s, b'\\'), naive);
            proptest::prop_assert_eq!(swar_find_byte(&s, b'\\'), naive);
        }
    }

    /// A string opened by a quote at byte 0, its body made of
    /// [`string_byte`]`(plain)`, up to `max` bytes, cut anywhere (so often
    /// unterminated or ending inside an escape).
    pub(crate) fn cut_string(
        plain: u32,
        max: usize,
    ) -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec(string_byte(plain), 0..max),
            proptest::prelude::any::<proptest::sample::Index>(),
        )
            .prop_map(|(body, cut)| {
                let mut buf = vec![b'"'];
                buf.extend_from_slice(&body);
                buf.truncate(1 + cut.index(body.len() + 1));
                buf
            })
    }

    /// Bytes that matter to the string scan, and some that do not.
    /// `plain` weighs the plain letters against the rest: higher for
    /// strings that run over several 64-byte blocks.
    pub(crate) fn string_byte(plain: u32) -> impl proptest::strategy::Strategy<Value = u8> {
        proptest::prop_oneof![
            plain => proptest::char::range('a', 'z').prop_map(|c| c as u8),
            2 => proptest::sample::select(b"\"\\u/bfnrtx0dD8".to_vec()),
            1 => proptest::prelude::any::<u8>(),
        ]
    }

    fn naive_masks(block: &[u8; 64]) -> Masks {
        let mask =
            |f: &dyn Fn(u8) -> bool| (0..64).fold(0u64, |m, i| m | ((f(block[i]) as u64) << i));
        Masks {
            quote: mask(&|c| c == b'"'),
            backslash: mask(&|c| c == b'\\'),
            control: mask(&|c| c < 0x20),
        }
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #[test]
        fn blocks_are_classified_exactly(
            bytes in proptest::collection::vec(string_byte(6), 64)
        ) {
            let block: &[u8; 64] = bytes.first_chunk().unwrap();
            let want = naive_masks(block);
            proptest::prop_assert_eq!(classify(block), want);
            proptest::prop_assert_eq!(swar_classify(block), want);
        }

        /// The escaped-byte masks over several blocks against a byte loop:
        /// a byte is escaped when it follows a backslash that is not.
        #[test]
        fn escaped_bytes_carry_across_blocks(
            backslash in proptest::collection::vec(proptest::prelude::any::<bool>(), 64 * 4),
            dense in proptest::prelude::any::<bool>(),
        ) {
            let backslash: Vec<bool> = if dense {
                backslash
            } else {
                backslash.chunks(4).flat_map(|c| { let b = c.iter().all(|&b| b); [b, false, c[0] && c[1], false] }).collect()
            };
            let mut next_escaped = false;
            let naive: Vec<bool> = backslash.iter().map(|&b| {
                let e = next_escaped;
                next_escaped = !e && b;
                e
            }).collect();
            let mut carry = 0;
            for (k, block) in backslash.chunks(64).enumerate() {
                let bits = block.iter().enumerate().fold(0u64, |m, (i, &b)| m | ((b as u64) << i));
                let got = find_escaped(bits, &mut carry);
                for i in 0..64 {
                    proptest::prop_assert_eq!(got >> i & 1 == 1, naive[64 * k + i], "bit {} of block {}", i, k);
                }
            }
        }

        /// The block scan answers exactly as the bytewise one: same span,
        /// same error at the same byte, wherever the string ends.
        #[test]
        fn block_scan_agrees_with_bytewise_scan(buf in cut_string(6, 300)) {
            let buf = &buf[..];
            let want = scan_string_bytewise(buf, 0);
            proptest::prop_assert_eq!(scan_string(buf, 0), want);
            match block_string(buf, 1) {
                Block::Done(span) => proptest::prop_assert_eq!(Ok(span), want),
                Block::Rest { at, escaped } => {
                    proptest::prop_assert!(at >= 1 && at <= buf.len());
                    proptest::prop_assert_eq!(scan_string_from(buf, 0, at, escaped), want);
                }
            }
        }
    }

    /// An escape whose backslash ends one block and whose letter starts the
    /// next, followed by a string end in either kind of path.
    #[test]
    fn an_escape_split_between_blocks_is_read_whole() {
        for letter in [b'x', b'"', b'n', b'u'] {
            for tail in [0, 10, 100] {
                let mut buf = vec![b'"'];
                buf.extend_from_slice(&[b'a'; 63]);
                buf.extend_from_slice(&[b'\\', letter]);
                buf.extend_from_slice(if letter == b'u' { b"00e9" } else { b"" });
                buf.extend(std::iter::repeat_n(b'b', tail));
                buf.push(b'"');
                buf.extend_from_slice(&[b' '; 70]);
                let got = scan_string(&buf, 0);
                assert_eq!(got, scan_string_bytewise(&buf, 0));
                match letter {
                    b'x' => assert_eq!(got, Err(SyntaxError::new(64, "invalid escape"))),
                    _ => assert!(got.is_ok_and(|s| s.escaped && buf[s.end + 1] == b' ')),
                }
            }
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
