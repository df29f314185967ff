//! Column builders for batches of access rows: the per-line hot path from a parsed line into
//! Arrow arrays of the [`ACCESS`](crate::tables::access::ACCESS) table. The line's `url` is not
//! copied: the table stores its parts, and the views rebuild it (schema version 2).
//!
//! Plain vectors, not arrow's builders: arrow's `StringBuilder::append_value` is an out-of-line
//! call of ~65 instructions (capacity checks in three buffers, a validity bit even for columns
//! that never hold a null), and `append_null` ~40; with 12 string and 8 number columns that was a
//! fifth of the per-line parse (callgrind, issue 18). Here a value is one `extend_from_slice` and
//! one offset push, a number one push, a validity bit one OR into a word. The vectors become
//! arrays without a copy (`Buffer::from_vec`), and string arrays without arrow's re-validation
//! of values that were `&str` all along (see [`StrCol::finish`]).

use std::sync::Arc;

use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{ArrayRef, PrimitiveArray, RecordBatch, StringArray};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::SchemaRef;

use super::parse::AccessLine;

/// A Utf8 column being built: the values back to back, their end offsets, and (for a nullable
/// column) a validity bitmap.
struct StrCol {
    values: Vec<u8>,
    /// `offsets[i]..offsets[i + 1]` is value `i`; starts with 0.
    offsets: Vec<i32>,
    /// Validity bits, 64 rows a word (bit set: a value); empty for a column without nulls.
    valid: Vec<u64>,
    nulls: usize,
}

impl StrCol {
    fn with_capacity(rows: usize, bytes: usize, nullable: bool) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        StrCol {
            values: Vec::with_capacity(bytes),
            offsets,
            valid: Vec::with_capacity(if nullable { rows / 64 + 1 } else { 0 }),
            nulls: 0,
        }
    }

    /// The offset after the last value. A block's values are at most its bytes (a few MiB), far
    /// below `i32::MAX`; past it this panics, as arrow's `StringBuilder` does ("byte array offset
    /// overflow"), rather than write a wrong offset: `finish` relies on every offset being exact.
    #[inline(always)]
    fn end(&self) -> i32 {
        i32::try_from(self.values.len()).expect("a column of one block over 2 GiB")
    }

    #[inline(always)]
    fn push(&mut self, v: &str) {
        self.values.extend_from_slice(v.as_bytes());
        let end = self.end();
        self.offsets.push(end);
    }

    /// Appends a value or a null to a nullable column.
    #[inline(always)]
    fn push_opt(&mut self, v: Option<&str>) {
        let row = self.offsets.len() - 1;
        if row.is_multiple_of(64) {
            self.valid.push(0);
        }
        match v {
            Some(v) => {
                if let Some(w) = self.valid.last_mut() {
                    *w |= 1 << (row % 64);
                }
                self.push(v);
            }
            None => {
                self.nulls += 1;
                let end = self.end();
                self.offsets.push(end);
            }
        }
    }

    /// The column as an Arrow array, without a copy. The crate's one `unsafe` outside `scan`.
    #[allow(unsafe_code)]
    fn finish(self) -> StringArray {
        let rows = self.offsets.len() - 1;
        // No nulls: no bitmap, as arrow's own builder gives.
        let nulls = (self.nulls > 0)
            .then(|| NullBuffer::new(BooleanBuffer::new(Buffer::from_vec(self.valid), 0, rows)));
        let offsets = ScalarBuffer::from(self.offsets);
        let values = Buffer::from_vec(self.values);
        if cfg!(debug_assertions) {
            // Tests check what the release build takes as given.
            return StringArray::try_new(OffsetBuffer::new(offsets), values, nulls)
                .expect("string column built from &str values");
        }
        // SAFETY: what `OffsetBuffer::new` and `StringArray::try_new` check holds, which is the
        // contract of their `_unchecked` forms. `values` is `&str`s back to back (`push` takes
        // `&str`, `repeated` repeats one), so it is UTF-8 and every offset, the length of a run
        // of whole `&str`s, is a char boundary; the offsets start at 0 (`with_capacity`,
        // `repeated`), never decrease (each is the length of a growing vector) and end at
        // `values.len()`, each exact (`end` panics rather than saturate); `nulls`, when present,
        // has one bit per row (`push_opt` adds a word every 64 rows). The checks were a third of
        // the cost of building the columns (callgrind, issue 18): a UTF-8 pass over bytes the
        // block already validated, a char-boundary test and a comparison per offset.
        unsafe { StringArray::new_unchecked(OffsetBuffer::new_unchecked(offsets), values, nulls) }
    }
}

/// Column builders for a batch of access rows. Appending copies the borrowed strings once into
/// the columns' vectors; no per-row allocation.
pub(crate) struct AccessBuilder {
    schema: SchemaRef,
    time: Vec<i64>,
    unixtime: Vec<i64>,
    client_ip: StrCol,
    proxy_ip: StrCol,
    response_time_ms: Vec<i64>,
    referer: StrCol,
    method: StrCol,
    scheme: StrCol,
    host: StrCol,
    path: StrCol,
    query: StrCol,
    status: Vec<i32>,
    request_bytes: Vec<i64>,
    response_bytes: Vec<i64>,
    cache_status: StrCol,
    user_agent: StrCol,
    content_type: StrCol,
    extra: StrCol,
    line_number: Vec<i64>,
}

impl AccessBuilder {
    /// Builders sized for about `rows` rows of `bytes` bytes of log text.
    pub fn with_capacity(schema: SchemaRef, rows: usize, bytes: usize) -> Self {
        let s = |frac: usize| StrCol::with_capacity(rows, bytes / frac + 64, false);
        let n = |frac: usize| StrCol::with_capacity(rows, bytes / frac + 64, true);
        AccessBuilder {
            schema,
            time: Vec::with_capacity(rows),
            unixtime: Vec::with_capacity(rows),
            client_ip: s(12),
            proxy_ip: n(64),
            response_time_ms: Vec::with_capacity(rows),
            referer: n(8),
            method: s(32),
            scheme: n(32),
            host: n(8),
            path: s(4),
            query: n(8),
            status: Vec::with_capacity(rows),
            request_bytes: Vec::with_capacity(rows),
            response_bytes: Vec::with_capacity(rows),
            cache_status: n(32),
            user_agent: s(3),
            content_type: s(16),
            extra: n(64),
            line_number: Vec::with_capacity(rows),
        }
    }

    pub fn len(&self) -> usize {
        self.line_number.len()
    }

    /// Appends one parsed line.
    #[inline]
    pub(crate) fn append(&mut self, l: &AccessLine<'_>, line_number: u64) {
        self.time.push(l.time_micros);
        self.unixtime.push(l.time_micros.div_euclid(1_000_000));
        self.client_ip.push(l.client_ip);
        self.proxy_ip.push_opt(l.proxy_ip);
        self.response_time_ms.push(l.response_time_ms);
        self.referer.push_opt(l.referer);
        self.method.push(l.method);
        self.scheme.push_opt(l.scheme);
        self.host.push_opt(l.host);
        self.path.push(l.path);
        self.query.push_opt(l.query);
        self.status.push(l.status);
        self.request_bytes.push(l.request_bytes);
        self.response_bytes.push(l.response_bytes);
        self.cache_status.push_opt(l.cache_status);
        self.user_agent.push(l.user_agent);
        self.content_type.push(l.content_type);
        self.extra.push_opt(l.extra);
        self.line_number.push(line_number as i64);
    }

    /// Finishes the batch; `source_file` fills the lineage column.
    pub fn finish(self, source_file: &str) -> RecordBatch {
        let n = self.len();
        let source: ArrayRef = Arc::new(repeated(source_file, n));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(
                PrimitiveArray::<TimestampMicrosecondType>::new(self.time.into(), None)
                    .with_timezone("UTC"),
            ),
            Arc::new(PrimitiveArray::<Int64Type>::new(self.unixtime.into(), None)),
            Arc::new(self.client_ip.finish()),
            Arc::new(self.proxy_ip.finish()),
            Arc::new(PrimitiveArray::<Int64Type>::new(
                self.response_time_ms.into(),
                None,
            )),
            Arc::new(self.referer.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.scheme.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.path.finish()),
            Arc::new(self.query.finish()),
            Arc::new(PrimitiveArray::<Int32Type>::new(self.status.into(), None)),
            Arc::new(PrimitiveArray::<Int64Type>::new(
                self.request_bytes.into(),
                None,
            )),
            Arc::new(PrimitiveArray::<Int64Type>::new(
                self.response_bytes.into(),
                None,
            )),
            Arc::new(self.cache_status.finish()),
            Arc::new(self.user_agent.finish()),
            Arc::new(self.content_type.finish()),
            Arc::new(self.extra.finish()),
            source,
            Arc::new(PrimitiveArray::<Int64Type>::new(
                self.line_number.into(),
                None,
            )),
        ];
        // The columns above follow ACCESS.columns one for one, with matching types and
        // nullability, so this cannot fail; a mismatch is a programming error caught by tests.
        RecordBatch::try_new(self.schema, columns).expect("access columns match ACCESS schema")
    }
}

/// `n` copies of `s`: one allocation and a doubling copy, not `n` pushes of a short string.
fn repeated(s: &str, n: usize) -> StringArray {
    let len = s.len();
    StrCol {
        values: s.repeat(n).into_bytes(),
        offsets: (0..=n)
            .map(|i| i32::try_from(i * len).expect("a column of one block over 2 GiB"))
            .collect(),
        valid: Vec::new(),
        nulls: 0,
    }
    .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    #[test]
    fn string_columns_keep_values_nulls_and_empties() {
        let mut c = StrCol::with_capacity(2, 4, true);
        // Over a word of validity bits, with values, empty strings and nulls mixed.
        let want: Vec<Option<String>> = (0..150)
            .map(|i| match i % 5 {
                0 => None,
                1 => Some(String::new()),
                _ => Some(format!("v{i}é")),
            })
            .collect();
        for v in &want {
            c.push_opt(v.as_deref());
        }
        let a = c.finish();
        let got: Vec<Option<String>> = a.iter().map(|v| v.map(str::to_string)).collect();
        assert_eq!(got, want);
        assert_eq!(a.null_count(), 30);

        let mut c = StrCol::with_capacity(0, 0, true);
        c.push_opt(Some("x"));
        assert_eq!(c.finish().nulls(), None, "no nulls, no bitmap");

        let r = repeated("cdn.example.com_2024.gz", 3);
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(|v| v == Some("cdn.example.com_2024.gz")));
        assert_eq!(repeated("f", 0).len(), 0);
    }
}
