#!/bin/sh
# Builds a static Linux binary for FC's custom runtime and stages ./code (bootstrap + binary).
# Needs: rustup target add x86_64-unknown-linux-musl, and a musl C toolchain for ring and zstd
# (apt-get install musl-tools), or use `cargo zigbuild` with the same target instead.
set -eu
cd "$(dirname "$0")/.."
cargo build --profile dist --locked --target x86_64-unknown-linux-musl
rm -rf deploy/code && mkdir -p deploy/code
cp "${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/dist/cdnlake" deploy/code/cdnlake
# The dist profile keeps line tables for profiling; the deployed binary does not need them
# (138 MB -> 24 MB).
strip deploy/code/cdnlake
cp deploy/bootstrap deploy/code/bootstrap
chmod +x deploy/code/bootstrap deploy/code/cdnlake
echo "staged deploy/code: $(ls -l deploy/code | tail -n +2 | wc -l) files"
