//! Converting a file again from its raw dump: `verify --repair` for a damaged file, `rebuild` for
//! every file (after a schema change).
//!
//! The raw dump (`raw/<domain>/<YYYY_MM_DD>/<file name>`, the manifest's first object) is
//! streamed from the store into [`convert_reader`] with the domain and the partition time zone
//! the manifest records, so the run writes the same keys as the first one and replaces its
//! manifest. The stream is checked against the manifest as it is read: a raw dump of another
//! size or SHA-256 fails the run before its commit, so a damaged raw dump never replaces good
//! tables.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Instant;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use super::{count_requests, load_manifests, Entry, RequestCounts, Selection, Unreadable};
use crate::access::time::PartitionTz;
use crate::convert::{convert_reader, file_layout, ConvertOptions, RunReport};
use crate::error::{Error, ReadFailure, Result};
use crate::lake::descriptor::{Descriptor, PartitionBy};
use crate::lake::layout::relative;
use crate::lake::store::Lake;

/// Converts the file of `entry` again from its raw dump, into the lake's layout `by` (its
/// descriptor's: a lake never changes layout, so that is the layout the file was written in).
/// `sizes` (keys relative to the destination), when given, is a listing already made: a raw
/// dump absent from it is missing without another request.
pub(crate) fn reconvert(
    lake: &Lake,
    rt: &Handle,
    entry: &Entry,
    sizes: Option<&BTreeMap<String, u64>>,
    by: PartitionBy,
) -> Result<RunReport> {
    let m = &entry.manifest;
    let refuse = |key: &str, reason: String| Error::Reconvert {
        file: m.source.name.clone(),
        key: key.to_string(),
        reason,
    };
    let raw = m
        .objects
        .first()
        .filter(|o| o.key.starts_with("raw/"))
        .ok_or_else(|| refuse(&entry.key, "the manifest lists no raw dump first".into()))?;
    let tz = PartitionTz::parse(&m.partition_tz).ok_or_else(|| {
        refuse(
            &entry.key,
            format!(
                "the manifest's partition_tz {:?} is not a fixed offset",
                m.partition_tz
            ),
        )
    })?;
    let location = format!("{}/{}", lake.url.trim_end_matches('/'), raw.key);
    let opts = ConvertOptions {
        domain: Some(m.domain.clone()),
        tz,
        partition_by: by,
        ..ConvertOptions::default()
    };
    let layout = file_layout(lake, &m.source.name, &location, &opts)?;
    // The run writes where the layout says; it must be where this manifest and raw dump are.
    let expected_raw = relative(&lake.prefix, &layout.raw());
    if expected_raw != raw.key {
        return Err(refuse(
            &raw.key,
            format!(
                "the raw dump of {} in {} belongs at {expected_raw}",
                m.source.name, m.domain
            ),
        ));
    }
    let expected_manifest = relative(&lake.prefix, &layout.manifest());
    if expected_manifest != entry.key {
        return Err(refuse(
            &raw.key,
            format!(
                "the manifest of this file belongs at {expected_manifest}, not {}",
                entry.key
            ),
        ));
    }
    let wrong_size = |n: u64| {
        refuse(
            &raw.key,
            format!(
                "the raw dump has {n} bytes, the manifest records {}",
                m.source.bytes
            ),
        )
    };
    match sizes.map(|s| s.get(&raw.key)) {
        Some(None) => return Err(refuse(&raw.key, "the raw dump is missing".into())),
        Some(Some(&n)) if n != m.source.bytes => return Err(wrong_size(n)),
        _ => {}
    }
    let path = lake.key_of(&raw.key);
    let Some(got) = rt.block_on(lake.get_opt_stream(&path))? else {
        return Err(refuse(&raw.key, "the raw dump is missing".into()));
    };
    if got.meta.size != m.source.bytes {
        return Err(wrong_size(got.meta.size));
    }
    let reader = RawReader {
        rt: rt.clone(),
        stream: got.into_stream(),
        chunk: Bytes::new(),
        hasher: Sha256::new(),
        bytes: 0,
        expect_bytes: m.source.bytes,
        expect_sha256: m.source.sha256.clone(),
        failed: None,
        done: false,
    };
    convert_reader(lake, rt, &layout, &location, reader, &opts)
}

/// A raw dump as a blocking [`Read`] over the store's GET stream (chunk by chunk, never whole),
/// which fails instead of ending when the bytes are not the ones the manifest records.
struct RawReader {
    rt: Handle,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
    hasher: Sha256,
    bytes: u64,
    expect_bytes: u64,
    expect_sha256: String,
    /// Why the stream failed: every later read fails the same way.
    failed: Option<String>,
    done: bool,
}

impl RawReader {
    fn fail(&mut self, reason: String, retryable: bool) -> std::io::Error {
        self.failed = Some(reason.clone());
        std::io::Error::other(ReadFailure { reason, retryable })
    }
}

impl Read for RawReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(reason) = &self.failed {
            return Err(std::io::Error::other(ReadFailure {
                reason: reason.clone(),
                retryable: false,
            }));
        }
        while self.chunk.is_empty() {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            match self.rt.block_on(self.stream.next()) {
                Some(Ok(b)) => {
                    self.hasher.update(&b);
                    self.bytes += b.len() as u64;
                    if self.bytes > self.expect_bytes {
                        let reason = format!(
                            "the raw dump is longer than the {} bytes the manifest records",
                            self.expect_bytes
                        );
                        return Err(self.fail(reason, false));
                    }
                    self.chunk = b;
                }
                Some(Err(e)) => {
                    let retryable = !matches!(e, object_store::Error::NotFound { .. });
                    return Err(self.fail(format!("reading the raw dump: {e}"), retryable));
                }
                None => {
                    let sha = hex::encode(self.hasher.finalize_reset());
                    if self.bytes != self.expect_bytes {
                        let reason = format!(
                            "the raw dump ended after {} bytes, the manifest records {}",
                            self.bytes, self.expect_bytes
                        );
                        return Err(self.fail(reason, false));
                    }
                    if !sha.eq_ignore_ascii_case(&self.expect_sha256) {
                        let reason = format!(
                            "the raw dump's SHA-256 is {sha}, the manifest records {}",
                            self.expect_sha256
                        );
                        return Err(self.fail(reason, false));
                    }
                    self.done = true;
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

/// One file of a rebuild.
#[derive(Debug)]
pub struct Rebuilt {
    /// The log file's name (the manifest key when the manifest cannot be read).
    pub file: String,
    pub manifest: String,
    pub result: Result<RunReport>,
}

/// What a rebuild did, in all.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RebuildSummary {
    pub files: usize,
    pub converted: usize,
    pub failed: usize,
    pub requests: u64,
    pub requests_by_kind: RequestCounts,
    pub seconds: f64,
}

/// `cdnlake rebuild`: converts every file `select` picks again from its raw dump, one after
/// the other, calling `each` with every outcome as it comes. A file that fails does not stop
/// the others.
pub fn rebuild(
    lake: &Lake,
    rt: &Handle,
    select: &Selection,
    mut each: impl FnMut(&Rebuilt),
) -> Result<RebuildSummary> {
    let started = Instant::now();
    let (lake, requests) = count_requests(lake);
    let by = rt
        .block_on(Descriptor::load_or_default(&lake))?
        .partition_by;
    let manifests = rt.block_on(load_manifests(
        &lake,
        select.domain.as_deref(),
        Unreadable::Collect,
    ))?;
    let mut summary = RebuildSummary::default();
    for (key, reason) in &manifests.unreadable {
        summary.files += 1;
        summary.failed += 1;
        each(&Rebuilt {
            file: key.clone(),
            manifest: key.clone(),
            result: Err(Error::Reconvert {
                file: key.clone(),
                key: key.clone(),
                reason: format!("the manifest cannot be read: {reason}"),
            }),
        });
    }
    for entry in manifests
        .entries
        .iter()
        .filter(|e| select.keeps(&e.manifest))
    {
        summary.files += 1;
        let result = reconvert(&lake, rt, entry, None, by);
        match &result {
            Ok(_) => summary.converted += 1,
            Err(_) => summary.failed += 1,
        }
        each(&Rebuilt {
            file: entry.manifest.source.name.clone(),
            manifest: entry.key.clone(),
            result,
        });
    }
    let counts = requests.snapshot();
    summary.requests = counts.total();
    summary.requests_by_kind = counts;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(data: &'static [u8], chunks: usize, bytes: u64, sha: &str) -> RawReader {
        static RT: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
        });
        let rt = &*RT;
        let parts: Vec<object_store::Result<Bytes>> = data
            .chunks(data.len().div_ceil(chunks).max(1))
            .map(|c| Ok(Bytes::from_static(c)))
            .collect();
        RawReader {
            rt: rt.handle().clone(),
            stream: futures::stream::iter(parts).boxed(),
            chunk: Bytes::new(),
            hasher: Sha256::new(),
            bytes: 0,
            expect_bytes: bytes,
            expect_sha256: sha.into(),
            failed: None,
            done: false,
        }
    }

    const DATA: &[u8] = b"line one\nline two\n";

    #[test]
    fn the_raw_dump_must_match_the_manifest() {
        let sha = hex::encode(Sha256::digest(DATA));
        let mut out = Vec::new();
        reader(DATA, 3, DATA.len() as u64, &sha)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, DATA);

        let wrong = "0".repeat(64);
        let e = reader(DATA, 2, DATA.len() as u64, &wrong)
            .read_to_end(&mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("SHA-256"), "{e}");
        let e = reader(DATA, 2, DATA.len() as u64 + 1, &sha)
            .read_to_end(&mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("ended after 18 bytes"), "{e}");
        let e = reader(DATA, 2, 5, &sha)
            .read_to_end(&mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than the 5 bytes"), "{e}");
    }
}
