//! The other stages alone, in bytes of decompressed log text per second, so they compare with
//! the parser (`benches/parse.rs`) and end to end (`benches/convert.rs`):
//! - gunzip: flate2 (zlib-rs backend) over the whole generated `.gz`, all members;
//! - encode: already-parsed Arrow batches to zstd Parquet in memory with the lake's settings, on
//!   the default log and on the high-cardinality one;
//! - rollups: the per-block heavy-hitter summaries, distinct-IP sketch and per-minute traffic
//!   counters of parsed batches (`sketch_block`, run on the parse pool), on the default log and on
//!   `gen`'s high-cardinality one (2M paths, 1M client IPs).

use std::hint::black_box;
use std::io::{Read, Write};

use cdnlake::access::block::{parse_block, BlockOptions};
use cdnlake::dev::gen::{generate, GenOptions};
use cdnlake::tables::access::ACCESS;
use cdnlake::writers::parquet::{writer_properties, ParquetOptions};
use cdnlake::writers::sketches::sketch_block;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench_stages(c: &mut Criterion) {
    let mut text = Vec::new();
    generate(
        &GenOptions {
            lines: 100_000,
            ..GenOptions::default()
        },
        &mut text,
    )
    .expect("generate");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&text).expect("gzip");
    let gz = gz.finish().expect("gzip");

    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(20);
    g.bench_function("gunzip", |b| {
        let mut buf = vec![0u8; 256 * 1024];
        b.iter(|| {
            let mut d = flate2::read::MultiGzDecoder::new(black_box(&gz[..]));
            let mut n = 0;
            while let Ok(k) = d.read(&mut buf) {
                if k == 0 {
                    break;
                }
                n += k;
            }
            n
        })
    });

    let schema = ACCESS.arrow_schema();
    let parsed = parse_block(&text, 1, "bench.gz", &schema, &BlockOptions::default());
    let props = writer_properties(&ACCESS, &ParquetOptions::default()).expect("props");
    // The access file of a block, in memory, with the lake's writer settings.
    let encode = |parsed: &cdnlake::access::block::ParsedBlock| {
        let mut w =
            parquet::arrow::ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone()))
                .expect("writer");
        for p in &parsed.parts {
            w.write(&p.batch).expect("write");
        }
        w.into_inner().expect("close").len()
    };
    g.bench_function("encode_parquet", |b| b.iter(|| encode(black_box(&parsed))));
    g.bench_function("rollups", |b| {
        b.iter(|| sketch_block(black_box(&parsed), BlockOptions::default().tz).expect("sketch"))
    });
    let mut high = Vec::new();
    generate(
        &GenOptions {
            lines: 100_000,
            high_cardinality: true,
            ..GenOptions::default()
        },
        &mut high,
    )
    .expect("generate");
    let parsed_high = parse_block(&high, 1, "bench.gz", &schema, &BlockOptions::default());
    g.throughput(Throughput::Bytes(high.len() as u64));
    // Dictionaries overflow here as on a busy domain (issue 18's per-column encodings).
    g.bench_function("encode_parquet_high_cardinality", |b| {
        b.iter(|| encode(black_box(&parsed_high)))
    });
    g.bench_function("rollups_high_cardinality", |b| {
        b.iter(|| {
            sketch_block(black_box(&parsed_high), BlockOptions::default().tz).expect("sketch")
        })
    });
    g.finish();
}

criterion_group!(benches, bench_stages);
criterion_main!(benches);
