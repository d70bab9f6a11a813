//! Lines as schema.md frames a whole input: `\n`-terminated, one trailing `\r` dropped, a
//! byte-order mark at byte 0 skipped, a last line without a newline still a line.

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
        let (end, next) = match memchr(&input[pos..]) {
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

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}
