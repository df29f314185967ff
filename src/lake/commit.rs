//! The one commit step every writer goes through.
//!
//! A writer never makes anything visible itself: it hands back [`Staged`] objects (uploads
//! written in full, not completed). The caller gathers them in a [`Commit`] and publishes them
//! together; for a log file, [`replace_manifest`] then removes what an earlier run wrote and
//! this one did not, and writes the manifest last. This is the split delta-rs makes between
//! writing files and committing them: the writers know formats, the commit knows the store.

use std::collections::BTreeSet;

use object_store::path::Path;
use tokio::runtime::Handle;

use super::layout::relative;
use super::manifest::{Manifest, ObjectEntry};
use super::sink::ObjectSink;
use super::store::Lake;
use crate::error::{Error, Result};

/// An object written in full but not yet visible, and the rows it holds (Parquet files and
/// JSON Lines; `None` for the raw dump and event documents).
pub(crate) struct Staged {
    pub sink: ObjectSink,
    pub rows: Option<u64>,
}

impl Staged {
    /// The object's full key.
    pub fn key(&self) -> &Path {
        self.sink.key()
    }
}

/// Objects staged by one unit of work (a log file, an event), published together.
#[derive(Default)]
pub(crate) struct Commit {
    staged: Vec<Staged>,
}

impl Commit {
    pub fn new() -> Commit {
        Commit::default()
    }

    pub fn stage(&mut self, s: Staged) {
        self.staged.push(s);
    }

    pub(crate) fn stage_all(&mut self, s: impl IntoIterator<Item = Staged>) {
        self.staged.extend(s);
    }

    /// Completes every upload concurrently (one round trip rather than one per object) and
    /// returns their manifest entries in staging order. The objects become visible one by one,
    /// as with any set of objects in a store; the manifest written after them is what marks the
    /// whole as done.
    pub(crate) fn publish(self, lake: &Lake) -> Result<Vec<ObjectEntry>> {
        let keys: Vec<(String, Option<u64>)> = self
            .staged
            .iter()
            .map(|s| (relative(&lake.prefix, s.key()), s.rows))
            .collect();
        let sizes = ObjectSink::complete_all(self.staged.into_iter().map(|s| s.sink).collect())?;
        Ok(keys
            .into_iter()
            .zip(sizes)
            .map(|((key, rows), bytes)| ObjectEntry { key, bytes, rows })
            .collect())
    }
}

/// Makes `manifest` the commit marker at `key`: first removes the keys `previous` listed that
/// `manifest` does not (so a failed delete leaves the old manifest naming the key, and a retry
/// finds it again), then writes the manifest. Only keys `owned` accepts are ever deleted: a
/// damaged or edited manifest cannot make a run delete another file's objects. Returns the
/// keys removed.
pub(crate) fn replace_manifest(
    lake: &Lake,
    rt: &Handle,
    key: &Path,
    previous: Option<&Manifest>,
    manifest: &Manifest,
    owned: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let body = serde_json::to_vec_pretty(manifest).map_err(|source| Error::Json {
        what: format!("manifest {key}"),
        source,
    })?;
    let keep: BTreeSet<&str> = manifest.keys().collect();
    let mut removed = Vec::new();
    if let Some(prev) = previous {
        for k in prev.keys().filter(|k| !keep.contains(k)) {
            if !owned(k) {
                tracing::warn!(key = %k, manifest = %key, "not deleting a key outside this file's layout");
                continue;
            }
            rt.block_on(lake.delete(&lake.key_of(k)))?;
            removed.push(k.to_string());
        }
    }
    rt.block_on(lake.put(key, body))?;
    Ok(removed)
}

/// Reads the manifest of an earlier run, if any. An unreadable one is reported and ignored (the
/// new run rewrites everything it owns anyway; only stale-key cleanup is lost).
pub fn read_manifest(lake: &Lake, rt: &Handle, key: &Path) -> Result<Option<Manifest>> {
    let Some(bytes) = rt.block_on(lake.get_opt(key))? else {
        return Ok(None);
    };
    match serde_json::from_slice::<Manifest>(&bytes) {
        Ok(m) => Ok(Some(m)),
        Err(e) => {
            tracing::warn!(%key, error = %e, "ignoring unreadable manifest of an earlier run");
            Ok(None)
        }
    }
}
