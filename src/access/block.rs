//! Parsing a block of whole lines into per-partition Arrow batches and reject records.
//!
//! This is the unit of parallel work: the pipeline cuts the decompressed stream into
//! line-aligned blocks and hands each to [`parse_block`] on a rayon thread. Pure: bytes in, batches
//! and rejects out.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde::Serialize;

use super::builder::AccessBuilder;
use super::parse::{LineError, LineParser, RejectKind};
use super::time::PartitionTz;

/// Settings for block parsing.
#[derive(Debug, Clone)]
pub struct BlockOptions {
    pub tz: PartitionTz,
    /// Lines longer than this (bytes, without the terminator) are rejected.
    pub max_line: usize,
}

impl Default for BlockOptions {
    fn default() -> Self {
        BlockOptions {
            tz: PartitionTz::default(),
            max_line: 64 * 1024,
        }
    }
}

/// A rejected line, as written to `rejects/.../<stem>.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectRecord {
    pub line_number: u64,
    /// 1-based field where parsing stopped (0: the line as a whole).
    pub field: u8,
    pub field_name: &'static str,
    pub reason: &'static str,
    /// The line (lossy UTF-8; cut to the line limit when over-long).
    pub line: String,
}

/// Rows of one partition hour from one block.
#[derive(Debug)]
pub struct PartitionBatch {
    /// Hours since the epoch on the partition time zone's wall clock.
    pub bucket: i64,
    pub batch: RecordBatch,
}

/// What one block produced.
#[derive(Debug, Default)]
pub struct ParsedBlock {
    pub lines: u64,
    pub rows: u64,
    pub empty: u64,
    pub invalid_utf8: u64,
    pub parts: Vec<PartitionBatch>,
    pub rejects: Vec<RejectRecord>,
}

fn reject(line_number: u64, e: LineError, text: &str) -> RejectRecord {
    RejectRecord {
        line_number,
        field: e.field,
        field_name: e.field_name(),
        reason: e.kind.as_str(),
        line: text.to_string(),
    }
}

/// Bytes of whole lines validated as UTF-8 at once: about 50 lines, so a bad byte costs the
/// line-by-line check of 50 lines, and the per-call cost of the validator is spread over 16 KiB.
const UTF8_CHUNK: usize = 16 * 1024;

/// Parses every line of `data`. Lines are `\n`-terminated; a last line without terminator is still
/// a line. `first_line` is the 1-based number of the block's first line in the file.
pub fn parse_block(
    data: &[u8],
    first_line: u64,
    source_file: &str,
    schema: &SchemaRef,
    opts: &BlockOptions,
) -> ParsedBlock {
    let mut out = ParsedBlock::default();
    // Most blocks fall in one hour; a short list beats a map.
    let mut builders: Vec<(i64, AccessBuilder)> = Vec::with_capacity(2);
    let est_rows = data.len() / 200 + 16;
    if data.is_empty() {
        return out;
    }
    let body_len = data.strip_suffix(b"\n").map_or(data.len(), <[u8]>::len);
    // UTF-8 is validated a chunk of whole lines at a time (`chunk` is `data[chunk_start..
    // chunk_end]` when valid), much cheaper than line by line; only the lines of a chunk that
    // fails are checked one by one. Cutting valid UTF-8 at '\n' never splits a character. Not
    // the whole block at once: a log with one bad byte every few thousand lines (real ones
    // have them) would then validate every line of every block on its own.
    let (mut chunk, mut chunk_start, mut chunk_end): (Option<&str>, usize, usize) = (None, 0, 0);
    let mut line_number = first_line;
    let mut parser = LineParser::default();
    // The builder of the last row's time (`last_time`), an index into `builders`.
    let (mut last_time, mut last_part) = (i64::MIN, 0);
    let mut start = 0;
    while start <= body_len {
        let end = memchr::memchr(b'\n', &data[start..body_len]).map_or(body_len, |i| start + i);
        if end > chunk_end || start == 0 {
            // Lines from this one to the first line end at or after `start + UTF8_CHUNK`.
            let to = (start + UTF8_CHUNK).clamp(end, body_len);
            chunk_end = memchr::memchr(b'\n', &data[to..body_len]).map_or(body_len, |i| to + i);
            chunk_start = start;
            chunk = simdutf8::basic::from_utf8(&data[chunk_start..chunk_end]).ok();
        }
        let (line_start, line_end) = (start, end);
        start = end + 1;
        out.lines += 1;
        let n = line_number;
        line_number += 1;
        let raw = &data[line_start..line_end];
        let trimmed_end = if raw.last() == Some(&b'\r') {
            line_end - 1
        } else {
            line_end
        };
        let raw = &data[line_start..trimmed_end];
        if raw.is_empty() {
            out.empty += 1;
            continue;
        }
        if raw.len() > opts.max_line {
            let cut = &raw[..opts.max_line];
            let e = LineError {
                field: 0,
                kind: RejectKind::TooLong,
            };
            out.rejects
                .push(reject(n, e, &String::from_utf8_lossy(cut)));
            continue;
        }
        let lossy;
        let text: &str = match chunk {
            Some(s) => &s[line_start - chunk_start..trimmed_end - chunk_start],
            None => match simdutf8::basic::from_utf8(raw) {
                Ok(s) => s,
                Err(_) => {
                    out.invalid_utf8 += 1;
                    lossy = String::from_utf8_lossy(raw);
                    &lossy
                }
            },
        };
        match parser.parse(text) {
            Ok(rec) => {
                // Consecutive lines mostly share their second, and so their hour's builder.
                if builders.is_empty() || rec.time_micros != last_time {
                    let bucket = opts.tz.hour_bucket(rec.time_micros);
                    last_part = match builders.iter().position(|(k, _)| *k == bucket) {
                        Some(i) => i,
                        None => {
                            builders.push((
                                bucket,
                                AccessBuilder::with_capacity(schema.clone(), est_rows, data.len()),
                            ));
                            builders.len() - 1
                        }
                    };
                    last_time = rec.time_micros;
                }
                builders[last_part].1.append(&rec, n);
                out.rows += 1;
            }
            Err(e) => out.rejects.push(reject(n, e, text)),
        }
    }
    out.parts = builders
        .into_iter()
        .map(|(bucket, b)| PartitionBatch {
            bucket,
            batch: b.finish(source_file),
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::access::ACCESS;

    const L: &str = r#"[9/Jun/2015:01:58:09 +0800] 192.0.2.10 - 1542 "-" "GET http://www.example.com/index.html" 200 191 2830 MISS "Mozilla/5.0" "text/html""#;

    #[test]
    fn counts_every_line_once() {
        let l2 = L.replace("01:58:09", "02:00:01");
        let data = format!("{L}\r\n\n{l2}\ngarbage\n{}\n\n{L}", "x".repeat(100));
        let opts = BlockOptions {
            max_line: 50,
            ..BlockOptions::default()
        };
        let p = parse_block(
            data.as_bytes(),
            10,
            "f.gz",
            &ACCESS.arrow_schema(),
            &BlockOptions {
                max_line: 4096,
                ..opts.clone()
            },
        );
        assert_eq!(
            (p.lines, p.rows, p.empty, p.rejects.len() as u64),
            (7, 3, 2, 2)
        );
        assert_eq!(p.parts.len(), 2, "two hours");
        assert_eq!(p.rejects[0].line_number, 13);
        assert_eq!(p.rejects[0].field, 1);
        let p = parse_block(data.as_bytes(), 1, "f.gz", &ACCESS.arrow_schema(), &opts);
        assert_eq!(p.rows, 0, "every log line is over 50 bytes");
        let too_long: Vec<_> = p.rejects.iter().filter(|r| r.field == 0).collect();
        assert_eq!(too_long.len(), 4);
        assert!(too_long
            .iter()
            .all(|r| r.line.len() == 50 && r.field_name == "line"));
    }

    /// A block of several UTF-8 chunks, with bad bytes at a chunk's first and last line, empty
    /// lines, CRLF and rejects, gives the same rows and records as its lines parsed one by one.
    #[test]
    fn chunked_utf8_check_matches_line_by_line() {
        let schema = ACCESS.arrow_schema();
        let opts = BlockOptions::default();
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for i in 0..600 {
            let mut l = L
                .replace("Mozilla/5.0", &format!("Mozilla/{i} é"))
                .into_bytes();
            match i % 97 {
                0 => l.clear(),
                1 => l.extend_from_slice(b"\r"),
                2 => l = b"garbage \xff".to_vec(),
                _ => {}
            }
            lines.push(l);
        }
        // Bad bytes right before and after the first chunk cut, and in the last line.
        let mut cut = 0;
        for (i, l) in lines.iter().enumerate() {
            cut += l.len() + 1;
            if cut > UTF8_CHUNK {
                for j in [i - 1, i, i + 1, lines.len() - 1] {
                    let ua = lines[j].windows(7).position(|w| w == b"Mozilla");
                    if let Some(p) = ua {
                        lines[j][p] = 0xc3;
                    }
                }
                break;
            }
        }
        let data = lines.join(&b"\n"[..]);
        assert!(data.len() > 3 * UTF8_CHUNK);
        let whole = parse_block(&data, 1, "f.gz", &schema, &opts);
        let (mut rows, mut bad, mut empty, mut rejects) = (0, 0, 0, Vec::new());
        let mut values = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            if l.is_empty() {
                // Alone, an empty line is an empty block: no line at all.
                empty += 1;
                continue;
            }
            let one = parse_block(l, i as u64 + 1, "f.gz", &schema, &opts);
            rows += one.rows;
            bad += one.invalid_utf8;
            empty += one.empty;
            rejects.extend(one.rejects);
            values.extend(one.parts.iter().flat_map(|p| ua_values(&p.batch)));
        }
        assert!(bad >= 4, "the test puts bad bytes in: {bad}");
        assert_eq!(
            (whole.lines, whole.rows, whole.invalid_utf8, whole.empty),
            (lines.len() as u64, rows, bad, empty)
        );
        assert_eq!(whole.rejects, rejects);
        let got: Vec<String> = whole
            .parts
            .iter()
            .flat_map(|p| ua_values(&p.batch))
            .collect();
        assert_eq!(got, values);
    }

    fn ua_values(b: &RecordBatch) -> Vec<String> {
        let ua = b.column_by_name("user_agent").unwrap();
        let ua = ua
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        ua.iter().map(|v| v.unwrap().to_string()).collect()
    }

    #[test]
    fn invalid_utf8_is_lossy_and_counted() {
        let mut data = L.replace("Mozilla/5.0", "Mozilla\u{1}").into_bytes();
        let pos = data.iter().position(|&b| b == 1).unwrap();
        data[pos] = 0xff;
        data.push(b'\n');
        let p = parse_block(
            &data,
            1,
            "f.gz",
            &ACCESS.arrow_schema(),
            &BlockOptions::default(),
        );
        assert_eq!((p.rows, p.invalid_utf8), (1, 1));
        let ua = p.parts[0].batch.column_by_name("user_agent").unwrap();
        let ua = ua
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(ua.value(0), "Mozilla\u{fffd}");
    }
}
