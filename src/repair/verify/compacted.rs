//! Compacted days against their markers (docs/design.md §10).

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{StreamExt, TryStreamExt};
use object_store::path::PathPart;

use crate::error::{Error, Result};
use crate::lake::compacted::{DayMarker, COMPACTED, MARKERS};
use crate::lake::store::Lake;
use crate::repair::{concurrency, folder, list, Selection};

use super::footers::footer_rows;
use super::{marker_problem, Problem, ProblemKind};

/// What [`check_compacted`] found.
#[derive(Debug, Default)]
pub struct CompactedCheck {
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
pub async fn check_compacted(lake: &Lake, select: &Selection) -> Result<CompactedCheck> {
    let listed = list(lake, &folder(lake, COMPACTED, None)).await?;
    let sizes: BTreeMap<String, u64> = listed.iter().cloned().collect();
    let scope = Scope::of(select);
    let marker_keys: Vec<String> = listed
        .iter()
        .map(|(k, _)| k)
        .filter(|k| scope.is_marker(k) && k.ends_with(".json") && scope.in_domain(k))
        .cloned()
        .collect();
    let bodies =
        crate::lake::read::get_all(lake, marker_keys.iter().map(|k| lake.key_of(k)).collect())
            .await?;
    let mut out = CompactedCheck::default();
    let mut listed_by: BTreeSet<String> = BTreeSet::new();
    let mut footers = Vec::new();
    for (mkey, body) in marker_keys.iter().zip(bodies) {
        let Some(body) = body else { continue };
        listed_by.insert(mkey.clone());
        let found = Found {
            listed_by: &mut listed_by,
            footers: &mut footers,
            problems: &mut out.problems,
        };
        check_marker(select, &sizes, mkey, &body, found);
    }
    out.problems.extend(check_footers(lake, footers).await?);
    out.orphans = listed
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !listed_by.contains(*k) && scope.in_domain(k))
        .cloned()
        .collect();
    out.sizes = sizes;
    Ok(out)
}

/// Which keys of `_compacted/` a run narrowed to a domain looks at: its markers
/// (`_compacted/<markers>/<domain>/…`) and its objects (`_compacted/<table>/domain=<d>/…`).
struct Scope {
    marker_prefix: String,
    /// The domain as it is encoded in keys; `None`: every domain.
    domain_part: Option<String>,
}

impl Scope {
    fn of(select: &Selection) -> Scope {
        Scope {
            marker_prefix: format!("{COMPACTED}/{MARKERS}/"),
            domain_part: select
                .domain
                .as_deref()
                .map(|d| PathPart::from(d).as_ref().to_string()),
        }
    }

    /// Whether a key is under the markers' folder.
    fn is_marker(&self, key: &str) -> bool {
        key.starts_with(&self.marker_prefix)
    }

    /// Whether a marker or compacted object belongs to the run's domain.
    fn in_domain(&self, key: &str) -> bool {
        let Some(d) = &self.domain_part else {
            return true;
        };
        match key.strip_prefix(&self.marker_prefix) {
            Some(rest) => rest.split('/').next() == Some(d.as_str()),
            None => key.split('/').nth(2) == Some(&format!("domain={d}")),
        }
    }
}

/// A compacted object whose footer is still to read: (marker, key, recorded bytes, recorded rows).
type Footer = (String, String, u64, Option<u64>);

/// Where [`check_marker`] puts what it finds.
struct Found<'a> {
    /// Keys a marker lists (the rest of `_compacted/` are orphans).
    listed_by: &'a mut BTreeSet<String>,
    footers: &'a mut Vec<Footer>,
    problems: &'a mut Vec<Problem>,
}

/// Checks one marker: it must parse, and each object it lists of a day in the window must exist
/// with the recorded size (its footer is then queued for reading). Objects of days outside the
/// window are still counted as listed, so that they are not orphans.
fn check_marker(
    select: &Selection,
    sizes: &BTreeMap<String, u64>,
    mkey: &str,
    body: &[u8],
    found: Found<'_>,
) {
    let m: DayMarker = match serde_json::from_slice(body) {
        Ok(m) => m,
        Err(e) => {
            found.problems.push(marker_problem(
                mkey,
                mkey,
                ProblemKind::Manifest,
                format!("compaction marker cannot be read: {e}"),
            ));
            return;
        }
    };
    let tz = crate::access::time::PartitionTz::parse(&m.partition_tz).unwrap_or_default();
    let span = crate::lake::layout::partition_span(&m.dt, "", tz);
    let in_window = span.is_some_and(|s| {
        select.from.is_none_or(|f| s.end > f.micros(tz))
            && select.to.is_none_or(|t| s.start < t.micros(tz))
    });
    for o in &m.objects {
        found.listed_by.insert(o.key.clone());
        if !in_window {
            continue;
        }
        match sizes.get(&o.key) {
            None => found.problems.push(marker_problem(
                mkey,
                &o.key,
                ProblemKind::Missing,
                "does not exist".into(),
            )),
            Some(&n) if n != o.bytes => found.problems.push(marker_problem(
                mkey,
                &o.key,
                ProblemKind::Size,
                format!("{n} bytes, the marker records {}", o.bytes),
            )),
            Some(_) => found
                .footers
                .push((mkey.to_string(), o.key.clone(), o.bytes, o.rows)),
        }
    }
}

/// Reads the queued footers, a few at a time, in order: a footer that cannot be read, or whose
/// row count is not the marker's, is a problem.
async fn check_footers(lake: &Lake, footers: Vec<Footer>) -> Result<Vec<Problem>> {
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
    Ok(footer_problems.into_iter().flatten().collect())
}
