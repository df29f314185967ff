//! Object keys of the lake. Every key derives from the source's identity (domain, file name,
//! partition values), never from the clock or a random id, so a retried run rewrites the same keys.
//!
//! Parts that come from outside (a domain, an event name, a file name) go through
//! [`object_store::path::PathPart`], which percent-encodes `/`, control characters and the other
//! characters object stores reject, and turns `.`/`..` into `%2E`/`%2E%2E`: nothing escapes its folder.

use object_store::path::{Path, PathPart};

/// Builds a key under `prefix` from literal parts and outside values, each one path part.
pub fn key(prefix: &Path, parts: &[&str]) -> Path {
    let mut p = prefix.clone();
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
}

impl FileLayout {
    /// `raw/<domain>/<YYYY_MM_DD>/<file name>`
    pub fn raw(&self) -> Path {
        self.raw_at(&self.prefix)
    }

    /// `access/domain=<d>/dt=<YYYY-MM-DD>/hour=<HH>/<stem>[-<n>].parquet`
    pub fn access(&self, dt: &str, hour: &str, n: usize) -> Path {
        self.partitioned("access", dt, hour, n)
    }

    /// `traffic/domain=<d>/dt=<YYYY-MM-DD>/hour=<HH>/<stem>.parquet`
    pub fn traffic(&self, dt: &str, hour: &str) -> Path {
        self.partitioned("traffic", dt, hour, 0)
    }

    /// `heavy_hitters/domain=<d>/dt=<YYYY-MM-DD>/hour=<HH>/<stem>.parquet`
    pub fn top(&self, dt: &str, hour: &str) -> Path {
        self.partitioned("heavy_hitters", dt, hour, 0)
    }

    /// `visitors/domain=<d>/dt=<YYYY-MM-DD>/hour=<HH>/<stem>.parquet`
    pub fn visitors(&self, dt: &str, hour: &str) -> Path {
        self.partitioned("visitors", dt, hour, 0)
    }

    fn partitioned(&self, table: &str, dt: &str, hour: &str, n: usize) -> Path {
        let file = if n == 0 {
            format!("{}.parquet", self.stem)
        } else {
            format!("{}-{n}.parquet", self.stem)
        };
        key(
            &self.prefix,
            &[
                table,
                &format!("domain={}", self.domain),
                &format!("dt={dt}"),
                &format!("hour={hour}"),
                &file,
            ],
        )
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
                "_manifests",
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
    pub fn staging_group(&self) -> [&str; 3] {
        [&self.domain, &self.date_folder, &self.stem]
    }

    /// Whether `relative` (a key relative to the destination, as a manifest lists it) is one
    /// that a run of this file writes. A re-run deletes only such keys of the previous
    /// manifest, so a manifest that was edited or damaged can never make it delete anything
    /// else.
    pub fn owns(&self, relative: &str) -> bool {
        let root = Path::default();
        let Ok(k) = Path::parse(relative) else {
            return false;
        };
        if k == self.rejects_at(&root) || k == self.raw_at(&root) {
            return true;
        }
        let parts: Vec<PathPart<'_>> = k.parts().collect();
        let [table, domain, dt, hour, file] = parts.as_slice() else {
            return false;
        };
        let stem = PathPart::from(self.stem.as_str());
        let file = file.as_ref();
        let numbered = |rest: &str| {
            rest.strip_prefix('-')
                .and_then(|r| r.strip_suffix(".parquet"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        let file_ok = file.strip_prefix(stem.as_ref()).is_some_and(|rest| {
            rest == ".parquet" || (table.as_ref() == "access" && numbered(rest))
        });
        matches!(
            table.as_ref(),
            "access" | "traffic" | "heavy_hitters" | "visitors"
        ) && *domain == PathPart::from(format!("domain={}", self.domain).as_str())
            && dt.as_ref().starts_with("dt=")
            && hour.as_ref().starts_with("hour=")
            && file_ok
    }

    fn raw_at(&self, prefix: &Path) -> Path {
        key(
            prefix,
            &["raw", &self.domain, &self.date_folder, &self.file_name],
        )
    }

    fn rejects_at(&self, prefix: &Path) -> Path {
        key(
            prefix,
            &[
                "rejects",
                &self.domain,
                &self.date_folder,
                &format!("{}.jsonl", self.stem),
            ],
        )
    }
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
