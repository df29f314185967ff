//! A manifest against the listing: existence, sizes and the counts, pure; and a footer's row
//! count against the manifest's.

use std::collections::BTreeMap;

use crate::repair::Entry;
use crate::tables::access::ACCESS;

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
    for (i, e) in entries.iter().enumerate() {
        let m = &e.manifest;
        let mut problem = |key: &str, kind, detail: String| {
            problems.push(Problem {
                file: m.source.name.clone(),
                manifest: e.key.clone(),
                key: key.to_string(),
                kind,
                detail,
            })
        };
        let accounted = m
            .rows
            .checked_add(m.rejected)
            .and_then(|n| n.checked_add(m.empty));
        if accounted != Some(m.lines) {
            problem(
                &e.key,
                ProblemKind::Counts,
                format!(
                    "{} lines != {} rows + {} rejected + {} empty",
                    m.lines, m.rows, m.rejected, m.empty
                ),
            );
        }
        let in_folder = |key: &str, folder: &str| {
            key.strip_prefix(folder)
                .is_some_and(|rest| rest.starts_with('/'))
        };
        let access: Vec<_> = m
            .objects
            .iter()
            .filter(|o| in_folder(&o.key, ACCESS.folder))
            .collect();
        let access_rows: u64 = access.iter().filter_map(|o| o.rows).sum();
        if access_rows != m.rows {
            problem(
                &e.key,
                ProblemKind::AccessRows,
                format!(
                    "the {} access files record {access_rows} rows, the file {}",
                    access.len(),
                    m.rows
                ),
            );
        }
        let partition_rows: u64 = m.partitions.iter().map(|p| p.rows).sum();
        if partition_rows != m.rows {
            problem(
                &e.key,
                ProblemKind::PartitionRows,
                format!(
                    "the {} partitions record {partition_rows} rows, the file {}",
                    m.partitions.len(),
                    m.rows
                ),
            );
        }
        let rejects: Vec<_> = m
            .objects
            .iter()
            .filter(|o| in_folder(&o.key, "rejects"))
            .collect();
        match rejects.as_slice() {
            [] if m.rejected > 0 => problem(
                &e.key,
                ProblemKind::RejectsRows,
                format!("{} lines rejected, but no rejects object", m.rejected),
            ),
            [] => {}
            [r] if r.rows == Some(m.rejected) => {}
            [r] => problem(
                &r.key,
                ProblemKind::RejectsRows,
                format!(
                    "records {} rejected lines, the file {}",
                    r.rows.map_or("no".to_string(), |n| n.to_string()),
                    m.rejected
                ),
            ),
            more => problem(
                &e.key,
                ProblemKind::RejectsRows,
                format!("{} rejects objects listed, expected one", more.len()),
            ),
        }
        match m.objects.first() {
            Some(raw) if in_folder(&raw.key, "raw") => {
                if raw.bytes != m.source.bytes {
                    problem(
                        &raw.key,
                        ProblemKind::Size,
                        format!(
                            "the raw dump is recorded as {} bytes, the source as {}",
                            raw.bytes, m.source.bytes
                        ),
                    );
                }
            }
            _ => problem(
                &e.key,
                ProblemKind::Manifest,
                "the manifest does not list the raw dump first".into(),
            ),
        }
        for o in &m.objects {
            objects += 1;
            match sizes.get(&o.key) {
                None => problem(&o.key, ProblemKind::Missing, "does not exist".into()),
                Some(&n) if n != o.bytes => problem(
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
                    None => problem(
                        &o.key,
                        ProblemKind::Rows,
                        "the manifest records no row count".into(),
                    ),
                },
                Some(_) => {}
            }
        }
    }
    (problems, footers, objects)
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
