//! Checking a lake against its manifests (`cdnlake verify`) and deriving its tables again from
//! the raw dumps (`cdnlake rebuild`).
//!
//! # Why verify exists
//!
//! The commit (docs/design.md §8) makes a file's objects visible one by one and writes its
//! manifest last, so a lake is only as good as the agreement between its manifests and its
//! objects. Several things break that agreement without any run failing: a store failure during
//! the short publish step (new objects, no new manifest), a killed run on a local destination
//! (files left under `_staging/`), and anything done to the objects from outside (a deleted or
//! truncated file, a stray file dropped into a partition folder that DuckDB's globs then read).
//! `verify` finds these, and `--repair` fixes them from the lake itself: each log file's raw dump
//! is kept byte for byte with its SHA-256, so a damaged file is converted again from it.
//!
//! # What "whole" means
//!
//! A lake (or the part of it a [`Selection`] picks) is **whole** when, for every manifest:
//!
//! - every object it lists exists with the size it records, and every Parquet object's footer
//!   holds the number of rows it records;
//! - its counts reconcile: `lines = rows + rejected + empty`, the access files' rows and the
//!   partitions' rows each add up to `rows`, and the rejects object holds `rejected` records;
//!
//! and no object in the table folders (`access/`, `traffic/`, `raw/`, `rejects/`) is unlisted by
//! every manifest, and nothing is left under `_staging/`. `audit/` (no manifests: each event is
//! one PUT) and `_manifests/` itself are outside this definition.
//!
//! # Layers
//!
//! [`verify`] holds the checks, pure where possible (manifests and a listing in, problems and
//! orphans out); [`rebuild`] converts a file again from its raw dump through
//! [`crate::convert::convert_reader`]. This module sits above `convert` and below the CLI. Every
//! store request goes through [`count_requests`], so each run can say what it cost.

pub mod rebuild;
pub mod verify;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::{Path, PathPart};
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};
use serde::Serialize;

use crate::access::time::PartitionTz;
use crate::error::{Error, Result};
use crate::lake::layout::{partition_span, relative};
use crate::lake::manifest::Manifest;
use crate::lake::store::Lake;

/// Requests made at once: manifest reads, footer reads, HEADs of keys outside the listed
/// folders. The read side's one setting ([`crate::lake::read::concurrency`]).
pub fn concurrency() -> usize {
    crate::lake::read::concurrency()
}

/// The folder of manifests ([`crate::tables::registry::MANIFESTS`]).
pub use crate::tables::registry::MANIFESTS;

#[cfg(test)]
const HOUR_MICROS: i64 = 3_600_000_000;

/// One end of a time window: an instant, or a date that each manifest reads as midnight on its
/// own partition wall clock (so `--from 2024-03-05` means `dt >= 2024-03-05` whatever the time
/// zone the file was partitioned in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Microseconds since the epoch.
    Instant(i64),
    /// Days since 1970-01-01.
    Date(i64),
}

impl Bound {
    /// Parses an RFC 3339 instant (`2024-03-05T09:00:00+08:00`) or a date (`2024-03-05`).
    pub fn parse(setting: &'static str, s: &str) -> Result<Bound> {
        let t = s.trim();
        if let Ok(i) = chrono::DateTime::parse_from_rfc3339(t) {
            return Ok(Bound::Instant(i.timestamp_micros()));
        }
        parse_date(t).map(Bound::Date).ok_or_else(|| Error::Config {
            setting,
            value: s.to_string(),
            reason: "expected an RFC 3339 instant like 2024-03-05T09:00:00+08:00 or a date like 2024-03-05".into(),
        })
    }

    /// The instant, microseconds since the epoch; a date is midnight on `tz`'s wall clock.
    pub fn micros(self, tz: PartitionTz) -> i64 {
        match self {
            Bound::Instant(m) => m,
            Bound::Date(d) => (d * 86_400 - i64::from(tz.offset_secs)) * 1_000_000,
        }
    }
}

/// Days since the epoch of a `YYYY-MM-DD` date; `None` unless it is a real date.
fn parse_date(s: &str) -> Option<i64> {
    crate::lake::layout::parse_dt(s)
}

/// Which manifests a run covers: a domain, and a window `[from, to)` that at least one of the
/// manifest's partitions (hours, or days in a day lake) must overlap.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub domain: Option<String>,
    pub from: Option<Bound>,
    pub to: Option<Bound>,
}

impl Selection {
    /// Whether the run covers this manifest. With a window, a manifest without partitions
    /// (every line rejected or empty) has no hour inside it and is left out.
    pub fn keeps(&self, m: &Manifest) -> bool {
        if self.domain.as_deref().is_some_and(|d| d != m.domain) {
            return false;
        }
        if self.from.is_none() && self.to.is_none() {
            return true;
        }
        let tz = PartitionTz::parse(&m.partition_tz).unwrap_or_default();
        let from = self.from.map(|b| b.micros(tz));
        let to = self.to.map(|b| b.micros(tz));
        m.partitions.iter().any(|p| {
            partition_span(&p.dt, &p.hour, tz).is_some_and(|span| {
                from.is_none_or(|f| span.end > f) && to.is_none_or(|t| span.start < t)
            })
        })
    }

    /// Whether anything narrows the run (a domain or a window).
    pub(crate) fn is_narrowed(&self) -> bool {
        self.domain.is_some() || self.from.is_some() || self.to.is_some()
    }
}

pub use crate::lake::manifest::{load_manifests, Entry, Manifests, Unreadable};

/// `<prefix>/<folder>[/<part>]`: a folder of the lake, narrowed to one path part (a domain).
pub(crate) fn folder(lake: &Lake, folder: &str, part: Option<&str>) -> Path {
    let mut p = lake.prefix.clone().join(folder);
    if let Some(part) = part {
        p = p.join(PathPart::from(part));
    }
    p
}

/// Lists every object under `prefix`: (key relative to the destination, size). A prefix that
/// does not exist is empty.
pub(crate) async fn list(lake: &Lake, prefix: &Path) -> Result<Vec<(String, u64)>> {
    Ok(lake
        .list(prefix)
        .await?
        .into_iter()
        .map(|m| (relative(&lake.prefix, &m.location), m.size))
        .collect())
}

/// Requests made to the store, by kind.
///
/// A listing counts one request per page of up to 1,000 keys, as S3 and OSS return them (a
/// local folder has no pages, but the figure then says what the same lake would cost in a
/// bucket). A multipart upload counts its start, each part and its completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    pub list: u64,
    /// Whole-object reads (manifests, raw dumps).
    pub get: u64,
    /// Range reads (Parquet footers).
    pub range: u64,
    pub head: u64,
    pub put: u64,
    pub delete: u64,
    /// Copies and renames (a local destination publishes by renaming).
    pub copy: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.list + self.get + self.range + self.head + self.put + self.delete + self.copy
    }
}

/// The counters behind a [`count_requests`] store, shared by every clone of its lake.
#[derive(Debug, Default, Clone)]
pub struct Requests(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    list: AtomicU64,
    get: AtomicU64,
    range: AtomicU64,
    head: AtomicU64,
    put: AtomicU64,
    delete: AtomicU64,
    copy: AtomicU64,
}

impl Requests {
    pub fn snapshot(&self) -> RequestCounts {
        let c = &self.0;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RequestCounts {
            list: n(&c.list),
            get: n(&c.get),
            range: n(&c.range),
            head: n(&c.head),
            put: n(&c.put),
            delete: n(&c.delete),
            copy: n(&c.copy),
        }
    }

    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Keys per page of a listing on S3 and OSS.
const LIST_PAGE: u64 = 1000;

/// The same destination, with every request to its store counted.
pub fn count_requests(lake: &Lake) -> (Lake, Requests) {
    let requests = Requests::default();
    let counted = lake.map_store(|inner| {
        Arc::new(CountingStore {
            inner,
            requests: requests.clone(),
        })
    });
    (counted, requests)
}

/// An [`ObjectStore`] that counts the requests it forwards. (`ObjectStore` is an `async_trait`;
/// its methods are written out here as the boxed futures that macro would produce.)
#[derive(Debug)]
struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    requests: Requests,
}

impl std::fmt::Display for CountingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

impl ObjectStore for CountingStore {
    fn put_opts<'a, 'b, 'r>(
        &'a self,
        location: &'b Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> BoxFuture<'r, object_store::Result<PutResult>>
    where
        'a: 'r,
        'b: 'r,
        Self: 'r,
    {
        Requests::add(&self.requests.0.put);
        self.inner.put_opts(location, payload, opts)
    }

    fn put_multipart_opts<'a, 'b, 'r>(
        &'a self,
        location: &'b Path,
        opts: PutMultipartOptions,
    ) -> BoxFuture<'r, object_store::Result<Box<dyn MultipartUpload>>>
    where
        'a: 'r,
        'b: 'r,
        Self: 'r,
    {
        Requests::add(&self.requests.0.put);
        let requests = self.requests.clone();
        let started = self.inner.put_multipart_opts(location, opts);
        Box::pin(async move {
            let inner = started.await?;
            Ok(Box::new(CountingUpload { inner, requests }) as Box<dyn MultipartUpload>)
        })
    }

    fn get_opts<'a, 'b, 'r>(
        &'a self,
        location: &'b Path,
        options: GetOptions,
    ) -> BoxFuture<'r, object_store::Result<GetResult>>
    where
        'a: 'r,
        'b: 'r,
        Self: 'r,
    {
        let c = &self.requests.0;
        Requests::add(if options.head {
            &c.head
        } else if options.range.is_some() {
            &c.range
        } else {
            &c.get
        });
        self.inner.get_opts(location, options)
    }

    // `get_ranges` keeps its default, which calls `get_opts` above once per coalesced range.

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let requests = self.requests.clone();
        self.inner.delete_stream(
            locations
                .inspect(move |_| Requests::add(&requests.0.delete))
                .boxed(),
        )
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let requests = self.requests.clone();
        Requests::add(&requests.0.list);
        let mut seen = 0u64;
        self.inner
            .list(prefix)
            .inspect(move |r| {
                if r.is_ok() {
                    seen += 1;
                    if seen > 1 && (seen - 1).is_multiple_of(LIST_PAGE) {
                        Requests::add(&requests.0.list);
                    }
                }
            })
            .boxed()
    }

    fn list_with_delimiter<'a, 'b, 'r>(
        &'a self,
        prefix: Option<&'b Path>,
    ) -> BoxFuture<'r, object_store::Result<ListResult>>
    where
        'a: 'r,
        'b: 'r,
        Self: 'r,
    {
        Requests::add(&self.requests.0.list);
        self.inner.list_with_delimiter(prefix)
    }

    fn copy_opts<'a, 'b, 'c, 'r>(
        &'a self,
        from: &'b Path,
        to: &'c Path,
        options: CopyOptions,
    ) -> BoxFuture<'r, object_store::Result<()>>
    where
        'a: 'r,
        'b: 'r,
        'c: 'r,
        Self: 'r,
    {
        Requests::add(&self.requests.0.copy);
        self.inner.copy_opts(from, to, options)
    }

    fn rename_opts<'a, 'b, 'c, 'r>(
        &'a self,
        from: &'b Path,
        to: &'c Path,
        options: RenameOptions,
    ) -> BoxFuture<'r, object_store::Result<()>>
    where
        'a: 'r,
        'b: 'r,
        'c: 'r,
        Self: 'r,
    {
        Requests::add(&self.requests.0.copy);
        self.inner.rename_opts(from, to, options)
    }
}

/// A multipart upload whose parts and completion are counted.
#[derive(Debug)]
struct CountingUpload {
    inner: Box<dyn MultipartUpload>,
    requests: Requests,
}

impl MultipartUpload for CountingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        Requests::add(&self.requests.0.put);
        self.inner.put_part(data)
    }

    fn complete<'a, 'r>(&'a mut self) -> BoxFuture<'r, object_store::Result<PutResult>>
    where
        'a: 'r,
        Self: 'r,
    {
        Requests::add(&self.requests.0.put);
        self.inner.complete()
    }

    fn abort<'a, 'r>(&'a mut self) -> BoxFuture<'r, object_store::Result<()>>
    where
        'a: 'r,
        Self: 'r,
    {
        Requests::add(&self.requests.0.delete);
        self.inner.abort()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::manifest::{PartitionEntry, SourceEntry};

    pub(crate) fn manifest(domain: &str, tz: &str, hours: &[(&str, &str)]) -> Manifest {
        Manifest {
            manifest_version: 1,
            schema_version: 1,
            tool: "cdnlake test".into(),
            domain: domain.into(),
            partition_tz: tz.into(),
            source: SourceEntry {
                name: "f.gz".into(),
                location: "f.gz".into(),
                bytes: 0,
                sha256: String::new(),
                gzip: true,
                bytes_decompressed: 0,
            },
            lines: 0,
            rows: 0,
            rejected: 0,
            empty: 0,
            invalid_utf8: 0,
            partitions: hours
                .iter()
                .map(|(dt, hour)| PartitionEntry {
                    dt: (*dt).into(),
                    hour: (*hour).into(),
                    rows: 1,
                })
                .collect(),
            objects: Vec::new(),
        }
    }

    #[test]
    fn bounds_are_instants_or_dates() {
        assert_eq!(
            Bound::parse("--from", "2024-03-05T09:00:00+08:00").unwrap(),
            Bound::Instant(1_709_600_400_000_000)
        );
        let d = Bound::parse("--from", "2024-03-05").unwrap();
        assert_eq!(d, Bound::Date(19_787));
        // Midnight on the manifest's own wall clock.
        assert_eq!(
            d.micros(PartitionTz { offset_secs: 0 }),
            1_709_596_800_000_000
        );
        assert_eq!(
            d.micros(PartitionTz::default()),
            1_709_596_800_000_000 - 8 * HOUR_MICROS
        );
        for bad in [
            "2024-02-30",
            "2024-13-01",
            "2024-3-5",
            "yesterday",
            "",
            "2024-03-05T",
        ] {
            let e = Bound::parse("--to", bad).unwrap_err().to_string();
            assert!(e.contains("--to") && e.contains("RFC 3339"), "{bad}: {e}");
        }
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("2023-02-29"), None);
    }

    #[test]
    fn a_selection_keeps_manifests_with_an_hour_in_the_window() {
        let m = manifest(
            "a.com",
            "+08:00",
            &[("2024-03-05", "08"), ("2024-03-05", "09")],
        );
        let all = Selection::default();
        assert!(all.keeps(&m));
        assert!(!all.is_narrowed());
        let domain = |d: &str| Selection {
            domain: Some(d.into()),
            ..Selection::default()
        };
        assert!(domain("a.com").keeps(&m));
        assert!(!domain("b.com").keeps(&m));
        let window = |from: &str, to: &str| Selection {
            domain: None,
            from: Some(Bound::parse("--from", from).unwrap()),
            to: Some(Bound::parse("--to", to).unwrap()),
        };
        assert!(window("2024-03-05", "2024-03-06").keeps(&m));
        assert!(!window("2024-03-06", "2024-03-07").keeps(&m));
        assert!(!window("2024-03-04", "2024-03-05").keeps(&m));
        // 09:00-10:00+08:00 overlaps [09:30, 11:00); [10:00, 11:00) touches no hour.
        assert!(window("2024-03-05T09:30:00+08:00", "2024-03-05T11:00:00+08:00").keeps(&m));
        assert!(!window("2024-03-05T10:00:00+08:00", "2024-03-05T11:00:00+08:00").keeps(&m));
        // [08:00, 08:00) is empty; the end is exclusive.
        assert!(!window("2024-03-05T07:00:00+08:00", "2024-03-05T08:00:00+08:00").keeps(&m));
        // Dates are read on the manifest's wall clock: a UTC manifest's 2024-03-05 hours 23.
        let utc = manifest("a.com", "+00:00", &[("2024-03-05", "23")]);
        assert!(window("2024-03-05", "2024-03-06").keeps(&utc));
        assert!(!window("2024-03-06", "2024-03-07").keeps(&utc));
        // A day lake's partitions cover the whole day on the manifest's clock.
        let day = manifest("a.com", "+08:00", &[("2024-03-05", "")]);
        assert!(window("2024-03-05T23:30:00+08:00", "2024-03-06T01:00:00+08:00").keeps(&day));
        assert!(window("2024-03-04T12:00:00+08:00", "2024-03-05T00:30:00+08:00").keeps(&day));
        assert!(!window("2024-03-06", "2024-03-07").keeps(&day));
        assert!(!window("2024-03-04", "2024-03-05").keeps(&day));
        // No partitions: nothing inside any window.
        assert!(!window("2000-01-01", "2100-01-01").keeps(&manifest("a.com", "+08:00", &[])));
    }

    #[tokio::test]
    async fn requests_are_counted_by_kind() {
        let lake = Lake::open("memory://").unwrap();
        let (lake, requests) = count_requests(&lake);
        for i in 0..3 {
            lake.put(&Path::from(format!("t/{i}")), vec![1, 2, 3])
                .await
                .unwrap();
        }
        let _ = lake.get_opt(&Path::from("t/0")).await.unwrap();
        let _ = lake.get_range(&Path::from("t/1"), 0..2).await.unwrap();
        let _ = lake.head_opt(&Path::from("t/2")).await.unwrap().unwrap();
        lake.delete(&Path::from("t/2")).await.unwrap();
        assert_eq!(list(&lake, &Path::from("t")).await.unwrap().len(), 2);
        let mut up = lake.put_multipart(&Path::from("t/m")).await.unwrap();
        up.put_part(vec![0u8; 10].into()).await.unwrap();
        up.complete().await.unwrap();
        let c = requests.snapshot();
        assert_eq!(
            c,
            RequestCounts {
                list: 1,
                get: 1,
                range: 1,
                head: 1,
                put: 3 + 3,
                delete: 1,
                copy: 0,
            }
        );
        assert_eq!(c.total(), 11);
    }

    #[tokio::test]
    async fn a_listing_counts_its_pages() {
        let lake = Lake::open("memory://").unwrap();
        for i in 0..2001 {
            lake.put(&Path::from(format!("t/{i}")), vec![])
                .await
                .unwrap();
        }
        let (lake, requests) = count_requests(&lake);
        assert_eq!(list(&lake, &Path::from("t")).await.unwrap().len(), 2001);
        assert_eq!(requests.snapshot().list, 3);
    }
}
