#!/usr/bin/env python3
"""Side-by-side: `zcat`, DuckDB's SQL conversion, and `cdnlake convert` on the same generated log.

Usage: python3 benches/compare.py [--lines N] [--runs R] [--log FILE.gz] [--skip-duckdb]

Generates a log with `cdnlake gen` (unless --log is given), then runs each tool R times back to
back and prints the median wall time, throughput in MB/s of decompressed log text, peak RSS, and
the ratios against zcat and DuckDB. Needs a dist build (`cargo build --profile dist`) and the duckdb
Python package. Everything runs on this machine; nothing leaves it.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
CDNLAKE = os.path.join(TARGET, "dist", "cdnlake")

# The same conversion a DuckDB user would write: one regexp over each line, partition columns
# from the line's time in +08:00, zstd Parquet partitioned like cdnlake's access table.
# (ignore_errors: DuckDB refuses the few non-UTF-8 lines the generator writes; cdnlake keeps them.)
DUCKDB_SQL = r"""
SET threads = 2;
SET preserve_insertion_order = false;
COPY (
  WITH raw AS (
    SELECT line FROM read_csv('{log}', columns = {{'line': 'VARCHAR'}}, delim = E'\x01', quote = '',
                              escape = '', header = false, compression = 'gzip', auto_detect = false,
                              strict_mode = false, null_padding = true, ignore_errors = true)
  ), m AS (
    SELECT regexp_extract(line,
      '^\[([^\]]+)\] (\S+) (\S+) (\d+) "((?:[^"\\]|\\.)*)" "(\S+) ((?:[^"\\]|\\.)*)" (\d+) (\d+) (\d+) (\S+) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"(?: (.*))?$',
      ['t','client_ip','proxy_ip','rt','referer','method','url','status','req','resp','cache','ua','ct','extra']) AS r
    FROM raw WHERE line <> ''
  ), p AS (
    SELECT strptime(r.t, '%d/%b/%Y:%H:%M:%S %z') AS time, r.* EXCLUDE (t) FROM m WHERE r.t <> ''
  )
  SELECT time, epoch(time)::BIGINT AS unixtime, client_ip, nullif(proxy_ip, '-') AS proxy_ip,
         rt::BIGINT AS response_time_ms, nullif(referer, '-') AS referer, method, url,
         regexp_extract(url, '^([A-Za-z][A-Za-z0-9+.-]*)://', 1) AS scheme,
         regexp_extract(url, '^[A-Za-z][A-Za-z0-9+.-]*://([^/?]*)', 1) AS host,
         status::INTEGER AS status, req::BIGINT AS request_bytes, resp::BIGINT AS response_bytes,
         nullif(cache, '-') AS cache_status, ua AS user_agent, ct AS content_type,
         nullif(extra, '') AS extra, 'cdn.example.com' AS domain,
         strftime(time AT TIME ZONE 'Asia/Shanghai', '%Y-%m-%d') AS dt,
         strftime(time AT TIME ZONE 'Asia/Shanghai', '%H') AS hour
  FROM p
) TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (domain, dt, hour), OVERWRITE_OR_IGNORE true);
"""


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time -v; returns (seconds, max RSS MiB)."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    secs = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    rss = next((int(l.split()[-1]) for l in p.stderr.splitlines() if "Maximum resident set size" in l), 0)
    return secs, rss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_500_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--log")
    ap.add_argument("--skip-duckdb", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(CDNLAKE):
        sys.exit(f"{CDNLAKE} missing: run cargo build --profile dist")
    work = tempfile.mkdtemp(prefix="cdnlake-compare-")
    try:
        log = a.log
        if not log:
            log = subprocess.run([CDNLAKE, "gen", "--lines", str(a.lines), "--out", work],
                                 check=True, capture_output=True, text=True).stdout.strip()
        size = 0
        with subprocess.Popen(["zcat", log], stdout=subprocess.PIPE) as z:
            while chunk := z.stdout.read(1 << 20):
                size += len(chunk)
        mb = size / 1e6
        print(f"{log}: {os.path.getsize(log) / 1e6:.1f} MB gzip, {mb:.1f} MB of log text; {os.cpu_count()} cores")
        sql_file = os.path.join(work, "convert.sql")
        tools = {
            "zcat > /dev/null": lambda: timed(["sh", "-c", f"zcat '{log}' > /dev/null"]),
            "cdnlake convert": lambda: (shutil.rmtree(os.path.join(work, "lake"), ignore_errors=True),
                                        timed([CDNLAKE, "convert", log, "--dest", os.path.join(work, "lake")]))[1],
        }
        if not a.skip_duckdb:
            with open(sql_file, "w") as f:
                f.write(DUCKDB_SQL.format(log=log, out=os.path.join(work, "duck")))
            code = f"import duckdb; duckdb.connect().execute(open('{sql_file}').read())"
            tools["duckdb SQL (2 threads)"] = lambda: (shutil.rmtree(os.path.join(work, "duck"), ignore_errors=True),
                                                       timed([sys.executable, "-c", code]))[1]
        results = {name: [] for name in tools}
        for _ in range(a.runs):
            for name, fn in tools.items():
                results[name].append(fn())
        med = {n: (statistics.median(s for s, _ in r), max(m for _, m in r)) for n, r in results.items()}
        print(f"{'tool':<26} {'median s':>9} {'MB/s':>8} {'peak RSS MiB':>13}")
        for n, (s, m) in med.items():
            print(f"{n:<26} {s:>9.2f} {mb / s:>8.1f} {m:>13.0f}")
        c = med["cdnlake convert"][0]
        print(f"cdnlake vs zcat: {med['zcat > /dev/null'][0] / c:.2f}x")
        if "duckdb SQL (2 threads)" in med:
            print(f"cdnlake vs DuckDB SQL: {med['duckdb SQL (2 threads)'][0] / c:.2f}x")
        lake = os.path.join(work, "lake")
        pq = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(lake, "access")) for f in fs)
        print(f"Parquet written by cdnlake: {pq / 1e6:.1f} MB ({pq / os.path.getsize(log):.2f}x the .gz)")
        print(json.dumps({"mb": mb, "median_seconds": {n: s for n, (s, _) in med.items()},
                          "peak_rss_mib": {n: m for n, (_, m) in med.items()}}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
