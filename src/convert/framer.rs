//! Line framing, pure: decompressed bytes come in, in reads or pushes of any size, and blocks of
//! whole lines come out, numbered, ready to parse in parallel. No I/O, channel or thread
//! (`source.rs` has gunzip write into the block being filled and sends the blocks on), so the
//! rules below are tested and fuzzed on their own (`fuzz/fuzz_targets/frame_lines.rs`).
//!
//! The rules, which depend only on the bytes and never on how they were cut into reads or
//! pushes:
//!
//! - A block is filled to `block_size` bytes, then cut after its last `\n`; the bytes after it
//!   start the next block. A block starts at the start of a line.
//! - A full block without any `\n` holds the start of a line too long to keep: it is cut to
//!   `max_line + 1` bytes and a `\n` (so the parser rejects it as too long, at its own line
//!   number), and the rest of the line, up to and including its `\n`, is skipped. Memory stays
//!   bounded whatever the input.
//! - [`LineFramer::finish`] hands over what is left, which may end without `\n` (a file's last
//!   line). `\n` alone ends a line: a `\r` before it stays in the line, as the parser expects.
//!
//! So the lines that come out are the input's lines, in order and at their own numbers, each
//! one whole or (over `block_size - 1` bytes) cut to `max_line + 1` bytes.
//!
//! The model is arrow-csv's push `Decoder`. The decoder writes a block's bytes where they stay:
//! [`LineFramer::space`] is the unfilled rest of the block, [`LineFramer::commit`] takes what
//! was written into it; only the partial line at a block's end is copied, to the next block's
//! start. [`LineFramer::push`] copies a chunk in instead: the plain model the tests hold that
//! path to. Lines are counted once per block (memchr's SIMD count); a block's buffer can be
//! handed back ([`LineFramer::recycle`]) once parsed, so a few warm buffers go round instead of
//! fresh ones, each zeroed and faulted in page by page.

use std::collections::VecDeque;

/// A block of whole lines (the last block of a file may end without `\n`).
#[derive(Debug, PartialEq, Eq)]
pub struct Block {
    /// 0-based position of the block in the file.
    pub seq: u64,
    /// 1-based number of the block's first line in the decompressed file.
    pub first_line: u64,
    pub data: Vec<u8>,
}

/// Extra capacity of a block's buffer past `block_size`: the `\n` that ends a cut line never
/// reallocates it.
const SLACK: usize = 64;

/// Cuts a byte stream into [`Block`]s of whole lines (see the module's rules). The bytes come in
/// by [`push`](Self::push) (copied from the caller's chunk) or are written straight into the
/// block being filled ([`space`](Self::space) then [`commit`](Self::commit)).
#[derive(Debug)]
pub struct LineFramer {
    block_size: usize,
    max_line: usize,
    /// The block being filled: no capacity until its first byte, then `block_size` bytes long
    /// (initialised, so a reader can write into its tail) of which the first `filled` are the
    /// block's.
    buf: Vec<u8>,
    filled: usize,
    /// Inside the rest of a line that was cut: bytes are dropped up to its `\n`.
    skipping: bool,
    /// A parsed block's buffer, to fill next instead of a fresh one.
    spare: Option<Vec<u8>>,
    seq: u64,
    next_line: u64,
    /// Blocks cut and not yet taken by the caller.
    ready: VecDeque<Block>,
}

impl LineFramer {
    /// A framer of blocks of about `block_size` bytes that cuts lines too long for a block to
    /// `max_line + 1` bytes. A block always holds two lines of `max_line` bytes: a smaller
    /// `block_size` is raised to that.
    pub fn new(block_size: usize, max_line: usize) -> Self {
        LineFramer {
            block_size: block_size.max(2 * max_line + 2),
            max_line,
            buf: Vec::new(),
            filled: 0,
            skipping: false,
            spare: None,
            seq: 0,
            next_line: 1,
            ready: VecDeque::new(),
        }
    }

    /// Takes `data` in whole and returns the blocks it completed, in order. Blocks the caller
    /// does not take stay queued and come first from the next `push` or from `finish`.
    ///
    /// This copies every byte once, from `data` into the block; `source.rs` has the decoder
    /// write into the block instead ([`space`](Self::space)). `push` is the plain model of the
    /// rules the tests and the fuzz target hold that path to.
    pub fn push(&mut self, mut data: &[u8]) -> impl Iterator<Item = Block> + '_ {
        while !data.is_empty() {
            if self.skipping {
                match memchr::memchr(b'\n', data) {
                    Some(i) => {
                        data = &data[i + 1..];
                        self.skipping = false;
                    }
                    None => break,
                }
                continue;
            }
            let space = self.space();
            let take = space.len().min(data.len());
            space[..take].copy_from_slice(&data[..take]);
            data = &data[take..];
            self.filled += take;
            if self.filled == self.block_size {
                self.cut_full();
            }
        }
        self.drain()
    }

    /// The unfilled rest of the block being filled, never empty, for a reader to write the next
    /// bytes into; [`commit`](Self::commit) then takes the ones it wrote. This is how the
    /// decoder fills blocks without copying: gunzip writes straight into the block's buffer.
    /// The bytes are initialised (a fresh buffer is zeroed once; a recycled one keeps its old
    /// bytes, overwritten as it fills).
    pub fn space(&mut self) -> &mut [u8] {
        if self.buf.capacity() == 0 {
            self.buf = self.fresh_buffer();
            self.filled = 0;
        }
        &mut self.buf[self.filled..]
    }

    /// Takes the first `n` bytes of [`space`](Self::space) as the next bytes of the input and
    /// returns the blocks they completed, in order, as [`push`](Self::push) of those bytes
    /// would. `n` past the space's length is an error of the caller's: it is cut to that length.
    pub fn commit(&mut self, n: usize) -> impl Iterator<Item = Block> + '_ {
        let mut n = n.min(self.buf.len() - self.filled);
        if self.skipping && n > 0 {
            // The rest of a cut line: drop it up to its `\n` and move what follows to the
            // block's start (only after an over-long line, so the move is rare).
            let start = self.filled;
            match memchr::memchr(b'\n', &self.buf[start..start + n]) {
                Some(i) => {
                    self.buf.copy_within(start + i + 1..start + n, start);
                    n -= i + 1;
                    self.skipping = false;
                }
                None => n = 0,
            }
        }
        self.filled += n;
        if self.filled == self.block_size {
            self.cut_full();
        }
        self.drain()
    }

    /// Ends the input: returns the blocks not yet taken and the last one, which may end without
    /// `\n` (that line is counted all the same).
    pub fn finish(mut self) -> impl Iterator<Item = Block> {
        if self.filled > 0 {
            let mut data = std::mem::take(&mut self.buf);
            data.truncate(self.filled);
            self.emit(data, true);
        }
        self.ready.into_iter()
    }

    /// Hands back a parsed block's buffer: the next block is filled into it. Only one is kept.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.spare = Some(buf);
    }

    /// True when no buffer is kept for the next block ([`recycle`](Self::recycle) would keep one).
    pub fn wants_buffer(&self) -> bool {
        self.spare.is_none()
    }

    /// Blocks cut so far, including the ones still queued.
    pub fn blocks(&self) -> u64 {
        self.seq
    }

    fn drain(&mut self) -> impl Iterator<Item = Block> + '_ {
        std::iter::from_fn(|| self.ready.pop_front())
    }

    /// A buffer `block_size` bytes long to fill the next block into. A recycled one is only
    /// zeroed past its last block's length (the part of a line that was cut off, or nothing);
    /// a fresh one is zeroed whole, by the allocator (`alloc_zeroed`).
    fn fresh_buffer(&mut self) -> Vec<u8> {
        match self.spare.take() {
            Some(mut b) => {
                b.reserve((self.block_size + SLACK).saturating_sub(b.len()));
                b.resize(self.block_size, 0);
                b
            }
            None => {
                let mut b = vec![0; self.block_size + SLACK];
                b.truncate(self.block_size);
                b
            }
        }
    }

    /// The block is full: cut it after its last line, or cut its one over-long line.
    fn cut_full(&mut self) {
        match memchr::memrchr(b'\n', &self.buf[..self.filled]) {
            Some(i) => {
                let mut next = self.fresh_buffer();
                let rest = self.filled - (i + 1);
                next[..rest].copy_from_slice(&self.buf[i + 1..self.filled]);
                let mut data = std::mem::replace(&mut self.buf, next);
                self.filled = rest;
                data.truncate(i + 1);
                self.emit(data, false);
            }
            None => {
                let mut data = std::mem::take(&mut self.buf);
                self.filled = 0;
                data.truncate(self.max_line + 1);
                data.push(b'\n');
                self.skipping = true;
                self.emit(data, false);
            }
        }
    }

    fn emit(&mut self, data: Vec<u8>, last: bool) {
        // memchr's SIMD count (AVX2 where the CPU has it): this runs on the decoder thread, the
        // one stage that cannot be parallel. The plain `filter(..).count()` loop it replaced
        // compiled to 4 bytes a step and took 4.5% of a whole run's CPU (perf).
        let mut lines = memchr::memchr_iter(b'\n', &data).count() as u64;
        if last && !data.ends_with(b"\n") {
            lines += 1;
        }
        self.ready.push_back(Block {
            seq: self.seq,
            first_line: self.next_line,
            data,
        });
        self.seq += 1;
        self.next_line += lines;
    }
}

/// Every block of `input` pushed in the given chunk sizes (cycled; 0 is read as 1), then
/// finished. For tests and the fuzz target: the framing of any split must be the framing of one
/// push.
pub fn frame_all(input: &[u8], block_size: usize, max_line: usize, chunks: &[usize]) -> Vec<Block> {
    let mut framer = LineFramer::new(block_size, max_line);
    let mut out = Vec::new();
    let mut rest = input;
    let mut sizes = chunks.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        out.extend(framer.push(&rest[..n]));
        rest = &rest[n..];
    }
    out.extend(framer.finish());
    out
}

/// Every block of `input` written into the framer's [`space`](LineFramer::space) by reads of
/// the given sizes (cycled; 0 is read as 1; a read is cut to the space), each then committed,
/// and finished: the path the decoder takes. With `recycle`, every block's buffer is handed back
/// full of `\n` (stale bytes that would show as extra lines if any leaked into a block). For
/// tests and the fuzz target: it must give the blocks of [`frame_all`].
pub fn frame_all_by_reads(
    input: &[u8],
    block_size: usize,
    max_line: usize,
    reads: &[usize],
    recycle: bool,
) -> Vec<Block> {
    let mut framer = LineFramer::new(block_size, max_line);
    let mut out: Vec<Block> = Vec::new();
    let mut rest = input;
    let mut sizes = reads.iter().copied().cycle();
    while !rest.is_empty() {
        let space = framer.space();
        let n = sizes
            .next()
            .unwrap_or(rest.len())
            .clamp(1, rest.len())
            .min(space.len());
        space[..n].copy_from_slice(&rest[..n]);
        rest = &rest[n..];
        let blocks: Vec<Block> = framer.commit(n).collect();
        for b in blocks {
            if recycle {
                let mut stale = b.data.clone();
                stale.fill(b'\n');
                stale.resize(stale.capacity().max(block_size), b'\n');
                framer.recycle(stale);
            }
            out.push(b);
        }
    }
    out.extend(framer.finish());
    out
}

/// The lines the framer must give for `input`: its lines (`\n`-separated; a last line without
/// `\n` counts), each cut to `max_line + 1` bytes when it does not fit a block (`block_size`
/// bytes or more, after [`LineFramer::new`] raised `block_size`). The oracle of the tests.
pub fn expected_lines(input: &[u8], block_size: usize, max_line: usize) -> Vec<&[u8]> {
    let block_size = block_size.max(2 * max_line + 2);
    let mut lines: Vec<&[u8]> = input.split(|&c| c == b'\n').collect();
    if input.is_empty() || input.ends_with(b"\n") {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|l| {
            if l.len() >= block_size {
                &l[..max_line + 1]
            } else {
                l
            }
        })
        .collect()
}

/// The lines of framed blocks, split as [`expected_lines`] splits the input, after checking the
/// blocks are numbered in order and every block but the last ends with `\n`. `Err` names the
/// first broken rule.
pub fn framed_lines(blocks: &[Block]) -> Result<Vec<&[u8]>, String> {
    let mut next_line = 1;
    let mut lines = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let last = i + 1 == blocks.len();
        if b.seq != i as u64 {
            return Err(format!("block {i} has seq {}", b.seq));
        }
        if b.first_line != next_line {
            return Err(format!(
                "block {i} starts at line {}, not {next_line}",
                b.first_line
            ));
        }
        if b.data.is_empty() {
            return Err(format!("block {i} is empty"));
        }
        if !last && !b.data.ends_with(b"\n") {
            return Err(format!("block {i} ends inside a line"));
        }
        let mut parts: Vec<&[u8]> = b.data.split(|&c| c == b'\n').collect();
        if b.data.ends_with(b"\n") {
            parts.pop();
        }
        next_line += parts.len() as u64;
        lines.extend(parts);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn data(blocks: &[Block]) -> Vec<&[u8]> {
        blocks.iter().map(|b| b.data.as_slice()).collect()
    }

    #[test]
    fn blocks_are_cut_after_their_last_line() {
        // block_size is raised to 2 * 2 + 2 = 6.
        let blocks = frame_all(b"ab\ncd\nef\ngh", 1, 2, &[]);
        assert_eq!(data(&blocks), [&b"ab\ncd\n"[..], b"ef\ngh"]);
        assert_eq!(blocks[1].first_line, 3);
        assert_eq!(blocks[1].seq, 1);
    }

    #[test]
    fn the_last_line_may_end_without_newline() {
        let blocks = frame_all(b"a\nb", 100, 10, &[]);
        assert_eq!(data(&blocks), [&b"a\nb"[..]]);
        let mut f = LineFramer::new(100, 10);
        assert_eq!(f.push(b"a\nb").count(), 0, "nothing full yet");
        let last: Vec<Block> = f.finish().collect();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].first_line, 1);
    }

    #[test]
    fn empty_input_gives_no_block() {
        assert!(frame_all(b"", 100, 10, &[]).is_empty());
        assert_eq!(LineFramer::new(100, 10).finish().count(), 0);
    }

    #[test]
    fn an_over_long_line_is_cut_and_skipped_to_its_end() {
        // block_size 22; the 30-byte line is cut to max_line + 1 = 11 bytes.
        let mut input = b"short\n".to_vec();
        input.extend([b'y'; 30]);
        input.extend(b"\nafter\n");
        let blocks = frame_all(&input, 22, 10, &[3]);
        assert_eq!(
            data(&blocks),
            [&b"short\n"[..], b"yyyyyyyyyyy\n", b"after\n"]
        );
        assert_eq!(blocks[2].first_line, 3, "the cut line keeps its number");
    }

    #[test]
    fn an_over_long_last_line_ends_the_input() {
        let input = [b'z'; 40];
        let blocks = frame_all(&input, 22, 10, &[]);
        assert_eq!(data(&blocks), [&b"zzzzzzzzzzz\n"[..]]);
    }

    #[test]
    fn a_line_of_block_size_minus_one_is_kept_whole() {
        let mut input = vec![b'x'; 21];
        input.extend(b"\nz\n");
        let blocks = frame_all(&input, 22, 10, &[]);
        let lines = framed_lines(&blocks).unwrap();
        assert_eq!(lines, [&input[..21], b"z"]);
    }

    #[test]
    fn carriage_returns_stay_in_their_lines() {
        let blocks = frame_all(b"a\r\nb\rc\n\r", 100, 10, &[]);
        let lines = framed_lines(&blocks).unwrap();
        assert_eq!(lines, [&b"a\r"[..], b"b\rc", b"\r"]);
    }

    #[test]
    fn recycled_buffers_are_filled_first() {
        let mut f = LineFramer::new(6, 2);
        let mut warm = Vec::with_capacity(1000);
        warm.extend_from_slice(b"old");
        let ptr = warm.as_ptr();
        f.recycle(warm);
        assert!(!f.wants_buffer());
        let blocks: Vec<Block> = f.push(b"ab\ncd\n").collect();
        assert!(f.wants_buffer());
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].data, b"ab\ncd\n", "the old bytes are gone");
        assert_eq!(blocks[0].data.as_ptr(), ptr);
        assert_eq!(f.blocks(), 1);
    }

    #[test]
    fn blocks_not_taken_come_later() {
        let mut f = LineFramer::new(6, 2);
        drop(f.push(b"ab\ncd\nef\ngh\nij\nkl\n"));
        let first: Vec<Block> = f.push(b"m").collect();
        assert_eq!(first.len(), 3);
        assert_eq!(first[2].first_line, 5);
        let rest: Vec<Block> = f.finish().collect();
        assert_eq!(data(&rest), [&b"m"[..]]);
        assert_eq!(rest[0].seq, 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any split of the input into pushes, or into reads written straight into the block
        /// (into fresh or recycled buffers), gives the blocks of one push, and their lines are
        /// the input's lines (over-long ones cut) at their own numbers.
        #[test]
        fn any_split_frames_like_one_push(
            input in proptest::collection::vec(
                prop_oneof![4 => Just(b'a'), 2 => Just(b'\n'), 1 => Just(b'\r'), 1 => any::<u8>()],
                0..400,
            ),
            block_size in 0usize..64,
            max_line in 0usize..20,
            chunks in proptest::collection::vec(0usize..70, 1..8),
        ) {
            let whole = frame_all(&input, block_size, max_line, &[]);
            let split = frame_all(&input, block_size, max_line, &chunks);
            prop_assert_eq!(&whole, &split);
            for recycle in [false, true] {
                let read = frame_all_by_reads(&input, block_size, max_line, &chunks, recycle);
                prop_assert_eq!(&whole, &read, "reads into the block, recycle {}", recycle);
            }
            let lines = framed_lines(&whole).map_err(TestCaseError::fail)?;
            prop_assert_eq!(lines, expected_lines(&input, block_size, max_line));
        }
    }
}
