//! Table definitions: one place that says what every column is, from which the Arrow schema the
//! writers use, the DDL for DuckDB and MaxCompute and the readers of `report` all follow, so they
//! cannot drift. Add a column to a table's file here; the compiler and the tests then point at
//! the one builder that must fill it. Which folder holds which table, and which readers cover
//! it, is said once in [`registry`].

pub mod access;
pub mod audit;
pub mod registry;
pub mod top;
pub mod traffic;
pub mod visitors;

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The logical type of a column, restricted to what every reader handles: signed integers only
/// (MaxCompute has no unsigned types) and UTC-adjusted microsecond timestamps (no TIMESTAMP_NTZ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// INT64 micros, `isAdjustedToUTC = true`.
    Timestamp,
    Int64,
    Int32,
    Utf8,
    /// Bytes (a stored sketch): Parquet BINARY, DuckDB BLOB, MaxCompute BINARY.
    Binary,
}

impl Kind {
    pub fn arrow(self) -> DataType {
        match self {
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Int64 => DataType::Int64,
            Kind::Int32 => DataType::Int32,
            Kind::Utf8 => DataType::Utf8,
            Kind::Binary => DataType::Binary,
        }
    }

    pub fn duckdb(self) -> &'static str {
        match self {
            Kind::Timestamp => "TIMESTAMP WITH TIME ZONE",
            Kind::Int64 => "BIGINT",
            Kind::Int32 => "INTEGER",
            Kind::Utf8 => "VARCHAR",
            Kind::Binary => "BLOB",
        }
    }

    pub fn maxcompute(self) -> &'static str {
        match self {
            Kind::Timestamp => "TIMESTAMP",
            Kind::Int64 => "BIGINT",
            Kind::Int32 => "INT",
            Kind::Utf8 => "STRING",
            Kind::Binary => "BINARY",
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
    /// Low-cardinality: Parquet dictionary encoding pays off.
    pub dictionary: bool,
    pub doc: &'static str,
}

impl Column {
    /// A column, for the `const` table definitions.
    pub const fn new(
        name: &'static str,
        kind: Kind,
        nullable: bool,
        dictionary: bool,
        doc: &'static str,
    ) -> Column {
        Column {
            name,
            kind,
            nullable,
            dictionary,
            doc,
        }
    }
}

/// A table of the lake: its folder under the destination, columns, and hive partition keys.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// View / table name (`access`).
    pub name: &'static str,
    /// Top-level folder under the destination (`access`).
    pub folder: &'static str,
    pub columns: &'static [Column],
    /// Hive partition keys, outermost first (all STRING).
    pub partitions: &'static [&'static str],
    pub doc: &'static str,
    /// Columns written without min/max statistics: those whose min/max can never let a reader
    /// skip a row group, where computing them costs a comparison per value.
    pub no_statistics: &'static [&'static str],
    /// Columns the readers see that the files do not store, rebuilt from stored columns by
    /// the views `ddl` generates (`access.url` since schema version 2); `None` for tables
    /// whose views show exactly the stored columns.
    pub rebuilt: Option<&'static Rebuilt>,
    /// Dictionary-encoded columns given a larger dictionary page limit than Parquet's 1 MiB
    /// default, in bytes: columns whose distinct values in a row group (512k rows) outgrow 1 MiB
    /// on a busy domain but still repeat. Past the limit the writer falls back to plain encoding
    /// after paying for the interning; within it the column is several times smaller and
    /// cheaper to compress.
    pub large_dictionaries: &'static [(&'static str, usize)],
}

/// The columns a table's views add to its stored ones, and the name of the table over the
/// files where an engine needs one under the view (MaxCompute: an external table, then a view
/// of the table's own name on it).
#[derive(Debug, Clone, Copy)]
pub struct Rebuilt {
    /// The table over the files (MaxCompute's external table), named so `access` stays the
    /// name users query.
    pub files_table: &'static str,
    pub columns: &'static [Derived],
}

/// A column a view computes from stored columns of the same row.
#[derive(Debug, Clone, Copy)]
pub struct Derived {
    /// Its name, type and doc (`dictionary` does not apply: nothing stores it).
    pub column: Column,
    /// The stored column it follows in the views: where the schema that stored it had it, so
    /// `SELECT *` keeps its column order.
    pub after: &'static str,
    pub rebuild: Rebuild,
}

/// How a [`Derived`] column is computed; `query::ddl` writes each one's SQL once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    /// `access::parse::join_url(scheme, host, path, query)`: the URL as logged.
    JoinUrl,
}

/// A column of a table's views: a stored one, or one the view rebuilds.
#[derive(Debug, Clone, Copy)]
pub enum ViewColumn {
    Stored(&'static Column),
    Derived(&'static Derived),
}

impl ViewColumn {
    pub fn column(&self) -> &'static Column {
        match self {
            ViewColumn::Stored(c) => c,
            ViewColumn::Derived(d) => &d.column,
        }
    }
}

impl Table {
    /// The columns of the table's views, in order: the stored ones, each derived column
    /// right after the stored column it follows.
    pub fn view_columns(&self) -> Vec<ViewColumn> {
        let derived = self.rebuilt.map_or(&[][..], |r| r.columns);
        let mut out = Vec::with_capacity(self.columns.len() + derived.len());
        for c in self.columns {
            out.push(ViewColumn::Stored(c));
            out.extend(
                derived
                    .iter()
                    .filter(|d| d.after == c.name)
                    .map(ViewColumn::Derived),
            );
        }
        out
    }

    /// The name of the table over the files: the table's own, or [`Rebuilt::files_table`].
    pub fn files_table(&self) -> &'static str {
        self.rebuilt.map_or(self.name, |r| r.files_table)
    }

    /// The Arrow schema the writer uses (partition keys are in the path, not in the file).
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(c.name, c.kind.arrow(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }
}
