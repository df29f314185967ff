//! The report's rollup figures against real DuckDB over `access` (the exact figures):
//! bandwidth (5-minute series, daily peaks, p95) on two wall clocks and in a window; top lists
//! from the heavy-hitter rollups on a Zipf-distributed log equal the exact top 10 and every count
//! lies within its stated bound; unique visitors within 2% (exact for small counts); and a lake
//! written before the new rollups still reports, saying what is missing.
//!
//! Needs `python3 -c 'import duckdb'`; `.ci/run` installs the package when it is missing.

use std::path::{Path, PathBuf};

use crate::support::*;
use cdnlake::access::time::PartitionTz;
use cdnlake::dev::gen::{format_line, GenOptions, OwnedLine, Rng};
use cdnlake::query::report::rfc3339;
use serde_json::Value;

/// 2024-03-05T08:00:00+08:00.
const T0: i64 = 1_709_596_800_000_000;
const HOUR: i64 = 3_600_000_000;

fn check(dir: &Path, tz_secs: i32, from: Option<i64>, to: Option<i64>) -> Value {
    check_domain(dir, tz_secs, from, to, None)
}

fn check_domain(
    dir: &Path,
    tz_secs: i32,
    from: Option<i64>,
    to: Option<i64>,
    domain: Option<&str>,
) -> Value {
    let s = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    let (tz, from, to) = (tz_secs.to_string(), s(from), s(to));
    let mut args = vec![tz.as_str(), from.as_str(), to.as_str()];
    args.extend(domain);
    duckdb_script(dir, "lake", "rollups_check.py", &args)
}

fn report(dir: &Path, args: &[&str]) -> Value {
    let mut a = vec!["report", "--json"];
    a.extend_from_slice(args);
    let o = cdnlake(dir, &a);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The report's bandwidth equals DuckDB's on wall clock `tz`.
fn assert_bandwidth(r: &Value, d: &Value, tz: PartitionTz) {
    let bw = &r["bandwidth"];
    let series = bw["series"].as_array().unwrap();
    let want = d["series"].as_array().unwrap();
    assert_eq!(series.len(), want.len(), "buckets");
    assert_eq!(bw["buckets"].as_u64().unwrap() as usize, want.len());
    for (g, w) in series.iter().zip(want) {
        assert_eq!(g["at"], rfc3339(w[0].as_i64().unwrap(), tz), "bucket start");
        assert!(
            close(g["bps"].as_f64().unwrap(), w[1].as_f64().unwrap()),
            "{g} vs {w}"
        );
    }
    assert!(close(
        bw["peak_bps"].as_f64().unwrap(),
        d["peak"][0].as_f64().unwrap()
    ));
    assert_eq!(bw["peak_at"], rfc3339(d["peak"][1].as_i64().unwrap(), tz));
    assert!(close(
        bw["p95_bps"].as_f64().unwrap(),
        d["p95"].as_f64().unwrap()
    ));
    let peaks = bw["daily_peaks"].as_array().unwrap();
    let want = d["daily_peaks"].as_array().unwrap();
    assert_eq!(peaks.len(), want.len());
    for (g, w) in peaks.iter().zip(want) {
        assert_eq!(g["day"], w[0]);
        assert!(close(
            g["peak_bps"].as_f64().unwrap(),
            w[1].as_f64().unwrap()
        ));
        assert_eq!(g["peak_at"], rfc3339(w[2].as_i64().unwrap(), tz));
    }
}

#[test]
fn bandwidth_equals_sql_over_access() {
    let tmp = tempfile::tempdir().unwrap();
    // Two files with a day-long gap between them: the empty buckets count 0 in the p95, and
    // there are two days of daily peaks.
    let a = GenOptions {
        lines: 8000,
        seed: 11,
        start_micros: T0 - 2 * HOUR,
        span_secs: 5 * 3600,
        ..GenOptions::default()
    };
    let b = GenOptions {
        lines: 6000,
        seed: 12,
        start_micros: T0 + 30 * HOUR + 7 * 60_000_000,
        span_secs: 3 * 3600,
        ..GenOptions::default()
    };
    let (la, _) = gen_gz(tmp.path(), &a);
    let (lb, _) = gen_gz(tmp.path(), &b);
    let o = cdnlake(
        tmp.path(),
        &["convert", la.to_str().unwrap(), lb.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let tz = PartitionTz::default();
    let r = report(tmp.path(), &[]);
    let d = check(tmp.path(), tz.offset_secs, None, None);
    assert_bandwidth(&r, &d, tz);
    let zeros = r["bandwidth"]["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["bps"] == 0.0)
        .count();
    assert!(zeros > 200, "the gap is in the series as zeros: {zeros}");
    assert_eq!(r["bandwidth"]["daily_peaks"].as_array().unwrap().len(), 2);

    // A wall clock whose offset is not a multiple of 5 minutes: buckets align to it.
    let odd = PartitionTz::parse("+05:43").unwrap();
    let r = report(tmp.path(), &["--partition-tz", "+05:43"]);
    let d = check(tmp.path(), odd.offset_secs, None, None);
    assert_bandwidth(&r, &d, odd);
    assert!(
        r["bandwidth"]["peak_at"]
            .as_str()
            .unwrap()
            .ends_with("0:00+05:43")
            || r["bandwidth"]["peak_at"]
                .as_str()
                .unwrap()
                .ends_with("5:00+05:43")
    );

    // A window not on bucket edges: the p95 is taken over its buckets.
    let (from, to) = (T0 + 13 * 60_000_000, T0 + 31 * HOUR + 2 * 60_000_000);
    let r = report(
        tmp.path(),
        &["--from", &rfc3339(from, tz), "--to", &rfc3339(to, tz)],
    );
    let d = check(tmp.path(), tz.offset_secs, Some(from), Some(to));
    assert_bandwidth(&r, &d, tz);
    assert_eq!(r["bandwidth"]["window_from"], "2024-03-05T08:10:00+08:00");
    assert_eq!(r["bandwidth"]["window_to"], "2024-03-06T15:00:00+08:00");
}

/// Index of a Zipf(1) draw over `cdf`.
fn zipf(rng: &mut Rng, cdf: &[f64]) -> usize {
    let u = rng.unit();
    cdf.partition_point(|&c| c < u).min(cdf.len() - 1)
}

fn zipf_cdf(n: usize) -> Vec<f64> {
    let h: f64 = (1..=n).map(|i| 1.0 / i as f64).sum();
    (1..=n)
        .scan(0.0, |s, i| {
            *s += 1.0 / i as f64 / h;
            Some(*s)
        })
        .collect()
}

/// A log whose paths, client IPs, referers and user agents follow Zipf laws over large
/// vocabularies (so the summaries must cut), one line every `step` micros from `start`.
fn zipf_log(dir: &Path, name: &str, lines: usize, start: i64, step: i64, seed: u64) -> PathBuf {
    let mut rng = Rng::new(seed);
    let (paths, ips, refs) = (zipf_cdf(50_000), zipf_cdf(200_000), zipf_cdf(5_000));
    let mut text = Vec::new();
    for i in 0..lines {
        let p = zipf(&mut rng, &paths);
        let ip = zipf(&mut rng, &ips);
        let l = OwnedLine {
            time_micros: start + i as i64 * step / 1_000_000 * 1_000_000,
            offset_secs: 8 * 3600,
            client_ip: format!("10.{}.{}.{}", ip >> 16, (ip >> 8) & 255, ip & 255),
            proxy_ip: None,
            response_time_ms: 5,
            referer: (rng.below(4) > 0)
                .then(|| format!("https://r.example/{}", zipf(&mut rng, &refs))),
            method: "GET".into(),
            url: format!("http://z.example.com/obj/{p}.bin"),
            status: if rng.below(20) == 0 { 404 } else { 200 },
            request_bytes: 100,
            // Each object has its own size, with some noise: bytes rank differently from requests.
            response_bytes: 1000 + (p as i64 * 7919) % 90_000 + rng.below(100) as i64,
            cache_status: Some("HIT".into()),
            user_agent: format!("agent/{}", zipf(&mut rng, &refs) % 3000),
            content_type: "application/octet-stream".into(),
            extra: None,
        };
        format_line(&l, &mut text);
        text.push(b'\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, gzip(&text)).unwrap();
    path
}

#[test]
fn zipf_top_lists_from_rollups_equal_the_exact_top() {
    let tmp = tempfile::tempdir().unwrap();
    // Three files over three hours, two of them sharing an hour: summaries merge across blocks,
    // hours and files.
    let logs = [
        zipf_log(
            tmp.path(),
            "z.example.com_2024_03_05_0800_0900.gz",
            120_000,
            T0,
            30_000,
            1,
        ),
        zipf_log(
            tmp.path(),
            "z.example.com_2024_03_05_0900_1000.gz",
            90_000,
            T0 + HOUR,
            40_000,
            2,
        ),
        zipf_log(
            tmp.path(),
            "z.example.com_2024_03_05_0900_1000_2.gz",
            60_000,
            T0 + HOUR,
            100_000,
            3,
        ),
    ];
    let mut args = vec!["convert"];
    args.extend(logs.iter().map(|l| l.to_str().unwrap()));
    let o = cdnlake(tmp.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));

    for (from, to) in [(None, None), (Some(T0 + HOUR), Some(T0 + 2 * HOUR))] {
        let tz = PartitionTz::default();
        let mut a: Vec<String> = Vec::new();
        if let (Some(f), Some(t)) = (from, to) {
            a = vec![
                "--from".into(),
                rfc3339(f, tz),
                "--to".into(),
                rfc3339(t, tz),
            ];
        }
        let r = report(
            tmp.path(),
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let d = check(tmp.path(), tz.offset_secs, from, to);
        assert_eq!(r["top_source"], "rollups");
        assert_eq!(r["top_approximate"], true, "the summaries had to cut");
        for dim in cdnlake::query::top::DIMENSIONS {
            for (m, by) in [("requests", "by_requests"), ("bytes", "by_bytes")] {
                let list = r["top"][dim][by].as_array().unwrap();
                let keys: Vec<&Value> = list.iter().map(|e| &e["value"]).collect();
                let want: Vec<&Value> = d["top"][dim][by].as_array().unwrap().iter().collect();
                assert_eq!(keys, want, "{dim} {by} ({from:?})");
                // Every count shown is a lower bound within its stated error.
                for e in list {
                    let exact = &d["counts"][dim][e["value"].as_str().unwrap()];
                    for (i, metric) in ["requests", "bytes"].iter().enumerate() {
                        let (v, err) = (
                            e[metric].as_i64().unwrap(),
                            e[format!("{metric}_error")].as_i64().unwrap(),
                        );
                        let x = exact[i].as_i64().unwrap();
                        assert!(v <= x && x <= v + err, "{dim} {by} {m}: {e} vs exact {x}");
                    }
                }
            }
        }
        // The errors are within the Misra-Gries bound: N / (capacity + 1) per summary merged.
        let e = r["top"]["client_ip"]["by_requests"][0]["requests_error"]
            .as_i64()
            .unwrap();
        let n: i64 = d["counts"]["client_ip"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c[0].as_i64().unwrap())
            .sum();
        assert!(e > 0 && e <= n / 1001 + 1, "error {e} of {n}");
        // The status codes are exact.
        assert_eq!(r["top"]["status"]["by_requests"][0]["requests_error"], 0);
        // Unique visitors are within 2% of the exact count.
        let (u, x) = (
            r["unique_visitors"].as_f64().unwrap(),
            d["unique_visitors"].as_f64().unwrap(),
        );
        assert!((u - x).abs() / x < 0.02, "unique visitors {u} vs {x}");
        assert_eq!(r["unique_visitors_exact"], false);
    }

    // The text says the figures are approximate and shows their bound.
    let o = cdnlake(tmp.path(), &["report"]);
    let t = stdout(&o);
    assert!(t.contains("approximate"), "{t}");
    assert!(t.contains(" +"), "{t}");
}

/// A log of `lines` requests from exactly `distinct` client IPs (each at least once), over
/// two hours.
fn ip_log(dir: &Path, name: &str, lines: usize, distinct: usize, first_ip: usize) -> PathBuf {
    let mut rng = Rng::new(distinct as u64);
    let mut text = Vec::new();
    for i in 0..lines {
        let ip = first_ip
            + if i < distinct {
                i
            } else {
                rng.below(distinct as u64) as usize
            };
        let l = OwnedLine {
            time_micros: T0 + (i as i64 * 2 * HOUR / lines as i64) / 1_000_000 * 1_000_000,
            offset_secs: 8 * 3600,
            client_ip: format!("172.{}.{}.{}", ip >> 16, (ip >> 8) & 255, ip & 255),
            proxy_ip: None,
            response_time_ms: 3,
            referer: None,
            method: "GET".into(),
            url: "http://v.example.com/a".into(),
            status: 200,
            request_bytes: 10,
            response_bytes: 20,
            cache_status: Some("HIT".into()),
            user_agent: "ua".into(),
            content_type: "t".into(),
            extra: None,
        };
        format_line(&l, &mut text);
        text.push(b'\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, gzip(&text)).unwrap();
    path
}

#[test]
fn unique_visitors_within_two_percent_and_exact_when_few() {
    let tmp = tempfile::tempdir().unwrap();
    // 100k distinct IPs in one file, 60k in another, 30k of them shared: 130k in all.
    let a = ip_log(
        tmp.path(),
        "v.example.com_2024_03_05_0800_1000.gz",
        160_000,
        100_000,
        0,
    );
    let b = ip_log(
        tmp.path(),
        "v.example.com_2024_03_05_0800_1000_2.gz",
        80_000,
        60_000,
        70_000,
    );
    // 500 distinct IPs on another domain: kept exactly.
    let c = ip_log(
        tmp.path(),
        "w.example.com_2024_03_05_0800_1000.gz",
        3_000,
        500,
        0,
    );
    let o = cdnlake(
        tmp.path(),
        &[
            "convert",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            c.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let d = check_domain(tmp.path(), 8 * 3600, None, None, Some("v.example.com"));
    let r = report(tmp.path(), &["--domain", "v.example.com"]);
    let u = r["unique_visitors"].as_f64().unwrap();
    assert!((u - 130_000.0).abs() / 130_000.0 < 0.02, "{u}");
    for h in r["per_hour"].as_array().unwrap() {
        let n = h["unique_visitors"].as_f64().unwrap();
        assert!(n > 0.0);
        // Per hour against DuckDB.
        let label = h["hour"].as_str().unwrap().replace(' ', "T");
        let exact = d["unique_per_hour"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| rfc3339(x[0].as_i64().unwrap(), PartitionTz::default()).starts_with(&label))
            .map(|x| x[1].as_f64().unwrap())
            .unwrap();
        assert!((n - exact).abs() / exact < 0.02, "{h} vs {exact}");
    }
    assert_eq!(d["unique_visitors"], 130_000);

    let w = report(tmp.path(), &["--domain", "w.example.com"]);
    assert_eq!(w["unique_visitors"], 500);
    assert_eq!(w["unique_visitors_exact"], true);
    let x = report(tmp.path(), &["--domain", "w.example.com", "--exact"]);
    assert_eq!(x["unique_visitors"], 500);
    assert_eq!(x["per_hour"], w["per_hour"], "per-hour figures agree too");
}

/// Removes the heavy_hitters and visitors objects (files and manifest entries), as in a lake
/// converted before they existed.
fn strip_new_rollups(lake: &Path, only: Option<&str>) {
    for k in snapshot(lake).into_keys() {
        if k.starts_with("_manifests/") && only.is_none_or(|o| k.contains(o)) {
            let p = lake.join(&k);
            let mut m: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            m["objects"].as_array_mut().unwrap().retain(|o| {
                let key = o["key"].as_str().unwrap();
                let new = key.starts_with("heavy_hitters/") || key.starts_with("visitors/");
                if new {
                    std::fs::remove_file(lake.join(key)).unwrap();
                }
                !new
            });
            std::fs::write(&p, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        }
    }
}

#[test]
fn an_old_lake_still_reports_and_says_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let (la, _) = gen_gz(
        tmp.path(),
        &GenOptions {
            lines: 3000,
            ..GenOptions::default()
        },
    );
    let (lb, _) = gen_gz(
        tmp.path(),
        &GenOptions {
            lines: 2000,
            seed: 5,
            domain: "b.example.com".into(),
            ..GenOptions::default()
        },
    );
    let o = cdnlake(
        tmp.path(),
        &["convert", la.to_str().unwrap(), lb.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let lake = tmp.path().join("lake");
    let full = report(tmp.path(), &[]);
    assert!(full["unique_visitors"].is_i64());

    // Only b.example.com's file is old: figures over both domains are left out, not partial.
    strip_new_rollups(&lake, Some("b.example.com"));
    let r = report(tmp.path(), &[]);
    assert!(r["unique_visitors"].is_null(), "{}", r["unique_visitors"]);
    assert_eq!(r["top"], serde_json::json!({}));
    let notes: Vec<&str> = r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes
        .iter()
        .all(|n| n.contains("not in the rollups of this lake: re-convert or use --exact")));
    // The traffic figures are all there, bandwidth included.
    assert_eq!(r["requests"], full["requests"]);
    assert_eq!(r["bandwidth"], full["bandwidth"]);
    // The domain whose file is new still has them all.
    let a = report(tmp.path(), &["--domain", "cdn.example.com"]);
    assert!(a["unique_visitors"].is_i64());
    assert!(a["notes"].as_array().unwrap().is_empty());

    // Everything old: the text and the page say so; --exact still answers; verify is content.
    strip_new_rollups(&lake, None);
    let o = cdnlake(tmp.path(), &["report", "--html", "old.html"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = stdout(&o);
    assert!(
        t.contains("unique visitors: not in the rollups of this lake: re-convert or use --exact"),
        "{t}"
    );
    assert!(
        t.contains("top lists: not in the rollups of this lake"),
        "{t}"
    );
    let html = std::fs::read_to_string(tmp.path().join("old.html")).unwrap();
    assert!(html.contains("not in the rollups of this lake"));
    let x = report(tmp.path(), &["--exact"]);
    let (exact, est) = (
        x["unique_visitors"].as_f64().unwrap(),
        full["unique_visitors"].as_f64().unwrap(),
    );
    assert!((exact - est).abs() / exact < 0.02, "{exact} vs {est}");
    assert_eq!(
        x["top"]["path"]["by_requests"].as_array().unwrap().len(),
        10
    );
    let o = cdnlake(tmp.path(), &["verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A day lake (`--partition-by day`: one rollup file per source file and day, its rows told
/// apart by `hour_start`) reports exactly what an hour lake of the same logs reports, over the
/// whole lake and in a window that cuts a day.
#[test]
fn a_day_lake_reports_as_an_hour_lake() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    // 2024-03-05T23:30+08:00 for two hours: across midnight, so two days.
    for (seed, domain) in [(1, "a.example.com"), (2, "b.example.com")] {
        gen_gz(
            &logs,
            &GenOptions {
                lines: 6000,
                seed,
                domain: domain.into(),
                start_micros: T0 + 15 * HOUR + 30 * 60_000_000,
                span_secs: 7199,
                ..GenOptions::default()
            },
        );
    }
    for (lake, by) in [("hour", "hour"), ("day", "day")] {
        let o = cdnlake(
            tmp.path(),
            &["convert", "logs", "--dest", lake, "--partition-by", by],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let day_keys: Vec<String> = snapshot(&tmp.path().join("day")).into_keys().collect();
    for table in ["heavy_hitters/", "visitors/", "traffic/"] {
        let files: Vec<&String> = day_keys.iter().filter(|k| k.starts_with(table)).collect();
        assert_eq!(files.len(), 4, "two sources x two days: {files:?}");
        assert!(files.iter().all(|k| !k.contains("hour=")), "{files:?}");
    }
    let window = [
        "--from",
        "2024-03-05T23:00:00+08:00",
        "--to",
        "2024-03-06T01:00:00+08:00",
    ];
    for args in [&[][..], &window[..]] {
        let by = |lake: &str| {
            let mut a = vec!["--dest", lake];
            a.extend_from_slice(args);
            report(tmp.path(), &a)
        };
        let (hour, day) = (by("hour"), by("day"));
        assert!(hour["unique_visitors"].as_u64().unwrap_or(0) > 0, "{hour}");
        assert!(hour["top"]["path"]["by_requests"]
            .as_array()
            .is_some_and(|l| !l.is_empty()));
        assert_eq!(hour, day, "{args:?}");
    }
}
