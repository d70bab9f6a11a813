//! The vector unit, for the string scan and its decoding: one module per
//! architecture with the same small API, so that [`json`] and [`unescape`]
//! write each algorithm once.
//!
//! - x86-64: SSE2 (the baseline, always there) for loads, compares and
//!   masks; the decoding's byte shuffles need SSSE3, which callers detect at
//!   run time before calling the functions marked so.
//! - aarch64 (the users' Apple Silicon Macs): NEON, part of the baseline, so
//!   nothing is detected. Its tests run here under qemu-user
//!   (`scripts/check_aarch64.sh`).
//!
//! Elsewhere no module is compiled and the callers' word-at-a-time (SWAR)
//! paths run; every function here is tested against those.
//!
//! [`json`]: crate::scan::json
//! [`unescape`]: crate::scan::unescape

#[cfg(target_arch = "x86_64")]
pub use x86::*;

#[cfg(target_arch = "aarch64")]
pub use neon::*;

/// For each 8-bit keep mask, the positions of its set bits in order: a
/// shuffle pattern that packs the kept bytes of eight to the front.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
static PACK: [[u8; 8]; 256] = {
    let mut t = [[0u8; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut bit, mut n) = (0, 0);
        while bit < 8 {
            if m & (1 << bit) != 0 {
                t[m][n] = bit as u8;
                n += 1;
            }
            bit += 1;
        }
        m += 1;
    }
    t
};

/// The five escape letters have distinct bits 1..4: `(byte >> 1) & 15` is 1,
/// 3, 7, 9 and 10 for b, f, n, r and t; this table gives what each stands for.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const LETTERS: [u8; 16] = [
    0, 0x08, 0, 0x0C, 0, 0, 0, 0x0A, 0, 0x0D, 0x09, 0, 0, 0, 0, 0,
];

/// Which of `" \ / b f n r t` (the bytes that may follow a backslash as a
/// simple escape) a byte may be, by its low and by its high nibble: the AND
/// of the two classes is not zero for exactly those eight bytes (after
/// simdjson's character classes). Classes: 1 = `"` `/` (0x2_), 2 = `\`
/// (0x5_), 4 = b f n (0x6_), 8 = r t (0x7_).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SIMPLE_BY_LOW: [u8; 16] = [0, 0, 1 | 4 | 8, 0, 8, 0, 4, 0, 0, 0, 0, 0, 2, 0, 4, 1];
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SIMPLE_BY_HIGH: [u8; 16] = [0, 0, 1, 0, 0, 2, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0];

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl Block {
    /// Stores the 64 bytes at `dst`.
    ///
    /// # Safety
    ///
    /// 64 bytes are writable at `dst`.
    #[inline(always)]
    pub unsafe fn store(&self, dst: *mut u8) {
        for (k, x) in self.0.iter().enumerate() {
            // SAFETY: the caller vouches for `dst`.
            unsafe { store16(*x, dst.add(16 * k)) };
        }
    }

    /// Decodes the block to `dst`: the escaped bytes (bits of `escaped`;
    /// each one of `" \ / b f n r t`) are translated, then the bytes whose
    /// bit is set in `keep` are written in order; returns how many. Bytes
    /// past those may be written too, up to 16 past the last kept one.
    /// `"` and `\` stand for themselves, so callers may leave them out of
    /// `escaped`: a 16-byte chunk with no other escaped byte is then not
    /// translated at all.
    ///
    /// Inlined into its callers, whose target features it runs under, so
    /// it names none itself.
    ///
    /// # Safety
    ///
    /// 64 bytes are writable at `dst`; on x86-64 the CPU has SSSE3 and
    /// POPCNT.
    #[inline(always)]
    pub unsafe fn store_decoded(&self, escaped: u64, keep: u64, dst: *mut u8) -> usize {
        let mut o = 0;
        for (k, x) in self.0.iter().enumerate() {
            let esc = (escaped >> (16 * k)) as u16;
            let x = if esc == 0 {
                *x
            } else {
                // SAFETY: the caller vouches for the CPU's features.
                unsafe { translate(*x, esc) }
            };
            let keep = (keep >> (16 * k)) as u16;
            // SAFETY: `o <= 16k`, so each store of at most 16 bytes at
            // `dst + o` lies within the 64 the caller vouches for; the
            // caller vouches for the CPU's features.
            unsafe {
                if keep == u16::MAX {
                    store16(x, dst.add(o));
                    o += 16;
                } else {
                    o += pack8(x, keep as u8, false, dst.add(o));
                    o += pack8(x, (keep >> 8) as u8, true, dst.add(o));
                }
            }
        }
        o
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Bits per byte in the masks of [`stops16`] and [`eq16`].
    pub const BITS_PER_BYTE: u32 = 1;

    /// Bit `i` set where byte `i` of the 16 at `p` is `"`, `\` or below
    /// 0x20: where plain string content stops.
    ///
    /// # Safety
    ///
    /// 16 bytes are readable at `p`.
    #[inline(always)]
    pub unsafe fn stops16(p: *const u8) -> u64 {
        // SAFETY: the caller guarantees 16 readable bytes at `p`; SSE2 is
        // part of the x86-64 baseline; the load is unaligned.
        unsafe {
            let v = _mm_loadu_si128(p.cast());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            let m = _mm_or_si128(_mm_or_si128(quote, backslash), below_space(v));
            _mm_movemask_epi8(m) as u32 as u64
        }
    }

    /// Bit `i` set where byte `i` of the 16 at `p` is `needle`.
    ///
    /// # Safety
    ///
    /// 16 bytes are readable at `p`.
    #[inline(always)]
    pub unsafe fn eq16(p: *const u8, needle: u8) -> u64 {
        // SAFETY: as in `stops16`.
        unsafe {
            let v = _mm_loadu_si128(p.cast());
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(needle as i8))) as u32 as u64
        }
    }

    /// All-ones in the bytes of `v` below 0x20: unsigned `x <= 0x1F`
    /// exactly when `min(x, 0x1F) == x`.
    #[inline(always)]
    fn below_space(v: __m128i) -> __m128i {
        // SAFETY: SSE2 is part of the x86-64 baseline.
        unsafe { _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v) }
    }

    /// 64 bytes in four registers; masks have bit `i` for byte `i`.
    #[derive(Clone, Copy)]
    pub struct Block(pub(super) [__m128i; 4]);

    impl Block {
        /// # Safety
        ///
        /// 64 bytes are readable at `p`.
        #[inline(always)]
        pub unsafe fn load(p: *const u8) -> Self {
            // SAFETY: the caller vouches for the 64 bytes; SSE2 is baseline.
            Block(std::array::from_fn(|k| unsafe {
                _mm_loadu_si128(p.add(16 * k).cast())
            }))
        }

        #[inline(always)]
        fn bits(&self, f: impl Fn(__m128i) -> __m128i) -> u64 {
            let mut m = 0;
            for (k, x) in self.0.iter().enumerate() {
                // SAFETY: SSE2 is part of the x86-64 baseline.
                let bits = unsafe { _mm_movemask_epi8(f(*x)) };
                m |= (bits as u32 as u64) << (16 * k);
            }
            m
        }

        /// The bytes equal to `b`.
        #[inline(always)]
        pub fn eq(&self, b: u8) -> u64 {
            // SAFETY: SSE2 is part of the x86-64 baseline.
            self.bits(|x| unsafe { _mm_cmpeq_epi8(x, _mm_set1_epi8(b as i8)) })
        }

        /// The bytes below 0x20.
        #[inline(always)]
        pub fn control(&self) -> u64 {
            self.bits(below_space)
        }

        /// The bytes that may follow a backslash as a simple escape:
        /// `" \ / b f n r t`.
        #[target_feature(enable = "ssse3")]
        #[inline]
        pub fn simple_escapes(&self) -> u64 {
            // SAFETY: the tables are 16 bytes each.
            let (by_low, by_high) = unsafe {
                (
                    _mm_loadu_si128(super::SIMPLE_BY_LOW.as_ptr().cast()),
                    _mm_loadu_si128(super::SIMPLE_BY_HIGH.as_ptr().cast()),
                )
            };
            let nibble = _mm_set1_epi8(0x0F);
            !self.bits(|x| {
                let low = _mm_shuffle_epi8(by_low, _mm_and_si128(x, nibble));
                let high = _mm_shuffle_epi8(by_high, _mm_and_si128(_mm_srli_epi16(x, 4), nibble));
                _mm_cmpeq_epi8(_mm_and_si128(low, high), _mm_setzero_si128())
            })
        }
    }

    /// `x` with the escaped bytes (bit set in `esc`) decoded: the letters
    /// `b f n r t` become their control characters; `" \ /` stand for
    /// themselves.
    #[target_feature(enable = "ssse3")]
    #[inline]
    pub(super) fn translate(x: __m128i, esc: u16) -> __m128i {
        // SAFETY: the table is 16 bytes.
        let letters = unsafe { _mm_loadu_si128(super::LETTERS.as_ptr().cast()) };
        let index = _mm_and_si128(_mm_srli_epi16(x, 1), _mm_set1_epi8(0x0F));
        let decoded = _mm_shuffle_epi8(letters, index);
        // Signed: 0x60..=0x7F are letters; `" \ /` and anything at or
        // above 0x80 are not.
        let is_letter = _mm_cmpgt_epi8(x, _mm_set1_epi8(0x5F));
        let take = _mm_and_si128(expand(esc), is_letter);
        _mm_or_si128(_mm_andnot_si128(take, x), _mm_and_si128(take, decoded))
    }

    /// Bit `i` of `bits` as an all-ones or all-zeros byte `i`.
    #[target_feature(enable = "ssse3")]
    #[inline]
    fn expand(bits: u16) -> __m128i {
        let spread = _mm_shuffle_epi8(
            _mm_cvtsi32_si128(bits as i32),
            _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
        );
        let select = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
        _mm_cmpeq_epi8(_mm_and_si128(spread, select), select)
    }

    /// Stores the 16 bytes of `x` at `dst`.
    ///
    /// # Safety
    ///
    /// 16 bytes at `dst` are writable.
    #[inline(always)]
    pub(super) unsafe fn store16(x: __m128i, dst: *mut u8) {
        // SAFETY: the caller vouches for `dst`; SSE2 is baseline.
        unsafe { _mm_storeu_si128(dst.cast(), x) }
    }

    /// Writes the bytes of the low (or `high`) eight of `x` whose bit is
    /// set in `keep`, in order, at `dst` (eight bytes are stored); returns
    /// how many.
    ///
    /// # Safety
    ///
    /// Eight bytes at `dst` are writable.
    #[target_feature(enable = "ssse3,popcnt")]
    #[inline]
    pub(super) unsafe fn pack8(x: __m128i, keep: u8, high: bool, dst: *mut u8) -> usize {
        // SAFETY: `PACK` entries are 8 bytes; the caller vouches for `dst`.
        unsafe {
            let pattern = _mm_loadl_epi64(super::PACK[keep as usize].as_ptr().cast());
            let pattern = _mm_add_epi8(pattern, _mm_set1_epi8(if high { 8 } else { 0 }));
            _mm_storel_epi64(dst.cast(), _mm_shuffle_epi8(x, pattern));
        }
        keep.count_ones() as usize
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use std::arch::aarch64::*;

    /// Bits per byte in the masks of [`stops16`] and [`eq16`]: a compare
    /// narrowed by a shift (`shrn`), NEON having no byte `movemask`.
    pub const BITS_PER_BYTE: u32 = 4;

    /// Four bits per byte of `c` (all-ones or all-zeros bytes).
    #[inline(always)]
    fn nibbles(c: uint8x16_t) -> u64 {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe {
            let narrowed = vshrn_n_u16::<4>(vreinterpretq_u16_u8(c));
            vget_lane_u64::<0>(vreinterpret_u64_u8(narrowed))
        }
    }

    /// All-ones in the bytes of `v` below 0x20.
    #[inline(always)]
    fn below_space(v: uint8x16_t) -> uint8x16_t {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { vcltq_u8(v, vdupq_n_u8(0x20)) }
    }

    /// Four bits set per byte of the 16 at `p` that is `"`, `\` or below
    /// 0x20: where plain string content stops.
    ///
    /// # Safety
    ///
    /// 16 bytes are readable at `p`.
    #[inline(always)]
    pub unsafe fn stops16(p: *const u8) -> u64 {
        // SAFETY: the caller guarantees 16 readable bytes at `p`.
        unsafe {
            let v = vld1q_u8(p);
            let quote = vceqq_u8(v, vdupq_n_u8(b'"'));
            let backslash = vceqq_u8(v, vdupq_n_u8(b'\\'));
            nibbles(vorrq_u8(vorrq_u8(quote, backslash), below_space(v)))
        }
    }

    /// Four bits set per byte of the 16 at `p` equal to `needle`.
    ///
    /// # Safety
    ///
    /// 16 bytes are readable at `p`.
    #[inline(always)]
    pub unsafe fn eq16(p: *const u8, needle: u8) -> u64 {
        // SAFETY: as in `stops16`.
        unsafe { nibbles(vceqq_u8(vld1q_u8(p), vdupq_n_u8(needle))) }
    }

    /// Byte `i` of each half holds bit `i`: ANDed with an all-ones byte it
    /// keeps that bit, so pairwise adds gather a mask.
    const WEIGHTS: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];

    /// 64 bytes in four registers; masks have bit `i` for byte `i`.
    #[derive(Clone, Copy)]
    pub struct Block(pub(super) [uint8x16_t; 4]);

    impl Block {
        /// # Safety
        ///
        /// 64 bytes are readable at `p`.
        #[inline(always)]
        pub unsafe fn load(p: *const u8) -> Self {
            // SAFETY: the caller vouches for the 64 bytes.
            Block(std::array::from_fn(|k| unsafe { vld1q_u8(p.add(16 * k)) }))
        }

        /// One bit per byte of four all-ones-or-zeros vectors (simdjson's
        /// `to_bitmask` for NEON): weight, then three pairwise adds.
        #[inline(always)]
        fn bits(&self, f: impl Fn(uint8x16_t) -> uint8x16_t) -> u64 {
            // SAFETY: NEON is part of the aarch64 baseline; the table is 16
            // bytes.
            unsafe {
                let w = vld1q_u8(WEIGHTS.as_ptr());
                let [a, b, c, d] = self.0.map(|x| vandq_u8(f(x), w));
                let ab = vpaddq_u8(a, b);
                let cd = vpaddq_u8(c, d);
                let abcd = vpaddq_u8(ab, cd);
                vgetq_lane_u64::<0>(vreinterpretq_u64_u8(vpaddq_u8(abcd, abcd)))
            }
        }

        /// The bytes equal to `b`.
        #[inline(always)]
        pub fn eq(&self, b: u8) -> u64 {
            // SAFETY: NEON is part of the aarch64 baseline.
            self.bits(|x| unsafe { vceqq_u8(x, vdupq_n_u8(b)) })
        }

        /// The bytes below 0x20.
        #[inline(always)]
        pub fn control(&self) -> u64 {
            self.bits(below_space)
        }

        /// The bytes that may follow a backslash as a simple escape:
        /// `" \ / b f n r t`.
        #[inline(always)]
        pub fn simple_escapes(&self) -> u64 {
            // SAFETY: NEON is part of the aarch64 baseline; the tables are
            // 16 bytes each.
            unsafe {
                let by_low = vld1q_u8(super::SIMPLE_BY_LOW.as_ptr());
                let by_high = vld1q_u8(super::SIMPLE_BY_HIGH.as_ptr());
                self.bits(|x| {
                    let low = vqtbl1q_u8(by_low, vandq_u8(x, vdupq_n_u8(0x0F)));
                    let high = vqtbl1q_u8(by_high, vshrq_n_u8::<4>(x));
                    vtstq_u8(low, high)
                })
            }
        }
    }

    /// `x` with the escaped bytes (bit set in `esc`) decoded, as on x86.
    ///
    /// # Safety
    ///
    /// None on aarch64 (`unsafe` to match the x86 function's signature).
    #[inline(always)]
    pub(super) unsafe fn translate(x: uint8x16_t, esc: u16) -> uint8x16_t {
        // SAFETY: NEON is part of the aarch64 baseline; the tables are 16
        // bytes each.
        unsafe {
            let letters = vld1q_u8(super::LETTERS.as_ptr());
            let decoded = vqtbl1q_u8(letters, vandq_u8(vshrq_n_u8::<1>(x), vdupq_n_u8(0x0F)));
            // 0x60..=0x7F are letters; `" \ /` and bytes from 0x80 are not.
            let is_letter = vcgtq_s8(vreinterpretq_s8_u8(x), vdupq_n_s8(0x5F));
            let spread = vcombine_u8(vdup_n_u8(esc as u8), vdup_n_u8((esc >> 8) as u8));
            let escaped = vtstq_u8(spread, vld1q_u8(WEIGHTS.as_ptr()));
            vbslq_u8(vandq_u8(escaped, is_letter), decoded, x)
        }
    }

    /// Stores the 16 bytes of `x` at `dst`.
    ///
    /// # Safety
    ///
    /// 16 bytes at `dst` are writable.
    #[inline(always)]
    pub(super) unsafe fn store16(x: uint8x16_t, dst: *mut u8) {
        // SAFETY: the caller vouches for `dst`.
        unsafe { vst1q_u8(dst, x) }
    }

    /// As the x86 `pack8`: the kept bytes of the low (or `high`) eight of
    /// `x`, in order, at `dst` (eight bytes are stored); returns how many.
    ///
    /// # Safety
    ///
    /// Eight bytes at `dst` are writable.
    #[inline(always)]
    pub(super) unsafe fn pack8(x: uint8x16_t, keep: u8, high: bool, dst: *mut u8) -> usize {
        // SAFETY: `PACK` entries are 8 bytes; the caller vouches for `dst`.
        unsafe {
            let half = if high {
                vget_high_u8(x)
            } else {
                vget_low_u8(x)
            };
            let pattern = vld1_u8(super::PACK[keep as usize].as_ptr());
            vst1_u8(dst, vtbl1_u8(half, pattern));
        }
        keep.count_ones() as usize
    }
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::*;
    use crate::scan::unescape::UNESCAPED;

    /// The classes the one-pass scan decides by, against the tables of the
    /// bytewise scan, for every byte value. A class too narrow would only
    /// send more blocks to the portable path (same output, so no other test
    /// would see it); one too wide would let a bad line through.
    #[test]
    fn classes_match_the_bytewise_rules() {
        #[cfg(target_arch = "x86_64")]
        if !std::is_x86_feature_detected!("ssse3") {
            return;
        }
        let bytes: Vec<u8> = (0..=255).collect();
        for block in bytes.chunks_exact(64) {
            // SAFETY: `block` is 64 bytes; SSSE3 was detected above.
            let (v, simple) = unsafe {
                let v = Block::load(block.as_ptr());
                (v, v.simple_escapes())
            };
            let (control, quote) = (v.control(), v.eq(b'"'));
            for (i, &b) in block.iter().enumerate() {
                let bit = |m: u64| m >> i & 1 == 1;
                assert_eq!(bit(simple), UNESCAPED[b as usize] != 0, "byte {b:#04x}");
                assert_eq!(bit(control), b < 0x20, "byte {b:#04x}");
                assert_eq!(bit(quote), b == b'"', "byte {b:#04x}");
            }
        }
    }
}
