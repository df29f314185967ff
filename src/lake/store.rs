//! Destinations: a URL turned into an `object_store` store plus a key prefix, and a synchronous
//! `Write` adapter over a multipart upload so the (synchronous) Parquet writer streams into any
//! store with bounded memory.

use std::io::Write;
use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::runtime::Handle;

use crate::error::{Error, Result};

/// A lake destination: the store, the prefix every key goes under, and the URL it came from.
#[derive(Clone)]
pub struct Lake {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    /// The destination as the user gave it (never contains credentials).
    pub url: String,
}

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
        if let Some(rest) = url.strip_prefix("oss://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket name".into()));
            }
            let (endpoint, http) = oss_endpoint(bucket, oss).map_err(bad)?;
            let creds = oss.credentials.as_ref().ok_or_else(|| {
                bad("no credentials (ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET, or the FC request headers)".into())
            })?;
            let region =
                oss_region(oss).ok_or_else(|| bad("no region (set CDNLAKE_OSS_REGION)".into()))?;
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
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
            return Ok(Lake {
                store: Arc::new(store),
                prefix: Path::from(prefix),
                url: url.into(),
            });
        }
        if let Some(rest) = url.strip_prefix("memory://") {
            return Ok(Lake {
                store: Arc::new(InMemory::new()),
                prefix: Path::from(rest),
                url: url.into(),
            });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket name".into()));
            }
            let store = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| bad(e.to_string()))?;
            return Ok(Lake {
                store: Arc::new(store),
                prefix: Path::from(prefix),
                url: url.into(),
            });
        }
        let local = if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad(
                    "file:// URLs need an absolute path (file:///abs/path)".into()
                ));
            }
            rest
        } else if url.contains("://") {
            return Err(bad(
                "unsupported scheme (use a path, file://, s3://, oss:// or memory://)".into(),
            ));
        } else {
            url
        };
        if local.is_empty() {
            return Err(bad("empty path".into()));
        }
        std::fs::create_dir_all(local).map_err(|e| bad(format!("cannot create folder: {e}")))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(local)
            .map_err(|e| bad(e.to_string()))?
            .with_automatic_cleanup(true);
        Ok(Lake {
            store: Arc::new(store),
            prefix: Path::default(),
            url: url.into(),
        })
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
            Ok(r) => r.bytes().await.map(Some).map_err(|source| Error::Store {
                op: "read",
                key: key.to_string(),
                source,
            }),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(Error::Store {
                op: "read",
                key: key.to_string(),
                source,
            }),
        }
    }

    /// Writes a whole (small) object in one request.
    pub async fn put(&self, key: &Path, data: Vec<u8>) -> Result<()> {
        self.store
            .put(key, PutPayload::from(data))
            .await
            .map(|_| ())
            .map_err(|source| Error::Store {
                op: "write",
                key: key.to_string(),
                source,
            })
    }

    /// Deletes an object; a missing object is not an error (deletes must be idempotent).
    pub async fn delete(&self, key: &Path) -> Result<()> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(Error::Store {
                op: "delete",
                key: key.to_string(),
                source,
            }),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
