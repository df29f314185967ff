//! Object keys of the lake. Every key derives from the source's identity (domain, file name,
//! partition values), never from the clock or a random id, so a retried run rewrites the same keys.
//!
//! Parts that come from outside (a domain, an event name, a file name) go through
//! [`object_store::path::PathPart`], which percent-encodes `/`, control characters and the other
//! characters object stores reject, and turns `.`/`..` into `%2E`/`%2E%2E`: nothing escapes its folder.

use std::ops::Range;

use object_store::path::{Path, PathPart};

use super::descriptor::PartitionBy;
use crate::access::time::{days_from_civil, days_in_month, PartitionTz, HOUR_MICROS};
use crate::tables::registry::{
    self, Folder, Keys, ACCESS_FOLDER, MANIFESTS, RAW, REJECTS, TOP_FOLDER, TRAFFIC_FOLDER,
    VISITORS_FOLDER,
};

/// Builds a key under `prefix` from literal parts and outside values, each one path part.
pub fn key(prefix: &Path, parts: &[&str]) -> Path {
    let mut p = prefix.clone();
    for part in parts {
        p = p.join(PathPart::from(*part));
    }
    p
}

/// Builds a key in `folder` (whose path may have several parts, `audit/cache`) from outside
/// values, each one path part.
pub(crate) fn folder_key(prefix: &Path, folder: &Folder, parts: &[&str]) -> Path {
    let mut p = prefix.clone();
    for part in folder.parts() {
        p = p.join(PathPart::from(part));
    }
    for part in parts {
        p = p.join(PathPart::from(*part));
    }
    p
}

/// Where one log file's objects go.
#[derive(Debug, Clone)]
pub struct FileLayout {
    pub prefix: Path,
    pub domain: String,
    /// `YYYY_MM_DD` from the file name, `undated` when the name has none.
    pub date_folder: String,
    pub file_name: String,
    pub stem: String,
    /// The lake's partitioning (its descriptor's): whether the table keys have an `hour=` level.
    pub partition_by: PartitionBy,
}

impl FileLayout {
    /// `raw/<domain>/<YYYY_MM_DD>/<file name>`
    pub fn raw(&self) -> Path {
        self.raw_at(&self.prefix)
    }

    /// `access/domain=<d>/dt=<YYYY-MM-DD>/hour=<HH>/<stem>[-<n>].parquet`, or in a day lake
    /// `access/domain=<d>/dt=<YYYY-MM-DD>/<stem>[-<n>].parquet` (`hour` is then not used).
    pub fn access(&self, dt: &str, hour: &str, n: usize) -> Path {
        self.partitioned(&ACCESS_FOLDER, dt, hour, n)
    }

    /// `traffic/domain=<d>/dt=<YYYY-MM-DD>/hour=<HH>/<stem>.parquet`, or in a day lake
    /// `traffic/domain=<d>/dt=<YYYY-MM-DD>/<stem>.parquet` (`hour` is then not used).
    pub fn traffic(&self, dt: &str, hour: &str) -> Path {
        self.partitioned(&TRAFFIC_FOLDER, dt, hour, 0)
    }

    /// `heavy_hitters/domain=<d>/dt=<YYYY-MM-DD>/hour=<HH>/<stem>.parquet`
    pub fn top(&self, dt: &str, hour: &str) -> Path {
        self.partitioned(&TOP_FOLDER, dt, hour, 0)
    }

    /// `visitors/domain=<d>/dt=<YYYY-MM-DD>/hour=<HH>/<stem>.parquet`
    pub fn visitors(&self, dt: &str, hour: &str) -> Path {
        self.partitioned(&VISITORS_FOLDER, dt, hour, 0)
    }

    fn partitioned(&self, table: &Folder, dt: &str, hour: &str, n: usize) -> Path {
        let file = if n == 0 {
            format!("{}.parquet", self.stem)
        } else {
            format!("{}-{n}.parquet", self.stem)
        };
        let domain = format!("domain={}", self.domain);
        let dt = format!("dt={dt}");
        match self.partition_by {
            PartitionBy::Hour => folder_key(
                &self.prefix,
                table,
                &[&domain, &dt, &format!("hour={hour}"), &file],
            ),
            PartitionBy::Day => folder_key(&self.prefix, table, &[&domain, &dt, &file]),
        }
    }

    /// `rejects/<domain>/<YYYY_MM_DD>/<stem>.jsonl`
    pub fn rejects(&self) -> Path {
        self.rejects_at(&self.prefix)
    }

    /// `_manifests/<domain>/<YYYY_MM_DD>/<stem>.json`
    pub fn manifest(&self) -> Path {
        key(
            &self.prefix,
            &[
                MANIFESTS,
                &self.domain,
                &self.date_folder,
                &format!("{}.json", self.stem),
            ],
        )
    }
}

impl FileLayout {
    /// The unit of work of this file's uploads, for [`Lake::for_work`](super::store::Lake::for_work):
    /// its local staging folder is `_staging/<domain>/<YYYY_MM_DD>/<stem>`.
    pub(crate) fn staging_group(&self) -> [&str; 3] {
        [&self.domain, &self.date_folder, &self.stem]
    }

    /// Whether `relative` (a key relative to the destination, as a manifest lists it) is one
    /// that a run of this file writes, in this layout only (a lake never changes its layout). A
    /// re-run deletes only such keys of the previous manifest, so a manifest that was edited or
    /// damaged can never make it delete anything else.
    pub(crate) fn owns(&self, relative: &str) -> bool {
        let root = Path::default();
        let Ok(k) = Path::parse(relative) else {
            return false;
        };
        if k == self.rejects_at(&root) || k == self.raw_at(&root) {
            return true;
        }
        let parts: Vec<PathPart<'_>> = k.parts().collect();
        let (table, domain, dt, hour_ok, file) = match (self.partition_by, parts.as_slice()) {
            (PartitionBy::Hour, [table, domain, dt, hour, file]) => {
                (table, domain, dt, hour.as_ref().starts_with("hour="), file)
            }
            (PartitionBy::Day, [table, domain, dt, file]) => (table, domain, dt, true, file),
            _ => return false,
        };
        let stem = PathPart::from(self.stem.as_str());
        let file = file.as_ref();
        let numbered = |rest: &str| {
            rest.strip_prefix('-')
                .and_then(|r| r.strip_suffix(".parquet"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        // Only a per-file table's keys: manifested, partitioned, one path part.
        let Some(table) = registry::folder(table.as_ref())
            .filter(|t| t.manifested && t.keys == Keys::Partitioned)
        else {
            return false;
        };
        let file_ok = file
            .strip_prefix(stem.as_ref())
            .is_some_and(|rest| rest == ".parquet" || (table.numbered && numbered(rest)));
        *domain == PathPart::from(format!("domain={}", self.domain).as_str())
            && dt.as_ref().starts_with("dt=")
            && hour_ok
            && file_ok
    }

    fn raw_at(&self, prefix: &Path) -> Path {
        folder_key(
            prefix,
            &RAW,
            &[&self.domain, &self.date_folder, &self.file_name],
        )
    }

    fn rejects_at(&self, prefix: &Path) -> Path {
        folder_key(
            prefix,
            &REJECTS,
            &[
                &self.domain,
                &self.date_folder,
                &format!("{}.jsonl", self.stem),
            ],
        )
    }
}

/// Days since the epoch of a `YYYY-MM-DD` date; `None` unless it is a real date.
pub fn parse_dt(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (y, m, d) = (i64::from(num(0..4)?), num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// The instants (micros, `[start, end)`) a partition covers on wall clock `tz`: the hour
/// `hour` of `dt`, or the whole day when `hour` is empty (a day lake's partition). `None` when
/// the values are not a date and an hour.
pub(crate) fn partition_span(dt: &str, hour: &str, tz: PartitionTz) -> Option<Range<i64>> {
    let days = parse_dt(dt)?;
    let (first, hours) = if hour.is_empty() {
        (0, 24)
    } else {
        (hour.parse().ok().filter(|h| (0..24).contains(h))?, 1)
    };
    let start = ((days * 24 + first) * 3600 - i64::from(tz.offset_secs)) * 1_000_000;
    Some(start..start + hours * HOUR_MICROS)
}

/// The span of the partition a table key (`access/domain=d/dt=2024-03-05[/hour=08]/x.parquet`)
/// lies in, in either layout; `None` when the key names no `dt=`.
pub(crate) fn key_partition_span(key: &str, tz: PartitionTz) -> Option<Range<i64>> {
    let (dt, hour) = key_partition(key)?;
    partition_span(dt, hour, tz)
}

/// The `dt` and `hour` values of a table key (`access/domain=d/dt=2024-03-05/hour=08/x.parquet`),
/// the hour empty in a day lake's key; `None` when the key names no `dt=`. The one place that
/// reads partition values back from keys.
pub(crate) fn key_partition(key: &str) -> Option<(&str, &str)> {
    let (mut dt, mut hour) = (None, "");
    for part in key.split('/') {
        if let Some(v) = part.strip_prefix("dt=") {
            dt = Some(v);
        } else if let Some(v) = part.strip_prefix("hour=") {
            hour = v;
        }
    }
    Some((dt?, hour))
}

/// The key of a path relative to the destination prefix, as listed in manifests.
pub fn relative(prefix: &Path, p: &Path) -> String {
    match p.prefix_match(prefix) {
        Some(parts) => parts
            .map(|p| p.as_ref().to_string())
            .collect::<Vec<_>>()
            .join("/"),
        None => p.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(domain: &str, file: &str) -> FileLayout {
        FileLayout {
            prefix: Path::from("lake"),
            domain: domain.into(),
            date_folder: "2024_03_05".into(),
            file_name: file.into(),
            stem: file.trim_end_matches(".gz").into(),
            partition_by: PartitionBy::Hour,
        }
    }

    fn day(l: FileLayout) -> FileLayout {
        FileLayout {
            partition_by: PartitionBy::Day,
            ..l
        }
    }

    #[test]
    fn keys_follow_the_design() {
        let l = layout("a.example.com", "a.example.com_2024_03_05_0800_0900.gz");
        assert_eq!(
            l.raw().as_ref(),
            "lake/raw/a.example.com/2024_03_05/a.example.com_2024_03_05_0800_0900.gz"
        );
        assert_eq!(
            l.access("2024-03-05", "08", 0).as_ref(),
            "lake/access/domain=a.example.com/dt=2024-03-05/hour=08/a.example.com_2024_03_05_0800_0900.parquet"
        );
        assert_eq!(
            l.access("2024-03-05", "08", 2).as_ref(),
            "lake/access/domain=a.example.com/dt=2024-03-05/hour=08/a.example.com_2024_03_05_0800_0900-2.parquet"
        );
        assert_eq!(
            l.rejects().as_ref(),
            "lake/rejects/a.example.com/2024_03_05/a.example.com_2024_03_05_0800_0900.jsonl"
        );
        assert_eq!(
            l.manifest().as_ref(),
            "lake/_manifests/a.example.com/2024_03_05/a.example.com_2024_03_05_0800_0900.json"
        );
        assert_eq!(
            relative(&Path::from("lake"), &l.rejects()),
            "rejects/a.example.com/2024_03_05/a.example.com_2024_03_05_0800_0900.jsonl"
        );
    }

    #[test]
    fn a_file_owns_only_its_own_keys() {
        let l = layout("a.example.com", "a.example.com_2024_03_05_0800_0900.gz");
        let root = Path::from("lake");
        for k in [
            l.raw(),
            l.rejects(),
            l.access("2024-03-05", "08", 0),
            l.access("2024-03-06", "00", 3),
            l.traffic("2024-03-05", "09"),
            l.top("2024-03-05", "09"),
            l.visitors("2024-03-06", "00"),
        ] {
            assert!(l.owns(&relative(&root, &k)), "{k}");
        }
        for k in [
            "_manifests/a.example.com/2024_03_05/a.example.com_2024_03_05_0800_0900.json",
            "access/domain=a.example.com/dt=2024-03-05/hour=08/a.example.com_2024_03_05_0800_0900_1.parquet",
            "access/domain=a.example.com/dt=2024-03-05/hour=08/other.parquet",
            "access/domain=b.example.com/dt=2024-03-05/hour=08/a.example.com_2024_03_05_0800_0900.parquet",
            "traffic/domain=a.example.com/dt=2024-03-05/hour=08/a.example.com_2024_03_05_0800_0900-1.parquet",
            "heavy_hitters/domain=a.example.com/dt=2024-03-05/hour=08/a.example.com_2024_03_05_0800_0900-1.parquet",
            "visitors/domain=b.example.com/dt=2024-03-05/hour=08/a.example.com_2024_03_05_0800_0900.parquet",
            "heavy_hitters/domain=a.example.com/dt=2024-03-05/hour=08/other.parquet",
            "raw/a.example.com/2024_03_05/other.gz",
            "audit/events/dt=2024-03-05/x.json",
            "../etc/passwd",
            "",
        ] {
            assert!(!l.owns(k), "{k}");
        }
    }

    #[test]
    fn a_day_lake_has_no_hour_level_and_owns_only_its_layout() {
        let hour = layout("a.example.com", "a.example.com_2024_03_05_0800_0900.gz");
        let l = day(hour.clone());
        let root = Path::from("lake");
        assert_eq!(
            l.access("2024-03-05", "08", 0).as_ref(),
            "lake/access/domain=a.example.com/dt=2024-03-05/a.example.com_2024_03_05_0800_0900.parquet"
        );
        assert_eq!(
            l.traffic("2024-03-05", "09").as_ref(),
            "lake/traffic/domain=a.example.com/dt=2024-03-05/a.example.com_2024_03_05_0800_0900.parquet"
        );
        assert_eq!(l.manifest(), hour.manifest());
        assert_eq!(l.raw(), hour.raw());
        for k in [
            l.raw(),
            l.rejects(),
            l.access("2024-03-05", "", 0),
            l.access("2024-03-06", "", 2),
            l.traffic("2024-03-05", ""),
        ] {
            let rel = relative(&root, &k);
            assert!(l.owns(&rel), "{k}");
        }
        // Each layout owns exactly its own table keys.
        for (a, b) in [(&l, &hour), (&hour, &l)] {
            for k in [
                a.access("2024-03-05", "08", 0),
                a.traffic("2024-03-05", "08"),
            ] {
                assert!(!b.owns(&relative(&root, &k)), "{k}");
            }
        }
        for k in [
            "access/domain=a.example.com/dt=2024-03-05/other.parquet",
            "traffic/domain=a.example.com/dt=2024-03-05/a.example.com_2024_03_05_0800_0900-1.parquet",
            "access/domain=b.example.com/dt=2024-03-05/a.example.com_2024_03_05_0800_0900.parquet",
            "access/domain=a.example.com/a.example.com_2024_03_05_0800_0900.parquet",
        ] {
            assert!(!l.owns(k), "{k}");
        }
    }

    #[test]
    fn partition_spans_in_both_layouts() {
        let tz = PartitionTz::default();
        // 2024-03-05T09:00+08:00 = 01:00Z.
        let nine = 1_709_600_400_000_000;
        let h = 3_600_000_000;
        assert_eq!(partition_span("2024-03-05", "09", tz), Some(nine..nine + h));
        assert_eq!(
            partition_span("2024-03-05", "", tz),
            Some(nine - 9 * h..nine + 15 * h)
        );
        assert_eq!(
            key_partition_span("access/domain=d/dt=2024-03-05/hour=09/x.parquet", tz),
            Some(nine..nine + h)
        );
        assert_eq!(
            key_partition_span("traffic/domain=d/dt=2024-03-05/x.parquet", tz),
            Some(nine - 9 * h..nine + 15 * h)
        );
        assert_eq!(key_partition_span("access/x.parquet", tz), None);
        assert_eq!(
            key_partition("audit/cache/event=E/dt=2024-03-05/t.parquet"),
            Some(("2024-03-05", ""))
        );
        assert_eq!(partition_span("2024-02-30", "", tz), None);
        assert_eq!(partition_span("2024-03-05", "24", tz), None);
    }

    #[test]
    fn outside_values_cannot_escape() {
        for evil in ["..", ".", "a/../../etc", "a\nb", "x/y"] {
            let l = layout(evil, "f.gz");
            for k in [l.raw(), l.access("d", "h", 0), l.manifest()] {
                let parts: Vec<_> = k.parts().collect();
                assert!(
                    parts
                        .iter()
                        .all(|p| p.as_ref() != ".." && p.as_ref() != "."),
                    "{k}"
                );
                assert!(k.as_ref().starts_with("lake/"));
                assert!(!k.as_ref().contains('\n'));
            }
            // The domain stays one path part wherever it appears.
            assert_eq!(l.raw().parts().count(), 5, "{evil}");
        }
    }
}
