-- cdnlake external tables over oss://oss-cn-shanghai-internal.aliyuncs.com/my-bucket/cdn/lake
-- Register partitions with: cdnlake ddl --dialect maxcompute --partitions --dest oss://my-bucket/cdn/lake

CREATE EXTERNAL TABLE IF NOT EXISTS access (
  `time` TIMESTAMP COMMENT 'request time (UTC instant)',
  `unixtime` BIGINT COMMENT 'request time, seconds since the epoch',
  `client_ip` STRING COMMENT 'client address as logged (may be masked)',
  `proxy_ip` STRING COMMENT 'proxy address, null for -',
  `response_time_ms` BIGINT COMMENT 'response time in milliseconds',
  `referer` STRING COMMENT 'Referer header, null for -',
  `method` STRING COMMENT 'HTTP method',
  `url` STRING COMMENT 'URL as logged',
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
