//! Bad input: one clear error line naming the file, a non-zero exit, no manifest, and nothing
//! already in the lake changed.

use crate::support::*;
use cdnlake::dev::gen::GenOptions;

/// A lake holding one good conversion, and the log that made it.
fn lake_with_one_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (log, _) = gen_gz(
        tmp.path(),
        &GenOptions {
            lines: 2000,
            ..GenOptions::default()
        },
    );
    assert!(cdnlake(tmp.path(), &["convert", log.to_str().unwrap()])
        .status
        .success());
    (tmp, log)
}

fn assert_fails_cleanly(tmp: &std::path::Path, file: &str, needle: &str) {
    let before = snapshot(&tmp.join("lake"));
    let o = cdnlake(tmp, &["convert", file]);
    assert!(!o.status.success(), "{file} should fail");
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    assert!(lines[0].contains(file), "names the file: {err}");
    assert!(lines[0].contains(needle), "says {needle}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(snapshot(&tmp.join("lake")), before, "the lake is unchanged");
}

#[test]
fn truncated_gzip() {
    let (tmp, log) = lake_with_one_file();
    let data = std::fs::read(&log).unwrap();
    let bad = tmp.path().join("t.example.com_2024_03_05_0800_0900.gz");
    std::fs::write(&bad, &data[..data.len() * 2 / 3]).unwrap();
    assert_fails_cleanly(
        tmp.path(),
        "t.example.com_2024_03_05_0800_0900.gz",
        "truncated gzip",
    );
    // A truncated copy of a file already in the lake leaves the earlier result intact too.
    std::fs::write(&log, &data[..data.len() - 8]).unwrap();
    assert_fails_cleanly(
        tmp.path(),
        log.file_name().unwrap().to_str().unwrap(),
        "truncated gzip",
    );
}

#[test]
fn not_gzip() {
    let (tmp, _) = lake_with_one_file();
    std::fs::write(
        tmp.path().join("n.example.com_2024_03_05_0800_0900.gz"),
        "hello, not gzip\n",
    )
    .unwrap();
    assert_fails_cleanly(
        tmp.path(),
        "n.example.com_2024_03_05_0800_0900.gz",
        "not a gzip file",
    );
}

#[test]
fn empty_file() {
    let (tmp, _) = lake_with_one_file();
    std::fs::write(tmp.path().join("e.example.com_2024_03_05_0800_0900.gz"), "").unwrap();
    assert_fails_cleanly(
        tmp.path(),
        "e.example.com_2024_03_05_0800_0900.gz",
        "empty file",
    );
}

#[test]
fn missing_file() {
    let (tmp, _) = lake_with_one_file();
    assert_fails_cleanly(
        tmp.path(),
        "m.example.com_2024_03_05_0800_0900.gz",
        "No such file",
    );
}

#[test]
fn no_domain() {
    let (tmp, _) = lake_with_one_file();
    std::fs::write(tmp.path().join("access.log.gz"), gzip(b"x\n")).unwrap();
    assert_fails_cleanly(tmp.path(), "access.log.gz", "--domain");
}

#[test]
fn corrupt_gzip_body() {
    let (tmp, log) = lake_with_one_file();
    let mut data = std::fs::read(&log).unwrap();
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(
        tmp.path().join("c.example.com_2024_03_05_0800_0900.gz"),
        data,
    )
    .unwrap();
    assert_fails_cleanly(tmp.path(), "c.example.com_2024_03_05_0800_0900.gz", "gzip");
}

#[test]
fn bad_flags_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let o = cdnlake(
        tmp.path(),
        &["convert", "x.gz", "--partition-tz", "Asia/Shanghai"],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--partition-tz"), "{}", stderr(&o));
    let o = cdnlake(tmp.path(), &["convert", "x.gz", "--dest", "ftp://x/y"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("ftp://x/y"), "{}", stderr(&o));
}

/// A reader that stops reading (`cdnlake report | head`) is not a crash: the report of a real
/// lake written into a pipe whose reading end is already closed ends with the status a shell
/// gives a process ended by SIGPIPE (141) and says nothing on stderr (before: a panic,
/// "failed printing to stdout: Broken pipe").
#[test]
fn a_closed_standard_output_ends_quietly() {
    let (tmp, _) = lake_with_one_file();
    for args in [
        &["report", "--json"][..],
        &["report"][..],
        &["verify", "--json"][..],
        &["ddl", "--dialect", "duckdb"][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = std::process::Command::new(bin())
            .args(args)
            .current_dir(tmp.path())
            .env_remove("CDNLAKE_DEST")
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(141), "{args:?}: {o:?}");
        assert_eq!(stderr(&o), "", "{args:?}");
    }
}
