//! `verify` of compacted access days (`compact --access`, [`crate::compact::access`]): kept
//! in a file of its own (`mod.rs` calls [`check`] once, `fix.rs` calls [`repair`] once).
//!
//! A day object must be readable, hold in its footer the index its marker records (size, rows,
//! files), and no per-file object of a file it holds may be left in the folder (folder readers
//! would count those rows twice: a compaction stopped between its PUT and its deletes). A
//! manifest's access object that is absent because the day object holds the same file (same
//! SHA-256) is not missing. A marker whose day object is gone has lost rows: `--repair`
//! converts the files it held again from `raw/`.

use std::collections::{BTreeMap, BTreeSet};

use object_store::path::PathPart;
use tokio::runtime::Handle;

use super::{marker_problem, Problem, ProblemKind, Unrepairable, Verification};
use crate::access::time::PartitionTz;
use crate::compact::access::{
    compact_access_day, day_key, from_incoming, index_of, is_day_file, marker_key, read_footer,
    AccessMarker, DayIndex, HeldSource, ListedManifest, ACCESS_DAYS,
};
use crate::error::Result;
use crate::lake::compacted::key_dt;
use crate::lake::descriptor::PartitionBy;
use crate::lake::layout::{partition_span, relative};
use crate::lake::store::Lake;
use crate::repair::rebuild::reconvert;
use crate::repair::{folder, list, Entry, Selection};

/// What [`check`] found, and what it excuses in the other checks.
#[derive(Debug, Default)]
pub struct AccessDays {
    pub problems: Vec<Problem>,
    pub orphans: Vec<String>,
    /// Per-file access keys legitimately absent: a day object holds their file.
    excused: BTreeSet<String>,
    /// Day objects (no manifest lists them: not orphans).
    day_files: BTreeSet<String>,
}

impl AccessDays {
    /// Folds this into `verify`'s findings.
    pub fn apply(self, problems: &mut Vec<Problem>, orphans: &mut Vec<String>) {
        problems.retain(|p| !(p.kind == ProblemKind::Missing && self.excused.contains(&p.key)));
        orphans.retain(|k| !self.day_files.contains(k));
        problems.extend(self.problems);
        orphans.extend(self.orphans);
        problems.sort_by(|a, b| (&a.manifest, &a.key, a.kind).cmp(&(&b.manifest, &b.key, b.kind)));
    }
}

/// Whether a problem's "manifest" is an access-day marker (repaired by [`repair`]).
pub fn is_access_day(key: &str) -> bool {
    key.starts_with(&format!("{ACCESS_DAYS}/"))
}

/// `(encoded domain part, dt)` of a day object's key `access/domain=<d>/dt=<dt>/…`.
fn day_of(key: &str) -> Option<(String, String)> {
    let mut it = key.split('/');
    let _ = it.next()?;
    let d = it.next()?.strip_prefix("domain=")?;
    let dt = it.next()?.strip_prefix("dt=")?;
    Some((d.to_string(), dt.to_string()))
}

/// `(encoded domain part, dt)` of a marker key `_compacted_access/<d>/<dt>.json`.
fn marker_day(key: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix(ACCESS_DAYS)?.strip_prefix('/')?;
    let (d, file) = rest.split_once('/')?;
    let dt = file.strip_suffix(".json")?;
    (!file.contains('/')).then(|| (d.to_string(), dt.to_string()))
}

/// The raw domain whose key part is `part`, from the manifests.
fn domain_named<'a>(entries: &'a [Entry], part: &str) -> Option<&'a str> {
    entries
        .iter()
        .map(|e| e.manifest.domain.as_str())
        .find(|d| PathPart::from(*d).as_ref() == part)
}

/// Checks the compacted access days `select` picks. `listed`: verify's listing of the table
/// folders (day objects and per-file objects among them).
pub async fn check(
    lake: &Lake,
    select: &Selection,
    entries: &[Entry],
    listed: &[(String, u64)],
) -> Result<AccessDays> {
    let mut out = AccessDays::default();
    let sizes: BTreeMap<&str, u64> = listed.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    let days = day_objects(listed);
    out.day_files = days.iter().map(|(k, _)| k.clone()).collect();
    let markers = list(lake, &folder(lake, ACCESS_DAYS, select.domain.as_deref())).await?;
    if days.is_empty() && markers.is_empty() {
        return Ok(out);
    }
    let window = Window {
        select,
        tz: entries
            .first()
            .and_then(|e| PartitionTz::parse(&e.manifest.partition_tz))
            .unwrap_or_default(),
    };
    let mut seen = BTreeSet::new();
    for (dkey, _) in &days {
        let Some((dpart, dt)) = day_of(dkey) else {
            continue;
        };
        let mkey = format!("{ACCESS_DAYS}/{dpart}/{dt}.json");
        seen.insert(mkey.clone());
        if !window.holds(&dt) {
            continue;
        }
        let day = Day {
            key: dkey,
            marker: &mkey,
            dt: &dt,
        };
        check_day(lake, entries, &sizes, &day, &mut out).await?;
    }
    check_markers(&markers, &seen, &window, &mut out);
    Ok(out)
}

/// The day objects among verify's listing of the table folders.
fn day_objects(listed: &[(String, u64)]) -> Vec<(String, u64)> {
    listed
        .iter()
        .filter(|(k, _)| k.starts_with("access/") && is_day_file(k))
        .cloned()
        .collect()
}

/// The time window of the run, in the lake's partition time zone: days outside it are not
/// checked, as verify's other checks leave out the manifests outside it.
struct Window<'a> {
    select: &'a Selection,
    tz: PartitionTz,
}

impl Window<'_> {
    /// Whether the day `dt` overlaps the window (a `dt` that does not parse is kept, so that it
    /// is reported rather than skipped).
    fn holds(&self, dt: &str) -> bool {
        let (select, tz) = (self.select, self.tz);
        partition_span(dt, "", tz).is_none_or(|s| {
            select.from.is_none_or(|f| s.end > f.micros(tz))
                && select.to.is_none_or(|t| s.start < t.micros(tz))
        })
    }
}

/// One day object being checked: its key, its marker's key, and its `dt`.
struct Day<'a> {
    key: &'a str,
    marker: &'a str,
    dt: &'a str,
}

/// Checks one day object: its footer and index, its marker, no per-file object left beside it;
/// and excuses the per-file objects it stands for.
async fn check_day(
    lake: &Lake,
    entries: &[Entry],
    sizes: &BTreeMap<&str, u64>,
    day: &Day<'_>,
    out: &mut AccessDays,
) -> Result<()> {
    let Some((size, rows, index)) = read_day_index(lake, day, &mut out.problems).await else {
        return Ok(());
    };
    check_marker(lake, day, size, rows, &index, &mut out.problems).await?;
    for h in &index.sources {
        check_left_beside(day, h, sizes, &mut out.problems);
        // The file's own objects in this day are absent on purpose when the day holds
        // the same file.
        for e in entries
            .iter()
            .filter(|e| e.manifest.source.name == h.source && e.manifest.source.sha256 == h.sha256)
        {
            out.excused.extend(
                e.manifest
                    .objects
                    .iter()
                    .filter(|o| key_dt(&o.key) == Some(day.dt))
                    .filter(|o| o.key.starts_with("access/"))
                    .map(|o| o.key.clone()),
            );
        }
    }
    Ok(())
}

/// Reads a day object's footer and index: `(size, rows, index)`. An unreadable one is a
/// `Footer` problem; one gone since the listing is skipped. A footer whose row count differs
/// from its index's is a `Rows` problem (the index is still returned, to check the rest).
async fn read_day_index(
    lake: &Lake,
    day: &Day<'_>,
    problems: &mut Vec<Problem>,
) -> Option<(u64, u64, DayIndex)> {
    let path = lake.key_of(day.key);
    let read = match read_footer(lake, &path).await {
        Ok(None) => return None,
        Ok(Some((md, size))) => index_of(&path, &md).map(|index| (md, size, index)),
        Err(e) => Err(e),
    };
    let (md, size, index) = match read {
        Ok(x) => x,
        Err(e) => {
            problems.push(marker_problem(
                day.marker,
                day.key,
                ProblemKind::Footer,
                e.to_string(),
            ));
            return None;
        }
    };
    let rows: u64 = index.sources.iter().map(|s| s.rows).sum();
    if u64::try_from(md.file_metadata().num_rows()).ok() != Some(rows) {
        problems.push(marker_problem(
            day.marker,
            day.key,
            ProblemKind::Rows,
            format!(
                "the footer says {} rows, its index {rows}",
                md.file_metadata().num_rows()
            ),
        ));
    }
    Some((size, rows, index))
}

/// Checks that the day's marker is readable and records this day object (size, rows, files):
/// a missing marker means a compaction stopped between its PUT and the marker.
async fn check_marker(
    lake: &Lake,
    day: &Day<'_>,
    size: u64,
    rows: u64,
    index: &DayIndex,
    problems: &mut Vec<Problem>,
) -> Result<()> {
    let (mkey, dkey) = (day.marker, day.key);
    let marker: Option<AccessMarker> = lake
        .get_opt(&lake.key_of(mkey))
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
    match marker {
        None => problems.push(marker_problem(
            mkey,
            mkey,
            ProblemKind::Unfinished,
            "no readable marker for the day object (a compaction stopped before it)".into(),
        )),
        Some(m) if m.object.bytes != size => problems.push(marker_problem(
            mkey,
            dkey,
            ProblemKind::Size,
            format!("{size} bytes, the marker records {}", m.object.bytes),
        )),
        Some(m) if m.sources != index.sources || m.object.rows != Some(rows) => {
            problems.push(marker_problem(
                mkey,
                dkey,
                ProblemKind::Manifest,
                "the day object's index is not the one its marker records".into(),
            ))
        }
        Some(_) => {}
    }
    Ok(())
}

/// Reports the per-file objects of a file the day holds that are still in the folder: folder
/// readers would count their rows twice (a compaction stopped between its PUT and its deletes).
fn check_left_beside(
    day: &Day<'_>,
    h: &HeldSource,
    sizes: &BTreeMap<&str, u64>,
    problems: &mut Vec<Problem>,
) {
    for o in &h.objects {
        if sizes.contains_key(o.key.as_str()) {
            problems.push(marker_problem(
                day.marker,
                &o.key,
                ProblemKind::Unfinished,
                format!(
                    "still beside the day object, which holds {}'s rows (folder readers count them twice)",
                    h.source
                ),
            ));
        }
    }
}

/// Checks the markers no day object was seen for: a marker left in `incoming/` is an orphan; one
/// in the window whose day object is gone has lost the rows of the files it held.
fn check_markers(
    markers: &[(String, u64)],
    seen: &BTreeSet<String>,
    window: &Window<'_>,
    out: &mut AccessDays,
) {
    for (mkey, _) in markers {
        if from_incoming(mkey).is_some() {
            out.orphans.push(mkey.clone());
            continue;
        }
        let Some((dpart, dt)) = marker_day(mkey) else {
            continue;
        };
        if seen.contains(mkey) || !window.holds(&dt) {
            continue;
        }
        let dkey = format!(
            "access/domain={dpart}/dt={dt}/{}",
            crate::compact::access::DAY_FILE
        );
        out.problems.push(marker_problem(
            mkey,
            &dkey,
            ProblemKind::Missing,
            "the day object its marker records does not exist: the rows of the files it held are gone until converted again".into(),
        ));
    }
}

/// Repairs the damaged access days (problems whose manifest is a marker key): a day object
/// that is readable is compacted again (which takes in per-file objects left beside it and
/// writes its marker); an unreadable, resized or missing one is removed with its marker, the
/// files it held are converted again from `raw/`, and the day compacted again.
pub fn repair(
    lake: &Lake,
    rt: &Handle,
    markers: &[String],
    v: &Verification,
    repaired: &mut Vec<String>,
    unrepairable: &mut Vec<Unrepairable>,
) -> Result<BTreeSet<String>> {
    let mut handled = BTreeSet::new();
    for mkey in markers {
        let fail = |reason: String| Unrepairable {
            file: mkey.clone(),
            manifest: mkey.clone(),
            reason,
        };
        let Some((dpart, dt)) = marker_day(mkey) else {
            unrepairable.push(fail("not a marker key".into()));
            continue;
        };
        let Some(domain) = domain_named(&v.entries, &dpart) else {
            unrepairable.push(fail("no manifest of this domain".into()));
            continue;
        };
        let dkey = day_key(&lake.prefix, domain, &dt);
        let drel = relative(&lake.prefix, &dkey);
        let lost = v.problems.iter().any(|p| {
            p.manifest == *mkey
                && p.key == drel
                && matches!(
                    p.kind,
                    ProblemKind::Footer | ProblemKind::Size | ProblemKind::Missing
                )
        });
        let in_day: Vec<&Entry> = v
            .entries
            .iter()
            .filter(|e| {
                e.manifest.domain == domain
                    && e.manifest
                        .objects
                        .iter()
                        .any(|o| o.key.starts_with("access/") && key_dt(&o.key) == Some(&dt))
            })
            .collect();
        if lost {
            handled.extend(in_day.iter().map(|e| e.key.clone()));
            rt.block_on(lake.delete(&marker_key(&lake.prefix, domain, &dt)))?;
            rt.block_on(lake.delete(&dkey))?;
            let mut failed = None;
            for e in &in_day {
                let gone = e.manifest.objects.iter().any(|o| {
                    o.key.starts_with("access/")
                        && key_dt(&o.key) == Some(&dt)
                        && !v.sizes.contains_key(&o.key)
                });
                if gone {
                    match reconvert(lake, rt, e, Some(&v.sizes), PartitionBy::Day) {
                        Ok(_) => repaired.push(e.key.clone()),
                        Err(err) => failed = Some(format!("{}: {err}", e.manifest.source.name)),
                    }
                }
            }
            if let Some(reason) = failed {
                unrepairable.push(fail(reason));
                continue;
            }
        }
        // Compacted again, from the manifests as they are now.
        let contributors: Vec<ListedManifest> = rt
            .block_on(crate::compact::access::load_manifests(
                lake,
                Some(domain),
                Some(&dt),
                None,
            ))?
            .into_iter()
            .filter(|lm| {
                lm.manifest
                    .objects
                    .iter()
                    .any(|o| o.key.starts_with("access/") && key_dt(&o.key) == Some(&dt))
            })
            .collect();
        match rt.block_on(compact_access_day(lake, domain, &dt, &contributors)) {
            Ok(_) => repaired.push(mkey.clone()),
            Err(e) => unrepairable.push(fail(e.to_string())),
        }
    }
    Ok(handled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_day() {
        assert_eq!(
            day_of("access/domain=a.com/dt=2024-03-05/compacted~day.parquet"),
            Some(("a.com".into(), "2024-03-05".into()))
        );
        assert_eq!(
            marker_day("_compacted_access/a.com/2024-03-05.json"),
            Some(("a.com".into(), "2024-03-05".into()))
        );
        assert_eq!(
            marker_day("_compacted_access/_incoming/access/domain=a/dt=x/f.parquet"),
            None
        );
        assert!(is_access_day("_compacted_access/a.com/2024-03-05.json"));
        assert!(!is_access_day("_compacted/_markers/a.com/2024-03-05.json"));
    }
}
