//! Rejected lines, streamed as JSON Lines into `rejects/<domain>/<YYYY_MM_DD>/<stem>.jsonl`.
//! The object is only created when the first rejection arrives.

use std::io::Write;

use object_store::path::Path;
use tokio::runtime::Handle;

use crate::access::block::RejectRecord;
use crate::error::{Error, Result, StoreOp};
use crate::lake::commit::Staged;
use crate::lake::sink::ObjectSink;
use crate::lake::store::Lake;

/// Writes reject records; creates the object lazily.
pub(crate) struct RejectWriter {
    key: Path,
    sink: Option<ObjectSink>,
    pub count: u64,
    buf: Vec<u8>,
}

impl RejectWriter {
    pub fn new(key: Path) -> Self {
        RejectWriter {
            key,
            sink: None,
            count: 0,
            buf: Vec::new(),
        }
    }

    pub fn write(&mut self, lake: &Lake, rt: &Handle, r: &RejectRecord) -> Result<()> {
        if self.sink.is_none() {
            self.sink = Some(ObjectSink::create(lake, self.key.clone(), rt)?);
        }
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, r).map_err(|source| Error::Json {
            what: format!("reject record for {}", self.key),
            source,
        })?;
        self.buf.push(b'\n');
        if let Some(sink) = self.sink.as_mut() {
            if sink.write_all(&self.buf).is_err() {
                return Err(sink.store_error(StoreOp::UploadRejects));
            }
        }
        self.count += 1;
        Ok(())
    }

    /// The upload (if any line was rejected), staged with its record count.
    pub fn finish(self) -> Option<Staged> {
        let rows = self.count;
        self.sink.map(|sink| Staged {
            sink,
            rows: Some(rows),
        })
    }
}
