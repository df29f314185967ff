//! A manifest against the listing: existence, sizes and the counts, pure; and a footer's row
//! count against the manifest's.

use std::collections::BTreeMap;

use crate::lake::manifest::Manifest;
use crate::repair::Entry;
use crate::tables::access::ACCESS;
use crate::tables::registry::{RAW, REJECTS};

use super::{Problem, ProblemKind};

/// A Parquet object whose footer is to be read: it exists with the recorded size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FooterCheck {
    /// Index of its manifest in the entries checked.
    pub entry: usize,
    pub key: String,
    pub bytes: u64,
    pub rows: u64,
}

/// The checks that need no I/O beyond the listing: existence, sizes, and the counts. Returns
/// the problems, the footers still to read, and the number of objects checked.
pub fn check_manifests(
    entries: &[Entry],
    sizes: &BTreeMap<String, u64>,
) -> (Vec<Problem>, Vec<FooterCheck>, u64) {
    let mut problems = Vec::new();
    let mut footers = Vec::new();
    let mut objects = 0u64;
    for (i, entry) in entries.iter().enumerate() {
        let mut found = Findings {
            entry,
            problems: &mut problems,
        };
        lines_reconcile(&mut found);
        access_rows_add_up(&mut found);
        partition_rows_add_up(&mut found);
        one_rejects_object(&mut found);
        raw_dump_first(&mut found);
        objects += objects_as_listed(&mut found, i, sizes, &mut footers);
    }
    (problems, footers, objects)
}

/// The problems of one manifest, in the order its checks find them.
struct Findings<'a> {
    entry: &'a Entry,
    problems: &'a mut Vec<Problem>,
}

impl<'a> Findings<'a> {
    fn manifest(&self) -> &'a Manifest {
        &self.entry.manifest
    }

    /// A problem with `key` (an object, or the manifest's own key for its counts).
    fn add(&mut self, key: &str, kind: ProblemKind, detail: String) {
        self.problems.push(Problem {
            file: self.entry.manifest.source.name.clone(),
            manifest: self.entry.key.clone(),
            key: key.to_string(),
            kind,
            detail,
        });
    }

    /// A problem with the manifest's counts.
    fn add_counts(&mut self, kind: ProblemKind, detail: String) {
        let key = &self.entry.key;
        self.add(key, kind, detail);
    }
}

/// Whether `key` lies in `folder` (`access`, not `accessx`).
fn in_folder(key: &str, folder: &str) -> bool {
    key.strip_prefix(folder)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// `lines = rows + rejected + empty`, without overflow.
fn lines_reconcile(found: &mut Findings) {
    let m = found.manifest();
    let accounted = m
        .rows
        .checked_add(m.rejected)
        .and_then(|n| n.checked_add(m.empty));
    if accounted != Some(m.lines) {
        let detail = format!(
            "{} lines != {} rows + {} rejected + {} empty",
            m.lines, m.rows, m.rejected, m.empty
        );
        found.add_counts(ProblemKind::Counts, detail);
    }
}

/// The access files' recorded rows add up to the file's rows.
fn access_rows_add_up(found: &mut Findings) {
    let m = found.manifest();
    let access: Vec<_> = m
        .objects
        .iter()
        .filter(|o| in_folder(&o.key, ACCESS.folder))
        .collect();
    let access_rows: u64 = access.iter().filter_map(|o| o.rows).sum();
    if access_rows != m.rows {
        let detail = format!(
            "the {} access files record {access_rows} rows, the file {}",
            access.len(),
            m.rows
        );
        found.add_counts(ProblemKind::AccessRows, detail);
    }
}

/// The partitions' rows add up to the file's rows.
fn partition_rows_add_up(found: &mut Findings) {
    let m = found.manifest();
    let partition_rows: u64 = m.partitions.iter().map(|p| p.rows).sum();
    if partition_rows != m.rows {
        let detail = format!(
            "the {} partitions record {partition_rows} rows, the file {}",
            m.partitions.len(),
            m.rows
        );
        found.add_counts(ProblemKind::PartitionRows, detail);
    }
}

/// One rejects object holding the rejected lines when there are any, none otherwise.
fn one_rejects_object(found: &mut Findings) {
    let m = found.manifest();
    let rejects: Vec<_> = m
        .objects
        .iter()
        .filter(|o| in_folder(&o.key, REJECTS.path))
        .collect();
    match rejects.as_slice() {
        [] if m.rejected > 0 => found.add_counts(
            ProblemKind::RejectsRows,
            format!("{} lines rejected, but no rejects object", m.rejected),
        ),
        [] => {}
        [r] if r.rows == Some(m.rejected) => {}
        [r] => found.add(
            &r.key,
            ProblemKind::RejectsRows,
            format!(
                "records {} rejected lines, the file {}",
                r.rows.map_or("no".to_string(), |n| n.to_string()),
                m.rejected
            ),
        ),
        more => found.add_counts(
            ProblemKind::RejectsRows,
            format!("{} rejects objects listed, expected one", more.len()),
        ),
    }
}

/// The raw dump is listed first, with the source's size.
fn raw_dump_first(found: &mut Findings) {
    let m = found.manifest();
    match m.objects.first() {
        Some(raw) if in_folder(&raw.key, RAW.path) => {
            if raw.bytes != m.source.bytes {
                found.add(
                    &raw.key,
                    ProblemKind::Size,
                    format!(
                        "the raw dump is recorded as {} bytes, the source as {}",
                        raw.bytes, m.source.bytes
                    ),
                );
            }
        }
        _ => found.add_counts(
            ProblemKind::Manifest,
            "the manifest does not list the raw dump first".into(),
        ),
    }
}

/// Every listed object exists with its recorded size, and a Parquet one records its rows: its
/// footer is then to be read (into `footers`, for entry `i`). Returns the objects checked.
fn objects_as_listed(
    found: &mut Findings,
    i: usize,
    sizes: &BTreeMap<String, u64>,
    footers: &mut Vec<FooterCheck>,
) -> u64 {
    let objects = &found.manifest().objects;
    for o in objects {
        match sizes.get(&o.key) {
            None => found.add(&o.key, ProblemKind::Missing, "does not exist".into()),
            Some(&n) if n != o.bytes => found.add(
                &o.key,
                ProblemKind::Size,
                format!("{n} bytes, the manifest records {}", o.bytes),
            ),
            Some(_) if o.key.ends_with(".parquet") => match o.rows {
                Some(rows) => footers.push(FooterCheck {
                    entry: i,
                    key: o.key.clone(),
                    bytes: o.bytes,
                    rows,
                }),
                None => found.add(
                    &o.key,
                    ProblemKind::Rows,
                    "the manifest records no row count".into(),
                ),
            },
            Some(_) => {}
        }
    }
    objects.len() as u64
}

/// The problem, if any, of a Parquet object whose footer says `footer` (its row count, or why
/// it cannot be read).
pub fn check_footer(
    entry: &Entry,
    check: &FooterCheck,
    footer: std::result::Result<i64, String>,
) -> Option<Problem> {
    let (kind, detail) = match footer {
        Ok(n) if u64::try_from(n).is_ok_and(|n| n == check.rows) => return None,
        Ok(n) => (
            ProblemKind::Rows,
            format!("the footer says {n} rows, the manifest {}", check.rows),
        ),
        Err(reason) => (ProblemKind::Footer, reason),
    };
    Some(Problem {
        file: entry.manifest.source.name.clone(),
        manifest: entry.key.clone(),
        key: check.key.clone(),
        kind,
        detail,
    })
}
