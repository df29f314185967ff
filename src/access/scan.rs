//! Byte search for short haystacks: the fields of one log line (tens to a few hundred bytes).
//!
//! `memchr` is built for long haystacks: each call goes through a function pointer picked at run
//! time and sets up 32-byte vectors. A log line calls it five or six times on fields of 10 to 150
//! bytes, where that setup is most of the cost (measured: memchr was 12% of parse time). These
//! searches are inlined into the parser and use SSE2, which every x86_64 CPU has, 16 bytes at a
//! time; other targets get a plain loop.

/// Position of the first `needle` in `hay`.
#[inline(always)]
pub fn find(hay: &[u8], needle: u8) -> Option<usize> {
    find_by(hay, [needle, needle])
}

/// Position of the first byte of `hay` equal to either of `needles`.
#[inline(always)]
pub(crate) fn find2(hay: &[u8], a: u8, b: u8) -> Option<usize> {
    find_by(hay, [a, b])
}

#[inline(always)]
fn find_by(hay: &[u8], needles: [u8; 2]) -> Option<usize> {
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are always available;
        // every 16-byte load reads `hay[i..i + 16]`, inside `hay` by the loop condition.
        unsafe {
            let na = _mm_set1_epi8(needles[0] as i8);
            let nb = _mm_set1_epi8(needles[1] as i8);
            while i + 16 <= hay.len() {
                let v = _mm_loadu_si128(hay.as_ptr().add(i).cast::<__m128i>());
                let eq = _mm_or_si128(_mm_cmpeq_epi8(v, na), _mm_cmpeq_epi8(v, nb));
                let mask = _mm_movemask_epi8(eq) as u32;
                if mask != 0 {
                    return Some(i + mask.trailing_zeros() as usize);
                }
                i += 16;
            }
        }
    }
    hay[i..]
        .iter()
        .position(|&c| c == needles[0] || c == needles[1])
        .map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_a_plain_search_at_every_length_and_position() {
        for len in 0..70 {
            for at in 0..=len {
                let mut hay = vec![b'x'; len];
                if at < len {
                    hay[at] = b'"';
                }
                let want = (at < len).then_some(at);
                assert_eq!(find(&hay, b'"'), want, "len {len} at {at}");
                assert_eq!(find2(&hay, b'/', b'"'), want, "len {len} at {at}");
                if at < len {
                    // The first of several matches wins.
                    hay.iter_mut().skip(at).for_each(|c| *c = b'/');
                    assert_eq!(find2(&hay, b'?', b'/'), Some(at));
                }
            }
        }
        assert_eq!(find(&[0xff; 40], 0xff), Some(0));
    }
}
