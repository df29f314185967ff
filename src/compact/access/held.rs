//! Conversions of a file a compacted access day holds: what they need not publish, and the
//! splice of their new rows into the day object before their manifest.

use super::*;

/// A staged object a conversion did not publish because the day object holds the same rows:
/// its position among the conversion's objects and its manifest entry (the per-file key).
pub(crate) struct Unpublished {
    at: usize,
    entry: ObjectEntry,
}

/// The manifest entry (per-file key, size, rows) of a staged incoming object.
fn entry_of(prefix: &Path, s: &Staged) -> Option<(String, ObjectEntry)> {
    let rel = relative(prefix, s.key());
    let per_file = from_incoming(&rel)?.to_string();
    let dt = key_dt(&per_file)?.to_string();
    Some((
        dt,
        ObjectEntry {
            key: per_file,
            bytes: s.sink.written(),
            rows: s.rows,
        },
    ))
}

/// Before a conversion publishes: the incoming objects of days whose day object already holds
/// the same rows (same file, same SHA-256, same writer, same objects) are dropped (their
/// uploads aborted: nothing to publish, no day to rewrite). `first` is the position of
/// `staged[0]` among the conversion's objects.
pub(crate) fn drop_unchanged(
    prefix: &Path,
    held: &BTreeMap<String, HeldSource>,
    sha256: &str,
    tool: &str,
    staged: Vec<Staged>,
    first: usize,
) -> (Vec<Staged>, Vec<Unpublished>) {
    if held.is_empty() {
        return (staged, Vec::new());
    }
    let mut by_dt: BTreeMap<String, Vec<ObjectEntry>> = BTreeMap::new();
    for s in &staged {
        if let Some((dt, e)) = entry_of(prefix, s) {
            by_dt.entry(dt).or_default().push(e);
        }
    }
    let unchanged: BTreeSet<&String> = held
        .iter()
        .filter(|(dt, h)| {
            h.sha256 == sha256
                && h.tool == tool
                && by_dt.get(*dt).is_some_and(|objects| *objects == h.objects)
        })
        .map(|(dt, _)| dt)
        .collect();
    let mut keep = Vec::new();
    let mut dropped = Vec::new();
    for (i, s) in staged.into_iter().enumerate() {
        match entry_of(prefix, &s) {
            Some((dt, entry)) if unchanged.contains(&dt) => {
                dropped.push(Unpublished {
                    at: first + i,
                    entry,
                });
                // Dropping the sink aborts its upload: nothing becomes visible.
                drop(s);
            }
            _ => keep.push(s),
        }
    }
    (keep, dropped)
}

/// What a conversion of one log file is, for [`finish_held`].
pub(crate) struct Converted<'a> {
    pub domain: &'a str,
    pub source: &'a str,
    /// The manifest's key, relative.
    pub manifest: &'a str,
    pub sha256: &'a str,
    pub tool: &'a str,
}

/// After a conversion published its objects, before its manifest: splices the rows it wrote
/// under `_incoming/` into the day objects that hold the file (one PUT per day), removes the
/// file from a compacted day it no longer has rows in, and returns the manifest's object list
/// with the per-file keys (as without compaction: the manifest is the same either way).
pub(crate) fn finish_held(
    lake: &Lake,
    rt: &Handle,
    c: &Converted<'_>,
    held: &BTreeMap<String, HeldSource>,
    published: Vec<ObjectEntry>,
    unpublished: Vec<Unpublished>,
    previous: Option<&Manifest>,
) -> Result<Vec<ObjectEntry>> {
    let total = published.len() + unpublished.len();
    let mut objects = Vec::with_capacity(total);
    let mut published = published.into_iter();
    let mut unpublished = unpublished.into_iter().peekable();
    while objects.len() < total {
        match unpublished.peek() {
            Some(u) if u.at == objects.len() => {
                if let Some(u) = unpublished.next() {
                    objects.push(u.entry);
                }
            }
            _ => match published.next() {
                Some(o) => objects.push(o),
                None => break,
            },
        }
    }
    objects.extend(unpublished.map(|u| u.entry));
    // Incoming objects published: spliced into their day, then gone.
    let mut incoming: BTreeMap<String, (Vec<Path>, Vec<ObjectEntry>)> = BTreeMap::new();
    for o in &mut objects {
        let Some(per_file) = from_incoming(&o.key).map(str::to_string) else {
            continue;
        };
        let Some(dt) = key_dt(&per_file).map(str::to_string) else {
            continue;
        };
        let e = incoming.entry(dt).or_default();
        e.0.push(lake.key_of(&o.key));
        o.key = per_file;
        e.1.push(o.clone());
    }
    let new = |objects: Vec<ObjectEntry>| HeldSource {
        source: c.source.to_string(),
        manifest: c.manifest.to_string(),
        sha256: c.sha256.to_string(),
        tool: c.tool.to_string(),
        rows: objects.iter().filter_map(|o| o.rows).sum(),
        first_row_group: 0,
        row_groups: 0,
        objects,
    };
    for (dt, (keys, entries)) in incoming {
        if held.contains_key(&dt) {
            stall_point("access-incoming", &dt);
            rt.block_on(splice(lake, c.domain, &dt, new(entries), keys))?;
        }
    }
    // A compacted day the previous run wrote rows into and this one does not.
    let now: BTreeSet<&str> = objects
        .iter()
        .filter(|o| is_day_access(&o.key))
        .filter_map(|o| key_dt(&o.key))
        .collect();
    let gone: BTreeSet<String> = previous
        .into_iter()
        .flat_map(|m| m.objects.iter())
        .filter(|o| is_day_access(&o.key))
        .filter_map(|o| key_dt(&o.key))
        .filter(|dt| !now.contains(dt))
        .map(str::to_string)
        .collect();
    for dt in gone {
        if held_by_day(lake, rt, c.domain, &dt, c.source)?.is_some() {
            rt.block_on(splice(lake, c.domain, &dt, new(Vec::new()), Vec::new()))?;
        }
    }
    Ok(objects)
}
