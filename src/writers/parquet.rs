//! Parquet encoding settings and a writer per partition that streams into a multipart upload.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use object_store::path::Path;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use tokio::runtime::Handle;

use crate::error::{Error, Result};
use crate::lake::commit::Staged;
use crate::lake::sink::ObjectSink;
use crate::lake::store::Lake;
use crate::tables::Table;

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

/// Writer properties for a table: zstd, page statistics on (but for the table's
/// [`no_statistics`](Table::no_statistics) columns), dictionary encoding for the columns marked so (the writer falls back to plain
/// encoding by itself when a column's dictionary grows past its page limit).
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
        if let Some(&(_, limit)) = table.large_dictionaries.iter().find(|(n, _)| *n == c.name) {
            b = b.set_column_dictionary_page_size_limit(ColumnPath::from(c.name), limit);
        }
        if table.no_statistics.contains(&c.name) {
            b = b.set_column_statistics_enabled(ColumnPath::from(c.name), EnabledStatistics::None);
        }
    }
    Ok(b.build())
}

/// An open Parquet file: the encoder and the upload under it. Nothing is visible until
/// [`finish`](PartFile::finish) and then [`ObjectSink::complete`].
///
/// Columns are encoded in parallel on the rayon pool (one task per column per batch): encoding
/// and compression cost more CPU than parsing, and a single encoder thread would leave the other
/// core idle. The rayon pool is shared with the parsers, so the work balances itself.
pub(crate) struct PartFile {
    file: SerializedFileWriter<ObjectSink>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// Column encoders of the open row group.
    columns: Option<Vec<ArrowColumnWriter>>,
    row_group: usize,
    row_group_rows: usize,
    max_row_group_rows: usize,
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
        let perr = |source| Error::Parquet {
            key: key.to_string(),
            source,
        };
        let max_row_group_rows = props.max_row_group_row_count().unwrap_or(1 << 20).max(1);
        let sink = ObjectSink::create(lake, key.clone(), rt)?;
        // ArrowWriter sets up the file (schema conversion, embedded Arrow schema); we then drive
        // its lower-level parts ourselves to encode columns in parallel.
        let (file, factory) = ArrowWriter::try_new(sink, schema.clone(), Some(props))
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(perr)?;
        Ok(PartFile {
            file,
            factory,
            schema,
            columns: None,
            row_group: 0,
            row_group_rows: 0,
            max_row_group_rows,
            key,
            rows: 0,
        })
    }

    fn perr(&self) -> impl Fn(parquet::errors::ParquetError) -> Error + '_ {
        move |source| Error::Parquet {
            key: self.key.to_string(),
            source,
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut batch = batch.clone();
        while batch.num_rows() > 0 {
            let room = self.max_row_group_rows - self.row_group_rows;
            let now = batch.slice(0, room.min(batch.num_rows()));
            batch = batch.slice(now.num_rows(), batch.num_rows() - now.num_rows());
            self.write_within_row_group(&now)?;
            if self.row_group_rows >= self.max_row_group_rows {
                self.flush_row_group()?;
            }
        }
        Ok(())
    }

    fn write_within_row_group(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.columns.is_none() {
            let cols = self
                .factory
                .create_column_writers(self.row_group)
                .map_err(self.perr())?;
            self.columns = Some(cols);
        }
        let mut leaves = Vec::with_capacity(batch.num_columns());
        for (field, array) in self.schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, array).map_err(self.perr())?);
        }
        let key = &self.key;
        if let Some(cols) = self.columns.as_mut() {
            cols.par_iter_mut()
                .zip(leaves.par_iter())
                .try_for_each(|(w, leaf)| w.write(leaf))
                .map_err(|source| Error::Parquet {
                    key: key.to_string(),
                    source,
                })?;
        }
        self.row_group_rows += batch.num_rows();
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Closes the open row group (columns in parallel) and appends it to the file.
    fn flush_row_group(&mut self) -> Result<()> {
        let Some(cols) = self.columns.take() else {
            return Ok(());
        };
        let key = &self.key;
        let chunks = cols
            .into_par_iter()
            .map(ArrowColumnWriter::close)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| Error::Parquet {
                key: key.to_string(),
                source,
            })?;
        let mut rg = self
            .file
            .next_row_group()
            .map_err(|source| Error::Parquet {
                key: key.to_string(),
                source,
            })?;
        for chunk in chunks {
            chunk
                .append_to_row_group(&mut rg)
                .map_err(|source| Error::Parquet {
                    key: key.to_string(),
                    source,
                })?;
        }
        rg.close().map_err(|source| Error::Parquet {
            key: key.to_string(),
            source,
        })?;
        self.row_group += 1;
        self.row_group_rows = 0;
        Ok(())
    }

    /// Bytes flushed plus an estimate of the open row group's encoded size.
    pub fn size(&self) -> u64 {
        let open: usize = self
            .columns
            .iter()
            .flatten()
            .map(ArrowColumnWriter::get_estimated_total_bytes)
            .sum();
        (self.file.bytes_written() + open) as u64
    }

    /// Writes the last row group and the footer, and hands back the upload, still to be completed.
    pub fn finish(mut self) -> Result<ObjectSink> {
        self.flush_row_group()?;
        let key = self.key.to_string();
        self.file
            .into_inner()
            .map_err(|source| Error::Parquet { key, source })
    }

    /// [`finish`](Self::finish), staged with the file's row count.
    pub fn staged(self) -> Result<Staged> {
        let rows = self.rows;
        Ok(Staged {
            sink: self.finish()?,
            rows: Some(rows),
        })
    }
}

/// Batches that arrive in key order, one file per run of equal keys: a batch with the open
/// file's key goes on into it; another key stages that file and opens the next. The rollup
/// writers go through their hours in order, so in a day lake the hours of one day, which share
/// a key, go into one file.
pub(crate) struct FilePerKey<'a> {
    lake: &'a Lake,
    rt: &'a Handle,
    props: &'a WriterProperties,
    open: Option<PartFile>,
}

impl<'a> FilePerKey<'a> {
    pub fn new(lake: &'a Lake, rt: &'a Handle, props: &'a WriterProperties) -> Self {
        FilePerKey {
            lake,
            rt,
            props,
            open: None,
        }
    }

    /// Writes `batch` to the file of `key`; a file closed on the way is staged into `out`.
    pub fn write(&mut self, key: Path, batch: &RecordBatch, out: &mut Vec<Staged>) -> Result<()> {
        if let Some(f) = self.open.take_if(|f| f.key != key) {
            out.push(f.staged()?);
        }
        let f = match &mut self.open {
            Some(f) => f,
            None => self.open.insert(PartFile::create(
                self.lake,
                key,
                batch.schema(),
                self.props.clone(),
                self.rt,
            )?),
        };
        f.write(batch)
    }

    /// Stages the open file, if any, into `out`.
    pub fn finish(self, out: &mut Vec<Staged>) -> Result<()> {
        if let Some(f) = self.open {
            out.push(f.staged()?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::block::{parse_block, BlockOptions};
    use crate::dev::gen::{generate, GenOptions};
    use crate::tables::access::{ACCESS, NO_STATISTICS};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::Encoding;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    /// The columns marked for dictionary encoding come out dictionary-encoded, whatever their
    /// statistics setting; the others do not.
    #[test]
    fn dictionary_flags_reach_the_file() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let lake = Lake::open("memory://").unwrap();
        let mut text = Vec::new();
        generate(
            &GenOptions {
                lines: 20_000,
                ..GenOptions::default()
            },
            &mut text,
        )
        .unwrap();
        let schema = ACCESS.arrow_schema();
        let parsed = parse_block(&text, 1, "f.gz", &schema, &BlockOptions::default());
        let props = writer_properties(&ACCESS, &ParquetOptions::default()).unwrap();
        let key = Path::from("t.parquet");
        let mut f = PartFile::create(&lake, key.clone(), schema, props, rt.handle()).unwrap();
        for p in &parsed.parts {
            f.write(&p.batch).unwrap();
        }
        f.finish().unwrap().complete().unwrap();
        let bytes = rt.block_on(async { lake.get_opt(&key).await.unwrap().unwrap() });
        // What is read back equals what was written, with the file schema embedded.
        let back: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back[0].schema(), ACCESS.arrow_schema());
        let back = arrow_select::concat::concat_batches(&ACCESS.arrow_schema(), &back).unwrap();
        let sent: Vec<RecordBatch> = parsed.parts.iter().map(|p| p.batch.clone()).collect();
        let sent = arrow_select::concat::concat_batches(&sent[0].schema(), &sent).unwrap();
        assert_eq!(back.num_rows() as u64, parsed.rows);
        for (i, f) in ACCESS.arrow_schema().fields().iter().enumerate() {
            assert_eq!(back.column(i), sent.column(i), "column {}", f.name());
        }
        let reader = SerializedFileReader::new(bytes).unwrap();
        let rg = reader.metadata().row_group(0);
        for (i, c) in ACCESS.columns.iter().enumerate() {
            assert_eq!(
                rg.column(i).statistics().is_some(),
                !NO_STATISTICS.contains(&c.name),
                "statistics of {}",
                c.name
            );
            let encodings: Vec<Encoding> = rg.column(i).encodings().collect();
            let dict = encodings.contains(&Encoding::RLE_DICTIONARY)
                || encodings.contains(&Encoding::PLAIN_DICTIONARY);
            if matches!(
                c.name,
                "user_agent" | "path" | "referer" | "query" | "status" | "source_file"
            ) {
                assert!(
                    dict,
                    "{} should be dictionary-encoded: {encodings:?}",
                    c.name
                );
            }
            if !c.dictionary {
                assert!(
                    !dict,
                    "{} should not be dictionary-encoded: {encodings:?}",
                    c.name
                );
            }
        }
    }

    /// On a busy domain a row group's user agents outgrow Parquet's default 1 MiB dictionary
    /// page; the access table's larger limit keeps every data page of that column
    /// dictionary-encoded instead of falling back to plain after the interning was paid for.
    #[test]
    fn large_dictionaries_keep_busy_columns_dictionary_encoded() {
        let mut text = Vec::new();
        generate(
            &GenOptions {
                lines: 60_000,
                high_cardinality: true,
                ..GenOptions::default()
            },
            &mut text,
        )
        .unwrap();
        let schema = ACCESS.arrow_schema();
        let parsed = parse_block(&text, 1, "f.gz", &schema, &BlockOptions::default());
        let write = |props: WriterProperties| {
            let mut w = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).unwrap();
            for p in &parsed.parts {
                w.write(&p.batch).unwrap();
            }
            bytes::Bytes::from(w.into_inner().unwrap())
        };
        let all_dictionary = |file: bytes::Bytes, name: &str| {
            let reader = SerializedFileReader::new(file).unwrap();
            let i = ACCESS.columns.iter().position(|c| c.name == name).unwrap();
            reader.metadata().row_groups().iter().all(|rg| {
                let c = rg.column(i);
                c.dictionary_page_offset().is_some()
                    && c.page_encoding_stats_mask()
                        .is_some_and(|m| m.is_only(Encoding::RLE_DICTIONARY))
            })
        };
        let ours = write(writer_properties(&ACCESS, &ParquetOptions::default()).unwrap());
        let mut default_limit = ACCESS;
        default_limit.large_dictionaries = &[];
        let theirs = write(writer_properties(&default_limit, &ParquetOptions::default()).unwrap());
        // The test's data does overflow the default limit, so the comparison means something.
        assert!(!all_dictionary(theirs.clone(), "user_agent"));
        assert!(all_dictionary(ours.clone(), "user_agent"));
        assert!(
            ours.len() < theirs.len(),
            "{} vs {}",
            ours.len(),
            theirs.len()
        );
    }
}
