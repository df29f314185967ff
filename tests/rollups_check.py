"""Exact figures over the access rows, in real DuckDB, for the report's rollup figures.

Usage: python3 tests/rollups_check.py VIEWS.sql LAKE OFFSET_SECS FROM_US TO_US [DOMAIN]
OFFSET_SECS is the report's wall-clock offset (seconds east of UTC); FROM_US/TO_US the window
(microseconds since the epoch, or "-" for none). Prints one JSON document; the Rust test decides
what must be equal.

Bandwidth as the CDN bills it: 5-minute buckets aligned to the wall clock, response_bytes * 8 /
300 bit/s; the window is [FROM, TO) when given, else the first to the last bucket with traffic;
buckets without traffic count 0. p95: the values sorted descending, floor(n * 0.05) discarded,
the next one.
"""
import json
import sys

import duckdb

views, lake, off = sys.argv[1], sys.argv[2], int(sys.argv[3])
frm = None if sys.argv[4] == "-" else int(sys.argv[4])
to = None if sys.argv[5] == "-" else int(sys.argv[5])
con = duckdb.connect()
con.execute(open(views).read())

B = 300_000_000
OFF = off * 1_000_000
cond = ["true"]
if len(sys.argv) > 6:
    cond.append("domain = '" + sys.argv[6].replace("'", "''") + "'")
if frm is not None:
    # The report keeps whole minutes from FROM on.
    cond.append(f"(epoch_us(time) // 60000000) * 60000000 >= {frm}")
if to is not None:
    cond.append(f"(epoch_us(time) // 60000000) * 60000000 < {to}")
where = " AND ".join(cond)
con.execute(f"""
CREATE TABLE sums AS
SELECT ((epoch_us(time) + {OFF}) // {B}) * {B} - {OFF} AS b, sum(response_bytes)::BIGINT AS bytes
FROM access WHERE {where} GROUP BY 1""")
lo = (con.execute("SELECT min(b) FROM sums").fetchone()[0] if frm is None
      else ((frm + OFF) // B) * B - OFF)
hi = (con.execute("SELECT max(b) FROM sums").fetchone()[0] if to is None
      else ((to - 1 + OFF) // B) * B - OFF)
con.execute(f"""
CREATE TABLE series AS
SELECT g.b, coalesce(s.bytes, 0)::DOUBLE * 8 / 300 AS bps
FROM (SELECT unnest(range({lo}, {hi} + 1, {B})) AS b) g LEFT JOIN sums s USING (b)""")
n = con.execute("SELECT count(*) FROM series").fetchone()[0]
out = {
    "series": [list(r) for r in con.execute("SELECT b, bps FROM series ORDER BY b").fetchall()],
    "peak": list(con.execute("SELECT bps, b FROM series ORDER BY bps DESC, b ASC LIMIT 1").fetchone()),
    "p95": con.execute(f"SELECT bps FROM series ORDER BY bps DESC LIMIT 1 OFFSET {n * 5 // 100}").fetchone()[0],
    "daily_peaks": [list(r) for r in con.execute(f"""
        SELECT day, bps, b FROM (
          SELECT strftime(make_timestamp(b + {OFF}), '%Y-%m-%d') AS day, bps, b,
                 row_number() OVER (PARTITION BY day ORDER BY bps DESC, b ASC) AS rn
          FROM series) WHERE rn = 1 ORDER BY day""").fetchall()],
    "unique_visitors": con.execute(f"SELECT count(DISTINCT client_ip) FROM access WHERE {where}").fetchone()[0],
    "unique_per_hour": [list(r) for r in con.execute(f"""
        SELECT ((epoch_us(time) + {OFF}) // 3600000000) * 3600000000 - {OFF} AS h, count(DISTINCT client_ip)
        FROM access WHERE {where} GROUP BY 1 ORDER BY 1""").fetchall()],
    # Exact counts of every value, for checking the bounds of the approximate lists.
    "counts": {
        d: {str(k): [r, b] for k, r, b in con.execute(f"""
            SELECT {e}, count(*), sum(response_bytes)::BIGINT FROM access
            WHERE {where} AND {e} IS NOT NULL GROUP BY 1""").fetchall()}
        for d, e in [("path", "path"), ("client_ip", "client_ip"), ("referer", "referer"),
                     ("user_agent", "user_agent"), ("status", "status::VARCHAR")]
    },
}
# Exact top 10 by requests and by bytes, ties on the value's bytes ascending.
out["top"] = {
    d: {
        by: [r[0] for r in con.execute(f"""
            SELECT {e} AS v, count(*) AS requests, sum(response_bytes)::BIGINT AS bytes FROM access
            WHERE {where} AND {e} IS NOT NULL GROUP BY 1
            ORDER BY {by[3:]} DESC, encode(v) ASC LIMIT 10""").fetchall()]
        for by in ["by_requests", "by_bytes"]
    }
    for d, e in [("path", "path"), ("client_ip", "client_ip"), ("referer", "referer"),
                 ("user_agent", "user_agent"), ("status", "status::VARCHAR")]
}
print(json.dumps(out))
