//! Fuzzes the line framer: any bytes, cut into pushes anywhere, or read into the block being
//! filled in reads of any size (the decoder's path, into fresh or stale recycled buffers), must
//! give the blocks of a single push, numbered in order, every block but the last ending with
//! `\n`, and their lines must be the input's lines, each whole or (longer than a block) cut to
//! `max_line + 1` bytes.
#![no_main]

use cdnlake::convert::framer::{expected_lines, frame_all, frame_all_by_reads, framed_lines};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first bytes choose the sizes (small, so that blocks fill and lines get cut), the rest
    // is the input.
    let [block_size, max_line, c0, c1, c2, input @ ..] = data else {
        return;
    };
    let (block_size, max_line) = (usize::from(*block_size), usize::from(*max_line % 64));
    let chunks = [usize::from(*c0), usize::from(*c1), usize::from(*c2)];
    let whole = frame_all(input, block_size, max_line, &[]);
    let split = frame_all(input, block_size, max_line, &chunks);
    assert_eq!(whole, split, "a split changed the blocks");
    // The low bit of the first size chooses fresh or recycled buffers.
    let read = frame_all_by_reads(input, block_size, max_line, &chunks, c0 & 1 == 1);
    assert_eq!(whole, read, "reading into the block changed the blocks");
    let lines = framed_lines(&whole).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lines, expected_lines(input, block_size, max_line));
});
