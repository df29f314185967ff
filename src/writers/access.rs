//! The access table: one Parquet file per partition a log file's lines fall in (more when a
//! file passes [`ParquetOptions::max_file_bytes`](super::parquet::ParquetOptions)), streamed
//! into uploads as blocks arrive and staged, not committed, at the end.
//!
//! A partition is an hour, or a day in a day-partitioned lake ([`PartitionBy::Day`]). In a day
//! lake an hourly log file usually writes one file (two when its lines cross midnight), its rows
//! in line order: that is time order up to the log's jitter, so each row group's and each page's
//! `time` min/max (statistics are on, with the page index) span little more than the rows they
//! hold, and a filter on `time` skips them within the day as an `hour=` folder would. Sorting
//! further would mean holding a whole file's rows, which the bounded-memory design forbids.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::file::properties::WriterProperties;
use tokio::runtime::Handle;

use super::parquet::{writer_properties, ParquetOptions, PartFile};
use crate::access::time::PartitionTz;
use crate::error::{Error, Result};
use crate::lake::access_day::{held_by_day, incoming_key, HeldSource};
use crate::lake::commit::Staged;
use crate::lake::descriptor::PartitionBy;
use crate::lake::layout::FileLayout;
use crate::lake::manifest::PartitionEntry;
use crate::lake::sink::ObjectSink;
use crate::lake::store::Lake;
use crate::tables::access::ACCESS;

/// One partition being written.
struct PartitionState {
    dt: String,
    /// Empty in a day lake.
    hour: String,
    current: Option<PartFile>,
    /// Files closed because they reached the size limit, not yet committed.
    done: Vec<(ObjectSink, u64)>,
    files: usize,
    rows: u64,
    /// In a day lake whose day is compacted and holds this log file: the day's record of it.
    /// The partition's files are then written under `_compacted_access/_incoming/` and the
    /// commit splices them into the day object (or drops them: `compact::access`).
    held: Option<HeldSource>,
}

/// The access files of one log file, by partition hour.
pub(crate) struct AccessWriter {
    lake: Lake,
    rt: Handle,
    layout: FileLayout,
    tz: PartitionTz,
    max_file_bytes: u64,
    props: WriterProperties,
    schema: SchemaRef,
    /// By partition: the hour bucket, or in a day lake the day (hour bucket / 24).
    partitions: BTreeMap<i64, PartitionState>,
}

/// What the access writer staged: the files, and each partition with its rows.
pub(crate) struct AccessFiles {
    pub staged: Vec<Staged>,
    pub partitions: Vec<PartitionEntry>,
    /// Days (`dt`) whose compacted day object holds this file, and its record there.
    pub held: BTreeMap<String, HeldSource>,
}

impl AccessWriter {
    pub fn new(
        lake: &Lake,
        rt: &Handle,
        layout: &FileLayout,
        tz: PartitionTz,
        parquet: &ParquetOptions,
    ) -> Result<AccessWriter> {
        Ok(AccessWriter {
            lake: lake.clone(),
            rt: rt.clone(),
            layout: layout.clone(),
            tz,
            max_file_bytes: parquet.max_file_bytes,
            props: writer_properties(&ACCESS, parquet)?,
            schema: ACCESS.arrow_schema(),
            partitions: BTreeMap::new(),
        })
    }

    /// Appends a batch whose rows all fall in partition hour `bucket`.
    pub fn write(&mut self, bucket: i64, batch: &RecordBatch) -> Result<()> {
        let tz = self.tz;
        let day = self.layout.partition_by == PartitionBy::Day;
        let partition = if day { bucket.div_euclid(24) } else { bucket };
        if !self.partitions.contains_key(&partition) {
            let (dt, hour) = tz.partition_values(bucket);
            // One footer read per day a file writes, in day lakes only.
            let held = if day {
                held_by_day(
                    &self.lake,
                    &self.rt,
                    &self.layout.domain,
                    &dt,
                    &self.layout.file_name,
                )?
            } else {
                None
            };
            self.partitions.insert(
                partition,
                PartitionState {
                    dt,
                    hour: if day { String::new() } else { hour },
                    current: None,
                    done: Vec::new(),
                    files: 0,
                    rows: 0,
                    held,
                },
            );
        }
        let Some(st) = self.partitions.get_mut(&partition) else {
            return Err(Error::Internal("partition vanished".into()));
        };
        if st.current.is_none() {
            let mut key = self.layout.access(&st.dt, &st.hour, st.files);
            if st.held.is_some() {
                key = incoming_key(&self.layout.prefix, &key);
            }
            st.files += 1;
            st.current = Some(PartFile::create(
                &self.lake,
                key,
                self.schema.clone(),
                self.props.clone(),
                &self.rt,
            )?);
        }
        if let Some(f) = st.current.as_mut() {
            f.write(batch)?;
            st.rows += batch.num_rows() as u64;
            if f.size() >= self.max_file_bytes {
                if let Some(f) = st.current.take() {
                    let rows = f.rows;
                    st.done.push((f.finish()?, rows));
                }
            }
        }
        Ok(())
    }

    /// Closes every open file and stages them all, partitions in order.
    pub fn finish(self) -> Result<AccessFiles> {
        let mut staged = Vec::new();
        let mut partitions = Vec::new();
        let mut held = BTreeMap::new();
        for st in self.partitions.into_values() {
            if let Some(h) = st.held {
                held.insert(st.dt.clone(), h);
            }
            staged.extend(st.done.into_iter().map(|(sink, rows)| Staged {
                sink,
                rows: Some(rows),
            }));
            if let Some(f) = st.current {
                let rows = f.rows;
                staged.push(Staged {
                    sink: f.finish()?,
                    rows: Some(rows),
                });
            }
            partitions.push(PartitionEntry {
                dt: st.dt,
                hour: st.hour,
                rows: st.rows,
            });
        }
        Ok(AccessFiles {
            staged,
            partitions,
            held,
        })
    }
}
