#!/usr/bin/env python3
"""Side by side: `zcat`, DuckDB's SQL conversion, and `cdnlake convert` (one build, or a base and a
changed build back to back) on the same logs.

Usage: python3 benches/compare.py [--lines N] [--runs R] [--log FILE.gz]... [--high-cardinality]
                                  [--base BIN] [--bin BIN] [--skip-duckdb]

Without --log, generates a log with `cdnlake gen` (with --high-cardinality, also one in gen's
high-cardinality mode: 2M paths, 1M client IPs). Then, per log, runs every tool R times,
alternating (zcat, base, change, zcat, base, ...), so a busy machine slows them alike, and prints
per tool the median wall time, CPU (user+sys), MB of log text per CPU-second, peak RSS, the ratio
to zcat's wall time (from the same runs) and the Parquet/.gz size ratio. DuckDB's SQL conversion
writes the columns of cdnlake's access table (schema version 2: no `url`; see DUCKDB_SQL). --bin defaults to
$CARGO_TARGET_DIR/dist/cdnlake (a dist build: `cargo build --profile dist`); --base is optional.
DuckDB needs the duckdb Python package. Everything runs on this machine; nothing leaves it.
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
# from the line's time in +08:00, zstd Parquet partitioned like cdnlake's access table, with the
# columns that table stores (schema version 2): the URL split into scheme, host, path and query
# as cdnlake splits it, and no `url` (cdnlake's views rebuild it), so the times compare like for
# like (its output size is not measured). The one column it lacks is line_number: DuckDB's CSV reader gives no line
# number without a window over the whole file, which would serialise it.
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
    SELECT strptime(r.t, '%d/%b/%Y:%H:%M:%S %z') AS time, r.* EXCLUDE (t),
           regexp_extract(r.url, '^([A-Za-z0-9+.-]+)://([^/?]*)', ['scheme', 'host']) AS o,
           regexp_replace(r.url, '^[A-Za-z0-9+.-]+://[^/?]*', '') AS rest
    FROM m WHERE r.t <> ''
  )
  SELECT time, epoch(time)::BIGINT AS unixtime, client_ip, nullif(proxy_ip, '-') AS proxy_ip,
         rt::BIGINT AS response_time_ms, nullif(referer, '-') AS referer, method,
         nullif(o.scheme, '') AS scheme, CASE WHEN o.scheme <> '' THEN o.host END AS host,
         split_part(rest, '?', 1) AS path,
         CASE WHEN strpos(rest, '?') > 0 THEN substr(rest, strpos(rest, '?') + 1) END AS query,
         status::INTEGER AS status, req::BIGINT AS request_bytes, resp::BIGINT AS response_bytes,
         nullif(cache, '-') AS cache_status, ua AS user_agent, ct AS content_type,
         nullif(extra, '') AS extra, '{source}' AS source_file, 'cdn.example.com' AS domain,
         strftime(time AT TIME ZONE 'Asia/Shanghai', '%Y-%m-%d') AS dt,
         strftime(time AT TIME ZONE 'Asia/Shanghai', '%H') AS hour
  FROM p
) TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (domain, dt, hour), OVERWRITE_OR_IGNORE true);
"""


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time -v; returns (wall seconds, CPU seconds user+sys, max RSS MiB)."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    secs = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    def field(name):
        return next((float(l.split()[-1]) for l in p.stderr.splitlines() if name in l), 0.0)
    cpu = field("User time (seconds)") + field("System time (seconds)")
    return secs, cpu, field("Maximum resident set size") / 1024


def parquet_bytes(lake):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(lake, "access")) for f in fs)


def text_mb(log):
    """MB of log text in a .gz (every member), as zcat gives it."""
    size = 0
    with subprocess.Popen(["zcat", log], stdout=subprocess.PIPE) as z:
        while chunk := z.stdout.read(1 << 20):
            size += len(chunk)
    return size / 1e6


def compare(log, bins, a, work):
    mb = text_mb(log)
    gz = os.path.getsize(log)
    print(f"\n{log}: {gz / 1e6:.1f} MB gzip, {mb:.1f} MB of log text; {os.cpu_count()} cores, {a.runs} alternating runs")
    tools = {"zcat > /dev/null": lambda: timed(["sh", "-c", f"zcat '{log}' > /dev/null"])}
    lakes = {}
    for name, b in bins.items():
        lake = os.path.join(work, "lake-" + name.split()[-1])
        lakes[name] = lake

        def run(b=b, lake=lake):
            shutil.rmtree(lake, ignore_errors=True)
            return timed([b, "convert", log, "--dest", lake])
        tools[name] = run
    if not a.skip_duckdb:
        sql_file = os.path.join(work, "convert.sql")
        with open(sql_file, "w") as f:
            f.write(DUCKDB_SQL.format(log=log, out=os.path.join(work, "duck"), source=os.path.basename(log)))
        code = f"import duckdb; duckdb.connect().execute(open('{sql_file}').read())"
        tools["duckdb SQL (2 threads)"] = lambda: (shutil.rmtree(os.path.join(work, "duck"), ignore_errors=True),
                                                   timed([sys.executable, "-c", code]))[1]
    results = {name: [] for name in tools}
    for i in range(a.runs):
        for name, fn in tools.items():
            if name.startswith("duckdb") and i > 0 and not a.duckdb_every_run:
                continue
            results[name].append(fn())
    zcat = statistics.median(w for w, _, _ in results["zcat > /dev/null"])
    duck = statistics.median(w for w, _, _ in results["duckdb SQL (2 threads)"]) if "duckdb SQL (2 threads)" in results else None
    print(f"| tool | wall s (min-max) | CPU s user+sys | MB text per CPU-s | peak RSS MiB | x zcat (wall) | x DuckDB | Parquet / .gz |")
    print("|---|---|---|---|---|---|---|---|")
    out = {"log": log, "mb": mb, "gz_mb": gz / 1e6, "tools": {}}
    for name, r in results.items():
        walls = [w for w, _, _ in r]
        cpus = [c for _, c, _ in r]
        wall, cpu, rss = statistics.median(walls), statistics.median(cpus), max(m for _, _, m in r)
        ratio = f"{zcat / wall:.2f}x"
        dr = f"{duck / wall:.1f}x" if duck and name in lakes else ""
        pq = ""
        if name in lakes:
            pqb = parquet_bytes(lakes[name])
            pq = f"{pqb / gz:.2f}"
        print(f"| {name} | {wall:.2f} ({min(walls):.2f}-{max(walls):.2f}) | {cpu:.2f} ({min(cpus):.2f}-{max(cpus):.2f}) "
              f"| {mb / max(cpu, 1e-9):.0f} | {rss:.0f} | {ratio} | {dr} | {pq} |")
        out["tools"][name] = {"walls": walls, "cpus": cpus, "rss_mib": rss}
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_500_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--log", action="append")
    ap.add_argument("--high-cardinality", action="store_true", help="also generate a high-cardinality log")
    ap.add_argument("--bin", default=CDNLAKE, help="the cdnlake build to measure (default: the dist build)")
    ap.add_argument("--base", help="a base build to run back to back with --bin")
    ap.add_argument("--skip-duckdb", action="store_true")
    ap.add_argument("--duckdb-every-run", action="store_true", help="run DuckDB every run, not only the first")
    a = ap.parse_args()
    for b in [a.bin] + ([a.base] if a.base else []):
        if not os.path.exists(b):
            sys.exit(f"{b} missing: run cargo build --profile dist")
    bins = {}
    if a.base:
        bins["cdnlake convert (base)"] = a.base
    bins["cdnlake convert (change)" if a.base else "cdnlake convert"] = a.bin
    work = tempfile.mkdtemp(prefix="cdnlake-compare-")
    try:
        logs = a.log or []
        if not logs:
            # Folders as --out: the logs get CDN-style names, which `convert` reads the domain from.
            kinds = [("default", [])] + ([("high", ["--high-cardinality"])] if a.high_cardinality else [])
            for kind, extra in kinds:
                os.makedirs(os.path.join(work, kind))
                logs.append(subprocess.run([a.bin, "gen", "--lines", str(a.lines), *extra, "--out", os.path.join(work, kind)],
                                           check=True, capture_output=True, text=True).stdout.strip())
        for log in logs:
            compare(log, bins, a, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
