//! Lakes written before access schema version 2 keep working, alone and mixed with version 2
//! files: the DuckDB view (every row equal to the reference parser's, `url` included),
//! `report --exact`, `verify` and `verify --repair`, `compact --access` and `rebuild`.
//!
//! The fixtures are lakes the schema version 1 writer itself wrote (cdnlake at commit 86db877,
//! the last before version 2), committed as it left them: the old writer's real bytes, footers
//! and manifests, which a helper imitating the old schema could get subtly wrong. Made with
//!
//! ```text
//! cdnlake convert --partition-by day --dest lake_v1 \
//!     cdn.example.com_2024_03_05_100000_110000.gz cdn.example.com_2024_03_05_110000_120000.gz
//! cp -r lake_v1 lake_v1_compacted && cdnlake compact --access --dest lake_v1_compacted
//! ```
//!
//! where the first log is the first 200 lines of `sample_logs/` (real lines) and the second is
//! `tests/data/odd_urls.log` (URLs that steer `split_url`: no path, an empty host, a bare `?`,
//! several `?`, `://` inside a path, non-ASCII, a space). Their raw dumps are in the fixtures'
//! `raw/`, where the tests read the logs from. A day lake, because `compact --access` only
//! runs in one; hour and day lakes read access files alike.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::*;
use cdnlake::access::parse::parse_line;
use cdnlake::dev::gen::GenOptions;
use serde_json::Value;

const DOMAIN: &str = "cdn.example.com";
/// The two schema version 1 files of the fixtures.
const V1: [&str; 2] = [
    "cdn.example.com_2024_03_05_100000_110000.gz",
    "cdn.example.com_2024_03_05_110000_120000.gz",
];
const DAY: &str = "access/domain=cdn.example.com/dt=2024-03-05";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn ok(o: &std::process::Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}{}", stderr(o), stdout(o));
    stdout(o)
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// The leaf column names a Parquet file stores.
fn stored_columns(path: &Path) -> Vec<String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let r = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    r.metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect()
}

/// The access objects of the day folder: file name -> bytes.
fn day_folder(lake: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(lake.join(DAY))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_str().unwrap().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// The logs of the fixtures (from their raw dumps) and a generated one of the same day, written
/// into `dir/logs`; returns (file name, text) of all three, the generated one last.
fn logs(dir: &Path) -> Vec<(String, String)> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut out = Vec::new();
    for name in V1 {
        let raw = fixture("lake_v1")
            .join("raw")
            .join(DOMAIN)
            .join("2024_03_05")
            .join(name);
        std::fs::copy(&raw, logs.join(name)).unwrap();
        out.push((name.to_string(), gunzip_text(&raw)));
    }
    // 2024-03-05 08:30 to 09:30 +08:00: the fixtures' day.
    let (log, _) = gen_gz(
        &logs,
        &GenOptions {
            lines: 2000,
            bad_fraction: 0.01,
            seed: 3,
            ..GenOptions::default()
        },
    );
    let name = log.file_name().unwrap().to_str().unwrap().to_string();
    assert!(!V1.contains(&name.as_str()));
    out.push((name, gunzip_text(&log)));
    out
}

/// The lines of `logs` the parser accepts.
fn accepted_lines(logs: &[(String, String)]) -> usize {
    logs.iter()
        .flat_map(|(_, text)| text.split('\n'))
        .filter(|l| parse_line(l).is_ok())
        .count()
}

fn texts(logs: &[(String, String)]) -> Vec<LogText<'_>> {
    logs.iter()
        .map(|(name, text)| LogText {
            name,
            domain: DOMAIN,
            text,
        })
        .collect()
}

/// `report --exact --json` of `lake`.
fn exact(dir: &Path, lake: &str) -> Value {
    json(&ok(
        &cdnlake(dir, &["report", "--dest", lake, "--json", "--exact"]),
        "report --exact",
    ))
}

/// `verify --json` of `lake`, which must find it whole: no problem, no orphan.
fn assert_whole(dir: &Path, lake: &str) {
    let o = cdnlake(dir, &["verify", "--dest", lake, "--json"]);
    let v = json(&stdout(&o));
    assert!(o.status.success(), "{v}");
    assert!(v["problems"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["orphans"].as_array().unwrap().is_empty(), "{v}");
}

/// A lake of schema version 1 files and a version 2 file reads exactly as a lake of the same
/// logs all converted now: the same exact report, the same rows through the DuckDB view (each
/// the parser's), whole to `verify`, left alone by `verify --repair`; `compact --access` merges
/// the day into one file of the current schema, and all of that still holds.
#[test]
fn a_lake_mixing_schema_versions_reads_like_a_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let logs = logs(dir);
    let log_path = |i: usize| format!("logs/{}", logs[i].0);

    // The fixture really is schema version 1: its files store `url`, its manifests say 1.
    copy_dir(&fixture("lake_v1"), &dir.join("mixed"));
    for name in V1 {
        let parquet = dir
            .join("mixed")
            .join(DAY)
            .join(name.replace(".gz", ".parquet"));
        assert!(stored_columns(&parquet).contains(&"url".to_string()));
        let manifest = dir
            .join("mixed/_manifests")
            .join(DOMAIN)
            .join("2024_03_05")
            .join(name.replace(".gz", ".json"));
        let m = json(&std::fs::read_to_string(manifest).unwrap());
        assert_eq!(m["schema_version"], 1);
    }
    ok(
        &cdnlake(dir, &["convert", "--dest", "mixed", &log_path(2)]),
        "convert v2",
    );
    let new_file = dir
        .join("mixed")
        .join(DAY)
        .join(logs[2].0.replace(".gz", ".parquet"));
    let stored = stored_columns(&new_file);
    assert!(!stored.contains(&"url".to_string()), "{stored:?}");
    assert_eq!(stored.len(), 20);

    // The reference: the same three logs, all converted now.
    let mut args = vec!["convert", "--dest", "new", "--partition-by", "day"];
    let paths: Vec<String> = (0..3).map(log_path).collect();
    args.extend(paths.iter().map(String::as_str));
    ok(&cdnlake(dir, &args), "convert reference");

    let reference = exact(dir, "new");
    let accepted = accepted_lines(&logs);
    assert_eq!(reference["requests"], accepted as u64, "{reference}");
    assert_eq!(exact(dir, "mixed"), reference, "report --exact");
    let rollups = |lake: &str| {
        json(&ok(
            &cdnlake(dir, &["report", "--dest", lake, "--json"]),
            "report",
        ))
    };
    assert_eq!(rollups("mixed"), rollups("new"), "report");

    let rows = |lake: &str| duckdb_script(dir, lake, "duckdb_check.py", &["--rows"]);
    let d = rows("mixed");
    assert_eq!(assert_rows_are_the_parsers(&d, &texts(&logs)), accepted);
    assert_eq!(d["rows_detail"], rows("new")["rows_detail"]);

    assert_whole(dir, "mixed");
    let before = day_folder(&dir.join("mixed"));
    let r = json(&ok(
        &cdnlake(dir, &["verify", "--dest", "mixed", "--repair", "--json"]),
        "verify --repair",
    ));
    assert!(r["problems"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(
        day_folder(&dir.join("mixed")),
        before,
        "--repair leaves whole version 1 files alone"
    );

    // compact --access: the day's three files, two of them version 1, in one object of the
    // current schema.
    let r = json(&ok(
        &cdnlake(dir, &["compact", "--dest", "mixed", "--access", "--json"]),
        "compact --access",
    ));
    assert_eq!(r["access"]["compacted"], 1, "{r}");
    let folder = day_folder(&dir.join("mixed"));
    assert_eq!(
        folder.keys().collect::<Vec<_>>(),
        ["compacted~day.parquet"],
        "{r}"
    );
    assert_eq!(
        stored_columns(&dir.join("mixed").join(DAY).join("compacted~day.parquet")),
        stored
    );
    assert_eq!(exact(dir, "mixed"), reference, "report --exact, compacted");
    let d = rows("mixed");
    assert_eq!(assert_rows_are_the_parsers(&d, &texts(&logs)), accepted);
    assert_whole(dir, "mixed");
    let r = json(&ok(
        &cdnlake(dir, &["compact", "--dest", "mixed", "--access", "--json"]),
        "compact --access again",
    ));
    assert_eq!(r["access"]["up_to_date"], 1, "{r}");
}

/// `rebuild` converts schema version 1 files again: they become exactly the files a conversion
/// writes now. In a day compacted by the version 1 writer, each file's new rows are spliced into
/// the day object next to the other file's version 1 row groups, which come out in the current
/// schema.
#[test]
fn rebuild_turns_version_1_files_into_current_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let logs = logs(dir);
    let v1_logs = &logs[..2];
    let mut args = vec!["convert", "--dest", "new", "--partition-by", "day"];
    let paths: Vec<String> = V1.iter().map(|n| format!("logs/{n}")).collect();
    args.extend(paths.iter().map(String::as_str));
    ok(&cdnlake(dir, &args), "convert reference");
    let reference = exact(dir, "new");

    // Files of their own.
    copy_dir(&fixture("lake_v1"), &dir.join("old"));
    assert_eq!(exact(dir, "old"), reference);
    assert_whole(dir, "old");
    ok(
        &cdnlake(dir, &["rebuild", "--dest", "old", "--json"]),
        "rebuild",
    );
    assert_eq!(
        day_folder(&dir.join("old")),
        day_folder(&dir.join("new")),
        "rebuilt files are today's, byte for byte"
    );
    assert_whole(dir, "old");

    // A day compacted by the version 1 writer: read as it is, then rebuilt file by file.
    copy_dir(&fixture("lake_v1_compacted"), &dir.join("compacted"));
    let day = dir
        .join("compacted")
        .join(DAY)
        .join("compacted~day.parquet");
    assert!(stored_columns(&day).contains(&"url".to_string()));
    assert_eq!(exact(dir, "compacted"), reference);
    assert_whole(dir, "compacted");
    let d = duckdb_script(dir, "compacted", "duckdb_check.py", &["--rows"]);
    assert_eq!(assert_rows_are_the_parsers(&d, &texts(v1_logs)), 216);
    ok(
        &cdnlake(dir, &["rebuild", "--dest", "compacted", "--json"]),
        "rebuild compacted",
    );
    assert_eq!(
        day_folder(&dir.join("compacted"))
            .keys()
            .collect::<Vec<_>>(),
        ["compacted~day.parquet"]
    );
    assert!(!stored_columns(&day).contains(&"url".to_string()));
    assert_eq!(exact(dir, "compacted"), reference);
    assert_whole(dir, "compacted");
    let d = duckdb_script(dir, "compacted", "duckdb_check.py", &["--rows"]);
    assert_eq!(assert_rows_are_the_parsers(&d, &texts(v1_logs)), 216);
}
