//! `cdnlake verify`: the manifests against the objects, and `--repair`.
//!
//! The I/O is one listing per folder (sizes come from the listing, not a HEAD per object), one
//! read per manifest and one range read per Parquet footer, [`concurrency`] at a time. The
//! checks themselves are pure: [`check_manifests`] (manifests and a listing in, problems out),
//! [`check_footer`] and [`find_orphans`].
//!
//! Repair deletes orphans and converts each damaged file again from its raw dump
//! ([`super::rebuild::reconvert`]). It assumes no conversion is running on the same files: a run
//! between its publish step and its manifest has objects that no manifest lists yet, and they
//! would be taken for orphans.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures::future::BoxFuture;
use futures::stream::{StreamExt, TryStreamExt};
use futures::FutureExt;
use object_store::path::{Path, PathPart};
use parquet::arrow::async_reader::MetadataFetch;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaDataReader;
use serde::Serialize;
use tokio::runtime::Handle;

use super::rebuild::reconvert;
use super::{
    concurrency, count_requests, folder, list, load_manifests, Entry, RequestCounts, Selection,
    Unreadable,
};
use crate::error::{Error, Result, StoreOp};
use crate::lake::compacted::{DayMarker, COMPACTED, MARKERS};
use crate::lake::descriptor::{Descriptor, PartitionBy};
use crate::lake::store::{store_error, Lake, STAGING};
use crate::tables::access::ACCESS;
use crate::tables::registry::{self, RAW, REJECTS};

/// The folders whose objects manifests list ([`registry::MANIFESTED`]). `audit/` (no
/// manifests) and `_manifests/` are not among them.
pub const TABLE_FOLDERS: [&str; registry::MANIFESTED.len()] = registry::MANIFESTED;

/// The table folders partitioned `domain=<d>/dt=/hour=`, whose listing narrows to a domain
/// ([`registry::PARTITIONED`]).
pub(crate) const PARTITIONED_FOLDERS: [&str; registry::PARTITIONED.len()] = registry::PARTITIONED;

/// Bytes read from the end of a Parquet file to get its footer in one request (a footer of the
/// access table is about 4 KiB per row group). A larger footer takes a second request; the rest
/// of the file is never read.
pub(crate) const FOOTER_PREFETCH: usize = 64 * 1024;

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The manifest cannot be read, or does not list the raw dump first.
    Manifest,
    /// A listed object does not exist.
    Missing,
    /// A listed object has another size than recorded.
    Size,
    /// A Parquet object's footer cannot be read.
    Footer,
    /// A Parquet object holds another number of rows than recorded (or none is recorded).
    Rows,
    /// `lines != rows + rejected + empty`.
    Counts,
    /// The access files' rows do not add up to `rows`.
    AccessRows,
    /// The partitions' rows do not add up to `rows`.
    PartitionRows,
    /// The rejects object does not hold `rejected` records.
    RejectsRows,
    /// A compaction of access objects stopped half-way (`verify_access.rs`).
    Unfinished,
}

impl ProblemKind {
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::Manifest => "manifest",
            ProblemKind::Missing => "missing",
            ProblemKind::Unfinished => "unfinished",
            ProblemKind::Size => "size",
            ProblemKind::Footer => "footer",
            ProblemKind::Rows => "rows",
            ProblemKind::Counts => "counts",
            ProblemKind::AccessRows => "access_rows",
            ProblemKind::PartitionRows => "partition_rows",
            ProblemKind::RejectsRows => "rejects_rows",
        }
    }
}

/// One thing wrong with one log file's part of the lake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The log file (its name; the manifest key when the manifest cannot be read).
    pub file: String,
    /// Its manifest's key.
    pub manifest: String,
    /// The object concerned (the manifest's key for a count that does not reconcile).
    pub key: String,
    pub kind: ProblemKind,
    pub detail: String,
}

/// A file `--repair` could not convert again, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unrepairable {
    pub file: String,
    pub manifest: String,
    pub reason: String,
}

/// What `verify` found (and, with `--repair`, did).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verification {
    /// Manifests checked.
    pub manifests: usize,
    /// Objects checked (every object the manifests list).
    pub objects: u64,
    pub problems: Vec<Problem>,
    /// Keys of objects that no manifest lists, and of leftovers under `_staging/`.
    pub orphans: Vec<String>,
    /// Store requests made, in all.
    pub requests: u64,
    pub requests_by_kind: RequestCounts,
    pub seconds: f64,
    /// No problem and no orphan, or (with `--repair`) every one fixed.
    pub whole: bool,
    /// With `--repair`: manifest keys of the files converted again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired: Option<Vec<String>>,
    /// With `--repair`: orphans deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<Vec<String>>,
    /// With `--repair`: damaged files that could not be converted again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unrepairable: Option<Vec<Unrepairable>>,
    /// The manifests checked, for the repair.
    #[serde(skip)]
    pub entries: Vec<Entry>,
    /// Sizes of every object listed or found, by key (relative to the destination).
    #[serde(skip)]
    pub sizes: BTreeMap<String, u64>,
}

/// A Parquet object whose footer is to be read: it exists with the recorded size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FooterCheck {
    /// Index of its manifest in the entries checked.
    pub entry: usize,
    pub key: String,
    pub bytes: u64,
    pub rows: u64,
}

/// The checks that need no I/O beyond the listing: existence, sizes, and the counts. Returns
/// the problems, the footers still to read, and the number of objects checked.
pub(crate) fn check_manifests(
    entries: &[Entry],
    sizes: &BTreeMap<String, u64>,
) -> (Vec<Problem>, Vec<FooterCheck>, u64) {
    let mut problems = Vec::new();
    let mut footers = Vec::new();
    let mut objects = 0u64;
    for (i, e) in entries.iter().enumerate() {
        let m = &e.manifest;
        let mut problem = |key: &str, kind, detail: String| {
            problems.push(Problem {
                file: m.source.name.clone(),
                manifest: e.key.clone(),
                key: key.to_string(),
                kind,
                detail,
            })
        };
        let accounted = m
            .rows
            .checked_add(m.rejected)
            .and_then(|n| n.checked_add(m.empty));
        if accounted != Some(m.lines) {
            problem(
                &e.key,
                ProblemKind::Counts,
                format!(
                    "{} lines != {} rows + {} rejected + {} empty",
                    m.lines, m.rows, m.rejected, m.empty
                ),
            );
        }
        let in_folder = |key: &str, folder: &str| {
            key.strip_prefix(folder)
                .is_some_and(|rest| rest.starts_with('/'))
        };
        let access: Vec<_> = m
            .objects
            .iter()
            .filter(|o| in_folder(&o.key, ACCESS.folder))
            .collect();
        let access_rows: u64 = access.iter().filter_map(|o| o.rows).sum();
        if access_rows != m.rows {
            problem(
                &e.key,
                ProblemKind::AccessRows,
                format!(
                    "the {} access files record {access_rows} rows, the file {}",
                    access.len(),
                    m.rows
                ),
            );
        }
        let partition_rows: u64 = m.partitions.iter().map(|p| p.rows).sum();
        if partition_rows != m.rows {
            problem(
                &e.key,
                ProblemKind::PartitionRows,
                format!(
                    "the {} partitions record {partition_rows} rows, the file {}",
                    m.partitions.len(),
                    m.rows
                ),
            );
        }
        let rejects: Vec<_> = m
            .objects
            .iter()
            .filter(|o| in_folder(&o.key, REJECTS.path))
            .collect();
        match rejects.as_slice() {
            [] if m.rejected > 0 => problem(
                &e.key,
                ProblemKind::RejectsRows,
                format!("{} lines rejected, but no rejects object", m.rejected),
            ),
            [] => {}
            [r] if r.rows == Some(m.rejected) => {}
            [r] => problem(
                &r.key,
                ProblemKind::RejectsRows,
                format!(
                    "records {} rejected lines, the file {}",
                    r.rows.map_or("no".to_string(), |n| n.to_string()),
                    m.rejected
                ),
            ),
            more => problem(
                &e.key,
                ProblemKind::RejectsRows,
                format!("{} rejects objects listed, expected one", more.len()),
            ),
        }
        match m.objects.first() {
            Some(raw) if in_folder(&raw.key, RAW.path) => {
                if raw.bytes != m.source.bytes {
                    problem(
                        &raw.key,
                        ProblemKind::Size,
                        format!(
                            "the raw dump is recorded as {} bytes, the source as {}",
                            raw.bytes, m.source.bytes
                        ),
                    );
                }
            }
            _ => problem(
                &e.key,
                ProblemKind::Manifest,
                "the manifest does not list the raw dump first".into(),
            ),
        }
        for o in &m.objects {
            objects += 1;
            match sizes.get(&o.key) {
                None => problem(&o.key, ProblemKind::Missing, "does not exist".into()),
                Some(&n) if n != o.bytes => problem(
                    &o.key,
                    ProblemKind::Size,
                    format!("{n} bytes, the manifest records {}", o.bytes),
                ),
                Some(_) if o.key.ends_with(".parquet") => match o.rows {
                    Some(rows) => footers.push(FooterCheck {
                        entry: i,
                        key: o.key.clone(),
                        bytes: o.bytes,
                        rows,
                    }),
                    None => problem(
                        &o.key,
                        ProblemKind::Rows,
                        "the manifest records no row count".into(),
                    ),
                },
                Some(_) => {}
            }
        }
    }
    (problems, footers, objects)
}

/// The problem, if any, of a Parquet object whose footer says `footer` (its row count, or why
/// it cannot be read).
pub(crate) fn check_footer(
    entry: &Entry,
    check: &FooterCheck,
    footer: std::result::Result<i64, String>,
) -> Option<Problem> {
    let (kind, detail) = match footer {
        Ok(n) if u64::try_from(n).is_ok_and(|n| n == check.rows) => return None,
        Ok(n) => (
            ProblemKind::Rows,
            format!("the footer says {n} rows, the manifest {}", check.rows),
        ),
        Err(reason) => (ProblemKind::Footer, reason),
    };
    Some(Problem {
        file: entry.manifest.source.name.clone(),
        manifest: entry.key.clone(),
        key: check.key.clone(),
        kind,
        detail,
    })
}

/// Whether `key` (relative to the destination) lies in a table folder or under `_staging/`:
/// the only places where verify looks for orphans, and the only keys repair may delete.
pub(crate) fn in_orphan_folders(key: &str) -> bool {
    let Some((top, rest)) = key.split_once('/') else {
        return false;
    };
    !rest.is_empty()
        && (TABLE_FOLDERS.contains(&top)
            || top == STAGING
            || top == COMPACTED
            || top == crate::compact::access::ACCESS_DAYS)
}

/// The domain part of a key in a table folder or `_staging/`, as encoded in keys
/// (`access/domain=<d>/...`, `raw/<d>/...`, `_staging/<d>/...`).
fn domain_of(key: &str) -> Option<&str> {
    let mut parts = key.split('/');
    let top = parts.next()?;
    let part = parts.next()?;
    if PARTITIONED_FOLDERS.contains(&top) {
        part.strip_prefix("domain=")
    } else {
        Some(part)
    }
}

/// A log file whose manifest cannot be read, as its key names it (encoded parts): nothing that
/// may be its own is called an orphan, since the manifest that would list it is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unknown<'a> {
    domain: &'a str,
    stem: &'a str,
}

impl<'a> Unknown<'a> {
    /// `_manifests/<domain>/<date>/<stem>.json`
    fn of(manifest_key: &'a str) -> Option<Unknown<'a>> {
        let parts: Vec<&str> = manifest_key.split('/').collect();
        let [_, domain, _, file] = parts.as_slice() else {
            return None;
        };
        Some(Unknown {
            domain,
            stem: file.strip_suffix(".json")?,
        })
    }

    fn may_own(&self, key: &str) -> bool {
        if domain_of(key) != Some(self.domain) {
            return false;
        }
        if key.starts_with(&format!("{STAGING}/")) {
            return key.split('/').nth(3) == Some(self.stem);
        }
        let name = key.rsplit('/').next().unwrap_or_default();
        name.strip_prefix(self.stem)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '-']))
    }
}

/// Orphans among `listed` keys: in a table folder and listed by no manifest of `listed_by`, or
/// under `_staging/`; only in `domains` (encoded as in keys) when given. Nothing that may belong
/// to a file whose manifest cannot be read (`unreadable`, manifest keys) is an orphan.
pub(crate) fn find_orphans<'a>(
    listed: impl IntoIterator<Item = &'a str>,
    listed_by: &BTreeSet<&str>,
    unreadable: &[&str],
    domains: Option<&BTreeSet<String>>,
) -> Vec<String> {
    let unknown: Vec<Unknown<'_>> = unreadable.iter().filter_map(|k| Unknown::of(k)).collect();
    let mut out: Vec<String> = listed
        .into_iter()
        .filter(|k| in_orphan_folders(k))
        .filter(|k| k.starts_with(&format!("{STAGING}/")) || !listed_by.contains(k))
        .filter(|k| domains.is_none_or(|d| domain_of(k).is_some_and(|x| d.contains(x))))
        .filter(|k| !unknown.iter().any(|u| u.may_own(k)))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Range reads of a footer (the size comes from the listing, so no HEAD).
struct FooterFetch<'a> {
    lake: &'a Lake,
    path: Path,
}

impl MetadataFetch for FooterFetch<'_> {
    fn fetch(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        let (lake, path) = (self.lake, &self.path);
        async move {
            lake.get_range(path, range)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }
}

/// The row count in a Parquet object's footer, or why it cannot be read. A store failure other
/// than a missing object is an error: it says nothing about the object.
async fn footer_rows(
    lake: &Lake,
    key: &str,
    size: u64,
) -> Result<std::result::Result<i64, String>> {
    let path = lake.key_of(key);
    let fetch = FooterFetch {
        lake,
        path: path.clone(),
    };
    match ParquetMetaDataReader::new()
        .with_prefetch_hint(Some(FOOTER_PREFETCH))
        .load_and_finish(fetch, size)
        .await
    {
        Ok(md) => Ok(Ok(md.file_metadata().num_rows())),
        Err(ParquetError::External(e)) => match e.downcast::<object_store::Error>() {
            Ok(e) if matches!(*e, object_store::Error::NotFound { .. }) => {
                Ok(Err("disappeared while being checked".into()))
            }
            Ok(e) => Err(store_error(StoreOp::ReadFooter, &path, *e)),
            Err(e) => Ok(Err(e.to_string())),
        },
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// Checks the manifests `select` picks against the objects. Nothing is changed. The lake
/// should be a [`count_requests`] one for the figures to count.
pub async fn verify(lake: &Lake, select: &Selection) -> Result<Verification> {
    let domain = select.domain.as_deref();
    let manifests = load_manifests(lake, domain, Unreadable::Collect).await?;
    let listed_by: BTreeSet<&str> = manifests
        .entries
        .iter()
        .flat_map(|e| e.manifest.keys())
        .collect();
    let entries: Vec<Entry> = manifests
        .entries
        .iter()
        .filter(|e| select.keeps(&e.manifest))
        .cloned()
        .collect();

    // One listing per folder (narrowed to the domain when there is one), for sizes and orphans.
    let folders: Vec<Path> = TABLE_FOLDERS
        .iter()
        .chain([&STAGING])
        .map(|f| match (domain, PARTITIONED_FOLDERS.contains(f)) {
            (Some(d), true) => folder(lake, f, Some(&format!("domain={d}"))),
            (d, _) => folder(lake, f, d),
        })
        .collect();
    let listings = futures::future::try_join_all(folders.iter().map(|p| list(lake, p))).await?;
    let listed: Vec<(String, u64)> = listings.into_iter().flatten().collect();
    let mut sizes: BTreeMap<String, u64> = listed.iter().cloned().collect();

    // A listed key outside those folders (a hand-edited manifest) gets a HEAD.
    let covered = |key: &str| {
        let full = lake.key_of(key);
        folders.iter().any(|f| full.prefix_match(f).is_some())
    };
    let outside: BTreeSet<&str> = entries
        .iter()
        .flat_map(|e| e.manifest.keys())
        .filter(|k| !covered(k))
        .collect();
    let heads: Vec<Option<(String, u64)>> = futures::stream::iter(outside)
        .map(|k| async move {
            let meta = lake.head_opt(&lake.key_of(k)).await?;
            Ok::<_, Error>(meta.map(|m| (k.to_string(), m.size)))
        })
        .buffer_unordered(concurrency())
        .try_collect()
        .await?;
    sizes.extend(heads.into_iter().flatten());

    let (mut problems, footers, objects) = check_manifests(&entries, &sizes);
    let footer_problems: Vec<Option<Problem>> = futures::stream::iter(footers)
        .map(|f| {
            let entries = &entries;
            async move {
                let rows = footer_rows(lake, &f.key, f.bytes).await?;
                Ok::<_, Error>(check_footer(&entries[f.entry], &f, rows))
            }
        })
        .buffer_unordered(concurrency())
        .try_collect()
        .await?;
    problems.extend(footer_problems.into_iter().flatten());
    for (key, reason) in &manifests.unreadable {
        problems.push(Problem {
            file: key.clone(),
            manifest: key.clone(),
            key: key.clone(),
            kind: ProblemKind::Manifest,
            detail: format!("cannot be read: {reason}"),
        });
    }
    problems.sort_by(|a, b| (&a.manifest, &a.key, a.kind).cmp(&(&b.manifest, &b.key, b.kind)));

    // Orphans only in the domains the run covers.
    let domains: Option<BTreeSet<String>> = match (domain, select.is_narrowed()) {
        (Some(d), _) => Some(BTreeSet::from([PathPart::from(d).as_ref().to_string()])),
        (None, true) => Some(
            entries
                .iter()
                .map(|e| {
                    PathPart::from(e.manifest.domain.as_str())
                        .as_ref()
                        .to_string()
                })
                .collect(),
        ),
        (None, false) => None,
    };
    let unreadable: Vec<&str> = manifests
        .unreadable
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    // What a live run is staging is its own, not a leftover (a conversion may be running now).
    let live = lake.live_staging_runs()?;
    let mut orphans: Vec<String> = find_orphans(
        listed.iter().map(|(k, _)| k.as_str()),
        &listed_by,
        &unreadable,
        domains.as_ref(),
    )
    .into_iter()
    .filter(|k| !held_by_live_run(k, &live))
    .collect();

    // Compacted access days of a day lake: their own checks, and what they excuse.
    super::verify_access::check(lake, select, &entries, &listed)
        .await?
        .apply(&mut problems, &mut orphans);

    // Compacted days: their objects against their markers, and what no marker lists.
    let compacted = check_compacted(lake, select).await?;
    problems.extend(compacted.problems);
    orphans.extend(compacted.orphans);
    sizes.extend(compacted.sizes);

    Ok(Verification {
        manifests: entries.len() + manifests.unreadable.len(),
        objects,
        whole: problems.is_empty() && orphans.is_empty(),
        problems,
        orphans,
        entries,
        sizes,
        ..Verification::default()
    })
}

/// Whether `key` is a live run's staging folder or lock file (`live`: run prefixes from
/// [`Lake::live_staging_runs`]).
fn held_by_live_run(key: &str, live: &[String]) -> bool {
    live.iter().any(|run| {
        key.strip_prefix(run.as_str())
            .is_some_and(|rest| rest == ".lock" || rest.starts_with('/'))
    })
}

/// What [`check_compacted`] found.
#[derive(Debug, Default)]
pub(crate) struct CompactedCheck {
    pub problems: Vec<Problem>,
    pub orphans: Vec<String>,
    pub sizes: BTreeMap<String, u64>,
}

/// Checks the compacted days `select` picks (docs/design.md §10): one listing of `_compacted/`
/// (of the domain's markers and objects when narrowed), a read of each marker, and a footer
/// read of each compacted object; each must exist with the recorded size and rows. An object
/// under `_compacted/` that no marker lists is an orphan (a compaction killed before its
/// marker). Whether a marker still covers its files is not a problem: `report` then reads the
/// files, and the next `compact` replaces the day.
pub(crate) async fn check_compacted(lake: &Lake, select: &Selection) -> Result<CompactedCheck> {
    let listed = list(lake, &folder(lake, COMPACTED, None)).await?;
    let sizes: BTreeMap<String, u64> = listed.iter().cloned().collect();
    let marker_prefix = format!("{COMPACTED}/{MARKERS}/");
    let domain_part = select
        .domain
        .as_deref()
        .map(|d| PathPart::from(d).as_ref().to_string());
    let in_domain = |key: &str| -> bool {
        let Some(d) = &domain_part else { return true };
        match key.strip_prefix(&marker_prefix) {
            Some(rest) => rest.split('/').next() == Some(d.as_str()),
            None => key.split('/').nth(2) == Some(&format!("domain={d}")),
        }
    };
    let marker_keys: Vec<String> = listed
        .iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(&marker_prefix) && k.ends_with(".json") && in_domain(k))
        .cloned()
        .collect();
    let bodies =
        crate::lake::read::get_all(lake, marker_keys.iter().map(|k| lake.key_of(k)).collect())
            .await?;
    let mut out = CompactedCheck::default();
    let mut listed_by: BTreeSet<String> = BTreeSet::new();
    let mut footers = Vec::new();
    let problem = |marker: &str, key: &str, kind, detail: String| Problem {
        file: marker.to_string(),
        manifest: marker.to_string(),
        key: key.to_string(),
        kind,
        detail,
    };
    for (mkey, body) in marker_keys.iter().zip(bodies) {
        let Some(body) = body else { continue };
        listed_by.insert(mkey.clone());
        let m: DayMarker = match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(e) => {
                out.problems.push(problem(
                    mkey,
                    mkey,
                    ProblemKind::Manifest,
                    format!("compaction marker cannot be read: {e}"),
                ));
                continue;
            }
        };
        let tz = crate::access::time::PartitionTz::parse(&m.partition_tz).unwrap_or_default();
        let span = crate::lake::layout::partition_span(&m.dt, "", tz);
        let in_window = span.is_some_and(|s| {
            select.from.is_none_or(|f| s.end > f.micros(tz))
                && select.to.is_none_or(|t| s.start < t.micros(tz))
        });
        for o in &m.objects {
            listed_by.insert(o.key.clone());
            if !in_window {
                continue;
            }
            match sizes.get(&o.key) {
                None => out.problems.push(problem(
                    mkey,
                    &o.key,
                    ProblemKind::Missing,
                    "does not exist".into(),
                )),
                Some(&n) if n != o.bytes => out.problems.push(problem(
                    mkey,
                    &o.key,
                    ProblemKind::Size,
                    format!("{n} bytes, the marker records {}", o.bytes),
                )),
                Some(_) => footers.push((mkey.clone(), o.key.clone(), o.bytes, o.rows)),
            }
        }
    }
    let footer_problems: Vec<Option<Problem>> = futures::stream::iter(footers)
        .map(|(mkey, key, bytes, rows)| async move {
            let got = footer_rows(lake, &key, bytes).await?;
            let detail = match (got, rows) {
                (Ok(n), Some(r)) if u64::try_from(n).is_ok_and(|n| n == r) => return Ok(None),
                (Ok(n), r) => (
                    ProblemKind::Rows,
                    format!(
                        "the footer says {n} rows, the marker {}",
                        r.map_or("none".to_string(), |r| r.to_string())
                    ),
                ),
                (Err(reason), _) => (ProblemKind::Footer, reason),
            };
            Ok::<_, Error>(Some(Problem {
                file: mkey.clone(),
                manifest: mkey,
                key,
                kind: detail.0,
                detail: detail.1,
            }))
        })
        .buffered(concurrency())
        .try_collect()
        .await?;
    out.problems.extend(footer_problems.into_iter().flatten());
    out.orphans = listed
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !listed_by.contains(*k) && in_domain(k))
        .cloned()
        .collect();
    out.sizes = sizes;
    Ok(out)
}

/// Deletes the orphans and converts every damaged file again from its raw dump. Runs on the
/// calling thread (the conversions block), so not on a runtime worker.
pub fn repair(lake: &Lake, rt: &Handle, v: &mut Verification) -> Result<()> {
    let mut removed = Vec::new();
    // Leftovers under a local `_staging/` go together, under the lock runs register with, so
    // a run starting meanwhile is never taken for one; a run still alive keeps its folder.
    let staged = |k: &String| k.starts_with(&format!("{STAGING}/"));
    if lake.is_local() && v.orphans.iter().any(staged) {
        lake.remove_dead_staging()?;
        removed.extend(v.orphans.iter().filter(|k| staged(k)).cloned());
    }
    for key in v.orphans.iter().filter(|k| !(lake.is_local() && staged(k))) {
        // Never anything outside the table folders and `_staging/`.
        if !in_orphan_folders(key) {
            tracing::warn!(%key, "not deleting a key outside the table folders");
            continue;
        }
        // A raw dump no manifest lists is a delivered log whose commit never finished: it may
        // be the only copy left (the CDN deletes its logs after 30 days). It is kept and stays
        // reported, so the lake is not called whole until the log is converted.
        if key.starts_with("raw/") {
            tracing::warn!(%key, "keeping a raw dump that no manifest lists; convert it");
            continue;
        }
        rt.block_on(lake.delete(&lake.key_of(key)))?;
        removed.push(key.clone());
    }
    let damaged: BTreeSet<&str> = v.problems.iter().map(|p| p.manifest.as_str()).collect();
    let mut repaired = Vec::new();
    let mut unrepairable = Vec::new();
    let mut by: Option<PartitionBy> = None;
    let mut recompact = Vec::new();
    // Compacted access days first: a lost day's files are converted again there.
    let access_days: Vec<String> = damaged
        .iter()
        .filter(|k| super::verify_access::is_access_day(k))
        .map(|k| k.to_string())
        .collect();
    let handled =
        super::verify_access::repair(lake, rt, &access_days, v, &mut repaired, &mut unrepairable)?;
    for key in damaged {
        if super::verify_access::is_access_day(key) || handled.contains(key) {
            continue;
        }
        if key.starts_with(&format!("{COMPACTED}/")) {
            recompact.push(key.to_string());
            continue;
        }
        let Some(entry) = v.entries.iter().find(|e| e.key == key) else {
            unrepairable.push(Unrepairable {
                file: key.to_string(),
                manifest: key.to_string(),
                reason: "the manifest cannot be read, so the file's domain, time zone and raw dump are unknown".into(),
            });
            continue;
        };
        // Into the lake's layout (its descriptor's, read once and only when there is
        // something to convert): a lake never changes layout, so the file's own.
        let by = match by {
            Some(by) => by,
            None => *by.insert(rt.block_on(Descriptor::load_or_default(lake))?.partition_by),
        };
        match reconvert(lake, rt, entry, Some(&v.sizes), by) {
            Ok(r) => {
                tracing::info!(file = %r.source, rows = r.rows, "converted again from the raw dump");
                repaired.push(key.to_string());
            }
            Err(e) => unrepairable.push(Unrepairable {
                file: entry.manifest.source.name.clone(),
                manifest: key.to_string(),
                reason: e.to_string(),
            }),
        }
    }
    // A damaged compacted day: its marker goes first (the day is then read from its files),
    // then the day is compacted again from the per-file rollups.
    for key in recompact {
        let marker = lake.key_of(&key);
        let body = rt.block_on(lake.get_opt(&marker))?;
        rt.block_on(lake.delete(&marker))?;
        let day: Option<DayMarker> = body.and_then(|b| serde_json::from_slice(&b).ok());
        let Some(day) = day else {
            // Unreadable: removed, so reports read the files; `compact` writes it again.
            repaired.push(key);
            continue;
        };
        let opts = crate::compact::CompactOptions {
            domain: Some(day.domain.clone()),
            from: Some(day.dt.clone()),
            to: Some(format!("{}~", day.dt)),
            min_age_micros: 0,
            now_micros: i64::MAX,
        };
        match rt.block_on(crate::compact::compact(lake, &opts)) {
            Ok(_) => repaired.push(key),
            Err(e) => unrepairable.push(Unrepairable {
                file: key.clone(),
                manifest: key,
                reason: e.to_string(),
            }),
        }
    }
    v.whole = unrepairable.is_empty() && removed.len() == v.orphans.len();
    v.removed = Some(removed);
    v.repaired = Some(repaired);
    v.unrepairable = Some(unrepairable);
    Ok(())
}

/// `cdnlake verify [--repair]`: checks what `select` picks, repairs it when asked, and counts
/// the requests and the time it all took.
pub fn run(lake: &Lake, rt: &Handle, select: &Selection, repair_it: bool) -> Result<Verification> {
    let started = Instant::now();
    let (lake, requests) = count_requests(lake);
    let mut v = rt.block_on(verify(&lake, select))?;
    if repair_it {
        repair(&lake, rt, &mut v)?;
    }
    let counts = requests.snapshot();
    v.requests = counts.total();
    v.requests_by_kind = counts;
    v.seconds = started.elapsed().as_secs_f64();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::manifest::{Manifest, ObjectEntry, PartitionEntry, SourceEntry};

    const RAW: &str = "raw/a.com/2024_03_05/f.gz";
    const A8: &str = "access/domain=a.com/dt=2024-03-05/hour=08/f.parquet";
    const A9: &str = "access/domain=a.com/dt=2024-03-05/hour=09/f.parquet";
    const T8: &str = "traffic/domain=a.com/dt=2024-03-05/hour=08/f.parquet";
    const REJ: &str = "rejects/a.com/2024_03_05/f.jsonl";
    const MAN: &str = "_manifests/a.com/2024_03_05/f.json";

    fn obj(key: &str, bytes: u64, rows: Option<u64>) -> ObjectEntry {
        ObjectEntry {
            key: key.into(),
            bytes,
            rows,
        }
    }

    /// A consistent manifest: 10 lines, 7 rows (3 + 4), 2 rejected, 1 empty.
    fn entry() -> Entry {
        Entry {
            key: MAN.into(),
            manifest: Manifest {
                manifest_version: 1,
                schema_version: 1,
                tool: "cdnlake test".into(),
                domain: "a.com".into(),
                partition_tz: "+08:00".into(),
                source: SourceEntry {
                    name: "f.gz".into(),
                    location: "f.gz".into(),
                    bytes: 100,
                    sha256: "00".into(),
                    gzip: true,
                    bytes_decompressed: 1000,
                },
                lines: 10,
                rows: 7,
                rejected: 2,
                empty: 1,
                invalid_utf8: 0,
                partitions: vec![
                    PartitionEntry {
                        dt: "2024-03-05".into(),
                        hour: "08".into(),
                        rows: 3,
                    },
                    PartitionEntry {
                        dt: "2024-03-05".into(),
                        hour: "09".into(),
                        rows: 4,
                    },
                ],
                objects: vec![
                    obj(RAW, 100, None),
                    obj(A8, 500, Some(3)),
                    obj(A9, 600, Some(4)),
                    obj(T8, 300, Some(1)),
                    obj(REJ, 50, Some(2)),
                ],
            },
        }
    }

    fn sizes_of(e: &Entry) -> BTreeMap<String, u64> {
        e.manifest
            .objects
            .iter()
            .map(|o| (o.key.clone(), o.bytes))
            .collect()
    }

    fn kinds(p: &[Problem]) -> Vec<(&str, ProblemKind)> {
        p.iter().map(|p| (p.key.as_str(), p.kind)).collect()
    }

    #[test]
    fn a_consistent_file_has_no_problem_and_three_footers_to_read() {
        let e = entry();
        let (problems, footers, objects) = check_manifests(std::slice::from_ref(&e), &sizes_of(&e));
        assert_eq!(problems, vec![]);
        assert_eq!(objects, 5);
        let keys: Vec<&str> = footers.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, vec![A8, A9, T8]);
        assert_eq!(footers[1].rows, 4);
        assert_eq!(footers[1].bytes, 600);
    }

    #[test]
    fn missing_and_resized_objects_are_not_read() {
        let e = entry();
        let mut sizes = sizes_of(&e);
        sizes.remove(A8);
        sizes.insert(A9.into(), 599);
        let (problems, footers, _) = check_manifests(&[e], &sizes);
        assert_eq!(
            kinds(&problems),
            vec![(A8, ProblemKind::Missing), (A9, ProblemKind::Size)]
        );
        assert!(problems[1].detail.contains("599"), "{}", problems[1].detail);
        assert_eq!(footers.len(), 1, "only the intact traffic file");
        assert!(problems
            .iter()
            .all(|p| p.file == "f.gz" && p.manifest == MAN));
    }

    #[test]
    fn counts_that_do_not_reconcile_are_each_reported() {
        let mut e = entry();
        e.manifest.lines = 11;
        e.manifest.partitions[0].rows = 2;
        e.manifest.objects[2].rows = Some(5);
        e.manifest.objects[4].rows = Some(1);
        let (problems, footers, _) = check_manifests(std::slice::from_ref(&e), &sizes_of(&e));
        assert_eq!(
            kinds(&problems),
            vec![
                (MAN, ProblemKind::Counts),
                (MAN, ProblemKind::AccessRows),
                (MAN, ProblemKind::PartitionRows),
                (REJ, ProblemKind::RejectsRows),
            ]
        );
        // The footer of A9 is still read, against the (wrong) recorded 5.
        assert_eq!(footers.iter().find(|f| f.key == A9).unwrap().rows, 5);

        // Rejected lines without a rejects object; a Parquet object without a row count; a
        // raw dump that is not first.
        let mut e = entry();
        e.manifest.objects.remove(4);
        e.manifest.objects[3].rows = None;
        e.manifest.objects.swap(0, 1);
        let (problems, _, _) = check_manifests(std::slice::from_ref(&e), &sizes_of(&e));
        assert_eq!(
            kinds(&problems),
            vec![
                (MAN, ProblemKind::RejectsRows),
                (MAN, ProblemKind::Manifest),
                (T8, ProblemKind::Rows),
            ]
        );
        // A counter overflow is a problem, not a panic.
        let mut e = entry();
        e.manifest.rows = u64::MAX;
        let (problems, _, _) = check_manifests(std::slice::from_ref(&e), &sizes_of(&e));
        assert!(problems.iter().any(|p| p.kind == ProblemKind::Counts));
    }

    #[test]
    fn footers_must_hold_the_recorded_rows() {
        let e = entry();
        let f = FooterCheck {
            entry: 0,
            key: A8.into(),
            bytes: 500,
            rows: 3,
        };
        assert_eq!(check_footer(&e, &f, Ok(3)), None);
        let p = check_footer(&e, &f, Ok(2)).unwrap();
        assert_eq!((p.kind, p.key.as_str()), (ProblemKind::Rows, A8));
        assert!(p.detail.contains("2 rows"), "{}", p.detail);
        assert_eq!(
            check_footer(&e, &f, Ok(-1)).unwrap().kind,
            ProblemKind::Rows
        );
        let p = check_footer(&e, &f, Err("bad magic".into())).unwrap();
        assert_eq!(
            (p.kind, p.detail.as_str()),
            (ProblemKind::Footer, "bad magic")
        );
    }

    #[test]
    fn orphans_are_unlisted_table_objects_and_staging_leftovers() {
        let e = entry();
        let listed_by: BTreeSet<&str> = e.manifest.keys().collect();
        let listed = [
            RAW,
            A8,
            "access/domain=a.com/dt=2024-03-05/hour=08/x.parquet",
            "traffic/domain=b.com/dt=2024-03-05/hour=08/g.parquet",
            "raw/a.com/2024_03_05/g.gz",
            "rejects/b.com/2024_03_05/g.jsonl",
            "_staging/a.com/2024_03_05/f/access/domain=a.com/dt=2024-03-05/hour=08/f.parquet",
            "audit/events/dt=2024-03-05/t.json",
            "_manifests/a.com/2024_03_05/f.json",
            "stray-at-the-top",
        ];
        let all = find_orphans(listed, &listed_by, &[], None);
        assert_eq!(
            all,
            vec![
                "_staging/a.com/2024_03_05/f/access/domain=a.com/dt=2024-03-05/hour=08/f.parquet",
                "access/domain=a.com/dt=2024-03-05/hour=08/x.parquet",
                "raw/a.com/2024_03_05/g.gz",
                "rejects/b.com/2024_03_05/g.jsonl",
                "traffic/domain=b.com/dt=2024-03-05/hour=08/g.parquet",
            ]
        );
        // Narrowed to a domain.
        let b = BTreeSet::from(["b.com".to_string()]);
        assert_eq!(
            find_orphans(listed, &listed_by, &[], Some(&b)),
            vec![
                "rejects/b.com/2024_03_05/g.jsonl",
                "traffic/domain=b.com/dt=2024-03-05/hour=08/g.parquet",
            ]
        );
        // What may belong to a file whose manifest cannot be read is left alone.
        let kept = find_orphans(
            listed,
            &listed_by,
            &["_manifests/a.com/2024_03_05/g.json"],
            None,
        );
        assert!(
            !kept.contains(&"raw/a.com/2024_03_05/g.gz".to_string()),
            "{kept:?}"
        );
        assert!(kept.contains(&"access/domain=a.com/dt=2024-03-05/hour=08/x.parquet".to_string()));
        assert!(kept.contains(&"rejects/b.com/2024_03_05/g.jsonl".to_string()));
    }

    #[test]
    fn only_table_folders_and_staging_hold_orphans() {
        for k in [
            "access/x",
            "traffic/domain=a/x.parquet",
            "raw/a/b/c.gz",
            "rejects/a/b/c.jsonl",
            "_staging/a/b/c/x",
        ] {
            assert!(in_orphan_folders(k), "{k}");
        }
        for k in [
            "audit/events/x.json",
            "_manifests/a/b/c.json",
            "access",
            "access/",
            "accessx/y",
            "x",
            "",
        ] {
            assert!(!in_orphan_folders(k), "{k}");
        }
    }
}
