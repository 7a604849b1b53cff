//! Helpers for end-to-end tests: a Sprocket started on free ports with a fresh
//! data directory, test videos with hard cuts at known frames, and an HTTP client.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sprocket_core::Phase;
use sprocket_platform::config::Config;
use sprocket_server::dev::{Dev, DevOptions};

pub mod api;
pub mod http;
pub mod kafka;
pub mod pg;
pub mod procs;
pub mod watchdog;
pub mod webhooks;
/// Videos with hard cuts at known frames.
pub use sprocket_media::sample as video;

/// A dev stack on free ports with its own data directory.
pub struct TestApp {
    pub dev: Dev,
    pub http: reqwest::Client,
    pub url: String,
    pub data: tempfile::TempDir,
}

impl TestApp {
    pub async fn start() -> TestApp {
        Self::start_with(Phase::ALL.to_vec(), Config::default()).await
    }

    pub async fn start_with(workers: Vec<Phase>, cfg: Config) -> TestApp {
        init_tracing();
        watchdog::arm();
        let data = tempfile::tempdir().expect("tempdir");
        let opts = DevOptions {
            data_dir: data.path().to_owned(),
            api_addr: "127.0.0.1:0".into(),
            kafka_addr: "127.0.0.1:0".into(),
            registry_addr: "127.0.0.1:0".into(),
            workers,
            kafka: None,
            registry: None,
        };
        let dev = Dev::start(&opts, cfg).await.expect("sprocket dev starts");
        keep_broker_for_the_test(&dev);
        let url = dev.api_url();
        TestApp {
            http: api::client(Some(&dev.api_key)),
            dev,
            url,
            data,
        }
    }

    pub fn kafka(&self) -> String {
        self.dev.infra.bootstrap_servers()
    }

    pub fn inbox(&self) -> PathBuf {
        std::fs::canonicalize(self.data.path())
            .unwrap()
            .join("inbox")
    }

    pub async fn upload(&self, file: &Path) -> Value {
        api::upload(&self.http, &self.url, file).await
    }

    pub async fn post_job(&self, body: Value) -> (u16, Value) {
        api::post_json(&self.http, &format!("{}/v1/jobs", self.url), &body).await
    }

    /// Uploads `file` and submits it with `recipe`; returns the job id.
    pub async fn submit(&self, file: &Path, recipe: &str, id: &str) -> String {
        let up = self.upload(file).await;
        let (status, body) = self
            .post_job(json!({"job_id": id, "source": {"upload": up["upload"]}, "recipe": recipe}))
            .await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// A key made with the app's admin key (`POST /v1/keys`): its id, the
    /// key itself, and a client that sends it.
    pub async fn key(&self, tenant: &str, scopes: &[&str]) -> (String, String, reqwest::Client) {
        let (status, made) = api::post_json(
            &self.http,
            &format!("{}/v1/keys", self.url),
            &json!({"tenant": tenant, "scopes": scopes, "name": format!("{tenant} test")}),
        )
        .await;
        assert_eq!(status, 201, "{made}");
        let key = made["key"].as_str().expect("the key").to_owned();
        let http = api::client(Some(&key));
        (made["id"].as_str().expect("its id").to_owned(), key, http)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        api::get(&self.http, &format!("{}{path}", self.url)).await
    }

    pub async fn bytes(&self, path: &str) -> Vec<u8> {
        api::bytes(&self.http, &format!("{}{path}", self.url)).await
    }

    /// Polls the job until `done` holds for it, or panics after `timeout`.
    pub async fn wait_for(
        &self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let (status, job) = self.get(&format!("/v1/jobs/{id}")).await;
            if status == 200 && done(&job) {
                return job;
            }
            if start.elapsed() > timeout {
                panic!("job {id} did not get there in {timeout:?}; last seen: {status} {job}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the job reaches a terminal status.
    pub async fn wait_terminal(&self, id: &str, timeout: Duration) -> Value {
        self.wait_for(id, timeout, api::is_terminal).await
    }

    /// The stack's topic names.
    pub fn topics(&self) -> sprocket_core::Topics {
        sprocket_core::Topics::new(self.dev.config.kafka.topic_prefix.clone())
    }

    /// Waits until consumer group `group` has committed all of `topic`.
    pub async fn group_caught_up(&self, group: &str, topic: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            let behind = kafka::group_behind(&self.kafka(), group, topic);
            if behind.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "{group} did not catch up with {topic} in {timeout:?}: {behind:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the stack has nothing left to do with what came before:
    /// every phase drained (`GET /v1/phases`: lag 0 on each phase topic and
    /// its retry topic) and then the projections caught up with the end of
    /// `sprocket.events`. What a test reads afterwards is all the stack will
    /// ever show of it, so checking that something did *not* happen needs no
    /// "long enough" sleep.
    pub async fn settled(&self, timeout: Duration) {
        let start = Instant::now();
        let waited = |what: &str, last: &dyn std::fmt::Debug| {
            assert!(
                start.elapsed() < timeout,
                "the stack did not settle in {timeout:?}: {what}; last seen: {last:?}"
            );
        };
        loop {
            let (status, view) = self.get("/v1/phases").await;
            let drained = status == 200
                && view["phases"].as_array().is_some_and(|phases| {
                    phases
                        .iter()
                        .all(|p| p["lag"] == 0 && p["retry"]["lag"] == 0)
                });
            if drained {
                break;
            }
            waited("phases with work waiting", &view);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let topic = self.topics().events();
        // Only the end offsets matter (the projector keeps its offsets in
        // the projections), so any group will do.
        let ends: Vec<(i32, i64)> = kafka::topic_offsets(&self.kafka(), "sprocket-tests", &topic)
            .into_iter()
            .map(|p| (p.partition, p.end_offset))
            .collect();
        let projections =
            sprocket_server::services::open_projections(&self.dev.config).expect("projections");
        loop {
            let read = projections.offsets().expect("the projections' offsets");
            let behind: Vec<_> = ends
                .iter()
                .filter(|(partition, end)| {
                    *end > 0
                        && !read.iter().any(|r| {
                            r.topic == topic && r.partition == *partition && r.offset >= *end
                        })
                })
                .collect();
            if behind.is_empty() {
                return;
            }
            waited(
                "projections behind sprocket.events (partition, end)",
                &behind,
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

thread_local! {
    /// The embedded brokers of the stacks this test thread started.
    static BROKERS: std::cell::RefCell<Vec<Box<dyn std::any::Any>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Keeps the stack's embedded broker until the test's thread ends, after the
/// test's runtime is gone. A test that ends without stopping its stack drops
/// the broker with it while a lane may be committing a position through the
/// consumer (the broker's stand-in does that synchronously, and librdkafka
/// waits for the coordinator without a time limit): the runtime's shutdown
/// then waited on that lane for ever, and the test with it.
fn keep_broker_for_the_test(dev: &Dev) {
    if let Some(broker) = &dev.infra.broker {
        let kept: Box<dyn std::any::Any> = Box::new(broker.clone());
        BROKERS.with(|b| b.borrow_mut().push(kept));
    }
}

/// Logs to the test output; `SPROCKET_LOG=debug` for more.
fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // As the binary does (engine/sprocket/src/main.rs): no OpenSSL
        // cleanup at exit under threads still using it.
        openssl_sys::init();
        let filter = tracing_subscriber::EnvFilter::try_from_env("SPROCKET_LOG")
            .unwrap_or_else(|_| "warn".into());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// ffprobe's JSON for a file.
pub fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe failed on {}", path.display());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs `cmd` to its end with `stdin` fed to it (or no input), capturing its
/// output.
pub fn output_with_stdin(
    mut cmd: Command,
    stdin: Option<&[u8]>,
) -> std::io::Result<std::process::Output> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(data) = stdin {
        child.stdin.take().expect("piped stdin").write_all(data)?;
    }
    child.wait_with_output()
}

/// Runs kcat (an outside Kafka client, not Sprocket's code) and returns stdout.
pub fn kcat(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut cmd = Command::new("kcat");
    cmd.args(args);
    let out = output_with_stdin(cmd, stdin).expect("kcat is installed (.ci/setup installs it)");
    assert!(
        out.status.success(),
        "kcat {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Produces one message with kcat: the whole of `payload` as the value.
pub fn kcat_produce(broker: &str, topic: &str, key: &str, payload: &[u8]) {
    // A delimiter that never occurs in a payload makes the whole input one message.
    kcat(
        &[
            "-P",
            "-b",
            broker,
            "-t",
            topic,
            "-k",
            key,
            "-D",
            "\u{1e}\u{1e}SPROCKET-END\u{1e}\u{1e}",
        ],
        Some(payload),
    );
}

/// The `type` of each event in a `GET /v1/jobs/{id}/events` answer, in order.
pub fn event_types(events: &Value) -> Vec<String> {
    events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// sha256 of `bytes` as lowercase hex, as artifacts and manifests record it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex_lower(&sha2::Sha256::digest(bytes))
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs ffmpeg quietly (`-y -v error` first) and panics if it fails.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-y", "-v", "error"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads `topic` from the beginning to its current end with kcat, one line per
/// message in kcat's `-f` `format` (e.g. `"%p %o %k %h\n"`).
pub fn kcat_consume(broker: &str, topic: &str, format: &str) -> String {
    let out = kcat(
        &["-C", "-b", broker, "-t", topic, "-e", "-q", "-f", format],
        None,
    );
    String::from_utf8_lossy(&out).into_owned()
}
