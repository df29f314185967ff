-- cdnlake external tables over oss://oss-cn-shanghai-internal.aliyuncs.com/my-bucket/cdn/lake (partitioned by hour)
-- Register partitions with: cdnlake ddl --dialect maxcompute --partitions --dest oss://my-bucket/cdn/lake
-- INT and TIMESTAMP need the 2.0 type system; the native Parquet reader is faster and
-- reads every type below. Both are session flags: SET them in each session that queries
-- these tables too.
SET odps.sql.type.system.odps2=true;
SET odps.ext.parquet.native=true;

-- access: query the view access. It is the external table access_files plus url,
-- rebuilt from the stored columns (the files do not store it since cdnlake's access
-- schema version 2; older files still do, and columns are read by name, so both
-- read alike). Partitions are registered on access_files. A project set up by an older
-- cdnlake has an external table named access: run DROP TABLE access; first (only the
-- definition goes, the files stay), then this script and the --partitions one
-- without --since (a partition not registered on access_files is missing from access).

CREATE EXTERNAL TABLE IF NOT EXISTS access_files (
  `time` TIMESTAMP COMMENT 'request time (UTC instant)',
  `unixtime` BIGINT COMMENT 'request time, seconds since the epoch',
  `client_ip` STRING COMMENT 'client address as logged (may be masked)',
  `proxy_ip` STRING COMMENT 'proxy address, null for -',
  `response_time_ms` BIGINT COMMENT 'response time in milliseconds',
  `referer` STRING COMMENT 'Referer header, null for -',
  `method` STRING COMMENT 'HTTP method',
  `scheme` STRING COMMENT 'URL scheme, null for a bare path',
  `host` STRING COMMENT 'URL host, null for a bare path',
  `path` STRING COMMENT 'URL path',
  `query` STRING COMMENT 'URL query after ?, null when absent',
  `status` INT COMMENT 'HTTP status',
  `request_bytes` BIGINT COMMENT 'request size in bytes',
  `response_bytes` BIGINT COMMENT 'response size in bytes',
  `cache_status` STRING COMMENT 'HIT or MISS, null for -',
  `user_agent` STRING COMMENT 'User-Agent as logged',
  `content_type` STRING COMMENT 'Content-Type as logged',
  `extra` STRING COMMENT 'trailing fields of newer log formats, raw',
  `source_file` STRING COMMENT 'delivered log file name (lineage)',
  `line_number` BIGINT COMMENT '1-based line in the decompressed file'
)
COMMENT 'One row per CDN access log line'
PARTITIONED BY (`domain` STRING, `dt` STRING, `hour` STRING)
STORED AS PARQUET
LOCATION 'oss://oss-cn-shanghai-internal.aliyuncs.com/my-bucket/cdn/lake/access/';

CREATE OR REPLACE VIEW access
COMMENT 'One row per CDN access log line'
AS SELECT
  `time`,
  `unixtime`,
  `client_ip`,
  `proxy_ip`,
  `response_time_ms`,
  `referer`,
  `method`,
  CONCAT(CASE WHEN `scheme` IS NULL OR `host` IS NULL THEN '' ELSE CONCAT(`scheme`, '://', `host`) END, `path`, CASE WHEN `query` IS NULL THEN '' ELSE CONCAT('?', `query`) END) AS `url`,
  `scheme`,
  `host`,
  `path`,
  `query`,
  `status`,
  `request_bytes`,
  `response_bytes`,
  `cache_status`,
  `user_agent`,
  `content_type`,
  `extra`,
  `source_file`,
  `line_number`,
  `domain`,
  `dt`,
  `hour`
FROM access_files;

CREATE EXTERNAL TABLE IF NOT EXISTS traffic (
  `minute` TIMESTAMP COMMENT 'start of the minute (UTC instant)',
  `requests` BIGINT COMMENT 'accepted log lines',
  `request_bytes` BIGINT COMMENT 'sum of request_bytes',
  `response_bytes` BIGINT COMMENT 'sum of response_bytes',
  `hits` BIGINT COMMENT 'requests with cache_status HIT',
  `misses` BIGINT COMMENT 'requests with cache_status MISS',
  `status_2xx` BIGINT COMMENT 'requests with status 200-299',
  `status_3xx` BIGINT COMMENT 'requests with status 300-399',
  `status_4xx` BIGINT COMMENT 'requests with status 400-499',
  `status_5xx` BIGINT COMMENT 'requests with status 500-599',
  `status_other` BIGINT COMMENT 'requests with any other status',
  `response_time_ms_sum` BIGINT COMMENT 'sum of response_time_ms',
  `response_time_ms_max` BIGINT COMMENT 'max of response_time_ms (merge with MAX, not SUM)',
  `rt_le_10` BIGINT COMMENT 'requests with response_time_ms <= 10',
  `rt_le_25` BIGINT COMMENT 'requests with response_time_ms in (10, 25]',
  `rt_le_50` BIGINT COMMENT 'requests with response_time_ms in (25, 50]',
  `rt_le_100` BIGINT COMMENT 'requests with response_time_ms in (50, 100]',
  `rt_le_250` BIGINT COMMENT 'requests with response_time_ms in (100, 250]',
  `rt_le_500` BIGINT COMMENT 'requests with response_time_ms in (250, 500]',
  `rt_le_1000` BIGINT COMMENT 'requests with response_time_ms in (500, 1000]',
  `rt_le_2500` BIGINT COMMENT 'requests with response_time_ms in (1000, 2500]',
  `rt_le_5000` BIGINT COMMENT 'requests with response_time_ms in (2500, 5000]',
  `rt_le_10000` BIGINT COMMENT 'requests with response_time_ms in (5000, 10000]',
  `rt_gt_10000` BIGINT COMMENT 'requests with response_time_ms > 10000'
)
COMMENT 'Per-minute traffic rollups of the access table; sum rows of the same minute (max for response_time_ms_max)'
PARTITIONED BY (`domain` STRING, `dt` STRING, `hour` STRING)
STORED AS PARQUET
LOCATION 'oss://oss-cn-shanghai-internal.aliyuncs.com/my-bucket/cdn/lake/traffic/';

CREATE EXTERNAL TABLE IF NOT EXISTS heavy_hitters (
  `hour_start` TIMESTAMP COMMENT 'start of the partition hour (UTC instant)',
  `dimension` STRING COMMENT 'path, client_ip, referer, user_agent or status',
  `key` STRING COMMENT 'the value (cut to 1 KiB, ending in …, when longer); null on the one row of a dimension whose keys were all cut, which carries its errors and totals',
  `requests` BIGINT COMMENT 'requests with this value (lower bound)',
  `bytes` BIGINT COMMENT 'sum of response_bytes of those requests (lower bound)',
  `requests_error` BIGINT COMMENT 'at most this many requests are missing from requests; 0 = exact',
  `bytes_error` BIGINT COMMENT 'at most this many bytes are missing from bytes; 0 = exact',
  `requests_total` BIGINT COMMENT 'requests of this dimension in the file-hour (non-null values)',
  `bytes_total` BIGINT COMMENT 'response bytes of those requests'
)
COMMENT 'Heavy hitters per file and hour (Misra-Gries, lower bounds): the true count lies in [requests, requests + requests_error]; sum rows of the same key'
PARTITIONED BY (`domain` STRING, `dt` STRING, `hour` STRING)
STORED AS PARQUET
LOCATION 'oss://oss-cn-shanghai-internal.aliyuncs.com/my-bucket/cdn/lake/heavy_hitters/';

CREATE EXTERNAL TABLE IF NOT EXISTS visitors (
  `hour_start` TIMESTAMP COMMENT 'start of the partition hour (UTC instant)',
  `requests` BIGINT COMMENT 'requests counted',
  `unique_ips` BIGINT COMMENT 'distinct client_ip of this file-hour (exact up to 2048, else estimated, ~0.8% standard error); not additive',
  `hll` BINARY COMMENT 'the sketch, format version 1 (src/sketch/hll.rs): xxHash64 of client_ip, p = 14'
)
COMMENT 'Distinct client IPs per file and hour: a HyperLogLog sketch (exact up to 2048), merged by cdnlake report'
PARTITIONED BY (`domain` STRING, `dt` STRING, `hour` STRING)
STORED AS PARQUET
LOCATION 'oss://oss-cn-shanghai-internal.aliyuncs.com/my-bucket/cdn/lake/visitors/';

CREATE EXTERNAL TABLE IF NOT EXISTS cache_audit (
  `event_name` STRING COMMENT 'eventName',
  `event_time` TIMESTAMP COMMENT 'eventTime (UTC instant)',
  `trace_id` STRING COMMENT 'traceId, or a hash of the event when missing',
  `region` STRING COMMENT 'region of the event',
  `ali_uid` STRING COMMENT 'userIdentity.aliUid',
  `domain` STRING COMMENT 'CDN domain',
  `task_id` STRING COMMENT 'CDN task id',
  `object_type` STRING COMMENT 'File or Directory',
  `object_path` STRING COMMENT 'one object path of the task',
  `create_time` TIMESTAMP COMMENT 'when the task started',
  `complete_time` TIMESTAMP COMMENT 'when the task ended'
)
COMMENT 'CDN cache refresh/push/block tasks, one row per object path'
PARTITIONED BY (`event` STRING, `dt` STRING)
STORED AS PARQUET
LOCATION 'oss://oss-cn-shanghai-internal.aliyuncs.com/my-bucket/cdn/lake/audit/cache/';

CREATE EXTERNAL TABLE IF NOT EXISTS domain_audit (
  `event_name` STRING COMMENT 'eventName',
  `event_time` TIMESTAMP COMMENT 'eventTime (UTC instant)',
  `trace_id` STRING COMMENT 'traceId, or a hash of the event when missing',
  `region` STRING COMMENT 'region of the event',
  `ali_uid` STRING COMMENT 'userIdentity.aliUid',
  `domain` STRING COMMENT 'CDN domain',
  `status` STRING COMMENT 'domain status (Started/Stopped events)'
)
COMMENT 'CDN domain added/deleted/started/stopped'
PARTITIONED BY (`event` STRING, `dt` STRING)
STORED AS PARQUET
LOCATION 'oss://oss-cn-shanghai-internal.aliyuncs.com/my-bucket/cdn/lake/audit/domain/';
