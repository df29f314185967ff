//! DDL for the lake's readers, generated from the same [`Table`] definitions the writers use.
//!
//! - DuckDB: one view per table over `read_parquet(..., hive_partitioning = true)`, with the
//!   columns listed explicitly so a schema drift fails loudly instead of returning nulls.
//!   DuckDB binds a view when it is created, and a glob that matches no file is an error ("No
//!   files found that match the pattern") that would stop the whole script; a table without files
//!   yet (no CDN event received, so no `audit/cache/`) gets an empty view with the same columns
//!   instead, and the script says to run `cdnlake ddl` again once files exist.
//! - MaxCompute: `CREATE EXTERNAL TABLE ... PARTITIONED BY (...) STORED AS PARQUET LOCATION ...`,
//!   plus `ALTER TABLE ... ADD IF NOT EXISTS PARTITION` statements for the partitions the
//!   manifests record (MaxCompute needs partitions registered). Only types MaxCompute's Parquet
//!   readers read: BIGINT, INT, STRING and TIMESTAMP (our INT64 microsecond timestamps are
//!   UTC-adjusted instants, which is MaxCompute's TIMESTAMP; neither of its Parquet readers reads
//!   TIMESTAMP_NTZ). INT and TIMESTAMP are types of MaxCompute's 2.0 type system, so the script
//!   turns it on (`SET odps.sql.type.system.odps2=true`), and it turns on the native (C++)
//!   Parquet reader (`SET odps.ext.parquet.native=true`), which only reads, faster, and reads
//!   every type we declare. Both are session flags: queries set them too (the script says so).
//!   Sources: Alibaba Cloud's "Parquet external tables" (the JNI/native modes and their type
//!   table) and "TIMESTAMP_NTZ data type" pages.
//!
//! Both dialects declare the partition keys the lake has: `domain, dt, hour` or, in a day lake
//! ([`PartitionBy::Day`], from the lake's descriptor), `domain, dt`.
//!
//! **Rebuilt columns.** Since access schema version 2 the files do not store `url`; the views
//! offer it in its old place, rebuilt from `scheme`, `host`, `path` and `query` for every row
//! ([`join_url_sql`], the SQL form of `access::parse::join_url`). The stored `url` of a schema
//! version 1 file is never read: its parts came from the same split, so the rebuild equals it,
//! and a lake holding files of both versions reads the same everywhere.
//! - DuckDB: the `access` view computes it; `union_by_name = true` lets one `read_parquet`
//!   take files with and without `url` (it then reads every file's footer when the view is
//!   bound, as it did before: all views already set it).
//! - MaxCompute maps Parquet columns to the table's by name (Alibaba Cloud, "Parquet external
//!   tables", schema evolution: a column a file lacks reads NULL, a column the table lacks is
//!   ignored), so the external table `access_files` declares the stored columns and reads both
//!   versions, and the view `access` adds `url`: `SELECT url FROM access` keeps working.

use std::fmt::Write;

use std::collections::BTreeSet;

use futures::TryStreamExt;
use object_store::path::Path;

use crate::error::Result;
use crate::lake::descriptor::PartitionBy;
use crate::lake::dest::Destination;
use crate::lake::layout::{key_partition, relative};
use crate::lake::manifest::Manifest;
use crate::lake::store::Lake;
use crate::tables::access::ACCESS;
use crate::tables::registry::{self, Keys};
use crate::tables::{Rebuild, Table, ViewColumn};

/// A dialect's spelling of the two things a rebuild needs.
struct Sql {
    /// A quoted column name.
    ident: fn(&str) -> String,
    /// The concatenation of the arguments, NULL when any is NULL (DuckDB's `||`, MaxCompute's
    /// `CONCAT`); the optional parts are guarded by `CASE`, so the result does not depend on
    /// how an engine's concatenation treats NULL beyond that.
    concat: fn(&[String]) -> String,
}

const DUCKDB: Sql = Sql {
    ident: |c| format!("\"{c}\""),
    concat: |parts| parts.join(" || "),
};

const MAXCOMPUTE: Sql = Sql {
    ident: |c| format!("`{c}`"),
    concat: |parts| format!("CONCAT({})", parts.join(", ")),
};

/// The SQL of `access::parse::join_url(scheme, host, path, query)`, the one definition of the
/// URL's rebuild: `scheme://host` when both are present, then the path, then `?query` when
/// there is a query. Equal to the URL as logged for every line (`join_url(split_url(u)) == u`,
/// property-tested; the interop tests compare the view with the parser row by row).
fn join_url_sql(d: &Sql) -> String {
    let (scheme, host) = ((d.ident)("scheme"), (d.ident)("host"));
    let (path, query) = ((d.ident)("path"), (d.ident)("query"));
    let origin = (d.concat)(&[scheme.clone(), "'://'".into(), host.clone()]);
    let query_part = (d.concat)(&["'?'".into(), query.clone()]);
    (d.concat)(&[
        format!("CASE WHEN {scheme} IS NULL OR {host} IS NULL THEN '' ELSE {origin} END"),
        path,
        format!("CASE WHEN {query} IS NULL THEN '' ELSE {query_part} END"),
    ])
}

/// A view column's select item: the stored column, or its rebuild `AS` its name.
fn select_item(c: &ViewColumn, d: &Sql) -> String {
    match c {
        ViewColumn::Stored(c) => (d.ident)(c.name),
        ViewColumn::Derived(x) => {
            let expr = match x.rebuild {
                Rebuild::JoinUrl => join_url_sql(d),
            };
            format!("{expr} AS {}", (d.ident)(x.column.name))
        }
    }
}

/// Tables of the lake that have DDL.
pub fn tables() -> Vec<&'static Table> {
    registry::tables().collect()
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Where DuckDB reads a destination (see [`Destination::duckdb_location`]); a URL that does not
/// parse is passed through, for the user to see in the SQL.
pub(crate) fn duckdb_location(dest: &str) -> String {
    match Destination::parse(dest) {
        Ok(d) => d.duckdb_location(),
        Err(_) => dest.trim_end_matches('/').to_string(),
    }
}

/// DuckDB: `CREATE OR REPLACE VIEW` for each table, all assumed to hold files.
pub fn duckdb(dest: &str, by: PartitionBy) -> String {
    duckdb_views(dest, by, |_| true)
}

/// DuckDB views of a lake partitioned `by`; tables for which `has_files` is false get an empty
/// view with the same columns (see the module doc).
pub fn duckdb_views(dest: &str, by: PartitionBy, has_files: impl Fn(&Table) -> bool) -> String {
    let base = duckdb_location(dest);
    let mut out = String::new();
    let _ = writeln!(out, "-- cdnlake views over {base} (partitioned by {by})");
    if matches!(
        Destination::parse(dest),
        Ok(Destination::S3 { .. } | Destination::Oss { .. })
    ) {
        let _ = writeln!(
            out,
            "-- needs: INSTALL httpfs; LOAD httpfs; CREATE SECRET (TYPE s3, ...);"
        );
    }
    for t in tables() {
        let _ = writeln!(out, "\n-- {}: {}", t.name, t.doc);
        let view = t.view_columns();
        let w = view
            .iter()
            .map(|c| c.column().name.len())
            .max()
            .unwrap_or(0);
        let tw = view
            .iter()
            .map(|c| c.column().kind.duckdb().len())
            .max()
            .unwrap_or(0);
        for c in view.iter().map(ViewColumn::column) {
            let _ = writeln!(
                out,
                "--   {:<w$} {:<tw$} {}",
                c.name,
                c.kind.duckdb(),
                c.doc
            );
        }
        let glob = format!("{base}/{}/**/*.parquet", t.folder);
        let keys = by.keys(t);
        if !has_files(t) {
            let cols: Vec<String> = view
                .iter()
                .map(ViewColumn::column)
                .map(|c| format!("NULL::{} AS \"{}\"", c.kind.duckdb(), c.name))
                .chain(keys.iter().map(|p| format!("NULL::VARCHAR AS \"{p}\"")))
                .collect();
            let _ = writeln!(
                out,
                "-- No files match {glob} yet (DuckDB refuses a view over an empty glob):\n\
                 -- an empty view with the same columns. Run cdnlake ddl again once there are files.\n\
                 CREATE OR REPLACE VIEW {} AS\nSELECT {}\nWHERE false;",
                t.name,
                cols.join(", ")
            );
            continue;
        }
        let cols: Vec<String> = view
            .iter()
            .map(|c| select_item(c, &DUCKDB))
            .chain(keys.iter().map(|p| format!("\"{p}\"")))
            .collect();
        let hive_types: Vec<String> = keys.iter().map(|p| format!("'{p}': VARCHAR")).collect();
        let _ = writeln!(
            out,
            "CREATE OR REPLACE VIEW {} AS\nSELECT {}\nFROM read_parquet({}, hive_partitioning = true, hive_types = {{{}}}, union_by_name = true);",
            t.name,
            cols.join(", "),
            sql_str(&glob),
            hive_types.join(", "),
        );
    }
    out
}

/// The OSS location MaxCompute reads: `oss://<endpoint>/<bucket>/<prefix>`.
pub(crate) fn maxcompute_location(dest: &str, oss_endpoint: Option<&str>) -> String {
    let endpoint = oss_endpoint.unwrap_or("oss-cn-hangzhou-internal.aliyuncs.com");
    match Destination::parse(dest) {
        Ok(d) => d.maxcompute_location(endpoint),
        Err(_) => format!("oss://{endpoint}/<bucket>/<prefix>"),
    }
}

/// MaxCompute: `CREATE EXTERNAL TABLE` for each table of a lake partitioned `by`.
pub fn maxcompute(dest: &str, by: PartitionBy, oss_endpoint: Option<&str>) -> String {
    let base = maxcompute_location(dest, oss_endpoint);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- cdnlake external tables over {base} (partitioned by {by})"
    );
    let _ = writeln!(
        out,
        "-- Register partitions with: cdnlake ddl --dialect maxcompute --partitions --dest {dest}"
    );
    let _ = writeln!(
        out,
        "-- INT and TIMESTAMP need the 2.0 type system; the native Parquet reader is faster and\n\
         -- reads every type below. Both are session flags: SET them in each session that queries\n\
         -- these tables too.\n\
         SET odps.sql.type.system.odps2=true;\n\
         SET odps.ext.parquet.native=true;"
    );
    for t in tables() {
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| {
                format!(
                    "  `{}` {} COMMENT {}",
                    c.name,
                    c.kind.maxcompute(),
                    sql_str(c.doc)
                )
            })
            .collect();
        let keys = by.keys(t);
        let parts: Vec<String> = keys.iter().map(|p| format!("`{p}` STRING")).collect();
        let files = t.files_table();
        if let Some(r) = t.rebuilt {
            let derived: Vec<&str> = r.columns.iter().map(|d| d.column.name).collect();
            let _ = writeln!(
                out,
                "\n-- {name}: query the view {name}. It is the external table {files} plus {derived},\n\
                 -- rebuilt from the stored columns (the files do not store it since cdnlake's access\n\
                 -- schema version 2; older files still do, and columns are read by name, so both\n\
                 -- read alike). Partitions are registered on {files}. A project set up by an older\n\
                 -- cdnlake has an external table named {name}: run DROP TABLE {name}; first (only the\n\
                 -- definition goes, the files stay), then this script and the --partitions one\n\
                 -- without --since (a partition not registered on {files} is missing from {name}).",
                name = t.name,
                derived = derived.join(", "),
            );
        }
        let _ = writeln!(
            out,
            "\nCREATE EXTERNAL TABLE IF NOT EXISTS {} (\n{}\n)\nCOMMENT {}\nPARTITIONED BY ({})\nSTORED AS PARQUET\nLOCATION {};",
            files,
            cols.join(",\n"),
            sql_str(t.doc),
            parts.join(", "),
            sql_str(&format!("{base}/{}/", t.folder)),
        );
        if t.rebuilt.is_some() {
            let items: Vec<String> = t
                .view_columns()
                .iter()
                .map(|c| format!("  {}", select_item(c, &MAXCOMPUTE)))
                .chain(keys.iter().map(|p| format!("  `{p}`")))
                .collect();
            let _ = writeln!(
                out,
                "\nCREATE OR REPLACE VIEW {}\nCOMMENT {}\nAS SELECT\n{}\nFROM {files};",
                t.name,
                sql_str(t.doc),
                items.join(",\n"),
            );
        }
    }
    out
}

/// `ALTER TABLE ... ADD IF NOT EXISTS PARTITION` for partitions given as (table, values).
pub fn maxcompute_partitions<'a>(
    parts: impl IntoIterator<Item = (&'a str, Vec<(&'a str, String)>)>,
) -> String {
    let mut out = String::new();
    for (table, values) in parts {
        let spec: Vec<String> = values
            .iter()
            .map(|(k, v)| format!("`{k}`={}", sql_str(v)))
            .collect();
        let _ = writeln!(
            out,
            "ALTER TABLE {table} ADD IF NOT EXISTS PARTITION ({});",
            spec.join(", ")
        );
    }
    out
}

/// A partition of one table: the table name and its (key, value) pairs, outermost first.
pub(crate) type PartitionSpec = (&'static str, Vec<(&'static str, String)>);

/// Whether a table holds at least one Parquet file: lists its folder and stops at the first one.
/// (I/O: the one call here that reads the lake besides listing audit keys.)
pub async fn has_files(lake: &Lake, table: &Table) -> Result<bool> {
    let prefix = Path::from_iter(lake.prefix.parts().chain(Path::from(table.folder).parts()));
    let mut list = lake.list_stream(&prefix);
    while let Some(meta) = list.try_next().await? {
        if meta.location.as_ref().ends_with(".parquet") {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The tables of events (`event=<name>/dt=` keys, no manifest): the audit tables.
fn audit_tables() -> impl Iterator<Item = &'static Table> {
    registry::FOLDERS
        .into_iter()
        .filter(|f| f.keys == Keys::ByEvent)
        .filter_map(|f| f.table)
}

/// Keys (relative to the destination) of the audit tables' files. Audit files have no manifest
/// (each event is written whole with one PUT), so listing their folders is how their partitions
/// are found.
pub async fn audit_keys(lake: &Lake) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for t in audit_tables() {
        let prefix = Path::from_iter(lake.prefix.parts().chain(Path::from(t.folder).parts()));
        let metas = lake.list(&prefix).await?;
        out.extend(metas.iter().map(|m| relative(&lake.prefix, &m.location)));
    }
    Ok(out)
}

/// The (table, event, dt) partitions of audit keys like
/// `audit/cache/event=CachedObjectsRefreshed/dt=2024-03-05/<traceId>.parquet`.
pub fn audit_partitions<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<PartitionSpec> {
    let mut seen: BTreeSet<(&'static str, String, String)> = BTreeSet::new();
    for key in keys {
        if !key.ends_with(".parquet") {
            continue;
        }
        let Some(table) = audit_tables().find(|t| key.starts_with(&format!("{}/", t.folder)))
        else {
            continue;
        };
        let rest = &key[table.folder.len() + 1..];
        let mut parts = rest.split('/');
        if let (Some(ev), Some(dt), Some(_file), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            if let (Some(ev), Some(dt)) = (ev.strip_prefix("event="), dt.strip_prefix("dt=")) {
                seen.insert((table.name, ev.to_string(), dt.to_string()));
            }
        }
    }
    seen.into_iter()
        .map(|(t, ev, dt)| (t, vec![("event", ev), ("dt", dt)]))
        .collect()
}

/// Keeps the partitions whose `dt` is `since_dt` (`YYYY-MM-DD`) or later, and sorts all by table
/// then values. Dates compare as strings, which `YYYY-MM-DD` makes chronological.
pub fn since(mut parts: Vec<PartitionSpec>, since_dt: Option<&str>) -> Vec<PartitionSpec> {
    if let Some(s) = since_dt {
        parts.retain(|(_, values)| {
            values
                .iter()
                .find(|(k, _)| *k == "dt")
                .is_none_or(|(_, dt)| dt.as_str() >= s)
        });
    }
    parts.sort();
    parts.dedup();
    parts
}

/// The (table, domain, dt[, hour]) partitions the manifests record, sorted and deduplicated, in
/// the shape [`maxcompute_partitions`] takes (the table over the files: `access_files` for the
/// access rows, whose view cannot take partitions); a day lake's have no hour (its manifests record
/// none, its keys have no `hour=`). Access partitions come from the manifest's partition list;
/// the rollup tables' (traffic, heavy hitters, visitors) from the keys it lists, so lakes written
/// before a rollup existed register no partitions that hold no files.
pub fn manifest_partitions(manifests: &[Manifest]) -> Vec<PartitionSpec> {
    let mut seen: BTreeSet<(&'static str, String, String, String)> = BTreeSet::new();
    for m in manifests {
        for p in &m.partitions {
            seen.insert((
                ACCESS.files_table(),
                m.domain.clone(),
                p.dt.clone(),
                p.hour.clone(),
            ));
        }
        for key in m.keys() {
            // The other per-file tables: the partitions their listed files lie in.
            let Some(table) = key
                .split('/')
                .next()
                .and_then(registry::folder)
                .filter(|f| f.keys == Keys::Partitioned && f.path != ACCESS.folder)
                .and_then(|f| f.table)
            else {
                continue;
            };
            if let Some((dt, hour)) = key_partition(key) {
                seen.insert((table.name, m.domain.clone(), dt.into(), hour.into()));
            }
        }
    }
    seen.into_iter()
        .map(|(t, d, dt, h)| {
            let mut values = vec![("domain", d), ("dt", dt)];
            if !h.is_empty() {
                values.push(("hour", h));
            }
            (t, values)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxcompute_has_signed_types_only() {
        let sql = maxcompute("oss://bucket/lake", PartitionBy::Hour, None);
        assert!(sql.contains("PARTITIONED BY (`domain` STRING, `dt` STRING, `hour` STRING)"));
        assert!(sql.contains(
            "LOCATION 'oss://oss-cn-hangzhou-internal.aliyuncs.com/bucket/lake/access/'"
        ));
        assert!(!sql.to_lowercase().contains("unsigned"));
        assert!(!sql.contains("TIMESTAMP_NTZ"));
        assert!(sql.contains("SET odps.ext.parquet.native=true;"));
        // Every column type is one both of MaxCompute's Parquet readers read.
        for t in tables() {
            for c in t.columns {
                assert!(
                    ["BIGINT", "INT", "STRING", "TIMESTAMP", "BINARY"]
                        .contains(&c.kind.maxcompute()),
                    "{}.{}",
                    t.name,
                    c.name
                );
            }
        }
        let day = maxcompute("oss://bucket/lake", PartitionBy::Day, None);
        assert!(day.contains("PARTITIONED BY (`domain` STRING, `dt` STRING)\nSTORED AS PARQUET\nLOCATION 'oss://oss-cn-hangzhou-internal.aliyuncs.com/bucket/lake/access/'"));
        assert!(day.contains("PARTITIONED BY (`event` STRING, `dt` STRING)"));
        assert!(!day.contains("`hour`"));
    }

    #[test]
    fn audit_partitions_from_keys_and_since() {
        let keys = [
            "audit/cache/event=CachedObjectsRefreshed/dt=2024-03-05/t1.parquet",
            "audit/cache/event=CachedObjectsRefreshed/dt=2024-03-05/t2.parquet",
            "audit/cache/event=CachedObjectsPushed/dt=2024-03-04/t3.parquet",
            "audit/domain/event=CdnDomainStarted/dt=2024-03-06/t4.parquet",
            "audit/events/dt=2024-03-05/t1.json",
            "audit/cache/stray.parquet",
        ];
        let p = audit_partitions(keys);
        assert_eq!(p.len(), 3);
        let got = maxcompute_partitions(since(p, Some("2024-03-05")));
        assert_eq!(
            got,
            "ALTER TABLE cache_audit ADD IF NOT EXISTS PARTITION (`event`='CachedObjectsRefreshed', `dt`='2024-03-05');\n\
             ALTER TABLE domain_audit ADD IF NOT EXISTS PARTITION (`event`='CdnDomainStarted', `dt`='2024-03-06');\n"
        );
    }

    #[test]
    fn empty_tables_get_an_empty_view() {
        let sql = duckdb_views("/l", PartitionBy::Hour, |t| t.name != "domain_audit");
        assert!(sql.contains("FROM read_parquet('/l/audit/cache/**/*.parquet'"));
        assert!(sql.contains("CREATE OR REPLACE VIEW domain_audit AS\nSELECT NULL::VARCHAR AS \"event_name\", NULL::TIMESTAMP WITH TIME ZONE AS \"event_time\""));
        assert!(!sql.contains("read_parquet('/l/audit/domain/"));
    }

    #[test]
    fn partitions_are_quoted() {
        let s = maxcompute_partitions([(
            "access",
            vec![("domain", "a'b".to_string()), ("dt", "2024-03-05".into())],
        )]);
        assert_eq!(s, "ALTER TABLE access ADD IF NOT EXISTS PARTITION (`domain`='a''b', `dt`='2024-03-05');\n");
    }

    #[test]
    fn partitions_of_both_tables_from_manifests() {
        use crate::lake::manifest::{ObjectEntry, PartitionEntry, SourceEntry};
        let obj = |key: &str| ObjectEntry {
            key: key.into(),
            bytes: 1,
            rows: Some(1),
        };
        let m = Manifest {
            manifest_version: 1,
            schema_version: 1,
            tool: "t".into(),
            domain: "a.example.com".into(),
            partition_tz: "+08:00".into(),
            source: SourceEntry {
                name: "f.gz".into(),
                location: "f.gz".into(),
                bytes: 1,
                sha256: String::new(),
                gzip: true,
                bytes_decompressed: 1,
            },
            lines: 2,
            rows: 2,
            rejected: 0,
            empty: 0,
            invalid_utf8: 0,
            partitions: vec![PartitionEntry {
                dt: "2024-03-05".into(),
                hour: "08".into(),
                rows: 2,
            }],
            objects: vec![
                obj("raw/a.example.com/2024_03_05/f.gz"),
                obj("access/domain=a.example.com/dt=2024-03-05/hour=08/f.parquet"),
                obj("traffic/domain=a.example.com/dt=2024-03-05/hour=08/f.parquet"),
            ],
        };
        let mut day = m.clone();
        day.partitions[0].hour = String::new();
        day.objects = vec![
            obj("raw/a.example.com/2024_03_05/f.gz"),
            obj("access/domain=a.example.com/dt=2024-03-05/f.parquet"),
            obj("traffic/domain=a.example.com/dt=2024-03-05/f.parquet"),
        ];
        assert_eq!(
            maxcompute_partitions(manifest_partitions(&[day])),
            "ALTER TABLE access_files ADD IF NOT EXISTS PARTITION (`domain`='a.example.com', `dt`='2024-03-05');\n\
             ALTER TABLE traffic ADD IF NOT EXISTS PARTITION (`domain`='a.example.com', `dt`='2024-03-05');\n"
        );
        let got = maxcompute_partitions(manifest_partitions(&[m.clone(), m]));
        assert_eq!(
            got,
            "ALTER TABLE access_files ADD IF NOT EXISTS PARTITION (`domain`='a.example.com', `dt`='2024-03-05', `hour`='08');\n\
             ALTER TABLE traffic ADD IF NOT EXISTS PARTITION (`domain`='a.example.com', `dt`='2024-03-05', `hour`='08');\n"
        );
    }
}
