//! `cdnlake sync` against real servers on loopback: a CDN API that verifies every request's V3
//! signature and pages a few days of files (split hours, scheme-less `LogPath`s, a file whose
//! size changed since it was converted, a throttling reply), a TLS log server, an FC endpoint
//! that verifies and records asynchronous invocations whose events then go through `serve`.
//! The lake is read with real DuckDB at the end of each story.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::cloud::*;
use crate::support::logserver::{make_ca, LogServer, TestCa};
use crate::support::*;
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};

use cdnlake::dev::gen::{cdn_file_name, generate, GenOptions};

const DOMAIN: &str = "www.example.com";

/// One log file of the story.
struct Spec {
    name: String,
    url_path: String,
    gz: Vec<u8>,
    rows: u64,
    /// Inside the window the tests sync.
    inside: bool,
}

struct World {
    dir: tempfile::TempDir,
    ca: TestCa,
    cdn: CdnApi,
    logs: LogServer,
    specs: Vec<Spec>,
    /// `--from` / `--to` as the user types them: dates on the UTC+8 partition clock.
    from: String,
    to: String,
}

fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

fn gz_of(opts: &GenOptions) -> (Vec<u8>, u64) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let s = generate(opts, &mut gz).unwrap();
    gz.flush().unwrap();
    (gz.finish().unwrap(), s.rows)
}

/// Days `d0-1` 23:00 to `d0+3` 00:00 (UTC+8) of hourly files, `d0` five days ago: the window
/// `[d0, d0+3)` holds ten of them, `d0+1` 09:00 split in two parts. The two outside it are the
/// hours a window read in UTC instead of UTC+8 would take in or leave out.
async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let ca = make_ca(dir.path());
    let cdn = start_cdn_api().await;
    let logs = LogServer::start_tls(&ca).await;
    let today = Utc::now().with_timezone(&beijing()).date_naive();
    let d0 = today - chrono::Days::new(5);
    let at = |day: NaiveDate, hour: u32| -> DateTime<Utc> {
        beijing()
            .from_local_datetime(&day.and_hms_opt(hour, 0, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    let d = |n: i64| d0 + chrono::Duration::days(n);
    // (day, hour, part, inside)
    let hours: Vec<(NaiveDate, u32, Option<u32>, bool)> = vec![
        (d(-1), 23, None, false),
        (d(0), 0, None, true),
        (d(0), 9, None, true),
        (d(0), 23, None, true),
        (d(1), 0, None, true),
        (d(1), 9, Some(1), true),
        (d(1), 9, Some(2), true),
        (d(1), 23, None, true),
        (d(2), 0, None, true),
        (d(2), 9, None, true),
        (d(2), 23, None, true),
        (d(3), 0, None, false),
    ];
    let mut specs = Vec::new();
    for (i, (day, hour, part, inside)) in hours.into_iter().enumerate() {
        let start = at(day, hour);
        let opts = GenOptions {
            lines: 150 + 10 * i as u64,
            seed: 100 + i as u64,
            domain: DOMAIN.into(),
            start_micros: start.timestamp_micros(),
            span_secs: 3599,
            ..GenOptions::default()
        };
        let mut name = cdn_file_name(&opts);
        if let Some(p) = part {
            name = name.replace(".gz", &format!("_{p}.gz"));
        }
        let (gz, rows) = gz_of(&opts);
        let url_path = format!("/{DOMAIN}/{}/{name}", day.format("%Y_%m_%d"));
        // The CDN's LogPath has no scheme; one file says https:// anyway, as events do.
        let path = if i == 4 {
            format!("https://{}", logs.log_path(&url_path))
        } else {
            logs.log_path(&url_path)
        };
        logs.state
            .files
            .lock()
            .unwrap()
            .insert(url_path[1..].to_string(), gz.clone());
        cdn.state.files.lock().unwrap().push(Listed {
            domain: DOMAIN.into(),
            name: name.clone(),
            path,
            size: gz.len() as u64,
            start,
            end: start + chrono::Duration::hours(1),
        });
        specs.push(Spec {
            name,
            url_path,
            gz,
            rows,
            inside,
        });
    }
    World {
        from: d(0).format("%Y-%m-%d").to_string(),
        to: d(3).format("%Y-%m-%d").to_string(),
        dir,
        ca,
        cdn,
        logs,
        specs,
    }
}

impl World {
    fn lake(&self) -> PathBuf {
        self.dir.path().join("lake")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(self.dir.path())
            .env_remove("CDNLAKE_DEST")
            .env_remove("CDNLAKE_SYNC_DOMAINS")
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", AK)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
            .env("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
            .env("SSL_CERT_FILE", &self.ca.ca_pem)
            .env("CDNLAKE_CDN_ENDPOINT", self.cdn.endpoint())
            .env("CDNLAKE_LOG", "warn")
            .stdin(Stdio::null());
        c
    }

    fn sync_args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            "sync",
            "--domain",
            DOMAIN,
            "--from",
            &self.from,
            "--to",
            &self.to,
            "--dest",
            "lake",
            "--allow-host",
            "127.0.0.1",
            "--page-size",
            "4",
        ];
        a.extend_from_slice(extra);
        a
    }

    /// Runs with `--json`; the report parsed (null when stdout is not JSON).
    async fn run(&self, mut args: Vec<&str>) -> (Output, serde_json::Value) {
        args.push("--json");
        let mut c = self.command(&args);
        let o = tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap();
        let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
        (o, v)
    }

    fn inside(&self) -> impl Iterator<Item = &Spec> {
        self.specs.iter().filter(|s| s.inside)
    }

    fn expected_rows(&self) -> u64 {
        self.inside().map(|s| s.rows).sum()
    }

    fn manifests(&self) -> Vec<PathBuf> {
        crate::support::walk::files(&self.lake().join("_manifests"))
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect()
    }

    /// Asserts the lake holds every row of the window once, read by real DuckDB.
    fn assert_complete(&self) {
        let v = duckdb_script(self.dir.path(), "lake", "duckdb_check.py", &[]);
        assert_eq!(v["rows"].as_u64(), Some(self.expected_rows()), "{v}");
        assert_eq!(
            v["distinct_lines"], v["rows"],
            "duplicate (source_file, line_number): {v}"
        );
        assert_eq!(self.manifests().len(), self.inside().count());
    }
}

fn actions(v: &serde_json::Value) -> BTreeMap<String, String> {
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn manifest_of(w: &World, name: &str) -> PathBuf {
    w.manifests()
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy() == name.replace(".gz", ".json"))
        .unwrap_or_else(|| panic!("no manifest for {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_fills_the_window_and_a_rerun_does_nothing() {
    let w = world().await;
    // Before: one file converted as it is now, one converted when it was another size.
    let same = &w.specs[8];
    let changed = &w.specs[2];
    std::fs::create_dir_all(w.dir.path().join("old")).unwrap();
    std::fs::write(w.dir.path().join("old").join(&same.name), &same.gz).unwrap();
    let (old_gz, _) = gz_of(&GenOptions {
        lines: 40,
        seed: 7,
        domain: DOMAIN.into(),
        ..GenOptions::default()
    });
    assert_ne!(old_gz.len(), changed.gz.len());
    std::fs::write(w.dir.path().join("old").join(&changed.name), &old_gz).unwrap();
    let o = cdnlake(w.dir.path(), &["convert", "--dest", "lake", "old"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The second request of the listing is throttled once.
    w.cdn.state.throttle.lock().unwrap().insert(2);

    let (o, v) = w.run(w.sync_args(&[])).await;
    assert!(o.status.success(), "{}\n{}", stderr(&o), stdout(&o));
    assert_eq!(v["listed"], 10, "{v}");
    assert_eq!(v["done"], 1, "{v}");
    assert_eq!(v["converted"], 9, "{v}");
    assert_eq!(
        (v["failed"].as_u64(), v["invoked"].as_u64()),
        (Some(0), Some(0)),
        "{v}"
    );
    let acts = actions(&v);
    assert_eq!(acts.len(), 10);
    assert_eq!(acts[&same.name], "done");
    for s in w.specs.iter().filter(|s| !s.inside) {
        assert!(
            !acts.contains_key(&s.name),
            "{} is outside the window",
            s.name
        );
    }
    let changed_report = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == changed.name.as_str())
        .unwrap();
    assert_eq!(changed_report["action"], "converted");
    assert_eq!(
        changed_report["reason"].as_str().unwrap(),
        format!(
            "size changed (lake {}, CDN {})",
            old_gz.len(),
            changed.gz.len()
        )
    );
    // The window went to the API in UTC: midnight UTC+8 is 16:00 UTC the day before.
    let requests = w.cdn.state.requests.lock().unwrap().clone();
    assert!(
        requests.iter().all(|r| r.verified),
        "every request verified"
    );
    let first = &requests[0].query;
    let from = NaiveDate::parse_from_str(&w.from, "%Y-%m-%d").unwrap() - chrono::Days::new(1);
    assert_eq!(
        first["StartTime"],
        format!("{}T16:00:00Z", from.format("%Y-%m-%d"))
    );
    assert_eq!(first["PageSize"], "4");
    // Three pages of 4, one of them asked twice because it was throttled.
    assert_eq!(
        w.cdn
            .state
            .throttled
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(
        requests.len(),
        4,
        "{:?}",
        requests
            .iter()
            .map(|r| &r.query["PageNumber"])
            .collect::<Vec<_>>()
    );
    w.assert_complete();

    // Again: everything is done, nothing is fetched.
    let gets = w.logs.state.seen.lock().unwrap().len();
    let (o, v) = w.run(w.sync_args(&[])).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        (
            v["listed"].as_u64(),
            v["done"].as_u64(),
            v["converted"].as_u64()
        ),
        (Some(10), Some(10), Some(0)),
        "{v}"
    );
    assert_eq!(w.logs.state.seen.lock().unwrap().len(), gets);

    // A lost manifest: the dry run names that file only, and changes nothing.
    let part2 = &w.specs[6];
    assert!(part2.name.ends_with("_2.gz"));
    std::fs::remove_file(manifest_of(&w, &part2.name)).unwrap();
    let before = snapshot(&w.lake());
    let (o, v) = w.run(w.sync_args(&["--dry-run"])).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let acts = actions(&v);
    let todo: Vec<&String> = acts
        .iter()
        .filter(|(_, a)| *a == "would_convert")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(todo, vec![&part2.name]);
    assert_eq!(v["bytes"].as_u64(), Some(part2.gz.len() as u64));
    assert_eq!(snapshot(&w.lake()), before);
    // The text form says the same to a person.
    let o = w.command(&w.sync_args(&["--dry-run"])).output().unwrap();
    assert!(o.status.success());
    assert!(
        stdout(&o).contains(&format!("would_convert {}", part2.name)),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("listed 10, already done 9, to do 1"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_killed_sync_is_finished_by_the_next_one() {
    let w = world().await;
    // One file cannot be fetched: the run fails, naming it, and converts the others.
    let broken = &w.specs[5];
    w.logs
        .state
        .broken
        .lock()
        .unwrap()
        .insert(broken.url_path[1..].to_string());
    // A new lake partitioned by day; later runs follow its descriptor without being told.
    let (o, v) = w.run(w.sync_args(&["--partition-by", "day"])).await;
    assert!(!o.status.success());
    assert_eq!(
        (v["converted"].as_u64(), v["failed"].as_u64()),
        (Some(9), Some(1)),
        "{v}"
    );
    let f = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["action"] == "failed")
        .unwrap();
    assert_eq!(f["name"], broken.name.as_str());
    assert!(f["error"].as_str().unwrap().contains("404"), "{f}");
    assert!(
        !f["error"].as_str().unwrap().contains("SIGNED"),
        "the signed query is never shown: {f}"
    );
    w.logs.state.broken.lock().unwrap().clear();
    let (o, v) = w.run(w.sync_args(&[])).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        (v["done"].as_u64(), v["converted"].as_u64()),
        (Some(9), Some(1)),
        "{v}"
    );
    w.assert_complete();
    let access: Vec<String> = snapshot(&w.lake())
        .into_keys()
        .filter(|k| k.starts_with("access/"))
        .collect();
    assert!(!access.is_empty());
    assert!(access.iter().all(|k| !k.contains("hour=")), "{access:?}");
    // Told otherwise, sync refuses before converting anything.
    std::fs::remove_file(manifest_of(&w, &broken.name)).unwrap();
    let (o, v) = w.run(w.sync_args(&["--partition-by", "hour"])).await;
    assert!(!o.status.success());
    assert!(
        v["files"].as_array().unwrap().iter().any(
            |f| f["action"] == "failed" && f["error"].as_str().unwrap().contains("contradicts")
        ),
        "{v}"
    );

    // Killed in the middle (kill -9), one file at a time and each one slow: the next run
    // converts exactly what has no manifest.
    std::fs::remove_dir_all(w.lake()).unwrap();
    *w.logs.state.delay.lock().unwrap() = Duration::from_millis(400);
    let mut child = w
        .command(&w.sync_args(&["--jobs", "1"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while w.manifests().len() < 3 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "sync ended before it was killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let finished = w.manifests().len();
    assert!(finished < 10, "killed too late to test anything");
    *w.logs.state.delay.lock().unwrap() = Duration::ZERO;
    let (o, v) = w.run(w.sync_args(&[])).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["done"].as_u64(), Some(finished as u64), "{v}");
    assert_eq!(v["converted"].as_u64(), Some(10 - finished as u64), "{v}");
    w.assert_complete();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_refusals_are_one_clear_line_and_not_retried() {
    let w = world().await;
    // A wrong secret: Alibaba's SignatureDoesNotMatch, asked once, exit status 1.
    let mut c = w.command(&w.sync_args(&[]));
    c.env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-the-secret");
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.starts_with("cdnlake: error: listing"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("SignatureDoesNotMatch"), "{line}");
    assert!(
        line.starts_with(&format!(
            "cdnlake: error: listing {DOMAIN}: DescribeCdnDomainLogs at http://127.0.0.1"
        )),
        "{line}"
    );
    assert!(line.contains("HTTP 400"), "{line}");
    assert!(
        !err.contains("not-the-secret") && !err.contains(SECRET),
        "{err}"
    );
    assert_eq!(
        w.cdn.state.requests.lock().unwrap().len(),
        1,
        "a bad signature is not retried"
    );
    assert!(err.contains("domain(s) could not be listed"), "{err}");

    // A domain of another account, and a good one: the good one is synced, the run fails.
    let args = [
        "sync",
        "--domain",
        &format!("other.example.org,{DOMAIN}"),
        "--from",
        &w.from,
        "--to",
        &w.to,
        "--dest",
        "lake",
        "--allow-host",
        "127.0.0.1",
        "--json",
    ];
    let mut c = w.command(&args);
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["converted"], 10, "{v}");
    let e = &v["listing_errors"][0];
    assert_eq!(e["domain"], "other.example.org");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("InvalidDomain.NotFound"),
        "{e}"
    );

    // No credentials at all: said before anything is asked.
    let mut c = w.command(&args);
    c.env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID");
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("ALIBABA_CLOUD_ACCESS_KEY_ID"),
        "{}",
        stderr(&o)
    );
}

/// Runs `cdnlake serve` on a free loopback port; killed on drop.
struct Serve {
    child: std::process::Child,
    addr: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_serve(w: &World, fc: &FcApi) -> Serve {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = w
        .command(&[
            "serve",
            "--listen",
            &addr,
            "--dest",
            "lake",
            "--allow-host",
            "127.0.0.1",
        ])
        .env("CDNLAKE_SYNC_DOMAINS", DOMAIN)
        .env("CDNLAKE_FC_ENDPOINT", fc.endpoint())
        // The files are 2 to 6 days old.
        .env("CDNLAKE_SYNC_HOURS", "200")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed and waited for on drop, whatever happens next.
    let serve = Serve { child, addr };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(&serve.addr).await.is_ok() {
            return serve;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("serve did not start");
}

async fn post(addr: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, String) {
    cdnlake::tls::ensure_provider();
    let mut req = reqwest::Client::new()
        .post(format!("http://{addr}/invoke"))
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// `sync`'s flags to hand files to the FC stand-in at `endpoint` instead of converting them.
fn invoke_args(endpoint: &str) -> [&str; 6] {
    [
        "--invoke-fc",
        "cdnlake",
        "--fc-endpoint",
        endpoint,
        "--qualifier",
        "prod",
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_on_fc_then_the_timer_heals_what_is_lost() {
    let w = world().await;
    let fc = start_fc_api().await;
    let endpoint = fc.endpoint();
    let fc_args = invoke_args(&endpoint);
    let (o, v) = w.run(w.sync_args(&fc_args)).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        (
            v["invoked"].as_u64(),
            v["converted"].as_u64(),
            v["done"].as_u64()
        ),
        (Some(10), Some(0), Some(0)),
        "{v}"
    );
    let calls = fc.state.invocations.lock().unwrap().clone();
    assert_eq!(calls.len(), 10);
    assert!(fc.state.requests.lock().unwrap().iter().all(|r| r.verified));
    assert!(calls
        .iter()
        .all(|c| c.function == "cdnlake" && c.qualifier.as_deref() == Some("prod")));
    assert!(w.manifests().is_empty(), "invoking converts nothing here");

    // Repeated the same day: FC already has every task id; nothing is submitted twice.
    let (o, v) = w.run(w.sync_args(&fc_args)).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["invoked"], 0, "{v}");
    assert!(actions(&v).values().all(|a| a == "already_invoked"), "{v}");
    assert_eq!(fc.state.invocations.lock().unwrap().len(), 10);

    // FC delivers the recorded events to the function: serve converts them as the CDN's own.
    let serve = start_serve(&w, &fc).await;
    for c in &calls {
        let (status, text) = post(
            &serve.addr,
            c.body.clone(),
            &[("x-fc-request-id", &c.task_id)],
        )
        .await;
        assert_eq!(status, 200, "{text}");
    }
    w.assert_complete();

    // Two files are lost from the lake; the hourly timer finds and resubmits exactly those
    // (a new day for FC: its task ids of yesterday are gone).
    let lost = [&w.specs[3], &w.specs[9]];
    for s in lost {
        std::fs::remove_file(manifest_of(&w, &s.name)).unwrap();
    }
    fc.state.task_ids.lock().unwrap().clear();
    fc.state.invocations.lock().unwrap().clear();
    // The timer's window is the last CDNLAKE_SYNC_HOURS from now; the CDN offers only the
    // window's files here, so the lake can be compared with them.
    let inside: Vec<String> = w.inside().map(|s| s.name.clone()).collect();
    w.cdn
        .state
        .files
        .lock()
        .unwrap()
        .retain(|f| inside.contains(&f.name));
    let timer = br#"{"triggerTime":"2026-12-01T10:00:00Z","triggerName":"reconcile","payload":""}"#
        .to_vec();
    let fc_headers = [
        ("x-fc-request-id", "timer-1"),
        ("x-fc-access-key-id", AK),
        ("x-fc-access-key-secret", SECRET),
        ("x-fc-security-token", TOKEN),
        ("x-fc-function-name", "cdnlake"),
        ("x-fc-qualifier", "LATEST"),
        ("x-fc-region", "cn-hangzhou"),
        ("x-fc-account-id", "1234567890"),
    ];
    let (status, text) = post(&serve.addr, timer, &fc_headers).await;
    assert_eq!(status, 200, "{text}");
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (
            report["listed"].as_u64(),
            report["done"].as_u64(),
            report["invoked"].as_u64()
        ),
        (Some(10), Some(8), Some(2)),
        "{report}"
    );
    let calls = fc.state.invocations.lock().unwrap().clone();
    let mut named: Vec<String> = calls
        .iter()
        .map(|c| {
            let e: serde_json::Value = serde_json::from_slice(&c.body).unwrap();
            let path = e["events"][0]["eventParameter"]["filePath"]
                .as_str()
                .unwrap()
                .to_string();
            path.split('?')
                .next()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    named.sort();
    let mut want: Vec<String> = lost.iter().map(|s| s.name.clone()).collect();
    want.sort();
    assert_eq!(named, want);
    assert!(calls
        .iter()
        .all(|c| c.qualifier.as_deref() == Some("LATEST")));
    for c in &calls {
        let (status, text) = post(&serve.addr, c.body.clone(), &[]).await;
        assert_eq!(status, 200, "{text}");
    }
    w.assert_complete();

    // A timer without domains to reconcile fails the invocation, saying what to set.
    let (status, text) = post(
        &serve.addr,
        br#"{"triggerTime":"t","triggerName":"reconcile","payload":"{\"domains\":[]}"}"#.to_vec(),
        &fc_headers,
    )
    .await;
    assert_eq!(status, 404);
    assert!(text.contains("CDNLAKE_SYNC_DOMAINS"), "{text}");
}

/// The end of a listing is the service's word, never a page's length: pages capped below the
/// asked size (with `Total` right) and answers without `Total` still list every file, while a
/// `Total` that changes between pages (a log expired mid-listing, shifting the pages) fails
/// that domain instead of reporting a window complete that it did not see whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_follows_the_services_count_not_a_short_page() {
    let w = world().await;
    let inside = w.inside().count();
    let requests = || w.cdn.state.requests.lock().unwrap().len();

    // `--page-size 4`, pages capped at 3: 3 + 3 + 3 + 1 of 10, all four pages read.
    *w.cdn.state.page_cap.lock().unwrap() = Some(3);
    let (o, v) = w.run(w.sync_args(&["--dry-run"])).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(v["listed"].as_u64(), Some(inside as u64), "{v}");
    assert_eq!(actions(&v).len(), inside);
    assert_eq!(requests(), 4);

    // No `PageInfos` at all: read on to the first empty page (4 + 4 + 2, then 0).
    *w.cdn.state.page_cap.lock().unwrap() = None;
    w.cdn
        .state
        .omit_total
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (o, v) = w.run(w.sync_args(&["--dry-run"])).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(v["listed"].as_u64(), Some(inside as u64), "{v}");
    assert_eq!(requests(), 4 + 4);

    // `Total` drops from 10 to 9 between pages: the domain fails, by name, with exit 1, and
    // nothing is converted on the strength of a partial list.
    w.cdn
        .state
        .omit_total
        .store(false, std::sync::atomic::Ordering::SeqCst);
    w.cdn
        .state
        .expire_mid_listing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (o, v) = w.run(w.sync_args(&[])).await;
    assert_eq!(o.status.code(), Some(1), "{v}");
    let errors = v["listing_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["domain"], DOMAIN);
    let e = errors[0]["error"].as_str().unwrap();
    assert!(e.contains("PageInfos.Total changed from 10 to 9"), "{e}");
    assert_eq!(v["converted"].as_u64(), Some(0), "{v}");
    assert!(w.manifests().is_empty());
}

/// The hourly timer's sync may race the CDN's own events for the same files: a converting
/// `sync` and `serve` handling every file's event at the same time both succeed, and the lake
/// holds every row once, with nothing left under `_staging/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_racing_the_events_of_the_same_files_is_exact() {
    let w = world().await;
    let fc = start_fc_api().await;
    // The events of the window's files, as FC would deliver them.
    let endpoint = fc.endpoint();
    let fc_args = invoke_args(&endpoint);
    let (o, _) = w.run(w.sync_args(&fc_args)).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let calls = fc.state.invocations.lock().unwrap().clone();
    assert_eq!(calls.len(), 10);

    let serve = start_serve(&w, &fc).await;
    let events = futures::future::join_all(calls.iter().map(|c| async {
        post(
            &serve.addr,
            c.body.clone(),
            &[("x-fc-request-id", &c.task_id)],
        )
        .await
    }));
    let ((o, v), replies) = tokio::join!(w.run(w.sync_args(&["--jobs", "2"])), events);
    assert!(o.status.success(), "{}\n{v}", stderr(&o));
    for (status, text) in replies {
        assert_eq!(status, 200, "{text}");
    }
    w.assert_complete();
    let left = files_under(&w.lake().join("_staging"));
    assert!(left.is_empty(), "left in _staging/: {left:?}");
}
