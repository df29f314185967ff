//! Orphans: objects in the table folders that no manifest lists, and staging leftovers.

use std::collections::BTreeSet;

use crate::lake::compacted::COMPACTED;
use crate::lake::store::STAGING;

use super::{PARTITIONED_FOLDERS, TABLE_FOLDERS};

/// Whether `key` (relative to the destination) lies in a table folder or under `_staging/`:
/// the only places where verify looks for orphans, and the only keys repair may delete.
pub fn in_orphan_folders(key: &str) -> bool {
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
pub fn find_orphans<'a>(
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

/// Whether `key` is a live run's staging folder or lock file (`live`: run prefixes from
/// [`Lake::live_staging_runs`]).
pub(super) fn held_by_live_run(key: &str, live: &[String]) -> bool {
    live.iter().any(|run| {
        key.strip_prefix(run.as_str())
            .is_some_and(|rest| rest == ".lock" || rest.starts_with('/'))
    })
}
