#!/usr/bin/env bash
# Peak RSS of `cdnlake serve` with 8 concurrent LogFileCreated invocations of a ~460 MB (text)
# log each, served over loopback HTTP, under a memory budget (--max-memory, default 512MiB)
# and, for comparison, with a budget large enough to run all 8 at once.
#
#   cargo build --release && benches/serve_rss.sh
#
# Uses $CDNLAKE_BIN, else $CARGO_TARGET_DIR/release/cdnlake, else target/release/cdnlake.
# LINES (default 1900000, ~460 MB of text), N (default 8), BUDGET (default 512MiB).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${CDNLAKE_BIN:-${CARGO_TARGET_DIR:-target}/release/cdnlake}"
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release first (or set CDNLAKE_BIN)" >&2; exit 1; }
LINES="${LINES:-1900000}"
N="${N:-8}"
BUDGET="${BUDGET:-512MiB}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cdnlake-serve-rss.XXXXXX")"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 200); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listening on $1" >&2; exit 1
}

mkdir -p "$WORK/www"
"$BIN" gen --lines "$LINES" --out "$WORK/www/" >/dev/null 2>&1
src="$(ls "$WORK"/www/*.gz)"
bytes="$(stat -c %s "$src")"
text="$(gzip -dc "$src" | wc -c)"
# One file name per invocation (distinct hours of one day), so each writes its own keys.
names=()
for i in $(seq 0 $((N - 1))); do
  h=$(printf '%02d' "$i"); h2=$(printf '%02d' $((i + 1)))
  name="cdn.example.com_2024_03_05_${h}0000_${h2}0000.gz"
  cp "$src" "$WORK/www/$name"
  names+=("$name")
done
rm "$src"

HTTP_PORT="$(free_port)"
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/www" "$HTTP_PORT" >"$WORK/http.log" 2>&1 &
PIDS+=($!)
wait_port "$HTTP_PORT"

run() { # budget label
  local budget="$1" label="$2" port lake
  port="$(free_port)"
  lake="$WORK/lake-$label"
  /usr/bin/time -v -o "$WORK/time-$label.txt" "$BIN" serve --listen "127.0.0.1:$port" \
    --dest "$lake" --allow-host 127.0.0.1 --max-memory "$budget" >"$WORK/stdout-$label.log" 2>"$WORK/serve-$label.log" &
  local spid=$!
  wait_port "$port"
  local start end ok=0 cpids=()
  start=$(date +%s.%N)
  for i in "${!names[@]}"; do
    name="${names[$i]}"
    body="{\"events\":[{\"eventName\":\"LogFileCreated\",\"eventSource\":\"cdn\",\"eventVersion\":\"1.0.0\",\"eventTime\":\"2024-03-05T09:31:49+08:00\",\"traceId\":\"rss-$label-$i\",\"eventParameter\":{\"domain\":\"cdn.example.com\",\"fileSize\":$bytes,\"filePath\":\"http://127.0.0.1:$HTTP_PORT/$name?Signature=x\"}}]}"
    curl -s -o "$WORK/reply-$label-$i" -w '%{http_code}\n' -X POST "http://127.0.0.1:$port/invoke" \
      -H 'x-fc-request-id: rss' --data-binary "$body" >"$WORK/code-$label-$i" &
    cpids+=($!)
  done
  for p in "${cpids[@]}"; do wait "$p" || true; done
  end=$(date +%s.%N)
  for i in "${!names[@]}"; do [ "$(cat "$WORK/code-$label-$i")" = 200 ] && ok=$((ok + 1)); done
  # $spid is GNU time; the server is its child. SIGTERM to the server: a graceful stop, after
  # which time writes its report.
  kill -TERM "$(pgrep -P "$spid")"; wait "$spid" || true
  local rss_kb
  rss_kb="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time-$label.txt")"
  printf '%-12s %8s %6s %10s %14s %10.1f\n' "$label" "$budget" "$ok/$N" "$(grep -m1 -o 'slots=[0-9]*' "$WORK/serve-$label.log" || echo '-')" \
    "$(awk -v k="$rss_kb" 'BEGIN {printf "%.0f", k / 1024}')" "$(echo "$end - $start" | bc)"
  rm -rf "$lake"
}

echo "log: $bytes bytes gzip, $text bytes of text, $N invocations at once"
printf '%-12s %8s %6s %10s %14s %10s\n' run budget ok slots peak_RSS_MiB seconds
CDNLAKE_LOG=info run "$BUDGET" bounded
CDNLAKE_LOG=info run "8GiB" unbounded
