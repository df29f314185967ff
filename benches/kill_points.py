#!/usr/bin/env python3
"""Kill points tried, and Spark/DuckDB reads of the lake's tables that failed after them.

Converts a large generated log into a local lake, kills `cdnlake convert` with SIGKILL at N
seeded random points of the run, and after each kill reads the table folders (`access`, counted;
`traffic`, `heavy_hitters`, `visitors`, read) the way a Hive-style reader does: Apache Spark (`spark.read.parquet("lake/access").count()`, master local[1]) and
DuckDB (`read_parquet('lake/access/**/*.parquet', hive_partitioning = true)`). A reader that takes
a half-written file (object_store's local `x.parquet#1`) fails; cdnlake stages a local run's
objects under `_staging/` and renames them into place at the commit, so none should.

The lake first holds another, complete, file (a small log of the hour before), so `access/` is
there to read from the first kill on, as in a lake in use. At the end the killed file is
converted to completion and the table counted again.

    python3 benches/kill_points.py [--kills 10] [--lines 600000] [--seed 1] [--work DIR]

The binary is $CDNLAKE_BIN, else $CARGO_TARGET_DIR/debug/cdnlake, else target/debug/cdnlake.
Installs pyspark and duckdb with pip when missing (pyspark needs Java 17 or later). Prints:

    kill points: N, spark read failures: X, duckdb read failures: Y, final rows: R (expected E)
"""
import argparse
import importlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def need(module, package):
    try:
        return importlib.import_module(module)
    except ImportError:
        print(f"installing {package} ...", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", package])
        return importlib.import_module(module)


def binary():
    if os.environ.get("CDNLAKE_BIN"):
        return Path(os.environ["CDNLAKE_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path(__file__).resolve().parent.parent / "target")
    return Path(target) / "debug" / "cdnlake"


def gen(bin_, work, lines, seed, start):
    """A log of `lines` lines starting at `start` (a CDN-style .gz name); returns (path, summary)."""
    out = work / f"gen-{seed}"
    out.mkdir()
    summary = out / "summary.json"
    subprocess.run(
        [str(bin_), "gen", "--lines", str(lines), "--seed", str(seed), "--start", start,
         "--bad-fraction", "0.001", "--out", str(out), "--summary", str(summary)],
        check=True, stdout=subprocess.DEVNULL)
    (log,) = [p for p in out.iterdir() if p.name.endswith(".gz")]
    return log, json.loads(summary.read_text())


def convert(bin_, log, lake):
    return subprocess.Popen([str(bin_), "convert", str(log), "--dest", str(lake)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "CDNLAKE_LOG": "error"})


def run_to_end(bin_, log, lake):
    started = time.monotonic()
    p = convert(bin_, log, lake)
    _, err = p.communicate()
    if p.returncode != 0:
        sys.exit(f"convert failed: {err.decode(errors='replace')}")
    return time.monotonic() - started


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=10, help="kill points (default 10)")
    ap.add_argument("--lines", type=int, default=600_000,
                    help="lines of the killed log (default 600000, about 140 MB of log text)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the kill points and the log")
    ap.add_argument("--work", help="work folder (default: a temporary one, removed at the end)")
    args = ap.parse_args()

    bin_ = binary()
    if not bin_.exists():
        sys.exit(f"{bin_}: no cdnlake binary (cargo build, or set CDNLAKE_BIN)")
    duckdb = need("duckdb", "duckdb")
    need("pyspark", "pyspark")
    from pyspark.sql import SparkSession

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="kill-points-"))
    work.mkdir(parents=True, exist_ok=True)
    lake = work / "lake"
    try:
        # The file already in the lake (07:00-08:00) and the one killed (08:00-09:00).
        earlier, earlier_sum = gen(bin_, work, 20_000, args.seed + 1000, "2024-03-05T07:00:00+08:00")
        log, log_sum = gen(bin_, work, args.lines, args.seed, "2024-03-05T08:00:00+08:00")
        mb = log_sum["bytes"] / 1e6
        print(f"log: {log.name}, {args.lines} lines, {mb:.0f} MB of log text, "
              f"{log.stat().st_size / 1e6:.0f} MB gzip", file=sys.stderr)
        run_to_end(bin_, earlier, lake)
        # How long an uninterrupted run takes, into another lake: the kill points spread over it.
        took = run_to_end(bin_, log, work / "timing")
        shutil.rmtree(work / "timing")
        print(f"an uninterrupted run takes {took:.1f}s", file=sys.stderr)

        spark = (SparkSession.builder.master("local[1]").appName("kill-points")
                 .config("spark.ui.enabled", "false")
                 .config("spark.ui.showConsoleProgress", "false")
                 .config("spark.sql.shuffle.partitions", "1").getOrCreate())
        spark.sparkContext.setLogLevel("OFF")
        access = str(lake / "access")
        # Every table folder a run writes is read (a failure in any counts); access is counted.
        others = [str(lake / t) for t in ("traffic", "heavy_hitters", "visitors")]

        def spark_count():
            for folder in others:
                spark.read.parquet(folder).count()
            return spark.read.parquet(access).count()

        def duckdb_count():
            con = duckdb.connect()
            try:
                for folder in others:
                    con.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning = true)",
                                [folder + "/**/*.parquet"]).fetchone()
                return con.execute(
                    "SELECT count(*) FROM read_parquet(?, hive_partitioning = true)",
                    [access + "/**/*.parquet"]).fetchone()[0]
            finally:
                con.close()

        base, full = earlier_sum["rows"], earlier_sum["rows"] + log_sum["rows"]
        rng = random.Random(args.seed)
        failures = {"spark": 0, "duckdb": 0}
        for i in range(args.kills):
            at = rng.uniform(0.0, took * 1.05)
            p = convert(bin_, log, lake)
            time.sleep(at)
            finished = p.poll() is not None
            if not finished:
                p.send_signal(signal.SIGKILL)
            p.wait()
            p.stderr.close()
            partial = [str(f.relative_to(lake)) for f in lake.rglob("*#*")
                       if not any(part.startswith(("_", ".")) for part in f.relative_to(lake).parts)]
            seen = {}
            for name, count in (("spark", spark_count), ("duckdb", duckdb_count)):
                try:
                    seen[name] = count()
                    if not base <= seen[name] <= full:
                        failures[name] += 1
                        seen[name] = f"{seen[name]} rows, not between {base} and {full}"
                except Exception as e:  # a read that fails is what is measured
                    failures[name] += 1
                    seen[name] = "FAILED: " + (str(e).strip().splitlines() or ["?"])[0][:200]
            state = "after the run finished" if finished else f"killed at {at:.2f}s"
            print(f"  kill {i + 1}: {state}; spark {seen['spark']}, duckdb {seen['duckdb']}"
                  + (f"; partial files visible: {partial}" if partial else ""), file=sys.stderr)

        run_to_end(bin_, log, lake)
        rows = duckdb_count()
        spark_rows = spark_count()
        spark.stop()
        if spark_rows != rows:
            print(f"spark counts {spark_rows} rows, duckdb {rows}", file=sys.stderr)
        print(f"kill points: {args.kills}, spark read failures: {failures['spark']}, "
              f"duckdb read failures: {failures['duckdb']}, final rows: {rows} (expected {full})")
        return 0 if rows == full and spark_rows == full else 1
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
