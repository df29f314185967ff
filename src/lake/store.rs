//! A destination opened: an `object_store` store plus the key prefix every key goes under, and
//! the few whole-object operations (read, write, delete) the commit and the readers need.

use std::ops::Range;
use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    GetResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload,
};

use super::dest::Destination;
use super::staging::StagingRun;
use crate::error::{Error, Result, StoreOp};

/// A lake destination: the store, the prefix every key goes under, and the URL it came from.
///
/// The store is private to `lake/`: every request goes through a method here, which attaches
/// the operation and the key to a failure ([`Error::Store`]) in one place.
#[derive(Clone)]
pub struct Lake {
    pub(super) store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    /// The destination as the user gave it (never contains credentials).
    pub url: String,
    /// The folder of a local destination. Its uploads are staged under `_staging/` and renamed
    /// into place at commit: object_store's local store would write them next to their final
    /// name (`x.parquet#1`), inside the partition folders that Spark and Hive read whole.
    pub(crate) local_root: Option<std::path::PathBuf>,
    /// The run this handle stages for (local destinations, from [`Lake::for_work`]): its own
    /// folder under `_staging/`, removed when the last handle of the run is dropped.
    pub(crate) staging: Option<Arc<StagingRun>>,
    /// Part size of multipart uploads ([`PART_SIZE`] unless changed).
    pub(crate) part_size: usize,
}

pub use super::staging::STAGING;

/// Part size of multipart uploads: large enough for S3/OSS's 10,000-part limit to allow ~80 GB.
/// A property of the destination (tests change it per `Lake`), which the sinks take from it.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Access key credentials (possibly temporary, with an STS session token). `Debug` never shows
/// them; they are passed in explicitly and never read from a cache.
#[derive(Clone)]
pub struct Credentials {
    pub key_id: String,
    pub secret: String,
    pub token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// How to reach OSS through its S3-compatible API.
#[derive(Debug, Clone, Default)]
pub struct OssOptions {
    /// Endpoint host (`s3.oss-cn-hangzhou-internal.aliyuncs.com`), or a URL with a scheme and
    /// port (`http://oss.test:9000`, for tests). Default `s3.oss-<region>.aliyuncs.com`.
    pub endpoint: Option<String>,
    /// Region id (`cn-hangzhou`), used for the default endpoint and for signing.
    pub region: Option<String>,
    pub credentials: Option<Credentials>,
    /// HTTP client settings (timeouts, a DNS resolver for tests).
    pub client: Option<object_store::ClientOptions>,
}

/// The endpoint with the bucket in the host name (OSS refuses path-style requests), and whether
/// it is plain http.
pub fn oss_endpoint(
    bucket: &str,
    opts: &OssOptions,
) -> std::result::Result<(String, bool), String> {
    let host = match (&opts.endpoint, &opts.region) {
        (Some(e), _) if !e.trim().is_empty() => e.trim().trim_end_matches('/').to_string(),
        (_, Some(r)) if !r.trim().is_empty() => format!("s3.oss-{}.aliyuncs.com", r.trim()),
        _ => {
            return Err(
                "no OSS endpoint or region (set --oss-endpoint or CDNLAKE_OSS_REGION)".into(),
            )
        }
    };
    let (scheme, host) = match host.split_once("://") {
        Some((s @ ("http" | "https"), h)) => (s.to_string(), h.to_string()),
        Some((s, _)) => return Err(format!("OSS endpoint scheme {s:?} is not http or https")),
        None => ("https".to_string(), host),
    };
    if host.is_empty() || host.contains('/') {
        return Err(format!("OSS endpoint host {host:?} is not a host name"));
    }
    let host = if host.starts_with(&format!("{bucket}.")) {
        host
    } else {
        format!("{bucket}.{host}")
    };
    Ok((format!("{scheme}://{host}"), scheme == "http"))
}

/// The signing region: the given one, else the one in a standard endpoint name.
fn oss_region(opts: &OssOptions) -> Option<String> {
    if let Some(r) = opts
        .region
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        return Some(r.to_string());
    }
    let e = opts.endpoint.as_deref()?;
    let i = e.find("oss-")? + 4;
    let rest = &e[i..];
    let end = rest.find(".aliyuncs.com")?;
    Some(rest[..end].trim_end_matches("-internal").to_string())
}

impl Lake {
    /// Opens a destination URL: a plain path or `file:///abs/path` (created if missing),
    /// `memory://` (tests), or `s3://bucket/prefix` (configured from the standard `AWS_*`
    /// environment variables). `oss://` needs [`Lake::open_with`].
    pub fn open(url: &str) -> Result<Lake> {
        Lake::open_with(url, &OssOptions::default())
    }

    /// Opens a destination URL, with the settings `oss://bucket/prefix` needs.
    ///
    /// OSS is reached through its S3-compatible API: virtual-hosted requests to
    /// `https://<bucket>.<endpoint host>`, SigV4 with the region id and the STS session token
    /// when given; conditional put off (OSS answers 501), no checksum header (the builder's
    /// default) and no tagging header (OSS has no tagging on that API), bulk delete off (this
    /// code deletes single keys).
    pub fn open_with(url: &str, oss: &OssOptions) -> Result<Lake> {
        let bad = |reason: String| Error::Destination {
            url: url.to_string(),
            reason,
        };
        let lake = |store: Arc<dyn ObjectStore>, prefix: &str| Lake {
            store,
            prefix: Path::from(prefix),
            url: url.into(),
            local_root: None,
            staging: None,
            part_size: PART_SIZE,
        };
        let dest = Destination::parse(url)?;
        if matches!(dest, Destination::Oss { .. } | Destination::S3 { .. }) {
            crate::tls::ensure_provider();
        }
        match dest {
            Destination::Oss { bucket, prefix } => {
                let (endpoint, http) = oss_endpoint(&bucket, oss).map_err(bad)?;
                let creds = oss.credentials.as_ref().ok_or_else(|| {
                    bad("no credentials (ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET, or the FC request headers)".into())
                })?;
                let region = oss_region(oss)
                    .ok_or_else(|| bad("no region (set CDNLAKE_OSS_REGION)".into()))?;
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(&bucket)
                    .with_region(region)
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(true)
                    .with_access_key_id(&creds.key_id)
                    .with_secret_access_key(&creds.secret)
                    .with_conditional_put(object_store::aws::S3ConditionalPut::Disabled)
                    .with_disable_tagging(true)
                    .with_disable_bulk_delete(true);
                if let Some(t) = creds.token.as_deref().filter(|t| !t.is_empty()) {
                    b = b.with_token(t);
                }
                if let Some(c) = &oss.client {
                    b = b.with_client_options(c.clone());
                }
                // After the client options, which would otherwise reset it.
                b = b.with_allow_http(http);
                let store = b.build().map_err(|e| bad(e.to_string()))?;
                Ok(lake(Arc::new(store), &prefix))
            }
            Destination::Memory { prefix } => Ok(lake(Arc::new(InMemory::new()), &prefix)),
            Destination::S3 { bucket, prefix } => {
                let store = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                Ok(lake(Arc::new(store), &prefix))
            }
            Destination::Local { path } => {
                std::fs::create_dir_all(&path)
                    .map_err(|e| bad(format!("cannot create folder: {e}")))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&path)
                    .map_err(|e| bad(e.to_string()))?
                    .with_automatic_cleanup(true);
                Ok(Lake {
                    local_root: Some(path),
                    ..lake(Arc::new(store), "")
                })
            }
        }
    }

    /// The same destination, staging for one run of a unit of work (a log file:
    /// `domain/date/stem`; events: `audit`). On a local destination this claims a staging
    /// folder of the run's own and first removes what dead runs of the same work left there
    /// (see [`super::staging`]); concurrent runs of the same work never touch each other's.
    pub fn for_work<'a>(&self, group: impl IntoIterator<Item = &'a str>) -> Result<Lake> {
        let Some(root) = &self.local_root else {
            return Ok(self.clone());
        };
        let group: Vec<String> = group.into_iter().map(str::to_string).collect();
        Ok(Lake {
            staging: Some(Arc::new(StagingRun::start(root, &group)?)),
            ..self.clone()
        })
    }

    /// The same destination with another multipart part size (tests use small parts to reach
    /// the multipart path with small files; S3 wants at least 5 MiB but for the last part).
    pub fn with_part_size(&self, part_size: usize) -> Lake {
        Lake {
            part_size: part_size.max(1),
            ..self.clone()
        }
    }

    /// Where an object is written until the commit: the key itself on an object store (whose
    /// uploads are invisible until completed); on a local destination a key in this run's
    /// folder under [`STAGING`]. A local write outside a run is a bug, not a fallback: it
    /// would stage where another run may remove it.
    pub(crate) fn write_key(&self, key: &Path) -> Result<Path> {
        if self.local_root.is_none() {
            return Ok(key.clone());
        }
        let Some(run) = &self.staging else {
            return Err(Error::Internal(format!(
                "local write of {key} outside a staging run"
            )));
        };
        let rel = key
            .prefix_match(&self.prefix)
            .map(|p| p.collect::<Vec<_>>());
        let mut parts: Vec<object_store::path::PathPart<'_>> = self.prefix.parts().collect();
        parts.extend(run.key_parts());
        match rel {
            Some(rel) => parts.extend(rel),
            None => parts.extend(key.parts()),
        }
        Ok(Path::from_iter(parts))
    }

    /// Whether this is a local folder (whose uploads stage under `_staging/`).
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    /// Runs under `_staging/` whose process is alive, as key prefixes relative to the
    /// destination; none on an object store.
    pub fn live_staging_runs(&self) -> Result<Vec<String>> {
        match &self.local_root {
            Some(root) => super::staging::live_runs(root),
            None => Ok(Vec::new()),
        }
    }

    /// Removes what dead runs left under `_staging/` (never a live run's folder); returns the
    /// keys removed, relative to the destination.
    pub fn remove_dead_staging(&self) -> Result<Vec<String>> {
        match &self.local_root {
            Some(root) => super::staging::remove_dead(root),
            None => Ok(Vec::new()),
        }
    }

    /// Removes `key#<n>` files next to `key` on a local destination: object_store's local store
    /// writes a whole object there before renaming it, and versions before per-run staging
    /// wrote manifests that way, so a kill could leave one beside the manifest.
    pub fn remove_partial_writes(&self, key: &Path) -> Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let mut file = root.clone();
        for p in key.parts() {
            file.push(p.as_ref());
        }
        let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
            return Ok(());
        };
        let name = name.to_string_lossy();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(Error::Io {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        };
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            let partial = n
                .strip_prefix(name.as_ref())
                .and_then(|r| r.strip_prefix('#'));
            if partial.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) {
                match std::fs::remove_file(e.path()) {
                    Ok(()) => {
                        tracing::info!(file = %e.path().display(), "removed a partial write of a killed run")
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(Error::Io {
                            path: e.path(),
                            source,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    /// The full key of a key relative to the destination, as manifests list them. Those keys
    /// are already encoded (they came from a [`Path`]), so they are parsed, not encoded again;
    /// only a key that does not parse (a hand-edited manifest) is encoded.
    pub fn key_of(&self, relative: &str) -> Path {
        let rel = Path::parse(relative).unwrap_or_else(|_| Path::from(relative));
        Path::from_iter(self.prefix.parts().chain(rel.parts()))
    }

    /// Reads a whole (small) object; `None` when it does not exist.
    pub async fn get_opt(&self, key: &Path) -> Result<Option<bytes::Bytes>> {
        match self.store.get(key).await {
            Ok(r) => r
                .bytes()
                .await
                .map(Some)
                .map_err(|source| store_error(StoreOp::Read, key, source)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(store_error(StoreOp::Read, key, source)),
        }
    }

    /// Writes a whole (small) object in one request. On a local destination it is written in
    /// the run's staging folder and renamed into place (a run of its own when this handle has
    /// none), so a kill never leaves object_store's `key#<n>` in-progress file where readers
    /// and the next run would find it.
    pub async fn put(&self, key: &Path, data: Vec<u8>) -> Result<()> {
        if self.local_root.is_none() {
            return self
                .store
                .put(key, PutPayload::from(data))
                .await
                .map(|_| ())
                .map_err(|source| store_error(StoreOp::Write, key, source));
        }
        let run;
        let lake = match &self.staging {
            Some(_) => self,
            None => {
                run = self.for_work(["lake"])?;
                &run
            }
        };
        let staged = lake.write_key(key)?;
        lake.store
            .put(&staged, PutPayload::from(data))
            .await
            .map_err(|source| store_error(StoreOp::Write, key, source))?;
        super::staging::stall_point("put", key.as_ref());
        lake.store
            .rename(&staged, key)
            .await
            .map_err(|source| store_error(StoreOp::Publish, key, source))
    }

    /// Writes a whole (small) object only if none exists at `key` (object_store's
    /// `PutMode::Create`; `AlreadyExists` when one does). On a local destination it is staged
    /// in a run's folder and linked into place only if absent, so a kill never leaves
    /// `key#<n>` beside it, as the store's own create would. The store's error is returned as
    /// is, so a caller can tell "exists" and "not supported" (OSS) apart.
    pub async fn put_if_absent(
        &self,
        key: &Path,
        data: Vec<u8>,
    ) -> std::result::Result<(), object_store::Error> {
        if self.local_root.is_none() {
            let opts = object_store::PutOptions {
                mode: object_store::PutMode::Create,
                ..object_store::PutOptions::default()
            };
            return self
                .store
                .put_opts(key, PutPayload::from(data), opts)
                .await
                .map(|_| ());
        }
        let run = self
            .for_work(["lake"])
            .map_err(|e| object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            })?;
        let staged = run
            .write_key(key)
            .map_err(|e| object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            })?;
        run.store.put(&staged, PutPayload::from(data)).await?;
        run.store.rename_if_not_exists(&staged, key).await
    }

    /// The last `n` bytes of an object (one suffix-range GET) and its size; `None` when it
    /// does not exist. Reads a Parquet footer without knowing the size first (no HEAD).
    pub async fn get_tail(&self, key: &Path, n: u64) -> Result<Option<(bytes::Bytes, u64)>> {
        let opts = object_store::GetOptions {
            range: Some(object_store::GetRange::Suffix(n)),
            ..object_store::GetOptions::default()
        };
        match self.store.get_opts(key, opts).await {
            Ok(r) => {
                let size = r.meta.size;
                r.bytes()
                    .await
                    .map(|b| Some((b, size)))
                    .map_err(|source| store_error(StoreOp::Read, key, source))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(store_error(StoreOp::Read, key, source)),
        }
    }

    /// Lists every object under `prefix` (one request per 1,000 keys on S3 and OSS). A prefix
    /// that does not exist is empty.
    pub async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>> {
        match self.store.list(Some(prefix)).try_collect().await {
            Ok(m) => Ok(m),
            Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
            Err(source) => Err(store_error(StoreOp::List, prefix, source)),
        }
    }

    /// The objects under `prefix` as they come, for a reader that stops early (at the first
    /// match, or after the first page). A prefix that does not exist ends the stream.
    pub fn list_stream<'a>(&'a self, prefix: &'a Path) -> BoxStream<'a, Result<ObjectMeta>> {
        self.store
            .list(Some(prefix))
            .take_while(|r| {
                futures::future::ready(!matches!(r, Err(object_store::Error::NotFound { .. })))
            })
            .map_err(move |source| store_error(StoreOp::List, prefix, source))
            .boxed()
    }

    /// An object's size and ETag; `None` when it does not exist.
    pub async fn head_opt(&self, key: &Path) -> Result<Option<ObjectMeta>> {
        match self.store.head(key).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(store_error(StoreOp::Head, key, source)),
        }
    }

    /// A (large) object as a stream, with its size; `None` when it does not exist.
    pub async fn get_opt_stream(&self, key: &Path) -> Result<Option<GetResult>> {
        match self.store.get(key).await {
            Ok(r) => Ok(Some(r)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(store_error(StoreOp::Read, key, source)),
        }
    }

    /// A byte range of an object (one range GET), with the error context of the lake.
    pub async fn read_range(&self, key: &Path, range: Range<u64>) -> Result<bytes::Bytes> {
        self.store
            .get_range(key, range)
            .await
            .map_err(|source| store_error(StoreOp::Read, key, source))
    }

    /// Deletes many objects, in batches where the store has a bulk delete (S3: 1,000 keys per
    /// request), one by one elsewhere; missing objects are not an error.
    pub async fn delete_all(&self, keys: Vec<Path>) -> Result<()> {
        use futures::stream::StreamExt;
        let Some(first) = keys.first().cloned() else {
            return Ok(());
        };
        let stream = futures::stream::iter(keys.into_iter().map(Ok)).boxed();
        let mut results = self.store.delete_stream(stream);
        while let Some(r) = results.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                // The store's error names the key when it knows it.
                Err(source) => return Err(store_error(StoreOp::Delete, &first, source)),
            }
        }
        Ok(())
    }

    /// The file of `key` on a local destination (`None` on an object store).
    pub(crate) fn local_path(&self, key: &Path) -> Option<std::path::PathBuf> {
        let mut p = self.local_root.clone()?;
        for part in key.parts() {
            p.push(part.as_ref());
        }
        Some(p)
    }

    /// A byte range of an object, for Parquet readers. The store's own error is returned: the
    /// Parquet reader carries it (`ParquetError::External`) and the caller tells a missing
    /// object from a failed request by it.
    pub async fn get_range(
        &self,
        key: &Path,
        range: Range<u64>,
    ) -> std::result::Result<bytes::Bytes, object_store::Error> {
        self.store.get_range(key, range).await
    }

    /// Several byte ranges of an object, for Parquet readers (see [`Lake::get_range`]).
    pub async fn get_ranges(
        &self,
        key: &Path,
        ranges: &[Range<u64>],
    ) -> std::result::Result<Vec<bytes::Bytes>, object_store::Error> {
        self.store.get_ranges(key, ranges).await
    }

    /// Starts a multipart upload of `key` as is (not staged): for tests that look at what an
    /// open upload leaves on a store. Writers go through [`super::sink::ObjectSink`].
    pub async fn put_multipart(&self, key: &Path) -> Result<Box<dyn MultipartUpload>> {
        self.store
            .put_multipart(key)
            .await
            .map_err(|source| store_error(StoreOp::Upload, key, source))
    }

    /// The same destination over another store made from this one (a wrapper that counts
    /// requests, or injects faults in tests).
    pub fn map_store(&self, f: impl FnOnce(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>) -> Lake {
        Lake {
            store: f(self.store.clone()),
            ..self.clone()
        }
    }

    /// Deletes an object; a missing object is not an error (deletes must be idempotent).
    pub async fn delete(&self, key: &Path) -> Result<()> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(store_error(StoreOp::Delete, key, source)),
        }
    }
}

/// The [`Error::Store`] of an operation on `key`. Its message is one line even when the
/// store's error document spans several (see [`crate::error::one_line`]).
pub(crate) fn store_error(op: StoreOp, key: &Path, source: object_store::Error) -> Error {
    Error::Store {
        op,
        key: key.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_put_if_absent_creates_once_and_leaves_nothing_staged() {
        let tmp = tempfile::tempdir().unwrap();
        let lake = Lake::open(tmp.path().to_str().unwrap()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let key = Path::from("_cdnlake.json");
        rt.block_on(lake.put_if_absent(&key, b"first".to_vec()))
            .unwrap();
        let again = rt.block_on(lake.put_if_absent(&key, b"second".to_vec()));
        assert!(
            matches!(again, Err(object_store::Error::AlreadyExists { .. })),
            "{again:?}"
        );
        assert_eq!(
            std::fs::read(tmp.path().join("_cdnlake.json")).unwrap(),
            b"first"
        );
        let mut left = Vec::new();
        let mut todo = vec![tmp.path().to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                if e.path().is_dir() {
                    todo.push(e.path());
                } else {
                    left.push(e.path());
                }
            }
        }
        assert_eq!(left, vec![tmp.path().join("_cdnlake.json")]);
    }

    #[test]
    fn oss_endpoints_hold_the_bucket() {
        let o = OssOptions {
            region: Some("cn-hangzhou".into()),
            ..Default::default()
        };
        assert_eq!(
            oss_endpoint("b", &o).unwrap(),
            ("https://b.s3.oss-cn-hangzhou.aliyuncs.com".into(), false)
        );
        let o = OssOptions {
            endpoint: Some("s3.oss-cn-beijing-internal.aliyuncs.com".into()),
            ..Default::default()
        };
        assert_eq!(
            oss_endpoint("b", &o).unwrap().0,
            "https://b.s3.oss-cn-beijing-internal.aliyuncs.com"
        );
        assert_eq!(oss_region(&o).as_deref(), Some("cn-beijing"));
        let o = OssOptions {
            endpoint: Some("http://oss.test:9000/".into()),
            ..Default::default()
        };
        assert_eq!(
            oss_endpoint("b", &o).unwrap(),
            ("http://b.oss.test:9000".into(), true)
        );
        assert!(oss_endpoint("b", &OssOptions::default()).is_err());
        let e = Lake::open("oss://b/p").unwrap_err().to_string();
        assert!(e.contains("endpoint or region"), "{e}");
    }

    #[test]
    fn store_errors_print_on_one_line_and_keep_their_kind() {
        let doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>NoSuchUpload</Code>\n</Error>";
        let key = Path::from("raw/x.gz");
        let e = store_error(
            StoreOp::CompleteUpload,
            &key,
            object_store::Error::NotFound {
                path: "raw/x.gz".into(),
                source: doc.into(),
            },
        );
        let line = e.to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains("<Error> <Code>NoSuchUpload</Code> </Error>"),
            "{line}"
        );
        assert!(matches!(
            e,
            Error::Store {
                source: object_store::Error::NotFound { .. },
                ..
            }
        ));
        // A completion that finds its upload gone may have completed: worth running again.
        assert!(e.is_retryable());
        let e = store_error(
            StoreOp::Write,
            &key,
            object_store::Error::Generic {
                store: "S3",
                source: "503 Slow Down".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "write raw/x.gz: Generic S3 error: 503 Slow Down"
        );
        assert!(e.is_retryable());
    }
}
