#!/usr/bin/env bash
# `cdnlake verify` on a lake of many small log files: seconds and store requests.
#
#   benches/verify_lake.sh                 # 1,000 files of 200 lines, release build
#   FILES=200 LINES=500 benches/verify_lake.sh
#   CDNLAKE=target/debug/cdnlake KEEP=1 benches/verify_lake.sh
#
# Builds the lake quickly: `cdnlake gen` writes FILES logs with distinct CDN names, one per hour
# from 2024-03-05T00:00:00Z on (so about six weeks of date folders and partitions), and one
# `cdnlake convert` takes the whole folder. Then `verify --json` runs RUNS times on it (a warm page
# cache after the first) and the figures of each run are printed; the lake stays whole, so every
# run does the full work: a list per folder, a GET per manifest, a range read per Parquet footer.
set -euo pipefail

FILES=${FILES:-1000}
LINES=${LINES:-200}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

if [[ -z "${CDNLAKE:-}" ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
    CDNLAKE="${CARGO_TARGET_DIR:-$ROOT/target}/release/cdnlake"
fi
CDNLAKE=$(realpath "$CDNLAKE")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cdnlake-verify.XXXXXX")
if [[ -z "${KEEP:-}" ]]; then
    trap 'rm -rf "$WORK"' EXIT
else
    echo "work folder: $WORK (kept)" >&2
fi
mkdir -p "$WORK/logs"

t0=$(date +%s.%N)
start=$(date -u -d 2024-03-05T00:00:00Z +%s)
# Each file its own hour: distinct names (<domain>_<date>_<HH>0000_<HH+1>0000.gz).
seq 0 $((FILES - 1)) | xargs -P "$(nproc)" -I{} sh -c '
    t=$(('"$start"' + {} * 3600))
    "$0" gen --lines "$1" --seed {} --span 3599 \
        --start "$(date -u -d @"$t" +%Y-%m-%dT%H:%M:%SZ)" --out "$2" >/dev/null 2>&1
' "$CDNLAKE" "$LINES" "$WORK/logs"
n=$(find "$WORK/logs" -name '*.gz' | wc -l)
if [[ "$n" -ne "$FILES" ]]; then
    echo "expected $FILES logs, got $n" >&2
    exit 1
fi
"$CDNLAKE" convert "$WORK/logs" --dest "$WORK/lake" --json >/dev/null
t1=$(date +%s.%N)
objects=$(find "$WORK/lake" -type f | wc -l)
printf 'lake: %d files, %d objects (manifests included), %.0f MB, built in %.1fs\n' \
    "$FILES" "$objects" "$(du -sm "$WORK/lake" | cut -f1)" "$(awk "BEGIN { print $t1 - $t0 }")"

for run in $(seq 1 "$RUNS"); do
    "$CDNLAKE" verify --dest "$WORK/lake" --json >"$WORK/verify.json"
    python3 - "$WORK/verify.json" "$run" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
assert v["whole"], "the lake should verify whole"
k = v["requests_by_kind"]
print(f"verify run {sys.argv[2]}: {v['seconds']:.2f}s, {v['requests']} requests "
      f"(list {k['list']}, get {k['get']}, range {k['range']}, head {k['head']}) "
      f"for {v['manifests']} manifests and {v['objects']} objects")
EOF
done
