//! The lake descriptor: `_cdnlake.json` at the destination root, the lake's own record of the
//! properties every file of it shares, so no command needs to be told them twice.
//!
//! ```json
//! {"format_version":1,"partition_by":"day","partition_tz":"+08:00","created_by":"cdnlake 0.2.0"}
//! ```
//!
//! - `partition_by`: `hour` (`access/domain=/dt=/hour=/`, the original layout) or `day`
//!   (`access/domain=/dt=/`). MaxCompute caps a table at 60,000 partitions and a query at 10,000;
//!   `domain × dt × hour` reaches the first within a year for seven domains (README, "Partitions").
//! - `partition_tz`: the wall clock that cuts `dt` (and `hour`). It is a lake property like the
//!   layout: files cut on two clocks would put the same instant under two `dt` values, and a
//!   query's partition filter would silently miss rows. So it is recorded too, and
//!   `--partition-tz` only chooses it for a new lake.
//! - `created_by`: informational, never compared (two versions of the tool may create the same
//!   lake at once and agree).
//!
//! # Who reads and writes it
//!
//! Every run that writes log files calls [`Descriptor::ensure`] once before it starts (`convert`,
//! `handle`, `serve` on its first conversion, `sync`), and then writes the layout the descriptor
//! says; a setting given to it that contradicts the descriptor is refused with one line naming
//! both values. The readers (`ddl`, `report`, `verify`, `rebuild`) call
//! [`Descriptor::load_or_default`]. The library's `convert_*` functions write what their
//! [`ConvertOptions`](crate::convert::ConvertOptions) say and do not read the descriptor: the
//! entry point that starts a run does, once, rather than once per file.
//!
//! # Lakes without a descriptor
//!
//! A lake written before the descriptor existed is `hour`, and reads as before. The first
//! writing run of a newer version records it: `hour`, and the time zone of a manifest it finds
//! (the files say which clock cut them). A run asking for `day` on such a lake is refused.
//!
//! # Two writers at once
//!
//! Two FC instances converting the first files of a new lake may both find no descriptor and
//! both write one. The write is a conditional put (`PutMode::Create`) where the store supports
//! it (local folders, S3 with `If-None-Match`): the loser reads the winner's descriptor and goes
//! on if it is the same, or fails naming both values. OSS answers 501 to conditional PUT, so
//! there the write is a plain PUT followed by a read back; two writers with the *same* settings
//! (the realistic case: instances of one function) are idempotent, two with different settings
//! racing on the very first file are caught only when the read back sees the other's write.

use object_store::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::store::{store_error, Lake};
use crate::access::time::PartitionTz;
use crate::error::{Error, Result, StoreOp};

/// Key of the descriptor, relative to the destination. Under `_`, so Spark and Hive skip it,
/// and outside every table folder that DuckDB globs.
pub(crate) const DESCRIPTOR: &str = "_cdnlake.json";

/// The descriptor format this version reads and writes.
pub(crate) const DESCRIPTOR_VERSION: u32 = 1;

/// The partition granularity of the `access` and `traffic` tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionBy {
    /// `domain=/dt=/hour=/`: the original layout; 24 partitions per domain and day.
    #[default]
    Hour,
    /// `domain=/dt=/`: one partition per domain and day, for MaxCompute's partition caps. Files
    /// stay one per source file (and day); the row groups' time statistics prune within a day.
    Day,
}

impl PartitionBy {
    /// `hour` or `day`.
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionBy::Hour => "hour",
            PartitionBy::Day => "day",
        }
    }

    /// Parses `hour` or `day` (any case).
    pub fn parse(s: &str) -> Option<PartitionBy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hour" => Some(PartitionBy::Hour),
            "day" => Some(PartitionBy::Day),
            _ => None,
        }
    }

    /// The hive partition keys of `table` in this layout: a day lake drops `hour` (only the
    /// `access` and `traffic` tables have one).
    pub fn keys(self, table: &crate::tables::Table) -> Vec<&'static str> {
        table
            .partitions
            .iter()
            .copied()
            .filter(|k| self == PartitionBy::Hour || *k != "hour")
            .collect()
    }
}

impl std::fmt::Display for PartitionBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lake's shared properties, as recorded in [`DESCRIPTOR`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    pub format_version: u32,
    pub partition_by: PartitionBy,
    #[serde(serialize_with = "tz_out", deserialize_with = "tz_in")]
    pub partition_tz: PartitionTz,
    /// The tool that wrote it (informational; not compared).
    #[serde(default)]
    pub created_by: String,
    /// Whether this came from the lake's own descriptor (false: a lake without one, read as
    /// `hour` on `+08:00`, or one not yet written).
    #[serde(skip)]
    pub recorded: bool,
}

fn tz_out<S: Serializer>(tz: &PartitionTz, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&tz.to_string())
}

fn tz_in<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<PartitionTz, D::Error> {
    let s = String::deserialize(d)?;
    PartitionTz::parse(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "partition_tz {s:?} is not a fixed offset like +08:00"
        ))
    })
}

/// The lake settings a command was given (a flag or its environment variable); `None`: not
/// given, so the lake's own, or the default for a new lake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    pub partition_by: Option<PartitionBy>,
    pub partition_tz: Option<PartitionTz>,
}

impl Descriptor {
    /// A descriptor for a new lake (not yet written).
    pub fn new(partition_by: PartitionBy, partition_tz: PartitionTz) -> Descriptor {
        Descriptor {
            format_version: DESCRIPTOR_VERSION,
            partition_by,
            partition_tz,
            created_by: format!("cdnlake {}", env!("CARGO_PKG_VERSION")),
            recorded: false,
        }
    }

    /// What a lake without a descriptor is: `hour` on the default `+08:00` clock.
    pub fn legacy() -> Descriptor {
        Descriptor::new(PartitionBy::Hour, PartitionTz::default())
    }

    /// The descriptor's key under `lake`.
    pub fn key(lake: &Lake) -> Path {
        lake.prefix.clone().join(DESCRIPTOR)
    }

    /// Reads the lake's descriptor; `None` when it has none. One it cannot read (bad JSON, a
    /// newer format) is an error: guessing a layout would write files where readers of the lake
    /// do not look.
    pub async fn load(lake: &Lake) -> Result<Option<Descriptor>> {
        let key = Descriptor::key(lake);
        let Some(bytes) = lake.get_opt(&key).await? else {
            return Ok(None);
        };
        Descriptor::parse(&bytes, &key).map(Some)
    }

    fn parse(bytes: &[u8], key: &Path) -> Result<Descriptor> {
        let mut d: Descriptor = serde_json::from_slice(bytes).map_err(|source| Error::Json {
            what: format!("lake descriptor {key}"),
            source,
        })?;
        if d.format_version == 0 || d.format_version > DESCRIPTOR_VERSION {
            return Err(Error::Config {
                setting: "lake descriptor format_version",
                value: d.format_version.to_string(),
                reason: format!(
                    "{key} is of a format this cdnlake does not know (it reads version {DESCRIPTOR_VERSION}): written by a newer cdnlake?"
                ),
            });
        }
        d.recorded = true;
        Ok(d)
    }

    /// The lake's descriptor, or [`Descriptor::legacy`] for a lake without one (including one
    /// not written yet). For the readers: `ddl`, `report`, `verify`, `rebuild`.
    pub async fn load_or_default(lake: &Lake) -> Result<Descriptor> {
        Ok(Descriptor::load(lake)
            .await?
            .unwrap_or_else(Descriptor::legacy))
    }

    /// The descriptor a writing run must follow: the lake's own, checked against `wanted`; for
    /// a lake without one, the one it gets now (see the module doc), written before the run's
    /// first object. A setting in `wanted` that contradicts the lake is an
    /// [`Error::LakeSettings`] naming both values.
    pub async fn ensure(lake: &Lake, wanted: &Wanted) -> Result<Descriptor> {
        if let Some(d) = Descriptor::load(lake).await? {
            d.check(lake, wanted, "recorded in _cdnlake.json")?;
            return Ok(d);
        }
        let d = match first_manifest_tz(lake).await? {
            // A lake written before descriptors: hour, on its files' clock.
            Some(tz) => {
                let d = Descriptor::new(PartitionBy::Hour, tz);
                d.check(
                    lake,
                    wanted,
                    "a lake written before _cdnlake.json is partitioned by hour, on its manifests' clock",
                )?;
                d
            }
            None => Descriptor::new(
                wanted.partition_by.unwrap_or_default(),
                wanted.partition_tz.unwrap_or_default(),
            ),
        };
        Descriptor::create(lake, d).await
    }

    /// Writes `d` unless a descriptor exists; returns the one the lake then has (ours, or an
    /// equal one another writer wrote first).
    async fn create(lake: &Lake, mut d: Descriptor) -> Result<Descriptor> {
        let key = Descriptor::key(lake);
        let mut body = serde_json::to_vec_pretty(&d).map_err(|source| Error::Json {
            what: format!("lake descriptor {key}"),
            source,
        })?;
        body.push(b'\n');
        match lake.put_if_absent(&key, body.clone()).await {
            Ok(_) => {
                d.recorded = true;
                return Ok(d);
            }
            Err(object_store::Error::AlreadyExists { .. }) => {}
            // OSS has no conditional PUT: write, then read back what the lake holds.
            Err(
                object_store::Error::NotImplemented { .. }
                | object_store::Error::NotSupported { .. },
            ) => lake.put(&key, body).await?,
            Err(source) => return Err(store_error(StoreOp::Write, &key, source)),
        }
        let theirs = Descriptor::load(lake)
            .await?
            .ok_or_else(|| Error::Internal(format!("{key} was written but cannot be read back")))?;
        theirs.check(
            lake,
            &Wanted {
                partition_by: Some(d.partition_by),
                partition_tz: Some(d.partition_tz),
            },
            "written by another run at the same time",
        )?;
        Ok(theirs)
    }

    /// Fails, naming both values, when `wanted` contradicts this descriptor (one from
    /// [`Descriptor::load_or_default`]): for commands that read a lake and were given a setting.
    pub fn agrees(&self, lake: &Lake, wanted: &Wanted) -> Result<()> {
        let whence = if self.recorded {
            "recorded in _cdnlake.json"
        } else {
            "a lake without _cdnlake.json is partitioned by hour"
        };
        self.check(lake, wanted, whence)
    }

    /// Fails when `wanted` contradicts this descriptor; `whence` says where the lake's values
    /// come from.
    fn check(&self, lake: &Lake, wanted: &Wanted, whence: &str) -> Result<()> {
        let mismatch = |setting: &'static str, lake_value: String, given: String| {
            Err(Error::LakeSettings {
                url: lake.url.clone(),
                setting,
                lake: lake_value,
                given,
                whence: whence.to_string(),
            })
        };
        if let Some(by) = wanted.partition_by.filter(|b| *b != self.partition_by) {
            return mismatch(
                "--partition-by",
                self.partition_by.to_string(),
                by.to_string(),
            );
        }
        if let Some(tz) = wanted.partition_tz.filter(|t| *t != self.partition_tz) {
            return mismatch(
                "--partition-tz",
                self.partition_tz.to_string(),
                tz.to_string(),
            );
        }
        Ok(())
    }
}

/// The partition clock of a manifest of the lake, if it has any: one list of `_manifests/` (its
/// first page only) and one read. An unreadable manifest says `+08:00`, the default it was
/// written with unless told otherwise.
async fn first_manifest_tz(lake: &Lake) -> Result<Option<PartitionTz>> {
    use futures::TryStreamExt;
    let prefix = lake.prefix.clone().join(crate::tables::registry::MANIFESTS);
    let mut list = lake.list_stream(&prefix);
    let first = loop {
        match list.try_next().await? {
            Some(m) if m.location.as_ref().ends_with(".json") => break Some(m.location),
            Some(_) => continue,
            None => break None,
        }
    };
    drop(list);
    let Some(key) = first else {
        return Ok(None);
    };
    let tz = lake
        .get_opt(&key)
        .await?
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.get("partition_tz")
                .and_then(|t| t.as_str())
                .and_then(PartitionTz::parse)
        })
        .unwrap_or_default();
    Ok(Some(tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tz(s: &str) -> PartitionTz {
        PartitionTz::parse(s).unwrap()
    }

    #[tokio::test]
    async fn a_new_lake_records_what_it_was_given_once() {
        let lake = Lake::open("memory://").unwrap();
        assert_eq!(Descriptor::load(&lake).await.unwrap(), None);
        let d = Descriptor::load_or_default(&lake).await.unwrap();
        assert_eq!((d.partition_by, d.recorded), (PartitionBy::Hour, false));

        let day = Wanted {
            partition_by: Some(PartitionBy::Day),
            partition_tz: None,
        };
        let d = Descriptor::ensure(&lake, &day).await.unwrap();
        assert_eq!(d.partition_by, PartitionBy::Day);
        assert_eq!(d.partition_tz, PartitionTz::default());
        assert!(d.recorded);
        let text = String::from_utf8(
            lake.get_opt(&Path::from(DESCRIPTOR))
                .await
                .unwrap()
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        assert!(text.contains("\"partition_by\": \"day\""), "{text}");
        assert!(text.contains("\"partition_tz\": \"+08:00\""), "{text}");

        // Not told: the lake's. Told the same: fine. Told otherwise: one line with both values.
        let again = Descriptor::ensure(&lake, &Wanted::default()).await.unwrap();
        assert_eq!(again.partition_by, PartitionBy::Day);
        Descriptor::ensure(&lake, &day).await.unwrap();
        let e = Descriptor::ensure(
            &lake,
            &Wanted {
                partition_by: Some(PartitionBy::Hour),
                partition_tz: None,
            },
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--partition-by hour") && e.contains("day") && !e.contains('\n'),
            "{e}"
        );
        let e = Descriptor::ensure(
            &lake,
            &Wanted {
                partition_by: None,
                partition_tz: Some(tz("UTC")),
            },
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("+00:00") && e.contains("+08:00"), "{e}");
    }

    #[tokio::test]
    async fn an_old_lake_is_hour_on_its_manifests_clock() {
        let lake = Lake::open("memory://").unwrap();
        lake.put(
            &Path::from("_manifests/a.com/2024_03_05/f.json"),
            br#"{"partition_tz":"+00:00"}"#.to_vec(),
        )
        .await
        .unwrap();
        let e = Descriptor::ensure(
            &lake,
            &Wanted {
                partition_by: Some(PartitionBy::Day),
                partition_tz: None,
            },
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("before _cdnlake.json") && e.contains("day"),
            "{e}"
        );
        // Nothing was recorded by the refused run.
        assert_eq!(Descriptor::load(&lake).await.unwrap(), None);
        let d = Descriptor::ensure(&lake, &Wanted::default()).await.unwrap();
        assert_eq!(
            (d.partition_by, d.partition_tz),
            (PartitionBy::Hour, tz("Z"))
        );
        assert!(Descriptor::load(&lake).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn two_writers_at_once_agree_or_the_second_fails() {
        let lake = Lake::open("memory://").unwrap();
        let first = Descriptor::new(PartitionBy::Day, PartitionTz::default());
        Descriptor::create(&lake, first.clone()).await.unwrap();
        // The same settings, created again (a second instance that also found none): fine.
        let same = Descriptor::create(&lake, first.clone()).await.unwrap();
        assert_eq!(same.partition_by, PartitionBy::Day);
        let e = Descriptor::create(&lake, Descriptor::legacy())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("another run"), "{e}");
    }

    #[tokio::test]
    async fn a_descriptor_of_a_newer_format_is_refused() {
        let lake = Lake::open("memory://").unwrap();
        lake.put(
            &Path::from(DESCRIPTOR),
            br#"{"format_version":2,"partition_by":"day","partition_tz":"+08:00"}"#.to_vec(),
        )
        .await
        .unwrap();
        let e = Descriptor::load(&lake).await.unwrap_err().to_string();
        assert!(e.contains("newer cdnlake"), "{e}");
        lake.put(
            &Path::from(DESCRIPTOR),
            br#"{"format_version":1,"partition_by":"week","partition_tz":"+08:00"}"#.to_vec(),
        )
        .await
        .unwrap();
        assert!(Descriptor::load(&lake).await.is_err());
    }
}
