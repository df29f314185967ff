-- cdnlake views over /data/lake

-- access: One row per CDN access log line
--   time               TIMESTAMP WITH TIME ZONE   request time (UTC instant)
--   unixtime           BIGINT                     request time, seconds since the epoch
--   client_ip          VARCHAR                    client address as logged (may be masked)
--   proxy_ip           VARCHAR                    proxy address, null for -
--   response_time_ms   BIGINT                     response time in milliseconds
--   referer            VARCHAR                    Referer header, null for -
--   method             VARCHAR                    HTTP method
--   url                VARCHAR                    URL as logged
--   scheme             VARCHAR                    URL scheme, null for a bare path
--   host               VARCHAR                    URL host, null for a bare path
--   path               VARCHAR                    URL path
--   query              VARCHAR                    URL query after ?, null when absent
--   status             INTEGER                    HTTP status
--   request_bytes      BIGINT                     request size in bytes
--   response_bytes     BIGINT                     response size in bytes
--   cache_status       VARCHAR                    HIT or MISS, null for -
--   user_agent         VARCHAR                    User-Agent as logged
--   content_type       VARCHAR                    Content-Type as logged
--   extra              VARCHAR                    trailing fields of newer log formats, raw
--   source_file        VARCHAR                    delivered log file name (lineage)
--   line_number        BIGINT                     1-based line in the decompressed file
CREATE OR REPLACE VIEW access AS
SELECT "time", "unixtime", "client_ip", "proxy_ip", "response_time_ms", "referer", "method", "url", "scheme", "host", "path", "query", "status", "request_bytes", "response_bytes", "cache_status", "user_agent", "content_type", "extra", "source_file", "line_number", "domain", "dt", "hour"
FROM read_parquet('/data/lake/access/**/*.parquet', hive_partitioning = true, hive_types = {'domain': VARCHAR, 'dt': VARCHAR, 'hour': VARCHAR}, union_by_name = true);
