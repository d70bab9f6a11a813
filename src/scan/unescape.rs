//! Decoding a validated JSON string body into its text.
//!
//! SSE payloads are JSON escaped inside a JSON string: a backslash every dozen
//! bytes, so what decoding costs is per escape. Two paths give the same bytes
//! (tested against each other): a portable one that stops at each escape, and
//! on x86-64 CPUs with SSSE3 (detected at run time) and on aarch64 one that
//! decodes 64 bytes at a time without a branch per escape.

use crate::scan::json::{Result, StrSpan, find_byte, hex4, scan_string};

/// Appends the decoded value of a string body that [`scan_string`] accepted
/// to `out`.
///
/// [`scan_string`]: crate::scan::json::scan_string
pub fn unescape_into(body: &[u8], out: &mut Vec<u8>) {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    if body.len() >= vector::BLOCK && vector_available() {
        // SAFETY: checked just above.
        return unsafe { vector::unescape_into(body, out) };
    }
    portable_unescape_into(body, out)
}

/// Whether this CPU runs the [`vector`] path: x86-64 CPUs with SSSE3 and
/// POPCNT (std caches the answer), every aarch64 CPU.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
fn vector_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("ssse3") && std::is_x86_feature_detected!("popcnt");
    #[cfg(target_arch = "aarch64")]
    return true;
}

/// Scans the string whose opening quote is at `buf[open]` as
/// [`scan_string`] does (same span, same errors) and appends its decoded
/// value to `out`, reading the bytes once where the vector path runs. On an
/// error `out` is left as it was.
///
/// [`scan_string`]: crate::scan::json::scan_string
pub fn scan_string_into(buf: &[u8], open: usize, out: &mut Vec<u8>) -> Result<StrSpan> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    if vector_available() {
        // SAFETY: checked just above.
        return unsafe { vector::scan_string_into(buf, open, out) };
    }
    portable_scan_string_into(buf, open, out)
}

/// The portable [`scan_string_into`]: the scan, then the decoding.
fn portable_scan_string_into(buf: &[u8], open: usize, out: &mut Vec<u8>) -> Result<StrSpan> {
    let s = scan_string(buf, open)?;
    let body = &buf[s.start..s.end];
    if s.escaped {
        unescape_into(body, out);
    } else {
        out.extend_from_slice(body);
    }
    Ok(s)
}

/// The portable [`unescape_into`].
///
/// Plain runs are copied sixteen bytes at a time whatever they hold, and the
/// output cursor then moves only past the bytes before the first backslash:
/// one fixed-size copy per escape instead of a `memcpy` call of a dozen bytes.
fn portable_unescape_into(body: &[u8], out: &mut Vec<u8>) {
    let start = reserve(body, out);
    // SAFETY: `reserve` made room for `body.len() + COPY` bytes past `start`.
    let (i, o) = unsafe { copy_runs(body, 0, start, out.as_mut_ptr(), usize::MAX) };
    finish(body, i, o, out);
}

/// Bytes copied at a time by [`copy_runs`].
const COPY: usize = 16;

/// Reserves room for the decoded body plus one copy's slack past the end of
/// `out`, and returns `out.len()`. Decoded text is never longer than its
/// escaped form, so every fixed-size copy below stays within this room.
fn reserve(body: &[u8], out: &mut Vec<u8>) -> usize {
    out.reserve(body.len() + COPY);
    out.len()
}

/// Decodes `body` from byte `i`, which is not escaped, to output position
/// `o`, one escape at a time while sixteen bytes remain and `i < until`.
/// Returns where it stopped: again a byte that is not escaped, and its place
/// in the output.
///
/// # Safety
///
/// `base` has room for `start + body.len() + COPY` bytes, where `start` is
/// the output position of body byte 0, and `o <= start + i`.
#[inline(always)]
unsafe fn copy_runs(
    body: &[u8],
    mut i: usize,
    mut o: usize,
    base: *mut u8,
    until: usize,
) -> (usize, usize) {
    while i + COPY <= body.len() && i < until {
        // SAFETY: `body[i..i + COPY]` is in bounds; `o <= start + i` (each
        // step writes at most what it reads), so `o + COPY` is within the
        // room the caller guarantees.
        unsafe { std::ptr::copy_nonoverlapping(body.as_ptr().add(i), base.add(o), COPY) };
        match find_byte(&body[i..i + COPY], b'\\') {
            None => {
                i += COPY;
                o += COPY;
            }
            Some(k) => {
                o += k;
                i += k;
                let (decoded, len) = decode_escape(body, i);
                // All four bytes, whatever the length: a copy of fixed size
                // is a single store, one of 1 to 4 bytes a `memcpy` call.
                // SAFETY: `o + 4 <= start + i + COPY`, within the room; an
                // escape of `len` bytes decodes to at most `len` bytes
                // (`\uXXXX`, 6 bytes, to at most 3), so `o` stays behind `i`.
                unsafe { base.add(o).cast::<[u8; 4]>().write_unaligned(decoded.bytes) };
                o += decoded.len as usize;
                i += len;
            }
        }
    }
    (i, o)
}

/// Sets `out`'s length to `o` (every byte below it written from `body`) and
/// decodes the rest of `body` from `i`, a byte that is not escaped.
fn finish(body: &[u8], mut i: usize, o: usize, out: &mut Vec<u8>) {
    debug_assert!(o <= out.capacity());
    // SAFETY: every byte below `o` was written, from valid bytes.
    unsafe { out.set_len(o) };
    while let Some(k) = find_byte(&body[i..], b'\\') {
        out.extend_from_slice(&body[i..i + k]);
        let (decoded, len) = decode_escape(body, i + k);
        out.extend_from_slice(&decoded);
        i += k + len;
    }
    out.extend_from_slice(&body[i..]);
}

/// The bytes an escape decodes to (1 to 4 of them, as a `&[u8]` on a
/// small buffer) and its length in the body. The escape was validated by
/// `scan_string`, so the digits and any pair are there.
///
/// The simple escapes are looked up in a table rather than matched: which
/// one comes next is unpredictable, and a jump table mispredicts on it.
#[inline(always)]
fn decode_escape(body: &[u8], j: usize) -> (Decoded, usize) {
    match UNESCAPED[body[j + 1] as usize] {
        0 => decode_unicode(body, j),
        simple => (Decoded::one(simple), 2),
    }
}

/// What each simple escape's second byte stands for; 0 for the others.
pub(super) static UNESCAPED: [u8; 256] = {
    let mut t = [0; 256];
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'/' as usize] = b'/';
    t[b'b' as usize] = 0x08;
    t[b'f' as usize] = 0x0C;
    t[b'n' as usize] = b'\n';
    t[b'r' as usize] = b'\r';
    t[b't' as usize] = b'\t';
    t
};

#[cold]
fn decode_unicode(body: &[u8], j: usize) -> (Decoded, usize) {
    let unit = hex4(body, j + 2).unwrap_or(0xFFFD);
    let (cp, len) = if (0xD800..=0xDBFF).contains(&unit) {
        let low = hex4(body, j + 8).unwrap_or(0xDC00);
        (0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), 12)
    } else {
        (unit, 6)
    };
    let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
    let mut d = Decoded {
        bytes: [0; 4],
        len: 0,
    };
    d.len = ch.encode_utf8(&mut d.bytes).len() as u8;
    (d, len)
}

/// Up to four decoded bytes.
#[derive(Clone, Copy)]
struct Decoded {
    bytes: [u8; 4],
    len: u8,
}

impl Decoded {
    fn one(b: u8) -> Self {
        Decoded {
            bytes: [b, 0, 0, 0],
            len: 1,
        }
    }
}

impl std::ops::Deref for Decoded {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// Decoding 64 bytes at a time with the vector unit's byte shuffle, after
/// simdjson's string handling: one classification finds the backslashes, the
/// escaped bytes come from the same branch-free `find_escaped` as the scan,
/// the escape letters are translated by a table lookup in the vector unit,
/// and the backslashes that start an escape are squeezed out eight bytes at
/// a time by a shuffle whose pattern a table gives for each 8-bit keep mask
/// (`lanes::Block::store_decoded`). Per block there is one branch for "no
/// backslash at all" and one for a `\u` escape (rare at the outer level of
/// these logs; that block is decoded by the portable path). On x86-64 the
/// shuffle needs SSSE3, detected at run time ([`vector_available`]); NEON is
/// aarch64's baseline.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod vector {
    use crate::scan::json::find_escaped;
    use crate::scan::lanes::Block;

    /// Bytes decoded per step.
    pub const BLOCK: usize = 64;

    /// # Safety
    ///
    /// [`super::vector_available`]; `body` is a body `scan_string` accepted.
    #[cfg_attr(target_arch = "x86_64", target_feature(enable = "ssse3,popcnt"))]
    pub unsafe fn unescape_into(body: &[u8], out: &mut Vec<u8>) {
        let start = super::reserve(body, out);
        let base = out.as_mut_ptr();
        let (mut i, mut o) = (0, start);
        // 1 when body byte `i` is escaped by a backslash ending the block
        // before (that backslash is already dropped from the output).
        let mut carry = 0u64;
        while i + BLOCK <= body.len() {
            // SAFETY: `body[i..i + 64]` is in bounds.
            let v = unsafe { Block::load(body.as_ptr().add(i)) };
            let backslash = v.eq(b'\\');
            if backslash | carry == 0 {
                // SAFETY: `o <= start + i` (output never runs ahead of
                // input), so these 64 bytes lie within the room reserved.
                unsafe { v.store(base.add(o)) };
                i += BLOCK;
                o += BLOCK;
                continue;
            }
            let entry = i - carry as usize;
            let escaped = find_escaped(backslash, &mut carry);
            if v.eq(b'u') & escaped != 0 {
                // A `\u` escape: this block by the portable path, from a
                // byte that is not escaped to the first past the block.
                // SAFETY: `o <= start + entry`, and the room is as above.
                (i, o) = unsafe { super::copy_runs(body, entry, o, base, i + BLOCK) };
                carry = 0;
                continue;
            }
            // `"` and `\` stand for themselves: only the letters need the
            // translation (see `scan_string_into`).
            let letters = escaped & !(v.eq(b'"') | backslash);
            // SAFETY: as for the plain store above.
            o += unsafe { v.store_decoded(letters, !(backslash & !escaped), base.add(o)) };
            i += BLOCK;
        }
        // The portable path goes on from the escaping backslash, if any.
        let i = i - carry as usize;
        // SAFETY: `o <= start + i`, and the room is as above.
        let (i, o) = unsafe { super::copy_runs(body, i, o, base, usize::MAX) };
        super::finish(body, i, o, out);
    }

    /// [`super::scan_string_into`] with the vector unit. Blocks of 64 bytes
    /// are checked (closing quote, control characters, escapes) and decoded
    /// together; from the first block holding anything but plain text and
    /// simple escapes, or fewer than 64 bytes from the end of `buf`, the
    /// portable scan and decoding go on from a byte that is not escaped, so
    /// errors and their positions come from one place.
    ///
    /// # Safety
    ///
    /// [`super::vector_available`].
    #[cfg_attr(target_arch = "x86_64", target_feature(enable = "ssse3,popcnt"))]
    pub unsafe fn scan_string_into(
        buf: &[u8],
        open: usize,
        out: &mut Vec<u8>,
    ) -> super::Result<super::StrSpan> {
        let before = out.len();
        let start = open + 1;
        // Decoded text is never longer than its escaped form, which cannot
        // run past the end of `buf`; 64 bytes of slack for whole-block stores.
        out.reserve(buf.len().saturating_sub(start) + BLOCK);
        let base = out.as_mut_ptr();
        let (mut p, mut o) = (start, before);
        let mut carry = 0u64;
        let mut any_escape = 0u64;
        let rest_at = loop {
            if p + BLOCK > buf.len() {
                break p - carry as usize;
            }
            // SAFETY: `buf[p..p + 64]` is in bounds.
            let v = unsafe { Block::load(buf.as_ptr().add(p)) };
            let backslash = v.eq(b'\\');
            let entry = p - carry as usize;
            let escaped = find_escaped(backslash, &mut carry);
            let quotes = v.eq(b'"');
            let quote = quotes & !escaped;
            // Escaped bytes other than `"` and `\`, which stand for
            // themselves: at the outer level of these logs nearly every
            // escape is one of those two, so most blocks need neither the
            // escape check nor the translation.
            let letters = escaped & !(quotes | backslash);
            // The bytes of the body in this block: those before the quote.
            let body = if quote == 0 {
                u64::MAX
            } else {
                (quote & quote.wrapping_neg()) - 1
            };
            let mut bad = v.control();
            if letters != 0 {
                bad |= letters & !v.simple_escapes();
            }
            if bad & body != 0 {
                // Rare: `\u`, a control character or an invalid escape.
                break entry;
            }
            any_escape |= backslash & body;
            let keep = !(backslash & !escaped);
            // SAFETY: `o <= before + (p - start)`, and the room reserved
            // reaches 64 bytes past `before + (buf.len() - start)`.
            let stored = unsafe { v.store_decoded(letters, keep, base.add(o)) };
            if quote != 0 {
                // What follows the quote was stored too, past the end.
                o += (keep & body).count_ones() as usize;
                // SAFETY: every byte below `o` was written, from valid bytes.
                unsafe { out.set_len(o) };
                return Ok(super::StrSpan {
                    start,
                    end: p + quote.trailing_zeros() as usize,
                    escaped: any_escape != 0,
                });
            }
            o += stored;
            p += BLOCK;
        };
        // SAFETY: every byte below `o` was written, from valid bytes.
        unsafe { out.set_len(o) };
        match crate::scan::json::scan_string_from(buf, open, rest_at, any_escape != 0) {
            Ok(s) => {
                super::unescape_into(&buf[rest_at..s.end], out);
                Ok(s)
            }
            Err(e) => {
                out.truncate(before);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::json::tests::cut_string;

    /// The JSON text of `chars`, each written as itself, a short escape or a
    /// `\u` escape (a surrogate pair past the BMP) as `how` says.
    fn encode(chars: &[(char, u8)]) -> String {
        let mut out = String::from("\"");
        for &(c, how) in chars {
            let short = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '\n' => Some("\\n"),
                '\t' => Some("\\t"),
                '\r' => Some("\\r"),
                '\u{8}' => Some("\\b"),
                '\u{c}' => Some("\\f"),
                '/' if how % 2 == 0 => Some("\\/"),
                _ => None,
            };
            // Mostly short escapes where there is one, as the logs have.
            match (short, how % 8) {
                (Some(s), 0..=6) => out += s,
                (_, 0..=6) if c >= ' ' => out.push(c),
                _ => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out += &format!("\\u{u:04x}");
                    }
                }
            }
        }
        out + "\""
    }

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
            for n in [1, 9, 40] {
                // Repeated, so that the long forms take the block paths.
                let s = s.repeat(n);
                let want: String = serde_json::from_str(&format!("\"{s}\"")).unwrap();
                assert_eq!(decode(&s), want.as_bytes(), "{s}");
            }
        }
    }

    /// Escapes that straddle a 64-byte block boundary in every way: a
    /// backslash last in a block, a run of them, a `\u` cut anywhere.
    #[test]
    fn escapes_across_block_ends_decode_whole() {
        for esc in [r"\n", r"\\", r#"\""#, r"\\\n", r"\u00e9", r"\ud83d\ude00"] {
            for pad in 0..80 {
                let s = format!("{}{esc}{}", "a".repeat(pad), "b".repeat(70));
                let want: String = serde_json::from_str(&format!("\"{s}\"")).unwrap();
                assert_eq!(decode(&s), want.as_bytes(), "{s}");
            }
        }
    }

    /// The one pass over whole blocks, deterministically: each simple
    /// escape inside a 64-byte block decodes as serde_json does, and an
    /// invalid one there is refused at its backslash with nothing appended.
    /// (Blocks whose only escapes are `\"` and `\\` skip both the check and
    /// the translation, so each letter is tested alone in its block.)
    #[test]
    fn one_pass_decodes_and_checks_each_escape_inside_a_block() {
        let line = |esc: &str| format!("\"{}{esc}{}\"", "a".repeat(10), "b".repeat(100));
        for esc in [r"\n", r"\t", r"\b", r"\f", r"\r", r"\/", r#"\""#, r"\\"] {
            let text = line(esc);
            let want: String = serde_json::from_str(&text).unwrap();
            let mut out = Vec::new();
            let span = scan_string_into(text.as_bytes(), 0, &mut out).unwrap();
            assert_eq!(span.end, text.len() - 1, "{esc}");
            assert_eq!(out, want.as_bytes(), "{esc}");
        }
        for esc in [r"\x", r"\a", r"\0", r"\N", r"\ "] {
            let text = line(esc);
            let mut out = b"kept".to_vec();
            let got = scan_string_into(text.as_bytes(), 0, &mut out);
            let want = Err(crate::scan::json::SyntaxError::new(11, "invalid escape"));
            assert_eq!(got, want, "{esc}");
            assert_eq!(scan_string(text.as_bytes(), 0), want, "{esc}");
            assert_eq!(out, b"kept", "{esc}");
        }
    }

    fn chars() -> impl proptest::strategy::Strategy<Value = Vec<(char, u8)>> {
        proptest::collection::vec(
            (
                proptest::prop_oneof![
                    8 => proptest::char::range('a', 'z'),
                    2 => proptest::prelude::any::<char>(),
                    4 => proptest::sample::select(vec!['"', '\\', '\n', '\t', '\r', '/', '\u{1}', '\u{8}', '\u{c}']),
                ],
                proptest::prelude::any::<u8>(),
            ),
            0..400,
        )
    }

    proptest::proptest! {
        /// Both paths against the text the body encodes, appending to what
        /// `out` already holds, on strings long enough to take many blocks.
        #[test]
        fn unescape_round_trips_any_text(chars in chars()) {
            let text = encode(&chars);
            let span = scan_string(text.as_bytes(), 0).unwrap();
            proptest::prop_assert_eq!(span.end, text.len() - 1);
            let body = &text.as_bytes()[span.start..span.end];
            let want: String = chars.iter().map(|&(c, _)| c).collect();
            for portable in [false, true] {
                let mut out = b"kept".to_vec();
                if portable {
                    portable_unescape_into(body, &mut out);
                } else {
                    unescape_into(body, &mut out);
                }
                proptest::prop_assert_eq!(&out[..4], b"kept");
                proptest::prop_assert_eq!(std::str::from_utf8(&out[4..]).unwrap(), &want[..]);
            }
        }
    }

    proptest::proptest! {
        /// Scanning and decoding in one pass answers exactly as the scan
        /// followed by the decoding: same span or same error at the same
        /// byte, same bytes appended, nothing appended on an error.
        #[test]
        fn one_pass_agrees_with_scan_then_decode(buf in cut_string(24, 400)) {
            let buf = &buf[..];
            let mut want = b"kept".to_vec();
            let want_span = portable_scan_string_into(buf, 0, &mut want);
            proptest::prop_assert_eq!(want_span, scan_string(buf, 0));
            if want_span.is_err() {
                proptest::prop_assert_eq!(&want[..], b"kept");
            }
            let mut got = b"kept".to_vec();
            proptest::prop_assert_eq!(scan_string_into(buf, 0, &mut got), want_span);
            proptest::prop_assert_eq!(got, want);
        }
    }

    /// The vector path must be what runs on the machine the tests run on,
    /// or the tests above would only cover the portable one.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn the_vector_path_is_taken_here() {
        assert!(vector_available());
    }
}
