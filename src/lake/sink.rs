//! A synchronous `Write` adapter over an upload, so the (synchronous) Parquet writer streams into
//! any store with bounded memory, and nothing becomes visible before the commit.

use std::io::Write;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::runtime::Handle;

use super::store::Lake;
use crate::error::{Error, Result};

/// Part size of multipart uploads: large enough for S3/OSS's 10,000-part limit to allow ~80 GB.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight per upload before writes wait (bounds memory per open object).
const MAX_PARTS_IN_FLIGHT: usize = 2;

/// A synchronous [`Write`] into an object, for use on a plain (non-async) thread.
///
/// Small objects (under one part) are sent with a single PUT at [`complete`](Self::complete);
/// larger ones switch to a multipart upload as soon as they pass one part, so memory stays at
/// about two parts per open object. Nothing becomes visible until `complete`; dropping the sink
/// instead leaves the previous object, if any, in place and aborts the upload. This is what lets
/// a failed run change nothing in the lake.
pub struct ObjectSink {
    store: Arc<dyn ObjectStore>,
    rt: Handle,
    key: Path,
    /// The object so far while it is smaller than a part.
    small: Vec<u8>,
    upload: Option<WriteMultipart>,
    done: bool,
    written: u64,
    unflushed: usize,
    error: Option<object_store::Error>,
}

impl ObjectSink {
    /// A sink for `key`. No request is made until the data passes one part or is completed.
    pub fn create(lake: &Lake, key: Path, rt: &Handle) -> Result<ObjectSink> {
        Ok(ObjectSink {
            store: lake.store.clone(),
            rt: rt.clone(),
            key,
            small: Vec::new(),
            upload: None,
            done: false,
            written: 0,
            unflushed: 0,
            error: None,
        })
    }

    pub fn key(&self) -> &Path {
        &self.key
    }

    /// The error behind a failed write, with the key and the store's own error.
    pub fn store_error(&mut self, op: &'static str) -> Error {
        match self.error.take() {
            Some(source) => Error::Store {
                op,
                key: self.key.to_string(),
                source,
            },
            None => Error::Internal(format!("upload of {} already finished", self.key)),
        }
    }

    /// Completes the upload: the object becomes visible, replacing any previous one.
    pub fn complete(self) -> Result<u64> {
        let rt = self.rt.clone();
        let fut = self.into_completion()?;
        rt.block_on(fut)
    }

    /// Completes several uploads concurrently (one round trip instead of one per object).
    /// As with any set of objects, they become visible one by one, not atomically.
    pub fn complete_all(sinks: Vec<ObjectSink>) -> Result<Vec<u64>> {
        let Some(rt) = sinks.first().map(|s| s.rt.clone()) else {
            return Ok(Vec::new());
        };
        let futs = sinks
            .into_iter()
            .map(ObjectSink::into_completion)
            .collect::<Result<Vec<_>>>()?;
        rt.block_on(futures::future::try_join_all(futs))
    }

    /// Takes the sink apart into the request(s) that complete it; after this, dropping it no
    /// longer aborts anything.
    fn into_completion(mut self) -> Result<impl std::future::Future<Output = Result<u64>>> {
        if self.error.is_some() {
            return Err(self.store_error("upload"));
        }
        if self.done {
            return Err(Error::Internal(format!(
                "upload of {} completed twice",
                self.key
            )));
        }
        self.done = true;
        let (store, key, written) = (self.store.clone(), self.key.clone(), self.written);
        let upload = self.upload.take();
        let small = std::mem::take(&mut self.small);
        Ok(async move {
            let res = match upload {
                Some(upload) => upload.finish().await.map(|_| ()),
                None => store.put(&key, PutPayload::from(small)).await.map(|_| ()),
            };
            res.map(|()| written).map_err(|source| Error::Store {
                op: "complete upload of",
                key: key.to_string(),
                source,
            })
        })
    }

    /// Starts the multipart upload once the object outgrows one part.
    fn start_multipart(&mut self) -> std::result::Result<(), object_store::Error> {
        let upload = self.rt.block_on(self.store.put_multipart(&self.key))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let _guard = self.rt.enter();
        w.put(bytes::Bytes::from(std::mem::take(&mut self.small)));
        self.upload = Some(w);
        Ok(())
    }
}

/// How long an abandoned upload may take to abort before we give up on it (the store's own
/// retries could otherwise hold a failing run for minutes). An upload left behind is invisible
/// and is cleaned by the bucket's lifecycle rule for incomplete multipart uploads.
const ABORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Write for ObjectSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.done {
            return Err(std::io::Error::other("upload already finished"));
        }
        let fail = |this: &mut Self, e: object_store::Error| {
            let msg = e.to_string();
            this.error = Some(e);
            Err(std::io::Error::other(msg))
        };
        self.written += buf.len() as u64;
        let Some(upload) = self.upload.as_mut() else {
            self.small.extend_from_slice(buf);
            if self.small.len() >= PART_SIZE {
                if let Err(e) = self.start_multipart() {
                    return fail(self, e);
                }
            }
            return Ok(buf.len());
        };
        let _guard = self.rt.enter();
        upload.write(buf);
        self.unflushed += buf.len();
        if self.unflushed >= PART_SIZE {
            self.unflushed = 0;
            if let Err(e) = self
                .rt
                .block_on(upload.wait_for_capacity(MAX_PARTS_IN_FLIGHT))
            {
                return fail(self, e);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ObjectSink {
    /// Dropped without [`complete`](ObjectSink::complete) (a failed run): abort the upload so
    /// nothing becomes visible and no parts are left behind. This runs on a fresh thread, so it
    /// can block whatever thread drops the sink, even a runtime worker (where `block_on` would
    /// panic), and it is bounded by [`ABORT_TIMEOUT`].
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            let rt = self.rt.clone();
            let key = self.key.clone();
            let aborted = std::thread::scope(|s| {
                s.spawn(|| {
                    rt.block_on(async { tokio::time::timeout(ABORT_TIMEOUT, upload.abort()).await })
                })
                .join()
            });
            match aborted {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(%key, error = %e, "could not abort upload"),
                Ok(Err(_)) => tracing::warn!(%key, "aborting the upload timed out"),
                Err(_) => tracing::warn!(%key, "aborting the upload panicked"),
            }
        }
    }
}
