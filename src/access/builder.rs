//! Column builders for batches of access rows: the per-line hot path from a parsed line into
//! Arrow arrays of the [`ACCESS`](crate::tables::access::ACCESS) table. The line's `url` is not
//! copied: the table stores its parts, and the views rebuild it (schema version 2).

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::SchemaRef;

use super::parse::AccessLine;

/// Column builders for a batch of access rows. Appending copies the borrowed strings once into
/// the builders' buffers; no per-row allocation.
pub(crate) struct AccessBuilder {
    schema: SchemaRef,
    time: TimestampMicrosecondBuilder,
    unixtime: Int64Builder,
    client_ip: StringBuilder,
    proxy_ip: StringBuilder,
    response_time_ms: Int64Builder,
    referer: StringBuilder,
    method: StringBuilder,
    scheme: StringBuilder,
    host: StringBuilder,
    path: StringBuilder,
    query: StringBuilder,
    status: Int32Builder,
    request_bytes: Int64Builder,
    response_bytes: Int64Builder,
    cache_status: StringBuilder,
    user_agent: StringBuilder,
    content_type: StringBuilder,
    extra: StringBuilder,
    line_number: Int64Builder,
}

impl AccessBuilder {
    /// Builders sized for about `rows` rows of `bytes` bytes of log text.
    pub fn with_capacity(schema: SchemaRef, rows: usize, bytes: usize) -> Self {
        let s = |frac: usize| StringBuilder::with_capacity(rows, bytes / frac + 64);
        AccessBuilder {
            schema,
            time: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            unixtime: Int64Builder::with_capacity(rows),
            client_ip: s(12),
            proxy_ip: s(64),
            response_time_ms: Int64Builder::with_capacity(rows),
            referer: s(8),
            method: s(32),
            scheme: s(32),
            host: s(8),
            path: s(4),
            query: s(8),
            status: Int32Builder::with_capacity(rows),
            request_bytes: Int64Builder::with_capacity(rows),
            response_bytes: Int64Builder::with_capacity(rows),
            cache_status: s(32),
            user_agent: s(3),
            content_type: s(16),
            extra: s(64),
            line_number: Int64Builder::with_capacity(rows),
        }
    }

    pub fn len(&self) -> usize {
        self.line_number.len()
    }

    /// Appends one parsed line.
    #[inline]
    pub(crate) fn append(&mut self, l: &AccessLine<'_>, line_number: u64) {
        self.time.append_value(l.time_micros);
        self.unixtime
            .append_value(l.time_micros.div_euclid(1_000_000));
        self.client_ip.append_value(l.client_ip);
        self.proxy_ip.append_option(l.proxy_ip);
        self.response_time_ms.append_value(l.response_time_ms);
        self.referer.append_option(l.referer);
        self.method.append_value(l.method);
        self.scheme.append_option(l.scheme);
        self.host.append_option(l.host);
        self.path.append_value(l.path);
        self.query.append_option(l.query);
        self.status.append_value(l.status);
        self.request_bytes.append_value(l.request_bytes);
        self.response_bytes.append_value(l.response_bytes);
        self.cache_status.append_option(l.cache_status);
        self.user_agent.append_value(l.user_agent);
        self.content_type.append_value(l.content_type);
        self.extra.append_option(l.extra);
        self.line_number.append_value(line_number as i64);
    }

    /// Finishes the batch; `source_file` fills the lineage column.
    pub fn finish(mut self, source_file: &str) -> RecordBatch {
        let n = self.len();
        let source: ArrayRef = Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            source_file,
            n,
        )));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.unixtime.finish()),
            Arc::new(self.client_ip.finish()),
            Arc::new(self.proxy_ip.finish()),
            Arc::new(self.response_time_ms.finish()),
            Arc::new(self.referer.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.scheme.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.path.finish()),
            Arc::new(self.query.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.request_bytes.finish()),
            Arc::new(self.response_bytes.finish()),
            Arc::new(self.cache_status.finish()),
            Arc::new(self.user_agent.finish()),
            Arc::new(self.content_type.finish()),
            Arc::new(self.extra.finish()),
            source,
            Arc::new(self.line_number.finish()),
        ];
        // The columns above follow ACCESS.columns one for one, with matching types and
        // nullability, so this cannot fail; a mismatch is a programming error caught by tests.
        RecordBatch::try_new(self.schema, columns).expect("access columns match ACCESS schema")
    }
}
