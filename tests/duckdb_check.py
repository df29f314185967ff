"""Reads a cdnlake lake with real DuckDB and prints what it sees as one JSON document.

Usage: python3 tests/duckdb_check.py VIEWS.sql LAKE [--rows]
VIEWS.sql is the output of `cdnlake ddl --dialect duckdb --dest LAKE`: the views are created
exactly as a user would create them. With --rows every access row is included (small lakes only).
"""
import json
import sys

import duckdb

views = open(sys.argv[1]).read()
con = duckdb.connect()
con.execute(views)

def one(sql):
    return con.execute(sql).fetchone()

def pairs(sql):
    return {str(k): v for k, v in con.execute(sql).fetchall()}

out = {}
out["rows"], out["sum_response_bytes"], out["distinct_lines"] = one(
    "SELECT count(*), sum(response_bytes)::BIGINT, count(DISTINCT (source_file, line_number)) FROM access")
out["per_status"] = pairs("SELECT status, count(*) FROM access GROUP BY 1")
out["per_cache_status"] = pairs("SELECT coalesce(cache_status, 'null'), count(*) FROM access GROUP BY 1")
access_columns = [d[0] for d in con.execute("SELECT * FROM access LIMIT 0").description]
# A day-partitioned lake (`--partition-by day`) has no `hour` column.
partition = "dt || '/' || hour" if "hour" in access_columns else "dt"
out["per_partition"] = pairs(f"SELECT {partition}, count(*) FROM access GROUP BY 1")
out["per_domain"] = pairs("SELECT domain, count(*) FROM access GROUP BY 1")
schema = con.execute(
    "SELECT name, type, converted_type, logical_type FROM parquet_schema(?) WHERE num_children IS NULL OR num_children = 0",
    [sys.argv[2] + "/access/**/*.parquet"]).fetchall()
out["schema"] = sorted({(n, t, str(c), str(l)) for n, t, c, l in schema})
if "--rows" in sys.argv:
    cols = [d[0] for d in con.execute("SELECT * FROM access LIMIT 0").description]
    rows = con.execute("SELECT *, epoch_us(time) AS time_us FROM access ORDER BY source_file, line_number").fetchall()
    out["columns"] = cols + ["time_us"]
    out["rows_detail"] = [[None if v is None else (v if isinstance(v, (int, str)) else str(v)) for v in r] for r in rows]
print(json.dumps(out, default=str))
