//! `--repair`: delete the orphans, convert damaged files again, compact damaged days again.

use std::collections::BTreeSet;

use tokio::runtime::Handle;

use super::access as verify_access;
use crate::error::Result;
use crate::lake::compacted::{DayMarker, COMPACTED};
use crate::lake::descriptor::{Descriptor, PartitionBy};
use crate::lake::store::{Lake, STAGING};
use crate::repair::rebuild::reconvert;

use super::{in_orphan_folders, Unrepairable, Verification};

/// Deletes the orphans and converts every damaged file again from its raw dump. Runs on the
/// calling thread (the conversions block), so not on a runtime worker.
pub fn repair(lake: &Lake, rt: &Handle, v: &mut Verification) -> Result<()> {
    let removed = remove_orphans(lake, rt, &v.orphans)?;
    let damaged: BTreeSet<&str> = v.problems.iter().map(|p| p.manifest.as_str()).collect();
    let mut r = Repairs::default();
    let mut by: Option<PartitionBy> = None;
    let mut recompact = Vec::new();
    // Compacted access days first: a lost day's files are converted again there.
    let access_days: Vec<String> = damaged
        .iter()
        .filter(|k| verify_access::is_access_day(k))
        .map(|k| k.to_string())
        .collect();
    let handled = verify_access::repair(
        lake,
        rt,
        &access_days,
        v,
        &mut r.repaired,
        &mut r.unrepairable,
    )?;
    for key in damaged {
        if verify_access::is_access_day(key) || handled.contains(key) {
            continue;
        }
        if key.starts_with(&format!("{COMPACTED}/")) {
            recompact.push(key.to_string());
            continue;
        }
        reconvert_file(lake, rt, v, key, &mut by, &mut r)?;
    }
    // A damaged compacted day: its marker goes first (the day is then read from its files),
    // then the day is compacted again from the per-file rollups.
    for key in recompact {
        recompact_day(lake, rt, key, &mut r)?;
    }
    v.whole = r.unrepairable.is_empty() && removed.len() == v.orphans.len();
    v.removed = Some(removed);
    v.repaired = Some(r.repaired);
    v.unrepairable = Some(r.unrepairable);
    Ok(())
}

/// What `--repair` did with the damaged files and days.
#[derive(Default)]
struct Repairs {
    /// Manifest or marker keys repaired.
    repaired: Vec<String>,
    unrepairable: Vec<Unrepairable>,
}

/// Deletes the orphans it may, returning their keys. Leftovers under a local `_staging/` go
/// together, under the lock runs register with, so a run starting meanwhile is never taken for
/// one; a run still alive keeps its folder. Nothing outside the table folders and `_staging/`
/// is deleted, nor a raw dump (it may be the only copy of a log).
fn remove_orphans(lake: &Lake, rt: &Handle, orphans: &[String]) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let staged = |k: &String| k.starts_with(&format!("{STAGING}/"));
    if lake.is_local() && orphans.iter().any(staged) {
        lake.remove_dead_staging()?;
        removed.extend(orphans.iter().filter(|k| staged(k)).cloned());
    }
    for key in orphans.iter().filter(|k| !(lake.is_local() && staged(k))) {
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
    Ok(removed)
}

/// Converts the file of a damaged manifest again from its raw dump. A manifest that cannot be
/// read, or a conversion that fails, is unrepairable (reported, not an error: the other files
/// are still repaired). `by` is the lake's layout, read at the first conversion.
fn reconvert_file(
    lake: &Lake,
    rt: &Handle,
    v: &Verification,
    key: &str,
    by: &mut Option<PartitionBy>,
    r: &mut Repairs,
) -> Result<()> {
    let Some(entry) = v.entries.iter().find(|e| e.key == key) else {
        r.unrepairable.push(Unrepairable {
            file: key.to_string(),
            manifest: key.to_string(),
            reason: "the manifest cannot be read, so the file's domain, time zone and raw dump are unknown".into(),
        });
        return Ok(());
    };
    // Into the lake's layout (its descriptor's, read once and only when there is
    // something to convert): a lake never changes layout, so the file's own.
    let by = match *by {
        Some(by) => by,
        None => *by.insert(rt.block_on(Descriptor::load_or_default(lake))?.partition_by),
    };
    match reconvert(lake, rt, entry, Some(&v.sizes), by) {
        Ok(c) => {
            tracing::info!(file = %c.source, rows = c.rows, "converted again from the raw dump");
            r.repaired.push(key.to_string());
        }
        Err(e) => r.unrepairable.push(Unrepairable {
            file: entry.manifest.source.name.clone(),
            manifest: key.to_string(),
            reason: e.to_string(),
        }),
    }
    Ok(())
}

/// Repairs a damaged compacted day: deletes its marker (reports then read the day from its
/// files), then compacts the day again from the per-file rollups. An unreadable marker is only
/// removed: the next `compact` writes the day again.
fn recompact_day(lake: &Lake, rt: &Handle, key: String, r: &mut Repairs) -> Result<()> {
    let marker = lake.key_of(&key);
    let body = rt.block_on(lake.get_opt(&marker))?;
    rt.block_on(lake.delete(&marker))?;
    let day: Option<DayMarker> = body.and_then(|b| serde_json::from_slice(&b).ok());
    let Some(day) = day else {
        r.repaired.push(key);
        return Ok(());
    };
    let opts = crate::compact::CompactOptions {
        domain: Some(day.domain.clone()),
        from: Some(day.dt.clone()),
        to: Some(format!("{}~", day.dt)),
        min_age_micros: 0,
        now_micros: i64::MAX,
    };
    match rt.block_on(crate::compact::compact(lake, &opts)) {
        Ok(_) => r.repaired.push(key),
        Err(e) => r.unrepairable.push(Unrepairable {
            file: key.clone(),
            manifest: key,
            reason: e.to_string(),
        }),
    }
    Ok(())
}
