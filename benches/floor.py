#!/usr/bin/env python3
"""How far from the goals the pipeline is before a single access column is encoded (issue 18).

Runs, alternating, `zcat`, `cdnlake convert` and the same convert with the access table's Parquet
encoding switched off (X_SKIP=1), on each log, and prints per tool the median wall time, CPU
(user+sys), MB of log text per CPU-second and the ratio to zcat's wall time from the same runs.
--bin must be an experiment build with benches/floor_experiment.patch applied (the product ignores
X_SKIP, so the third line would equal the second): see the patch's header.

Usage: python3 benches/floor.py --bin EXPERIMENT/cdnlake --log FILE.gz [--log FILE.gz] [--runs 7]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import text_mb, timed  # noqa: E402  (the same timing and text size as compare.py)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="an experiment build (benches/floor_experiment.patch)")
    ap.add_argument("--log", action="append", required=True)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="cdnlake-floor-")
    lake = os.path.join(tmp, "lake")
    tools = {
        "zcat": (["zcat"], {}),
        "convert": ([a.bin, "convert", "--dest", lake], {}),
        "convert, access encoding off": ([a.bin, "convert", "--dest", lake], {"X_SKIP": "1"}),
    }
    print("| log | tool | wall s | CPU s | MB text per CPU-s | x zcat (wall) |")
    print("|---|---|---|---|---:|---:|")
    try:
        for log in a.log:
            mb = text_mb(log)
            label = os.path.join(os.path.basename(os.path.dirname(log)), os.path.basename(log))
            res = {t: [] for t in tools}
            for _ in range(a.runs):
                for name, (cmd, extra) in tools.items():
                    shutil.rmtree(lake, ignore_errors=True)
                    env = dict(os.environ, **extra)
                    res[name].append(timed(cmd + [log], env)[:2])
            zcat_wall = statistics.median(w for w, _ in res["zcat"])
            for name, v in res.items():
                w = statistics.median(x[0] for x in v)
                c = statistics.median(x[1] for x in v)
                print(f"| {label} | {name} | {w:.2f} ({min(x[0] for x in v):.2f}-"
                      f"{max(x[0] for x in v):.2f}) | {c:.2f} | {mb / c:.0f} | {zcat_wall / w:.2f}x |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
