//! DDL snapshots: the generated SQL is reviewed in `tests/snapshots/`. After an intended change,
//! regenerate with `UPDATE_SNAPSHOTS=1 cargo test --test it ddl::` and review the diff.

use cdnlake::lake::descriptor::PartitionBy;
use cdnlake::query::ddl;
use cdnlake::tables::access::ACCESS;

fn check(name: &str, got: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        got, want,
        "{name} changed; run UPDATE_SNAPSHOTS=1 cargo test --test it ddl:: and review"
    );
}

#[test]
fn duckdb_views() {
    check("duckdb.sql", &ddl::duckdb("/data/lake", PartitionBy::Hour));
}

#[test]
fn duckdb_views_of_a_day_lake() {
    check(
        "duckdb_day.sql",
        &ddl::duckdb("/data/lake", PartitionBy::Day),
    );
}

#[test]
fn maxcompute_tables() {
    check(
        "maxcompute.sql",
        &ddl::maxcompute(
            "oss://my-bucket/cdn/lake",
            PartitionBy::Hour,
            Some("oss-cn-shanghai-internal.aliyuncs.com"),
        ),
    );
}

#[test]
fn maxcompute_tables_of_a_day_lake() {
    check(
        "maxcompute_day.sql",
        &ddl::maxcompute(
            "oss://my-bucket/cdn/lake",
            PartitionBy::Day,
            Some("oss-cn-shanghai-internal.aliyuncs.com"),
        ),
    );
}

#[test]
fn maxcompute_partitions() {
    check(
        "maxcompute_partitions.sql",
        &ddl::maxcompute_partitions([
            (
                ACCESS.files_table(),
                vec![
                    ("domain", "a.example.com".to_string()),
                    ("dt", "2024-03-05".into()),
                    ("hour", "08".into()),
                ],
            ),
            (
                ACCESS.files_table(),
                vec![
                    ("domain", "a.example.com".to_string()),
                    ("dt", "2024-03-05".into()),
                    ("hour", "09".into()),
                ],
            ),
        ]),
    );
}

#[test]
fn duckdb_views_without_files() {
    check(
        "duckdb_without_audit.sql",
        &ddl::duckdb_views("/data/lake", PartitionBy::Hour, |t| {
            !matches!(t.name, "cache_audit" | "domain_audit")
        }),
    );
}
