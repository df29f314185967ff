//! Parser throughput (bytes of decompressed log text per second): one line at a time, and whole
//! blocks into Arrow column builders (what the pipeline runs on each core).

use cdnlake::access::block::{parse_block, BlockOptions};
use cdnlake::access::parse::parse_line;
use cdnlake::dev::gen::{generate, GenOptions};
use cdnlake::tables::access::ACCESS;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn sample(lines: u64) -> Vec<u8> {
    let mut out = Vec::new();
    generate(
        &GenOptions {
            lines,
            ..GenOptions::default()
        },
        &mut out,
    )
    .expect("generate");
    out
}

fn bench_parse(c: &mut Criterion) {
    let text = sample(20_000);
    // The generator writes a few non-UTF-8 bytes on purpose; the line bench needs text.
    let s = String::from_utf8_lossy(&text).into_owned();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("parse_line", |b| {
        b.iter(|| {
            let mut ok = 0u64;
            for l in s.split('\n') {
                if parse_line(black_box(l)).is_ok() {
                    ok += 1;
                }
            }
            ok
        })
    });
    let schema = ACCESS.arrow_schema();
    let opts = BlockOptions::default();
    g.bench_function("parse_block_to_arrow", |b| {
        b.iter(|| parse_block(black_box(&text), 1, "bench.gz", &schema, &opts).rows)
    });
    g.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
