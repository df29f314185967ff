//! DDL for the lake's readers, generated from the same [`Table`] definitions the writers use.
//!
//! - DuckDB: one view per table over `read_parquet(..., hive_partitioning = true)`, with the
//!   columns listed explicitly so a schema drift fails loudly instead of returning nulls.
//! - MaxCompute: `CREATE EXTERNAL TABLE ... PARTITIONED BY (...) STORED AS PARQUET LOCATION ...`,
//!   signed types only, plus `ALTER TABLE ... ADD IF NOT EXISTS PARTITION` statements for the
//!   partitions the manifests record (MaxCompute needs partitions registered).

use std::fmt::Write;

use crate::access::schema::ACCESS;
use crate::table::Table;

/// SQL dialects we generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    DuckDb,
    MaxCompute,
}

/// Tables of the lake that have DDL.
pub fn tables() -> Vec<&'static Table> {
    vec![&ACCESS]
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Where DuckDB reads a destination: local paths become absolute, `oss://` maps to `s3://`
/// (DuckDB's httpfs with an OSS endpoint), others pass through.
pub fn duckdb_location(dest: &str) -> String {
    if let Some(rest) = dest.strip_prefix("file://") {
        return rest.trim_end_matches('/').to_string();
    }
    if let Some(rest) = dest.strip_prefix("oss://") {
        return format!("s3://{}", rest.trim_end_matches('/'));
    }
    if dest.contains("://") {
        return dest.trim_end_matches('/').to_string();
    }
    let p = std::path::Path::new(dest);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let s = abs.to_string_lossy().trim_end_matches('/').to_string();
    s.strip_suffix("/.").unwrap_or(&s).to_string()
}

/// DuckDB: `CREATE OR REPLACE VIEW` for each table.
pub fn duckdb(dest: &str) -> String {
    let base = duckdb_location(dest);
    let mut out = String::new();
    let _ = writeln!(out, "-- cdnlake views over {base}");
    if base.starts_with("s3://") {
        let _ = writeln!(
            out,
            "-- needs: INSTALL httpfs; LOAD httpfs; CREATE SECRET (TYPE s3, ...);"
        );
    }
    for t in tables() {
        let _ = writeln!(out, "\n-- {}: {}", t.name, t.doc);
        for c in t.columns {
            let _ = writeln!(out, "--   {:<18} {:<26} {}", c.name, c.kind.duckdb(), c.doc);
        }
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("\"{}\"", c.name))
            .chain(t.partitions.iter().map(|p| format!("\"{p}\"")))
            .collect();
        let hive_types: Vec<String> = t
            .partitions
            .iter()
            .map(|p| format!("'{p}': VARCHAR"))
            .collect();
        let _ = writeln!(
            out,
            "CREATE OR REPLACE VIEW {} AS\nSELECT {}\nFROM read_parquet({}, hive_partitioning = true, hive_types = {{{}}}, union_by_name = true);",
            t.name,
            cols.join(", "),
            sql_str(&format!("{base}/{}/**/*.parquet", t.folder)),
            hive_types.join(", "),
        );
    }
    out
}

/// The OSS location MaxCompute reads: `oss://<endpoint>/<bucket>/<prefix>/`.
pub fn maxcompute_location(dest: &str, oss_endpoint: Option<&str>) -> String {
    let endpoint = oss_endpoint.unwrap_or("oss-cn-hangzhou-internal.aliyuncs.com");
    match dest
        .strip_prefix("oss://")
        .or_else(|| dest.strip_prefix("s3://"))
    {
        Some(rest) => format!("oss://{endpoint}/{}", rest.trim_end_matches('/')),
        None => format!("oss://{endpoint}/<bucket>/<prefix>"),
    }
}

/// MaxCompute: `CREATE EXTERNAL TABLE` for each table.
pub fn maxcompute(dest: &str, oss_endpoint: Option<&str>) -> String {
    let base = maxcompute_location(dest, oss_endpoint);
    let mut out = String::new();
    let _ = writeln!(out, "-- cdnlake external tables over {base}");
    let _ = writeln!(
        out,
        "-- Register partitions with: cdnlake ddl --dialect maxcompute --partitions --dest {dest}"
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
        let parts: Vec<String> = t
            .partitions
            .iter()
            .map(|p| format!("`{p}` STRING"))
            .collect();
        let _ = writeln!(
            out,
            "\nCREATE EXTERNAL TABLE IF NOT EXISTS {} (\n{}\n)\nCOMMENT {}\nPARTITIONED BY ({})\nSTORED AS PARQUET\nLOCATION {};",
            t.name,
            cols.join(",\n"),
            sql_str(t.doc),
            parts.join(", "),
            sql_str(&format!("{base}/{}/", t.folder)),
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxcompute_has_signed_types_only() {
        let sql = maxcompute("oss://bucket/lake", None);
        assert!(sql.contains("PARTITIONED BY (`domain` STRING, `dt` STRING, `hour` STRING)"));
        assert!(sql.contains(
            "LOCATION 'oss://oss-cn-hangzhou-internal.aliyuncs.com/bucket/lake/access/'"
        ));
        assert!(!sql.to_lowercase().contains("unsigned"));
        assert!(!sql.contains("TIMESTAMP_NTZ"));
    }

    #[test]
    fn partitions_are_quoted() {
        let s = maxcompute_partitions([(
            "access",
            vec![("domain", "a'b".to_string()), ("dt", "2024-03-05".into())],
        )]);
        assert_eq!(s, "ALTER TABLE access ADD IF NOT EXISTS PARTITION (`domain`='a''b', `dt`='2024-03-05');\n");
    }
}
