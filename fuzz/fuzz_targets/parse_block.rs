//! Fuzzes the pure parsing layer: any bytes as a block of lines must never panic, every line must
//! be counted exactly once (row, reject or empty), and each single line must parse or be rejected
//! with a field number in range.
#![no_main]

use cdnlake::access::block::{parse_block, BlockOptions};
use cdnlake::access::parse::parse_line;
use cdnlake::tables::access::ACCESS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = BlockOptions { max_line: 512, ..BlockOptions::default() };
    let p = parse_block(data, 1, "fuzz.gz", &ACCESS.arrow_schema(), &opts);
    assert_eq!(p.lines, p.rows + p.rejects.len() as u64 + p.empty);
    let rows: usize = p.parts.iter().map(|b| b.batch.num_rows()).sum();
    assert_eq!(rows as u64, p.rows);
    if let Ok(s) = std::str::from_utf8(data) {
        for line in s.split('\n') {
            if let Err(e) = parse_line(line) {
                assert!((1..=12).contains(&e.field), "{e}");
            }
        }
    }
});
