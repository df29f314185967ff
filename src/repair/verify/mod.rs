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
//!
//! The checks live one per file: `manifests.rs` (a manifest against the listing),
//! `footers.rs` (reading a Parquet footer's row count), `orphans.rs` (what no manifest lists),
//! `compacted.rs` (compacted days against their markers); `fix.rs` is `--repair`.

mod access;
mod compacted;
mod fix;
mod footers;
mod manifests;
mod orphans;

pub(crate) use compacted::check_compacted;
pub use fix::repair;
use footers::footer_rows;
pub(crate) use manifests::{check_footer, check_manifests, FooterCheck};
use orphans::held_by_live_run;
pub(crate) use orphans::{find_orphans, in_orphan_folders};

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures::stream::{StreamExt, TryStreamExt};
use object_store::path::{Path, PathPart};
use serde::Serialize;
use tokio::runtime::Handle;

use super::{
    concurrency, count_requests, folder, list, load_manifests, Entry, RequestCounts, Selection,
    Unreadable,
};
use crate::error::{Error, Result};
use crate::lake::store::{Lake, STAGING};
use crate::tables::registry;

/// The folders whose objects manifests list ([`registry::MANIFESTED`]). `audit/` (no
/// manifests) and `_manifests/` are not among them.
pub const TABLE_FOLDERS: [&str; registry::MANIFESTED.len()] = registry::MANIFESTED;

/// The table folders partitioned `domain=<d>/dt=/hour=`, whose listing narrows to a domain
/// ([`registry::PARTITIONED`]).
pub(crate) const PARTITIONED_FOLDERS: [&str; registry::PARTITIONED.len()] = registry::PARTITIONED;

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
    /// A compaction of access objects stopped half-way (`access.rs`).
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

/// A problem of a compacted day or compacted access day: its marker stands as the day's
/// "manifest", so that `--repair` finds the day to repair from it.
pub(super) fn marker_problem(
    marker: &str,
    key: &str,
    kind: ProblemKind,
    detail: String,
) -> Problem {
    Problem {
        file: marker.to_string(),
        manifest: marker.to_string(),
        key: key.to_string(),
        kind,
        detail,
    }
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
/// Checks the manifests `select` picks against the objects. Nothing is changed. The lake
/// should be a [`count_requests`] one for the figures to count.
///
/// The steps: list the folders (sizes, orphans), HEAD what a manifest lists outside them, check
/// each manifest against the listing, read the footers, find the orphans, check the compacted
/// days.
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

    let (folders, listed) = list_folders(lake, domain).await?;
    let mut sizes: BTreeMap<String, u64> = listed.iter().cloned().collect();
    sizes.extend(head_outside(lake, &entries, &folders).await?);

    let (mut problems, footers, objects) = check_manifests(&entries, &sizes);
    problems.extend(read_footers(lake, &entries, footers).await?);
    problems.extend(manifests.unreadable.iter().map(|(key, reason)| Problem {
        file: key.clone(),
        manifest: key.clone(),
        key: key.clone(),
        kind: ProblemKind::Manifest,
        detail: format!("cannot be read: {reason}"),
    }));
    problems.sort_by(|a, b| (&a.manifest, &a.key, a.kind).cmp(&(&b.manifest, &b.key, b.kind)));

    let unreadable: Vec<&str> = manifests
        .unreadable
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    let domains = orphan_domains(select, &entries);
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
    access::check(lake, select, &entries, &listed)
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

/// One listing per folder (narrowed to the domain when there is one): the folders listed, and
/// every key found with its size.
async fn list_folders(
    lake: &Lake,
    domain: Option<&str>,
) -> Result<(Vec<Path>, Vec<(String, u64)>)> {
    let folders: Vec<Path> = TABLE_FOLDERS
        .iter()
        .chain([&STAGING])
        .map(|f| match (domain, PARTITIONED_FOLDERS.contains(f)) {
            (Some(d), true) => folder(lake, f, Some(&format!("domain={d}"))),
            (d, _) => folder(lake, f, d),
        })
        .collect();
    let listings = futures::future::try_join_all(folders.iter().map(|p| list(lake, p))).await?;
    Ok((folders, listings.into_iter().flatten().collect()))
}

/// The sizes of the keys the manifests list outside the `folders` listed (a hand-edited
/// manifest), one HEAD each; a missing one is left out.
async fn head_outside(
    lake: &Lake,
    entries: &[Entry],
    folders: &[Path],
) -> Result<Vec<(String, u64)>> {
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
    Ok(heads.into_iter().flatten().collect())
}

/// The problems of the Parquet footers to read ([`check_footer`]), [`concurrency`] at a time.
async fn read_footers(
    lake: &Lake,
    entries: &[Entry],
    footers: Vec<FooterCheck>,
) -> Result<Vec<Problem>> {
    let problems: Vec<Option<Problem>> = futures::stream::iter(footers)
        .map(|f| async move {
            let rows = footer_rows(lake, &f.key, f.bytes).await?;
            Ok::<_, Error>(check_footer(&entries[f.entry], &f, rows))
        })
        .buffer_unordered(concurrency())
        .try_collect()
        .await?;
    Ok(problems.into_iter().flatten().collect())
}

/// The domains (encoded as in keys) whose orphans the run covers: the selected domain, the
/// domains of the manifests picked when the selection is narrowed otherwise, or all (`None`).
fn orphan_domains(select: &Selection, entries: &[Entry]) -> Option<BTreeSet<String>> {
    match (select.domain.as_deref(), select.is_narrowed()) {
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
    }
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
mod tests;
