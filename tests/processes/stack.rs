//! A Sprocket deployment as separate `sprocket` processes on a fresh PostgreSQL
//! database, an embedded broker on free ports and `file://` stores in a tempdir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use sprocket_tests::procs::{Finished, Launcher, PgDatabase, Proc};

/// How long a service may take to start and print its address.
const STARTUP: Duration = Duration::from_secs(30);

pub const PHASES: [&str; 4] = ["ingest", "analyze", "render", "archive"];

/// The running deployment. Fields drop in order: processes are killed first,
/// then (on failure) every log's tail is printed, then the files and the
/// database go.
pub struct Stack {
    procs: BTreeMap<String, Proc>,
    launcher: Launcher,
    started: u32,
    http: reqwest::Client,
    pub api: String,
    pub registry: String,
    data: tempfile::TempDir,
    pub db: PgDatabase,
}

impl Stack {
    /// Starts the broker, migrates, creates the topics, then starts the
    /// projector, a worker per phase and the API, and waits for `/readyz`.
    pub async fn start() -> Stack {
        let db = PgDatabase::create("sprocket_procs");
        let data = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(data.path()).expect("tempdir path");
        for dir in ["logs", "store", "archive", "scratch", "media"] {
            std::fs::create_dir_all(root.join(dir)).expect("tempdir layout");
        }
        let mut launcher = Launcher::new(&root.join("logs"));
        launcher.env("NO_COLOR", "1");

        let mut broker = launcher.spawn(
            "00-broker",
            &[
                "broker",
                "--kafka-addr",
                "127.0.0.1:0",
                "--registry-addr",
                "127.0.0.1:0",
            ],
        );
        let line = broker.wait_for_line("sprocket broker: Kafka ", STARTUP);
        let (kafka, registry) = line
            .split_once(" | schema registry ")
            .unwrap_or_else(|| panic!("unexpected broker banner: {line:?}"));
        let (kafka, registry) = (kafka.trim().to_owned(), registry.trim().to_owned());

        let store = format!("file://{}", root.join("store").display());
        let archive = format!("file://{}", root.join("archive").display());
        launcher
            .arg("--kafka", &kafka)
            .arg("--registry", &registry)
            .arg("--database", &db.url)
            .arg("--store", &store)
            .arg("--archive", &archive)
            .env(
                "SPROCKET__WORKER__SCRATCH_DIR",
                &root.join("scratch").display().to_string(),
            );

        let mut stack = Stack {
            procs: BTreeMap::new(),
            launcher,
            started: 1,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("HTTP client"),
            api: String::new(),
            registry,
            data,
            db,
        };
        stack.procs.insert("broker".into(), broker);

        stack.run_ok(&["migrate"]).await;
        stack.run_ok(&["topics", "create"]).await;

        stack.start_projector(false);
        for phase in PHASES {
            stack.start_worker(phase);
        }
        let log = stack.log_name("api");
        let mut api =
            stack
                .launcher
                .spawn_env(&log, &["api"], &[("SPROCKET__API__ADDR", "127.0.0.1:0")]);
        let addr = api.wait_for_line("sprocket api on ", STARTUP);
        stack.api = addr.trim().to_owned();
        stack.procs.insert("api".into(), api);
        stack.wait_ready().await;
        stack
    }

    /// The tempdir's `media/` folder, for test inputs.
    pub fn media_dir(&self) -> PathBuf {
        self.root().join("media")
    }

    /// Where the archive store keeps its objects.
    pub fn archive_dir(&self) -> PathBuf {
        self.root().join("archive")
    }

    fn root(&self) -> PathBuf {
        std::fs::canonicalize(self.data.path()).expect("tempdir path")
    }

    /// A log name that sorts in start order.
    fn log_name(&mut self, role: &str) -> String {
        self.started += 1;
        format!("{:02}-{role}", self.started)
    }

    fn spawn(&mut self, role: &str, args: &[&str]) {
        assert!(!self.procs.contains_key(role), "{role} is already running");
        let log = self.log_name(role);
        let p = self.launcher.spawn(&log, args);
        self.procs.insert(role.to_owned(), p);
    }

    pub fn start_projector(&mut self, rebuild: bool) {
        let args: &[&str] = if rebuild {
            &["projector", "--rebuild"]
        } else {
            &["projector"]
        };
        self.spawn("projector", args);
    }

    pub fn start_worker(&mut self, phase: &str) {
        self.spawn(&format!("worker-{phase}"), &["worker", phase]);
    }

    /// SIGKILLs a service (`projector`, `worker-<phase>`, `api`, `broker`).
    pub fn kill(&mut self, role: &str) {
        let mut p = self
            .procs
            .remove(role)
            .unwrap_or_else(|| panic!("{role} is not running"));
        p.assert_running();
        p.kill();
    }

    /// Panics, with the process's stderr, if any service has exited.
    pub fn assert_running(&mut self) {
        for p in self.procs.values_mut() {
            p.assert_running();
        }
    }

    /// Runs a `sprocket` command to its end (2 minutes at most).
    pub async fn run(&mut self, args: &[&str]) -> Finished {
        let log = self.log_name(args.first().copied().unwrap_or("cli"));
        self.launcher
            .run(&log, args, Duration::from_secs(120))
            .await
    }

    /// Runs a `sprocket` command that must exit 0; returns its stdout.
    pub async fn run_ok(&mut self, args: &[&str]) -> String {
        self.run(args).await.expect_success().to_owned()
    }

    async fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            self.assert_running();
            let r = self.http.get(format!("{}/readyz", self.api)).send().await;
            match r {
                Ok(r) if r.status() == 200 => return,
                r if start.elapsed() > STARTUP => {
                    panic!("the API is not ready after {STARTUP:?}: {r:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// `GET` on the schema registry, which must answer 200 with JSON.
    pub async fn registry_get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.registry);
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(r.status(), 200, "GET {url}");
        r.json().await.expect("registry JSON")
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.api))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `GET path`, which must answer 200 with JSON.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub async fn bytes(&self, path: &str) -> Vec<u8> {
        let r = self
            .http
            .get(format!("{}{path}", self.api))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(r.status(), 200, "GET {path}");
        r.bytes().await.expect("body").to_vec()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.api))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Uploads a file; returns the upload id.
    pub async fn upload(&self, file: &Path) -> Value {
        let bytes = std::fs::read(file).expect("test file");
        let r = self
            .http
            .post(format!("{}/v1/uploads", self.api))
            .body(bytes)
            .send()
            .await
            .expect("POST /v1/uploads");
        assert_eq!(r.status(), 201, "upload");
        let body: Value = r.json().await.expect("upload JSON");
        body["upload"].clone()
    }

    /// Polls the job until `done` holds, failing fast if a service dies.
    pub async fn wait_for(
        &mut self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            self.assert_running();
            let (status, job) = self.get(&format!("/v1/jobs/{id}")).await;
            if status == 200 && done(&job) {
                return job;
            }
            assert!(
                start.elapsed() < timeout,
                "job {id} did not get there in {timeout:?}; last seen: {status} {job:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the job is succeeded, failed or cancelled.
    pub async fn wait_terminal(&mut self, id: &str, timeout: Duration) -> Value {
        self.wait_for(id, timeout, |j| {
            matches!(
                j["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
        })
        .await
    }
}

impl Drop for Stack {
    /// Stops the services before the broker, so their logs end with what they
    /// were doing rather than with the broker going away.
    fn drop(&mut self) {
        let broker = self.procs.remove("broker");
        for p in self.procs.values_mut() {
            p.kill();
        }
        drop(broker);
    }
}
