//! Reading many small objects of a lake at once: manifests, rollups, sketches, footers.
//!
//! A lake grows by one small file set per domain and hour, so every reader that covers a window
//! fetches thousands of small objects. An object store answers each in tens of milliseconds
//! (20 ms from FC to OSS in one region, more from a laptop): read one at a time, a year of one
//! domain costs minutes. Every such reader goes through the one setting here, [`concurrency`]
//! requests in flight (default [`DEFAULT_CONCURRENCY`], `--concurrency` / `CDNLAKE_CONCURRENCY`
//! on the command line), and through [`get_all`], which answers in the order asked, so outputs
//! that merge what is read never depend on which answer came first.
//!
//! A small object is read with one whole-object GET, never a HEAD or a range read first.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::stream::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::ObjectMeta;

use super::store::Lake;
use crate::error::Result;

/// Requests in flight by default: enough to hide 20 ms of latency behind a few hundred reads
/// per second, few enough that OSS (which throttles per prefix at thousands per second) and a
/// small FC instance's sockets are not strained.
pub const DEFAULT_CONCURRENCY: usize = 64;

static CONCURRENCY: AtomicUsize = AtomicUsize::new(DEFAULT_CONCURRENCY);

/// Requests the read side keeps in flight.
pub fn concurrency() -> usize {
    CONCURRENCY.load(Ordering::Relaxed).max(1)
}

/// Sets [`concurrency`] for the process (the command line's `--concurrency`); at least 1.
pub fn set_concurrency(n: usize) {
    CONCURRENCY.store(n.max(1), Ordering::Relaxed);
}

/// Reads whole objects, [`concurrency`] at a time, answers in the order of `keys`; `None` for
/// an object that does not exist (deleted between a listing and the read).
pub(crate) async fn get_all(lake: &Lake, keys: Vec<Path>) -> Result<Vec<Option<bytes::Bytes>>> {
    futures::stream::iter(keys)
        .map(|key| async move { lake.get_opt(&key).await })
        .buffered(concurrency())
        .try_collect()
        .await
}

/// [`get_all`] as a stream: answers in the order of `keys`, [`concurrency`] in flight, so a
/// reader that merges as the answers come holds only those in memory, not every object at once.
pub(crate) fn get_stream(
    lake: &Lake,
    keys: Vec<Path>,
) -> impl futures::Stream<Item = Result<Option<bytes::Bytes>>> + '_ {
    futures::stream::iter(keys)
        .map(move |key| async move { lake.get_opt(&key).await })
        .buffered(concurrency())
}

/// Lists every object under `prefix` with its size and ETag (one request per 1,000 keys on S3
/// and OSS). A prefix that does not exist is empty.
pub(crate) async fn list_meta(lake: &Lake, prefix: &Path) -> Result<Vec<ObjectMeta>> {
    lake.list(prefix).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_come_in_the_order_asked() {
        let lake = Lake::open("memory://").unwrap();
        let keys: Vec<Path> = (0..200).map(|i| Path::from(format!("k/{i}"))).collect();
        for (i, k) in keys.iter().enumerate() {
            if i % 7 != 3 {
                lake.put(k, i.to_string().into_bytes()).await.unwrap();
            }
        }
        let got = get_all(&lake, keys).await.unwrap();
        for (i, g) in got.iter().enumerate() {
            match g {
                Some(b) => assert_eq!(b.as_ref(), i.to_string().as_bytes()),
                None => assert_eq!(i % 7, 3),
            }
        }
        assert_eq!(list_meta(&lake, &Path::from("k")).await.unwrap().len(), 171);
        assert!(list_meta(&lake, &Path::from("none"))
            .await
            .unwrap()
            .is_empty());
    }
}
