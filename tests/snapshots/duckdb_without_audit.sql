-- cdnlake views over /data/lake (partitioned by hour)

-- access: One row per CDN access log line
--   time             TIMESTAMP WITH TIME ZONE request time (UTC instant)
--   unixtime         BIGINT                   request time, seconds since the epoch
--   client_ip        VARCHAR                  client address as logged (may be masked)
--   proxy_ip         VARCHAR                  proxy address, null for -
--   response_time_ms BIGINT                   response time in milliseconds
--   referer          VARCHAR                  Referer header, null for -
--   method           VARCHAR                  HTTP method
--   url              VARCHAR                  URL as logged (rebuilt from scheme, host, path, query)
--   scheme           VARCHAR                  URL scheme, null for a bare path
--   host             VARCHAR                  URL host, null for a bare path
--   path             VARCHAR                  URL path
--   query            VARCHAR                  URL query after ?, null when absent
--   status           INTEGER                  HTTP status
--   request_bytes    BIGINT                   request size in bytes
--   response_bytes   BIGINT                   response size in bytes
--   cache_status     VARCHAR                  HIT or MISS, null for -
--   user_agent       VARCHAR                  User-Agent as logged
--   content_type     VARCHAR                  Content-Type as logged
--   extra            VARCHAR                  trailing fields of newer log formats, raw
--   source_file      VARCHAR                  delivered log file name (lineage)
--   line_number      BIGINT                   1-based line in the decompressed file
CREATE OR REPLACE VIEW access AS
SELECT "time", "unixtime", "client_ip", "proxy_ip", "response_time_ms", "referer", "method", CASE WHEN "scheme" IS NULL OR "host" IS NULL THEN '' ELSE "scheme" || '://' || "host" END || "path" || CASE WHEN "query" IS NULL THEN '' ELSE '?' || "query" END AS "url", "scheme", "host", "path", "query", "status", "request_bytes", "response_bytes", "cache_status", "user_agent", "content_type", "extra", "source_file", "line_number", "domain", "dt", "hour"
FROM read_parquet('/data/lake/access/**/*.parquet', hive_partitioning = true, hive_types = {'domain': VARCHAR, 'dt': VARCHAR, 'hour': VARCHAR}, union_by_name = true);

-- traffic: Per-minute traffic rollups of the access table; sum rows of the same minute (max for response_time_ms_max)
--   minute               TIMESTAMP WITH TIME ZONE start of the minute (UTC instant)
--   requests             BIGINT                   accepted log lines
--   request_bytes        BIGINT                   sum of request_bytes
--   response_bytes       BIGINT                   sum of response_bytes
--   hits                 BIGINT                   requests with cache_status HIT
--   misses               BIGINT                   requests with cache_status MISS
--   status_2xx           BIGINT                   requests with status 200-299
--   status_3xx           BIGINT                   requests with status 300-399
--   status_4xx           BIGINT                   requests with status 400-499
--   status_5xx           BIGINT                   requests with status 500-599
--   status_other         BIGINT                   requests with any other status
--   response_time_ms_sum BIGINT                   sum of response_time_ms
--   response_time_ms_max BIGINT                   max of response_time_ms (merge with MAX, not SUM)
--   rt_le_10             BIGINT                   requests with response_time_ms <= 10
--   rt_le_25             BIGINT                   requests with response_time_ms in (10, 25]
--   rt_le_50             BIGINT                   requests with response_time_ms in (25, 50]
--   rt_le_100            BIGINT                   requests with response_time_ms in (50, 100]
--   rt_le_250            BIGINT                   requests with response_time_ms in (100, 250]
--   rt_le_500            BIGINT                   requests with response_time_ms in (250, 500]
--   rt_le_1000           BIGINT                   requests with response_time_ms in (500, 1000]
--   rt_le_2500           BIGINT                   requests with response_time_ms in (1000, 2500]
--   rt_le_5000           BIGINT                   requests with response_time_ms in (2500, 5000]
--   rt_le_10000          BIGINT                   requests with response_time_ms in (5000, 10000]
--   rt_gt_10000          BIGINT                   requests with response_time_ms > 10000
CREATE OR REPLACE VIEW traffic AS
SELECT "minute", "requests", "request_bytes", "response_bytes", "hits", "misses", "status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_other", "response_time_ms_sum", "response_time_ms_max", "rt_le_10", "rt_le_25", "rt_le_50", "rt_le_100", "rt_le_250", "rt_le_500", "rt_le_1000", "rt_le_2500", "rt_le_5000", "rt_le_10000", "rt_gt_10000", "domain", "dt", "hour"
FROM read_parquet('/data/lake/traffic/**/*.parquet', hive_partitioning = true, hive_types = {'domain': VARCHAR, 'dt': VARCHAR, 'hour': VARCHAR}, union_by_name = true);

-- heavy_hitters: Heavy hitters per file and hour (Misra-Gries, lower bounds): the true count lies in [requests, requests + requests_error]; sum rows of the same key
--   hour_start     TIMESTAMP WITH TIME ZONE start of the partition hour (UTC instant)
--   dimension      VARCHAR                  path, client_ip, referer, user_agent or status
--   key            VARCHAR                  the value (cut to 1 KiB, ending in …, when longer); null on the one row of a dimension whose keys were all cut, which carries its errors and totals
--   requests       BIGINT                   requests with this value (lower bound)
--   bytes          BIGINT                   sum of response_bytes of those requests (lower bound)
--   requests_error BIGINT                   at most this many requests are missing from requests; 0 = exact
--   bytes_error    BIGINT                   at most this many bytes are missing from bytes; 0 = exact
--   requests_total BIGINT                   requests of this dimension in the file-hour (non-null values)
--   bytes_total    BIGINT                   response bytes of those requests
CREATE OR REPLACE VIEW heavy_hitters AS
SELECT "hour_start", "dimension", "key", "requests", "bytes", "requests_error", "bytes_error", "requests_total", "bytes_total", "domain", "dt", "hour"
FROM read_parquet('/data/lake/heavy_hitters/**/*.parquet', hive_partitioning = true, hive_types = {'domain': VARCHAR, 'dt': VARCHAR, 'hour': VARCHAR}, union_by_name = true);

-- visitors: Distinct client IPs per file and hour: a HyperLogLog sketch (exact up to 2048), merged by cdnlake report
--   hour_start TIMESTAMP WITH TIME ZONE start of the partition hour (UTC instant)
--   requests   BIGINT                   requests counted
--   unique_ips BIGINT                   distinct client_ip of this file-hour (exact up to 2048, else estimated, ~0.8% standard error); not additive
--   hll        BLOB                     the sketch, format version 1 (src/sketch/hll.rs): xxHash64 of client_ip, p = 14
CREATE OR REPLACE VIEW visitors AS
SELECT "hour_start", "requests", "unique_ips", "hll", "domain", "dt", "hour"
FROM read_parquet('/data/lake/visitors/**/*.parquet', hive_partitioning = true, hive_types = {'domain': VARCHAR, 'dt': VARCHAR, 'hour': VARCHAR}, union_by_name = true);

-- cache_audit: CDN cache refresh/push/block tasks, one row per object path
--   event_name    VARCHAR                  eventName
--   event_time    TIMESTAMP WITH TIME ZONE eventTime (UTC instant)
--   trace_id      VARCHAR                  traceId, or a hash of the event when missing
--   region        VARCHAR                  region of the event
--   ali_uid       VARCHAR                  userIdentity.aliUid
--   domain        VARCHAR                  CDN domain
--   task_id       VARCHAR                  CDN task id
--   object_type   VARCHAR                  File or Directory
--   object_path   VARCHAR                  one object path of the task
--   create_time   TIMESTAMP WITH TIME ZONE when the task started
--   complete_time TIMESTAMP WITH TIME ZONE when the task ended
-- No files match /data/lake/audit/cache/**/*.parquet yet (DuckDB refuses a view over an empty glob):
-- an empty view with the same columns. Run cdnlake ddl again once there are files.
CREATE OR REPLACE VIEW cache_audit AS
SELECT NULL::VARCHAR AS "event_name", NULL::TIMESTAMP WITH TIME ZONE AS "event_time", NULL::VARCHAR AS "trace_id", NULL::VARCHAR AS "region", NULL::VARCHAR AS "ali_uid", NULL::VARCHAR AS "domain", NULL::VARCHAR AS "task_id", NULL::VARCHAR AS "object_type", NULL::VARCHAR AS "object_path", NULL::TIMESTAMP WITH TIME ZONE AS "create_time", NULL::TIMESTAMP WITH TIME ZONE AS "complete_time", NULL::VARCHAR AS "event", NULL::VARCHAR AS "dt"
WHERE false;

-- domain_audit: CDN domain added/deleted/started/stopped
--   event_name VARCHAR                  eventName
--   event_time TIMESTAMP WITH TIME ZONE eventTime (UTC instant)
--   trace_id   VARCHAR                  traceId, or a hash of the event when missing
--   region     VARCHAR                  region of the event
--   ali_uid    VARCHAR                  userIdentity.aliUid
--   domain     VARCHAR                  CDN domain
--   status     VARCHAR                  domain status (Started/Stopped events)
-- No files match /data/lake/audit/domain/**/*.parquet yet (DuckDB refuses a view over an empty glob):
-- an empty view with the same columns. Run cdnlake ddl again once there are files.
CREATE OR REPLACE VIEW domain_audit AS
SELECT NULL::VARCHAR AS "event_name", NULL::TIMESTAMP WITH TIME ZONE AS "event_time", NULL::VARCHAR AS "trace_id", NULL::VARCHAR AS "region", NULL::VARCHAR AS "ali_uid", NULL::VARCHAR AS "domain", NULL::VARCHAR AS "status", NULL::VARCHAR AS "event", NULL::VARCHAR AS "dt"
WHERE false;
