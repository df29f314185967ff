#!/usr/bin/env bash
# How `cdnlake sync` scales with the files of a window: a month of hourly files (720) of one
# domain, served by a loopback stand-in (benches/sync_stub.py). Measures the first sync (list +
# check + convert every file), the re-run on the complete lake (list + one manifest GET per
# file), and a dry run after 24 manifests are lost.
# Usage: benches/sync_month.sh [HOURS]   (release build; prints seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
HOURS=${1:-720}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
cargo build --release --quiet
BIN=$CARGO_TARGET_DIR/release/cdnlake
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 benches/sync_stub.py "$PORT" "$HOURS" & STUB=$!
trap 'kill $STUB 2>/dev/null' EXIT
sleep 2
WORK=$(mktemp -d)
export ALIBABA_CLOUD_ACCESS_KEY_ID=bench ALIBABA_CLOUD_ACCESS_KEY_SECRET=bench CDNLAKE_LOG=error
FROM=$(date -u -d "-$((HOURS + 4)) hours" +%Y-%m-%dT%H:00:00Z)
sync_args() { # DEST JOBS
  echo sync --domain www.example.com --from "$FROM" --dest "$1" --allow-host 127.0.0.1 \
    --cdn-endpoint "http://127.0.0.1:$PORT" --jobs "$2" --json
}
read -r -a ARGS <<< "$(sync_args "$WORK/lake" 2)"
t() { local s e; s=$(date +%s.%N); "$@" > "$WORK/out.json"; e=$(date +%s.%N); echo "$e - $s" | bc; }
echo "first sync ($HOURS files): $(t "$BIN" "${ARGS[@]}") s; $(python3 -c "import json;r=json.load(open('$WORK/out.json'));print('listed',r['listed'],'converted',r['converted'],'failed',r['failed'])")"
echo "re-run, lake complete:     $(t "$BIN" "${ARGS[@]}") s; $(python3 -c "import json;r=json.load(open('$WORK/out.json'));print('listed',r['listed'],'done',r['done'])")"
mapfile -t MANIFESTS < <(find "$WORK/lake/_manifests" -name '*.json' | sort)
rm "${MANIFESTS[@]:0:24}"
echo "dry run, 24 lost:          $(t "$BIN" "${ARGS[@]}" --dry-run) s; $(python3 -c "import json;r=json.load(open('$WORK/out.json'));print('to do',sum(f['action']=='would_convert' for f in r['files']))")"
# Baseline: the same files converted from local disk (the raw dumps), one at a time, no HTTP.
echo "baseline: convert of the same $HOURS .gz from disk: $(t "$BIN" convert --json --dest "$WORK/lake2" "$WORK"/lake/raw/www.example.com/*) s"
read -r -a ARGS1 <<< "$(sync_args "$WORK/lake3" 1)"
echo "first sync --jobs 1 ($HOURS files):     $(t "$BIN" "${ARGS1[@]}") s"
rm -rf "$WORK"
