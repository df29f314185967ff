//! End-to-end `convert` throughput: a generated `.gz` into zstd Parquet on local disk, measured in
//! bytes of decompressed log text per second. Compare with `gzip -dc FILE > /dev/null` on the same
//! file (see `benches/compare.sh`).

use cdnlake::convert::{convert_path, ConvertOptions};
use cdnlake::dev::gen::{cdn_file_name, generate, GenOptions};
use cdnlake::lake::store::Lake;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench_convert(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = GenOptions {
        lines: 200_000,
        ..GenOptions::default()
    };
    let path = dir.path().join(cdn_file_name(&opts));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let summary = generate(&opts, &mut gz).expect("generate");
    std::fs::write(&path, gz.finish().expect("gzip")).expect("write");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap_or("lake")).expect("lake");
    let mut g = c.benchmark_group("convert");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(summary.bytes));
    g.bench_function("gz_to_parquet_local", |b| {
        b.iter(|| {
            convert_path(&lake, rt.handle(), &path, &ConvertOptions::default())
                .expect("convert")
                .rows
        })
    });
    g.finish();
}

criterion_group!(benches, bench_convert);
criterion_main!(benches);
