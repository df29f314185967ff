//! The manifest: written last, it marks a log file as done and lists everything its run wrote,
//! so a re-run can replace those objects and remove the ones it no longer writes.

use serde::{Deserialize, Serialize};

use crate::tables::registry::MANIFESTS;

/// Manifest format version.
pub(crate) const MANIFEST_VERSION: u32 = 1;

/// One object written by a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    /// Key relative to the destination.
    pub key: String,
    pub bytes: u64,
    /// Rows, for Parquet files.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rows: Option<u64>,
}

/// One partition of the access table: an hour, or in a day-partitioned lake a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionEntry {
    pub dt: String,
    /// `HH`; empty (and left out of the JSON) in a day-partitioned lake, whose partitions have no
    /// hour. A string rather than an `Option` so that manifests and the code that builds them
    /// stay as they were for the hour layout.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hour: String,
    pub rows: u64,
}

impl PartitionEntry {
    /// `dt=YYYY-MM-DD/hour=HH`, or `dt=YYYY-MM-DD` for a day partition: the partition's path
    /// under `<table>/domain=<d>/`.
    pub fn path(&self) -> String {
        if self.hour.is_empty() {
            format!("dt={}", self.dt)
        } else {
            format!("dt={}/hour={}", self.dt, self.hour)
        }
    }
}

/// Where the log file came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceEntry {
    pub name: String,
    /// Path or URL, with any signed query removed.
    pub location: String,
    pub bytes: u64,
    pub sha256: String,
    pub gzip: bool,
    pub bytes_decompressed: u64,
}

/// The commit marker of one log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub schema_version: u32,
    pub tool: String,
    pub domain: String,
    pub partition_tz: String,
    pub source: SourceEntry,
    /// `lines = rows + rejected + empty`
    pub lines: u64,
    pub rows: u64,
    pub rejected: u64,
    pub empty: u64,
    pub invalid_utf8: u64,
    pub partitions: Vec<PartitionEntry>,
    /// Every object written, the raw dump first; the manifest itself is not listed.
    pub objects: Vec<ObjectEntry>,
}

impl Manifest {
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.objects.iter().map(|o| o.key.as_str())
    }
}

/// What [`load_manifests`] does with a manifest that exists but cannot be read as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// Fail the load, naming the manifest: readers whose figures would silently miss a file
    /// (`report`, `ddl --partitions`) must not go on without it.
    Fail,
    /// Collect it in [`Manifests::unreadable`] and go on: `verify` reports it as a problem,
    /// `rebuild` as a file it cannot convert again, and neither stops at the first one.
    Collect,
}

/// A manifest and its key (relative to the destination).
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub manifest: Manifest,
}

/// The manifests under a destination (of one domain, when given).
#[derive(Debug, Default)]
pub struct Manifests {
    /// Sorted by key.
    pub entries: Vec<Entry>,
    /// Manifests that exist but cannot be read as one: (key, reason), sorted by key. Always
    /// empty with [`Unreadable::Fail`].
    pub unreadable: Vec<(String, String)>,
}

impl Manifests {
    /// The manifests alone, sorted by key.
    pub fn into_manifests(self) -> Vec<Manifest> {
        self.entries.into_iter().map(|e| e.manifest).collect()
    }
}

/// Reads every manifest under `_manifests/` (`_manifests/<domain>/` when a domain is given):
/// one listing, then [`super::read::concurrency`] reads at once, answers in key order. A
/// manifest deleted between the listing and its read is skipped (it is no longer there to
/// read); one that does not parse is handled as `policy` says. The one loader of manifests:
/// `report`, `ddl --partitions`, `verify` and `rebuild` all read them through it.
pub async fn load_manifests(
    lake: &super::store::Lake,
    domain: Option<&str>,
    policy: Unreadable,
) -> crate::Result<Manifests> {
    let mut prefix = lake.prefix.clone().join(MANIFESTS);
    if let Some(d) = domain {
        prefix = prefix.join(object_store::path::PathPart::from(d));
    }
    let mut keys: Vec<object_store::path::Path> = super::read::list_meta(lake, &prefix)
        .await?
        .into_iter()
        .map(|m| m.location)
        .filter(|k| k.as_ref().ends_with(".json"))
        .collect();
    keys.sort();
    let bodies = super::read::get_all(lake, keys.clone()).await?;
    let mut out = Manifests::default();
    for (path, bytes) in keys.iter().zip(bodies) {
        let Some(bytes) = bytes else { continue };
        let key = super::layout::relative(&lake.prefix, path);
        match (parse_manifest(path, &bytes), policy) {
            (Ok(manifest), _) => out.entries.push(Entry { key, manifest }),
            (Err(e), Unreadable::Fail) => return Err(e),
            (Err(crate::Error::Json { source, .. }), Unreadable::Collect) => {
                out.unreadable.push((key, source.to_string()))
            }
            (Err(e), Unreadable::Collect) => out.unreadable.push((key, e.to_string())),
        }
    }
    Ok(out)
}

/// A manifest read from `key`.
pub(crate) fn parse_manifest(
    key: &object_store::path::Path,
    bytes: &[u8],
) -> crate::Result<Manifest> {
    serde_json::from_slice::<Manifest>(bytes).map_err(|source| crate::Error::Json {
        what: format!("manifest {key}"),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::store::Lake;

    fn manifest(domain: &str) -> Manifest {
        Manifest {
            manifest_version: MANIFEST_VERSION,
            schema_version: 1,
            tool: "t".into(),
            domain: domain.into(),
            partition_tz: "+08:00".into(),
            source: SourceEntry {
                name: "f.gz".into(),
                location: "f.gz".into(),
                bytes: 1,
                sha256: String::new(),
                gzip: true,
                bytes_decompressed: 1,
            },
            lines: 0,
            rows: 0,
            rejected: 0,
            empty: 0,
            invalid_utf8: 0,
            partitions: Vec::new(),
            objects: Vec::new(),
        }
    }

    /// One loader, two policies: `Fail` names the manifest that does not parse, `Collect` keeps
    /// the others and lists it; a domain narrows the listing.
    #[tokio::test]
    async fn an_unreadable_manifest_fails_or_is_collected_as_asked() {
        let lake = Lake::open("memory://lake").unwrap();
        let put = |k: &str, body: Vec<u8>| {
            let lake = lake.clone();
            let key = lake.key_of(k);
            async move { lake.put(&key, body).await.unwrap() }
        };
        put(
            "_manifests/a.com/2024_03_05/f.json",
            serde_json::to_vec(&manifest("a.com")).unwrap(),
        )
        .await;
        put("_manifests/b.com/2024_03_05/g.json", b"{not json".to_vec()).await;
        put("_manifests/b.com/2024_03_05/notes.txt", b"x".to_vec()).await;

        let e = load_manifests(&lake, None, Unreadable::Fail)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("manifest lake/_manifests/b.com/2024_03_05/g.json"),
            "{e}"
        );

        let all = load_manifests(&lake, None, Unreadable::Collect)
            .await
            .unwrap();
        assert_eq!(all.entries.len(), 1);
        assert_eq!(all.entries[0].key, "_manifests/a.com/2024_03_05/f.json");
        assert_eq!(all.entries[0].manifest, manifest("a.com"));
        assert_eq!(all.unreadable.len(), 1);
        assert_eq!(all.unreadable[0].0, "_manifests/b.com/2024_03_05/g.json");

        let a = load_manifests(&lake, Some("a.com"), Unreadable::Fail)
            .await
            .unwrap();
        assert_eq!(a.into_manifests(), vec![manifest("a.com")]);
    }
}
