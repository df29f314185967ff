//! A destination URL, parsed once into what it names. Every command that takes `--dest` goes
//! through [`Destination::parse`]: opening the store, the DuckDB and MaxCompute locations of the
//! DDL, and the server's choice between one lake for all requests and one per request.

use std::path::{Path as FsPath, PathBuf};

use crate::error::{Error, Result};

/// Where the lake lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A plain path or `file:///abs/path`: a local folder (created when opened).
    Local { path: PathBuf },
    /// `s3://bucket/prefix`: any S3-compatible store, configured from the `AWS_*` variables.
    S3 { bucket: String, prefix: String },
    /// `oss://bucket/prefix`: Alibaba OSS through its S3-compatible API.
    Oss { bucket: String, prefix: String },
    /// `memory://prefix`: an in-process store, for tests.
    Memory { prefix: String },
}

impl Destination {
    /// Parses a destination URL; the error names the URL and what is wrong with it.
    pub fn parse(url: &str) -> Result<Destination> {
        let bad = |reason: &str| Error::Destination {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let bucket_and_prefix = |rest: &str| -> Result<(String, String)> {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket name"));
            }
            Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
        };
        if let Some(rest) = url.strip_prefix("oss://") {
            let (bucket, prefix) = bucket_and_prefix(rest)?;
            return Ok(Destination::Oss { bucket, prefix });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = bucket_and_prefix(rest)?;
            return Ok(Destination::S3 { bucket, prefix });
        }
        if let Some(rest) = url.strip_prefix("memory://") {
            return Ok(Destination::Memory {
                prefix: rest.to_string(),
            });
        }
        let local = if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad("file:// URLs need an absolute path (file:///abs/path)"));
            }
            rest
        } else if url.contains("://") {
            return Err(bad(
                "unsupported scheme (use a path, file://, s3://, oss:// or memory://)",
            ));
        } else {
            url
        };
        if local.is_empty() {
            return Err(bad("empty path"));
        }
        Ok(Destination::Local {
            path: PathBuf::from(local),
        })
    }

    /// OSS is opened with each FC request's own (temporary) credentials, so `serve` opens it
    /// per request; every other destination is opened once.
    pub(crate) fn credentials_per_request(&self) -> bool {
        matches!(self, Destination::Oss { .. })
    }

    /// The local folder, for a local destination.
    pub fn local_path(&self) -> Option<&FsPath> {
        match self {
            Destination::Local { path } => Some(path),
            _ => None,
        }
    }

    /// Where DuckDB reads it: a local folder as an absolute path, `oss://` as `s3://` (DuckDB's
    /// httpfs with an OSS endpoint), `s3://` and `memory://` as given.
    pub(crate) fn duckdb_location(&self) -> String {
        match self {
            Destination::Local { path } => {
                let abs = if path.is_absolute() {
                    path.clone()
                } else {
                    std::env::current_dir()
                        .map(|d| d.join(path))
                        .unwrap_or_else(|_| path.clone())
                };
                let s = abs.to_string_lossy().trim_end_matches('/').to_string();
                s.strip_suffix("/.").unwrap_or(&s).to_string()
            }
            Destination::S3 { bucket, prefix } | Destination::Oss { bucket, prefix } => {
                join_url("s3", bucket, prefix)
            }
            Destination::Memory { prefix } => format!("memory://{}", prefix.trim_end_matches('/')),
        }
    }

    /// The OSS location MaxCompute reads, `oss://<endpoint>/<bucket>/<prefix>`; a placeholder
    /// bucket for a destination that is not in a bucket.
    pub(crate) fn maxcompute_location(&self, endpoint: &str) -> String {
        match self {
            Destination::S3 { bucket, prefix } | Destination::Oss { bucket, prefix } => {
                join_url("oss", &format!("{endpoint}/{bucket}"), prefix)
            }
            _ => format!("oss://{endpoint}/<bucket>/<prefix>"),
        }
    }
}

fn join_url(scheme: &str, bucket: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        format!("{scheme}://{bucket}")
    } else {
        format!("{scheme}://{bucket}/{prefix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_parses_in_one_place() {
        assert_eq!(
            Destination::parse("oss://b/p/q/").unwrap(),
            Destination::Oss {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert_eq!(
            Destination::parse("s3://b").unwrap(),
            Destination::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Destination::parse("file:///x/y").unwrap().local_path(),
            Some(FsPath::new("/x/y"))
        );
        assert_eq!(
            Destination::parse("./lake").unwrap().local_path(),
            Some(FsPath::new("./lake"))
        );
        for (url, why) in [
            ("file://rel", "absolute"),
            ("gs://b", "unsupported scheme"),
            ("oss:///p", "no bucket"),
            ("", "empty path"),
        ] {
            let e = Destination::parse(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
        let oss = Destination::parse("oss://b/lake/").unwrap();
        assert!(oss.credentials_per_request());
        assert_eq!(oss.duckdb_location(), "s3://b/lake");
        assert_eq!(oss.maxcompute_location("e.com"), "oss://e.com/b/lake");
        assert_eq!(
            Destination::parse("/tmp/l/").unwrap().duckdb_location(),
            "/tmp/l"
        );
    }
}
