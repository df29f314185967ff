//! A synchronous `Write` into an object, so the (synchronous) Parquet writer streams into any
//! store with bounded memory, and nothing becomes visible before the commit.
//!
//! Small objects (under one part) are held in memory and sent with one PUT at completion;
//! larger ones become a multipart upload as soon as they pass one part, with at most
//! [`MAX_PARTS_IN_FLIGHT`] parts uploading at once. On an object store an upload is invisible
//! until completed. On a local destination the object is written under `_staging/` and renamed
//! into place at completion (see [`Lake::write_key`]), because object_store's local store
//! would otherwise write it next to its final name, inside a partition folder.
//!
//! An upload that is not completed is aborted: when the sink is dropped (a failed run), and when
//! completing it fails, so a failed commit leaves no parts behind that the store would keep.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::store::{store_error, Lake};
use crate::error::{Error, Result, StoreOp};

pub use super::store::PART_SIZE;
/// Parts in flight per upload before writes wait (bounds memory per open object).
pub(crate) const MAX_PARTS_IN_FLIGHT: usize = 2;

/// How long an abandoned upload may take to abort before we give up on it (the store's own
/// retries could otherwise hold a failing run for minutes). An upload left behind is invisible
/// and is cleaned by the bucket's lifecycle rule for incomplete multipart uploads.
const ABORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A synchronous [`Write`] into an object, for use on a plain (non-async) thread.
pub struct ObjectSink {
    store: Arc<dyn ObjectStore>,
    rt: Handle,
    /// Where the object becomes visible.
    key: Path,
    /// Where it is written until then (the key itself, or a staging key).
    write_key: Path,
    part_size: usize,
    /// Bytes not yet sent: the whole object while it is smaller than a part.
    buf: Vec<u8>,
    upload: Option<Box<dyn MultipartUpload>>,
    parts: VecDeque<JoinHandle<object_store::Result<()>>>,
    done: bool,
    written: u64,
    error: Option<object_store::Error>,
}

impl ObjectSink {
    /// A sink for `key`. No request is made until the data passes one part or is completed.
    pub fn create(lake: &Lake, key: Path, rt: &Handle) -> Result<ObjectSink> {
        Ok(ObjectSink {
            store: lake.store.clone(),
            rt: rt.clone(),
            write_key: lake.write_key(&key)?,
            key,
            part_size: lake.part_size,
            buf: Vec::new(),
            upload: None,
            parts: VecDeque::new(),
            done: false,
            written: 0,
            error: None,
        })
    }

    pub fn key(&self) -> &Path {
        &self.key
    }

    /// Bytes written so far (the object's size once finished).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The error behind a failed write, with the key and the store's own error.
    pub(crate) fn store_error(&mut self, op: StoreOp) -> Error {
        match self.error.take() {
            Some(source) => store_error(op, &self.key, source),
            None => Error::Internal(format!("upload of {} already finished", self.key)),
        }
    }

    /// Completes the upload: the object becomes visible, replacing any previous one.
    pub fn complete(self) -> Result<u64> {
        let rt = self.rt.clone();
        let fut = self.into_completion()?;
        rt.block_on(fut)
    }

    /// Completes several uploads concurrently (one round trip instead of one per object), and
    /// waits for every one of them even when one fails, so that each failed upload is aborted
    /// rather than dropped half-way. As with any set of objects, they become visible one by
    /// one, not atomically. Returns the sizes, or the first error.
    pub fn complete_all(sinks: Vec<ObjectSink>) -> Result<Vec<u64>> {
        let Some(rt) = sinks.first().map(|s| s.rt.clone()) else {
            return Ok(Vec::new());
        };
        let mut futs = Vec::with_capacity(sinks.len());
        let mut first_error = None;
        for s in sinks {
            match s.into_completion() {
                Ok(f) => futs.push(f),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let results = rt.block_on(futures::future::join_all(futs));
        let mut sizes = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Ok(n) => sizes.push(n),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(sizes),
        }
    }

    /// Takes the sink apart into the request(s) that complete it; after this, dropping it no
    /// longer aborts anything: the returned future aborts the upload itself if completing fails.
    fn into_completion(mut self) -> Result<impl std::future::Future<Output = Result<u64>>> {
        if self.error.is_some() {
            return Err(self.store_error(StoreOp::Upload));
        }
        if self.done {
            return Err(Error::Internal(format!(
                "upload of {} completed twice",
                self.key
            )));
        }
        self.done = true;
        let (store, key, write_key, written) = (
            self.store.clone(),
            self.key.clone(),
            self.write_key.clone(),
            self.written,
        );
        let upload = self.upload.take();
        let parts = std::mem::take(&mut self.parts);
        let rest = std::mem::take(&mut self.buf);
        let err = move |op: StoreOp, key: &Path| {
            let key = key.clone();
            move |source| store_error(op, &key, source)
        };
        Ok(async move {
            match upload {
                None => {
                    store
                        .put(&write_key, PutPayload::from(rest))
                        .await
                        .map_err(err(StoreOp::Write, &key))?;
                }
                Some(mut upload) => {
                    let last = (!rest.is_empty()).then(|| upload.put_part(PutPayload::from(rest)));
                    let finished = async {
                        // Every part in flight is waited for, even after one failed: a part
                        // landing after the abort would be left behind on the store.
                        let mut failed = None;
                        for p in parts {
                            if let Err(e) = p.await.map_err(join_error).and_then(|r| r) {
                                failed.get_or_insert(e);
                            }
                        }
                        if let Some(e) = failed {
                            // The last part's request was never sent: dropping it sends nothing.
                            return Err(e);
                        }
                        if let Some(last) = last {
                            last.await?;
                        }
                        upload.complete().await
                    }
                    .await;
                    if let Err(e) = finished {
                        abort(upload.as_mut(), &write_key).await;
                        return Err(err(StoreOp::CompleteUpload, &key)(e));
                    }
                }
            }
            if write_key != key {
                store
                    .rename(&write_key, &key)
                    .await
                    .map_err(err(StoreOp::Publish, &key))?;
            }
            Ok(written)
        })
    }

    /// Sends the first `n` buffered bytes as the next part, starting the multipart upload on
    /// the first one, and waits while too many parts are in flight.
    fn send_part(&mut self, n: usize) -> std::result::Result<(), object_store::Error> {
        if self.upload.is_none() {
            let upload = self
                .rt
                .block_on(self.store.put_multipart(&self.write_key))?;
            self.upload = Some(upload);
        }
        // The filled buffer itself becomes the part (no copy of its bytes); only what a write
        // put past the part moves to a fresh buffer, with room for a part and a write or two.
        let mut next = Vec::with_capacity(self.part_size + self.part_size / 8);
        next.extend_from_slice(&self.buf[n..]);
        self.buf.truncate(n);
        let data = std::mem::replace(&mut self.buf, next);
        if let Some(upload) = self.upload.as_mut() {
            let part = upload.put_part(PutPayload::from(data));
            self.parts.push_back(self.rt.spawn(part));
        }
        while self.parts.len() > MAX_PARTS_IN_FLIGHT {
            if let Some(p) = self.parts.pop_front() {
                self.rt.block_on(p).map_err(join_error)??;
            }
        }
        Ok(())
    }
}

/// A part task that panicked or was cancelled, as a store error.
fn join_error(e: tokio::task::JoinError) -> object_store::Error {
    object_store::Error::Generic {
        store: "upload",
        source: Box::new(e),
    }
}

/// Aborts an upload, bounded by [`ABORT_TIMEOUT`]; a failure is logged (the upload stays
/// invisible and the lifecycle rule removes it).
async fn abort(upload: &mut dyn MultipartUpload, key: &Path) {
    match tokio::time::timeout(ABORT_TIMEOUT, upload.abort()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(%key, error = %e, "could not abort upload"),
        Err(_) => tracing::warn!(%key, "aborting the upload timed out"),
    }
}

impl Write for ObjectSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.done {
            return Err(std::io::Error::other("upload already finished"));
        }
        if self.error.is_some() {
            return Err(std::io::Error::other("upload failed"));
        }
        self.written += buf.len() as u64;
        self.buf.extend_from_slice(buf);
        while self.buf.len() >= self.part_size {
            if let Err(e) = self.send_part(self.part_size) {
                let msg = e.to_string();
                self.error = Some(e);
                return Err(std::io::Error::other(msg));
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
        for p in self.parts.drain(..) {
            p.abort();
        }
        if let Some(mut upload) = self.upload.take() {
            let rt = self.rt.clone();
            let key = self.write_key.clone();
            let joined = std::thread::scope(|s| {
                s.spawn(|| rt.block_on(abort(upload.as_mut(), &key))).join()
            });
            if joined.is_err() {
                tracing::warn!(key = %self.write_key, "aborting the upload panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes of every size, across many parts of a small part size: the object is the bytes
    /// written, in order (the part hand-off moves only the tail past a part to the next buffer).
    #[test]
    fn parts_hold_every_byte_in_order() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let lake = Lake::open("memory://").unwrap().with_part_size(7);
        let data: Vec<u8> = (0..500u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut sink = ObjectSink::create(&lake, Path::from("a/b.bin"), rt.handle()).unwrap();
        let mut rest = &data[..];
        for n in [1usize, 6, 7, 8, 13, 14, 30, 2, 0, 3].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*n).min(rest.len());
            sink.write_all(&rest[..n]).unwrap();
            rest = &rest[n..];
        }
        assert_eq!(sink.written(), 500);
        assert_eq!(sink.complete().unwrap(), 500);
        let got = rt.block_on(lake.get_opt(&Path::from("a/b.bin"))).unwrap();
        assert_eq!(got.as_deref(), Some(&data[..]));
    }
}
