//! The event samples: Alibaba's documentation page (`tests/data/seed_*.json`, copied verbatim with
//! their `//` comments and trailing commas) through the lenient parser of `cdnlake handle`, and
//! the repository's `sample_logs/events/*.json` through the strict parser of `serve`.

use std::path::{Path, PathBuf};

use cdnlake::event::{parse_lenient, parse_strict, EventKind};

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".json")
        })
        .collect();
    v.sort();
    v
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Two samples of the page (the generic envelope and LogFileCreated) lack the comma after
/// `"traceId": "..."`; serde reports it where the next member starts, line 10 of both files.
const MISSING_COMMA: [(&str, usize); 2] = [
    ("seed_1_envelope.json", 10),
    ("seed_2_log_file_created.json", 10),
];

#[test]
fn seed_page_samples_parse_leniently_except_the_missing_commas() {
    let seeds = files(&data_dir(), "seed_");
    assert_eq!(seeds.len(), 5, "{seeds:?}");
    let mut names = Vec::new();
    for path in &seeds {
        let file = path.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read(path).unwrap();
        assert!(
            String::from_utf8_lossy(&text).contains("// "),
            "{file} keeps its comments"
        );
        assert!(
            parse_strict(&text).is_err(),
            "{file} is not strict JSON, serve must refuse it"
        );
        match MISSING_COMMA.iter().find(|(f, _)| *f == file) {
            Some((_, line)) => {
                let e = parse_lenient(&text).unwrap_err().to_string();
                assert!(
                    e.contains(&format!("line {line} ")),
                    "{file}: the error must name line {line}: {e}"
                );
                assert!(e.contains("expected `,`"), "{file}: {e}");
            }
            None => {
                let events = parse_lenient(&text)
                    .unwrap_or_else(|e| panic!("{file} must parse leniently: {e}"));
                assert_eq!(events.len(), 1, "{file}");
                let ev = &events[0];
                assert!(!matches!(ev.kind, EventKind::Unknown(_)), "{file}: {ev:?}");
                assert_eq!(ev.trace_id, "cf89e5a8-7d59-4bb5-a33e-4c3d08e25acf");
                names.push(ev.name.clone());
            }
        }
    }
    // The page's "CdnDomainAdded/Deleted" sample is itself named CdnDomainStarted.
    assert_eq!(
        names,
        [
            "CachedObjectsRefreshed",
            "CdnDomainStarted",
            "CdnDomainStarted"
        ]
    );
}

#[test]
fn handle_names_the_line_of_the_missing_comma() {
    let dir = tempfile::tempdir().unwrap();
    let path = data_dir().join(MISSING_COMMA[1].0);
    let out = crate::support::cdnlake(
        dir.path(),
        &[
            "handle",
            path.to_str().unwrap(),
            "--dest",
            dir.path().join("lake").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = crate::support::stderr(&out);
    assert!(err.contains("line 10 "), "{err}");
    assert!(
        !dir.path().join("lake").join("audit").exists(),
        "nothing written for an event file that does not parse"
    );
}

#[test]
fn sample_events_parse_strictly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_logs/events");
    let samples = files(&dir, "");
    assert_eq!(samples.len(), 8, "{samples:?}");
    for path in &samples {
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let text = std::fs::read(path).unwrap();
        let events =
            parse_strict(&text).unwrap_or_else(|e| panic!("{} is not strict: {e}", path.display()));
        assert!(!events.is_empty(), "{stem}");
        for ev in &events {
            assert_eq!(ev.name, stem, "{}", path.display());
            assert!(!matches!(ev.kind, EventKind::Unknown(_)), "{stem}: {ev:?}");
        }
    }
}
