//! Parquet encoding settings and a writer per partition that streams into a multipart upload.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;
use tokio::runtime::Handle;

use super::store::{Lake, ObjectSink};
use crate::error::{Error, Result};
use crate::table::Table;

/// Encoding knobs.
#[derive(Debug, Clone)]
pub struct ParquetOptions {
    pub zstd_level: i32,
    pub max_row_group_rows: usize,
    /// A partition's file is closed and a `-<n>` file started past this size (MaxCompute wants
    /// files well under 2 GB).
    pub max_file_bytes: u64,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            zstd_level: 1,
            max_row_group_rows: 512 * 1024,
            max_file_bytes: 1 << 30,
        }
    }
}

/// Writer properties for a table: zstd, statistics on, dictionary encoding only for the columns
/// marked low-cardinality (elsewhere it costs CPU and falls back to plain anyway).
pub fn writer_properties(table: &Table, opts: &ParquetOptions) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(opts.zstd_level).map_err(|e| Error::Config {
        setting: "zstd level",
        value: opts.zstd_level.to_string(),
        reason: e.to_string(),
    })?;
    let mut b = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(opts.max_row_group_rows))
        .set_dictionary_enabled(false)
        .set_created_by(format!("cdnlake {}", env!("CARGO_PKG_VERSION")));
    for c in table.columns {
        if c.dictionary {
            b = b.set_column_dictionary_enabled(ColumnPath::from(c.name), true);
        }
    }
    Ok(b.build())
}

/// An open Parquet file: the encoder and the upload under it. Nothing is visible until
/// [`finish`](PartFile::finish) and then [`ObjectSink::complete`].
pub struct PartFile {
    writer: ArrowWriter<ObjectSink>,
    pub key: Path,
    pub rows: u64,
}

impl PartFile {
    pub fn create(
        lake: &Lake,
        key: Path,
        schema: SchemaRef,
        props: WriterProperties,
        rt: &Handle,
    ) -> Result<PartFile> {
        let sink = ObjectSink::create(lake, key.clone(), rt)?;
        let writer =
            ArrowWriter::try_new(sink, schema, Some(props)).map_err(|source| Error::Parquet {
                key: key.to_string(),
                source,
            })?;
        Ok(PartFile {
            writer,
            key,
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        self.writer.write(batch).map_err(|source| Error::Parquet {
            key: self.key.to_string(),
            source,
        })
    }

    /// Bytes flushed plus bytes buffered in the open row group.
    pub fn size(&self) -> u64 {
        (self.writer.bytes_written() + self.writer.in_progress_size()) as u64
    }

    /// Writes the footer and hands back the upload, still to be completed.
    pub fn finish(self) -> Result<ObjectSink> {
        let key = self.key.to_string();
        // into_inner() flushes the open row group and writes the footer.
        self.writer
            .into_inner()
            .map_err(|source| Error::Parquet { key, source })
    }
}
