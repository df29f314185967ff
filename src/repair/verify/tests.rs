use super::*;
use crate::lake::manifest::{Manifest, ObjectEntry, PartitionEntry, SourceEntry};

const RAW: &str = "raw/a.com/2024_03_05/f.gz";
const A8: &str = "access/domain=a.com/dt=2024-03-05/hour=08/f.parquet";
const A9: &str = "access/domain=a.com/dt=2024-03-05/hour=09/f.parquet";
const T8: &str = "traffic/domain=a.com/dt=2024-03-05/hour=08/f.parquet";
const REJ: &str = "rejects/a.com/2024_03_05/f.jsonl";
const MAN: &str = "_manifests/a.com/2024_03_05/f.json";

fn obj(key: &str, bytes: u64, rows: Option<u64>) -> ObjectEntry {
    ObjectEntry {
        key: key.into(),
        bytes,
        rows,
    }
}

/// A consistent manifest: 10 lines, 7 rows (3 + 4), 2 rejected, 1 empty.
fn entry() -> Entry {
    Entry {
        key: MAN.into(),
        manifest: Manifest {
            manifest_version: 1,
            schema_version: 1,
            tool: "cdnlake test".into(),
            domain: "a.com".into(),
            partition_tz: "+08:00".into(),
            source: SourceEntry {
                name: "f.gz".into(),
                location: "f.gz".into(),
                bytes: 100,
                sha256: "00".into(),
                gzip: true,
                bytes_decompressed: 1000,
            },
            lines: 10,
            rows: 7,
            rejected: 2,
            empty: 1,
            invalid_utf8: 0,
            partitions: vec![
                PartitionEntry {
                    dt: "2024-03-05".into(),
                    hour: "08".into(),
                    rows: 3,
                },
                PartitionEntry {
                    dt: "2024-03-05".into(),
                    hour: "09".into(),
                    rows: 4,
                },
            ],
            objects: vec![
                obj(RAW, 100, None),
                obj(A8, 500, Some(3)),
                obj(A9, 600, Some(4)),
                obj(T8, 300, Some(1)),
                obj(REJ, 50, Some(2)),
            ],
        },
    }
}

fn sizes_of(e: &Entry) -> BTreeMap<String, u64> {
    e.manifest
        .objects
        .iter()
        .map(|o| (o.key.clone(), o.bytes))
        .collect()
}

fn kinds(p: &[Problem]) -> Vec<(&str, ProblemKind)> {
    p.iter().map(|p| (p.key.as_str(), p.kind)).collect()
}

#[test]
fn a_consistent_file_has_no_problem_and_three_footers_to_read() {
    let e = entry();
    let (problems, footers, objects) = check_manifests(std::slice::from_ref(&e), &sizes_of(&e));
    assert_eq!(problems, vec![]);
    assert_eq!(objects, 5);
    let keys: Vec<&str> = footers.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, vec![A8, A9, T8]);
    assert_eq!(footers[1].rows, 4);
    assert_eq!(footers[1].bytes, 600);
}

#[test]
fn missing_and_resized_objects_are_not_read() {
    let e = entry();
    let mut sizes = sizes_of(&e);
    sizes.remove(A8);
    sizes.insert(A9.into(), 599);
    let (problems, footers, _) = check_manifests(&[e], &sizes);
    assert_eq!(
        kinds(&problems),
        vec![(A8, ProblemKind::Missing), (A9, ProblemKind::Size)]
    );
    assert!(problems[1].detail.contains("599"), "{}", problems[1].detail);
    assert_eq!(footers.len(), 1, "only the intact traffic file");
    assert!(problems
        .iter()
        .all(|p| p.file == "f.gz" && p.manifest == MAN));
}

#[test]
fn counts_that_do_not_reconcile_are_each_reported() {
    let mut e = entry();
    e.manifest.lines = 11;
    e.manifest.partitions[0].rows = 2;
    e.manifest.objects[2].rows = Some(5);
    e.manifest.objects[4].rows = Some(1);
    let (problems, footers, _) = check_manifests(std::slice::from_ref(&e), &sizes_of(&e));
    assert_eq!(
        kinds(&problems),
        vec![
            (MAN, ProblemKind::Counts),
            (MAN, ProblemKind::AccessRows),
            (MAN, ProblemKind::PartitionRows),
            (REJ, ProblemKind::RejectsRows),
        ]
    );
    // The footer of A9 is still read, against the (wrong) recorded 5.
    assert_eq!(footers.iter().find(|f| f.key == A9).unwrap().rows, 5);

    // Rejected lines without a rejects object; a Parquet object without a row count; a
    // raw dump that is not first.
    let mut e = entry();
    e.manifest.objects.remove(4);
    e.manifest.objects[3].rows = None;
    e.manifest.objects.swap(0, 1);
    let (problems, _, _) = check_manifests(std::slice::from_ref(&e), &sizes_of(&e));
    assert_eq!(
        kinds(&problems),
        vec![
            (MAN, ProblemKind::RejectsRows),
            (MAN, ProblemKind::Manifest),
            (T8, ProblemKind::Rows),
        ]
    );
    // A counter overflow is a problem, not a panic.
    let mut e = entry();
    e.manifest.rows = u64::MAX;
    let (problems, _, _) = check_manifests(std::slice::from_ref(&e), &sizes_of(&e));
    assert!(problems.iter().any(|p| p.kind == ProblemKind::Counts));
}

#[test]
fn footers_must_hold_the_recorded_rows() {
    let e = entry();
    let f = FooterCheck {
        entry: 0,
        key: A8.into(),
        bytes: 500,
        rows: 3,
    };
    assert_eq!(check_footer(&e, &f, Ok(3)), None);
    let p = check_footer(&e, &f, Ok(2)).unwrap();
    assert_eq!((p.kind, p.key.as_str()), (ProblemKind::Rows, A8));
    assert!(p.detail.contains("2 rows"), "{}", p.detail);
    assert_eq!(
        check_footer(&e, &f, Ok(-1)).unwrap().kind,
        ProblemKind::Rows
    );
    let p = check_footer(&e, &f, Err("bad magic".into())).unwrap();
    assert_eq!(
        (p.kind, p.detail.as_str()),
        (ProblemKind::Footer, "bad magic")
    );
}

#[test]
fn orphans_are_unlisted_table_objects_and_staging_leftovers() {
    let e = entry();
    let listed_by: BTreeSet<&str> = e.manifest.keys().collect();
    let listed = [
        RAW,
        A8,
        "access/domain=a.com/dt=2024-03-05/hour=08/x.parquet",
        "traffic/domain=b.com/dt=2024-03-05/hour=08/g.parquet",
        "raw/a.com/2024_03_05/g.gz",
        "rejects/b.com/2024_03_05/g.jsonl",
        "_staging/a.com/2024_03_05/f/access/domain=a.com/dt=2024-03-05/hour=08/f.parquet",
        "audit/events/dt=2024-03-05/t.json",
        "_manifests/a.com/2024_03_05/f.json",
        "stray-at-the-top",
    ];
    let all = find_orphans(listed, &listed_by, &[], None);
    assert_eq!(
        all,
        vec![
            "_staging/a.com/2024_03_05/f/access/domain=a.com/dt=2024-03-05/hour=08/f.parquet",
            "access/domain=a.com/dt=2024-03-05/hour=08/x.parquet",
            "raw/a.com/2024_03_05/g.gz",
            "rejects/b.com/2024_03_05/g.jsonl",
            "traffic/domain=b.com/dt=2024-03-05/hour=08/g.parquet",
        ]
    );
    // Narrowed to a domain.
    let b = BTreeSet::from(["b.com".to_string()]);
    assert_eq!(
        find_orphans(listed, &listed_by, &[], Some(&b)),
        vec![
            "rejects/b.com/2024_03_05/g.jsonl",
            "traffic/domain=b.com/dt=2024-03-05/hour=08/g.parquet",
        ]
    );
    // What may belong to a file whose manifest cannot be read is left alone.
    let kept = find_orphans(
        listed,
        &listed_by,
        &["_manifests/a.com/2024_03_05/g.json"],
        None,
    );
    assert!(
        !kept.contains(&"raw/a.com/2024_03_05/g.gz".to_string()),
        "{kept:?}"
    );
    assert!(kept.contains(&"access/domain=a.com/dt=2024-03-05/hour=08/x.parquet".to_string()));
    assert!(kept.contains(&"rejects/b.com/2024_03_05/g.jsonl".to_string()));
}

#[test]
fn only_table_folders_and_staging_hold_orphans() {
    for k in [
        "access/x",
        "traffic/domain=a/x.parquet",
        "raw/a/b/c.gz",
        "rejects/a/b/c.jsonl",
        "_staging/a/b/c/x",
    ] {
        assert!(in_orphan_folders(k), "{k}");
    }
    for k in [
        "audit/events/x.json",
        "_manifests/a/b/c.json",
        "access",
        "access/",
        "accessx/y",
        "x",
        "",
    ] {
        assert!(!in_orphan_folders(k), "{k}");
    }
}
