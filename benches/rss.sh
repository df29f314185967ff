#!/usr/bin/env bash
# Peak RSS of `cdnlake handle` on a LogFileCreated event whose log is served over loopback HTTP,
# for a ~100 MB and a ~1.2 GB (decompressed) log: memory must not grow with the file.
#
#   cargo build --profile dist && benches/rss.sh
#
# Uses $CDNLAKE_BIN, else $CARGO_TARGET_DIR/dist/cdnlake, else target/dist/cdnlake.
# LINES_SMALL / LINES_LARGE override the line counts (about 240 bytes per line). Everything it
# generates lives in one temp dir, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${CDNLAKE_BIN:-${CARGO_TARGET_DIR:-target}/dist/cdnlake}"
if [ ! -x "$BIN" ]; then
  echo "no binary at $BIN: run cargo build --profile dist first (or set CDNLAKE_BIN)" >&2
  exit 1
fi
if [ ! -x /usr/bin/time ]; then
  echo "/usr/bin/time (GNU time) is needed for -v" >&2
  exit 1
fi
LINES_SMALL="${LINES_SMALL:-420000}"
LINES_LARGE="${LINES_LARGE:-5000000}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cdnlake-rss.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/www"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/www" "$PORT" >"$WORK/http.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null; then
    break
  fi
  sleep 0.1
done

printf '%-6s %10s %12s %16s %12s %10s\n' size lines gz_bytes decompressed max_rss_MiB seconds
for spec in "100MB:$LINES_SMALL" "1.2GB:$LINES_LARGE"; do
  label="${spec%%:*}"
  lines="${spec##*:}"
  dir="$WORK/www/$label"
  mkdir -p "$dir"
  "$BIN" gen --lines "$lines" --out "$dir/" >/dev/null 2>&1
  file="$(ls "$dir"/*.gz)"
  name="$(basename "$file")"
  bytes="$(stat -c %s "$file")"
  decompressed="$(gzip -dc "$file" | wc -c)"
  cat >"$WORK/event-$label.json" <<EOF
{"events": [{"eventName": "LogFileCreated", "eventSource": "cdn", "region": "cn-hangzhou",
  "eventVersion": "1.0.0", "eventTime": "2024-03-05T09:31:49+08:00", "traceId": "rss-$label",
  "userIdentity": {"aliUid": "1"}, "resource": {"domain": "cdn.example.com"},
  "eventParameter": {"domain": "cdn.example.com", "fileSize": $bytes,
    "filePath": "http://127.0.0.1:$PORT/$label/$name?OSSAccessKeyId=x&Expires=1&Signature=x",
    "startTime": 1709598600, "endTime": 1709602200}}]}
EOF
  /usr/bin/time -v -o "$WORK/time-$label.txt" \
    "$BIN" handle "$WORK/event-$label.json" --allow-host 127.0.0.1 --dest "$WORK/lake-$label" --json \
    >"$WORK/report-$label.json"
  rss_kb="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time-$label.txt")"
  wall="$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time-$label.txt")"
  got="$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["reports"][0]["log"]["lines"])' "$WORK/report-$label.json")"
  if [ "$got" != "$lines" ]; then
    echo "$label: handle reported $got lines, expected $lines" >&2
    exit 1
  fi
  printf '%-6s %10s %12s %16s %12s %10s\n' "$label" "$lines" "$bytes" "$decompressed" \
    "$(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k / 1024}')" "$wall"
  rm -rf "$dir" "$WORK/lake-$label"
done
