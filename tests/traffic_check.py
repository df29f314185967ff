"""Compares the traffic rollups with the same aggregates over the access rows, in real DuckDB.

Usage: python3 tests/traffic_check.py VIEWS.sql LAKE BOUNDS
VIEWS.sql is the output of `cdnlake ddl --dialect duckdb --dest LAKE`; BOUNDS the comma-separated
inclusive upper bounds (ms) of the response-time histogram, from cdnlake::tables::traffic::RT_BOUNDS_MS.
Prints one JSON document; the Rust test decides what must be equal.
"""
import json
import sys

import duckdb

views = open(sys.argv[1]).read()
lake = sys.argv[2]
bounds = [int(b) for b in sys.argv[3].split(",")]
con = duckdb.connect()
con.execute(views)

def rows(sql):
    return [list(r) for r in con.execute(sql).fetchall()]

# Minute from epoch arithmetic, so the session time zone plays no part.
minute = "(epoch_us(time) // 60000000) * 60000000"
hist = [f"count_if(response_time_ms <= {bounds[0]})"]
hist += [f"count_if(response_time_ms > {lo} AND response_time_ms <= {hi})" for lo, hi in zip(bounds, bounds[1:])]
hist += [f"count_if(response_time_ms > {bounds[-1]})"]
access_sql = f"""
SELECT {minute} AS m, count(*), sum(request_bytes)::BIGINT, sum(response_bytes)::BIGINT,
  count_if(cache_status = 'HIT'), count_if(cache_status = 'MISS'),
  count_if(status BETWEEN 200 AND 299), count_if(status BETWEEN 300 AND 399),
  count_if(status BETWEEN 400 AND 499), count_if(status BETWEEN 500 AND 599),
  count_if(status < 200 OR status > 599),
  sum(response_time_ms)::BIGINT, max(response_time_ms),
  {", ".join(hist)}
FROM access GROUP BY 1 ORDER BY 1"""
rt_cols = [f"rt_le_{b}" for b in bounds] + [f"rt_gt_{bounds[-1]}"]
sums = ["requests", "request_bytes", "response_bytes", "hits", "misses", "status_2xx", "status_3xx",
        "status_4xx", "status_5xx", "status_other", "response_time_ms_sum"]
traffic_sql = f"""
SELECT epoch_us(minute) AS m, {", ".join(f"sum({c})::BIGINT" for c in sums)}, max(response_time_ms_max),
  {", ".join(f"sum({c})::BIGINT" for c in rt_cols)}
FROM traffic GROUP BY 1 ORDER BY 1"""

out = {
    "access": rows(access_sql),
    "traffic": rows(traffic_sql),
    "view_rows": con.execute("SELECT count(*) FROM traffic").fetchone()[0],
    "file_rows": con.execute(
        "SELECT count(*) FROM read_parquet(?)", [lake + "/traffic/**/*.parquet"]).fetchone()[0],
    # Minutes that more than one file contributed to (merged by summing above).
    "shared_minutes": con.execute(
        "SELECT count(*) FROM (SELECT minute FROM traffic GROUP BY 1 HAVING count(*) > 1)").fetchone()[0],
    # Rows whose partition values disagree with their minute on the +08:00 wall clock.
    "misplaced": con.execute("""
        SELECT count(*) FROM traffic
        WHERE strftime(make_timestamp(epoch_us(minute) + 28800000000), '%Y-%m-%d') <> dt
           OR strftime(make_timestamp(epoch_us(minute) + 28800000000), '%H') <> hour""").fetchone()[0],
    "quantiles": list(con.execute(
        "SELECT quantile_disc(response_time_ms, [0.5, 0.95, 0.99]) FROM access").fetchone()[0]),
    "totals": list(con.execute("""
        SELECT count(*), sum(request_bytes)::BIGINT, sum(response_bytes)::BIGINT,
          count_if(cache_status = 'HIT'), count_if(cache_status = 'MISS'),
          count_if(status BETWEEN 500 AND 599), max(response_time_ms) FROM access""").fetchone()),
    # Top 10 per column, nulls left out, ties broken on the value's bytes ascending.
    "top": {
        d: {
            by: rows(f"""
                SELECT {e} AS v, count(*) AS requests, sum(response_bytes)::BIGINT AS bytes FROM access
                WHERE {e} IS NOT NULL GROUP BY 1 ORDER BY {by[3:]} DESC, encode(v) ASC LIMIT 10""")
            for by in ["by_requests", "by_bytes"]
        }
        for d, e in [("path", "path"), ("client_ip", "client_ip"), ("referer", "referer"),
                     ("user_agent", "user_agent"), ("status", "status::VARCHAR")]
    },
    "unique_visitors": con.execute("SELECT count(DISTINCT client_ip) FROM access").fetchone()[0],
    # The same for path by requests within 09:00-09:30 +08:00 (the report's --from/--to test).
    "top_window": rows("""
        SELECT path, count(*), sum(response_bytes)::BIGINT FROM access
        WHERE path IS NOT NULL AND epoch_us(time) >= 1709600400000000 AND epoch_us(time) < 1709602200000000
        GROUP BY 1 ORDER BY 2 DESC, encode(path) ASC LIMIT 10"""),
    "columns": [d[0] for d in con.execute("SELECT * FROM traffic LIMIT 0").description],
}
print(json.dumps(out))
