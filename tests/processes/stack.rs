//! A Sprocket deployment as separate `sprocket` processes on a fresh PostgreSQL
//! database, `file://` stores in a tempdir, and Kafka: a real KRaft cluster
//! (`scripts/kafka.sh`) with `sprocket registry` beside it, or — for the
//! injected-fault waves — `sprocket broker`, the embedded broker.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sprocket_tests::api;
use sprocket_tests::kafka::KafkaCluster;
use sprocket_tests::pg::PgDatabase;
use sprocket_tests::procs::{Finished, Launcher, Proc};

mod http;
mod principals;

pub use principals::Principals;

/// How long a service may take to start and print its address.
const STARTUP: Duration = Duration::from_secs(30);

pub const PHASES: [&str; 4] = ["ingest", "analyze", "render", "archive"];

/// The running deployment. Fields drop in order: processes are killed first,
/// then (on failure) every log's tail is printed, then the files and the
/// database go.
pub struct Stack {
    procs: BTreeMap<String, Proc>,
    launcher: Launcher,
    /// The real Kafka cluster, when the stack runs on one (dropped, and so
    /// stopped, after every process).
    cluster: Option<KafkaCluster>,
    /// Each role's Kafka principal, when the cluster checks ACLs.
    principals: Option<Principals>,
    started: u32,
    http: reqwest::Client,
    pub api: String,
    /// The admin key `sprocket keys bootstrap` made.
    pub api_key: String,
    pub registry: String,
    pub kafka: String,
    /// The embedded broker's fault-injection endpoint, when asked for.
    pub faults: Option<String>,
    data: tempfile::TempDir,
    pub db: PgDatabase,
}

/// The Kafka a [`Stack`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kafka {
    /// A KRaft cluster of this many nodes from `scripts/kafka.sh` (Sprocket's
    /// topics get replication `min(nodes, 3)`).
    Real { nodes: usize },
    /// `sprocket broker`: the embedded broker, with its `POST /faults` served.
    Embedded,
}

impl Default for Kafka {
    fn default() -> Self {
        Kafka::Real { nodes: 1 }
    }
}

/// How a [`Stack`] differs from the plain deployment.
#[derive(Debug, Default)]
pub struct StackOptions {
    pub kafka: Kafka,
    /// The PostgreSQL server to make the database on, by its administrative
    /// URL (default: the machine's).
    pub postgres_admin: Option<String>,
    /// TOML given to every process with `--config`.
    pub config_toml: Option<String>,
    /// A real cluster started with `kafka.sh start --sasl`: every role
    /// (`api`, `projector`, each phase's workers, `ops` for the CLI) gets its
    /// own SCRAM principal and least-privilege ACLs from
    /// `scripts/kafka-acls.sh`, and each process runs as its role's.
    pub sasl: bool,
    /// With `sasl`: the cluster is started with `kafka.sh start --sasl
    /// --tls`, its listener SASL_SSL, and every process (the registry and the
    /// CLI included) and the principals' client configs get
    /// `security.protocol=SASL_SSL` and `ssl.ca.location` (the cluster's CA).
    pub tls: bool,
}

impl Stack {
    /// Starts the broker, migrates, creates the topics, then starts the
    /// projector, a worker per phase and the API, and waits for `/readyz`.
    pub async fn start() -> Stack {
        Self::start_with(StackOptions::default()).await
    }

    pub async fn start_with(options: StackOptions) -> Stack {
        sprocket_tests::watchdog::arm();
        let db = match &options.postgres_admin {
            Some(admin) => PgDatabase::create_on(admin, "sprocket_procs"),
            None => PgDatabase::create("sprocket_procs"),
        };
        let data = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(data.path()).expect("tempdir path");
        for dir in ["logs", "store", "archive", "scratch", "media"] {
            std::fs::create_dir_all(root.join(dir)).expect("tempdir layout");
        }
        let mut launcher = Launcher::new(&root.join("logs"));
        launcher.env("NO_COLOR", "1");
        if let Some(toml) = &options.config_toml {
            let path = root.join("sprocket.toml");
            std::fs::write(&path, toml).expect("writing the configuration");
            launcher.arg("--config", &path.display().to_string());
        }

        let mut procs = BTreeMap::new();
        let mut principals = None;
        let (cluster, kafka, registry, faults) = match options.kafka {
            Kafka::Real { nodes } => {
                let cluster = if options.tls {
                    assert!(options.sasl, "tls needs sasl (the listener is SASL_SSL)");
                    KafkaCluster::start_sasl_tls(nodes)
                } else if options.sasl {
                    KafkaCluster::start_sasl(nodes)
                } else {
                    KafkaCluster::start(nodes)
                };
                if options.sasl {
                    let made = Principals::make(&cluster, &root.join("kafka-users"));
                    // The CLI (`topics create`, `dlq list`) runs as ops.
                    for (k, v) in made.env("ops") {
                        launcher.env(&k, &v);
                    }
                    principals = Some(made);
                }
                let mut registry = launcher.spawn(
                    "00-registry",
                    &["registry", "--registry-addr", "127.0.0.1:0"],
                );
                let url = registry.wait_for_line("sprocket registry: schema registry ", STARTUP);
                procs.insert("registry".to_owned(), registry);
                launcher.env(
                    "SPROCKET__KAFKA__REPLICATION",
                    &cluster.replication().to_string(),
                );
                let kafka = cluster.bootstrap.clone();
                (Some(cluster), kafka, url.trim().to_owned(), None)
            }
            Kafka::Embedded => {
                assert!(
                    !options.sasl && !options.tls,
                    "the embedded broker has no SASL or TLS"
                );
                let mut broker = launcher.spawn(
                    "00-broker",
                    &[
                        "broker",
                        "--kafka-addr",
                        "127.0.0.1:0",
                        "--registry-addr",
                        "127.0.0.1:0",
                        "--faults-addr",
                        "127.0.0.1:0",
                    ],
                );
                let faults = broker.wait_for_line("sprocket broker: fault injection on ", STARTUP);
                let line = broker.wait_for_line("sprocket broker: Kafka ", STARTUP);
                let (kafka, registry) = line
                    .split_once(" | schema registry ")
                    .unwrap_or_else(|| panic!("unexpected broker banner: {line:?}"));
                procs.insert("broker".to_owned(), broker);
                (
                    None,
                    kafka.trim().to_owned(),
                    registry.trim().to_owned(),
                    Some(faults.trim().to_owned()),
                )
            }
        };

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
            procs,
            launcher,
            cluster,
            principals,
            started: 1,
            http: api::client(None),
            api: String::new(),
            api_key: String::new(),
            registry,
            kafka,
            faults,
            data,
            db,
        };
        stack.run_ok(&["migrate"]).await;
        // The deployment's first admin key, as an operator makes it: every
        // request of the tests and every client command sends it.
        let out = stack.run_ok(&["keys", "bootstrap"]).await;
        let key = out
            .lines()
            .last()
            .expect("bootstrap prints the key")
            .trim()
            .to_owned();
        stack.http = api::client(Some(&key));
        stack.launcher.env("SPROCKET_API_KEY", &key);
        stack.api_key = key;
        stack.run_ok(&["topics", "create"]).await;

        stack.start_projector(false);
        for phase in PHASES {
            stack.start_worker(phase);
        }
        let log = stack.log_name("api");
        let mut env = stack.kafka_env("api");
        env.push(("SPROCKET__API__ADDR".into(), "127.0.0.1:0".into()));
        let mut api = stack.launcher.spawn_env(&log, &["api"], &pairs(&env));
        let addr = api.wait_for_line("sprocket api on ", STARTUP);
        stack.api = addr.trim().to_owned();
        stack.procs.insert("api".into(), api);
        stack.wait_ready().await;
        stack
    }

    /// The real Kafka cluster under the stack.
    pub fn cluster(&self) -> &KafkaCluster {
        self.cluster
            .as_ref()
            .expect("this stack runs on the embedded broker")
    }

    /// The principals of a stack started with `sasl`.
    pub fn principals(&self) -> &Principals {
        self.principals
            .as_ref()
            .expect("this stack was started without sasl")
    }

    /// What a process of `role` (`api`, `projector`, `worker-<phase>`) is
    /// given to authenticate to Kafka as its role's principal (nothing
    /// without `sasl`).
    fn kafka_env(&self, role: &str) -> Vec<(String, String)> {
        self.principals
            .as_ref()
            .map(|p| p.env(Principals::of_process(role)))
            .unwrap_or_default()
    }

    /// A launcher for more `sprocket` processes configured as the stack's own,
    /// logging into `logs` (made if missing).
    pub fn launcher_beside(&self, logs: &std::path::Path) -> Launcher {
        std::fs::create_dir_all(logs).expect("logs dir");
        self.launcher.with_logs(logs)
    }

    /// The tempdir's `media/` folder, for test inputs.
    pub fn media_dir(&self) -> PathBuf {
        self.root().join("media")
    }

    /// Where the archive store keeps its objects.
    pub fn archive_dir(&self) -> PathBuf {
        self.root().join("archive")
    }

    /// Where the working store keeps its objects (`jobs/<id>/…`,
    /// `uploads/<id>`).
    pub fn store_dir(&self) -> PathBuf {
        self.root().join("store")
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
        let env = self.kafka_env(role);
        let p = self.launcher.spawn_env(&log, args, &pairs(&env));
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

    /// `sprocket janitor`, as its own principal on a `sasl` stack.
    pub fn start_janitor(&mut self) {
        self.spawn("janitor", &["janitor"]);
    }

    /// `sprocket webhooks`, the webhook sender.
    pub fn start_webhooks(&mut self) {
        self.spawn("webhooks", &["webhooks"]);
    }

    pub fn start_worker(&mut self, phase: &str) {
        self.spawn(&format!("worker-{phase}"), &["worker", phase]);
    }

    /// Starts a service by its role (`projector`, `worker-<phase>`) again.
    pub fn restart(&mut self, role: &str) {
        match role.strip_prefix("worker-") {
            Some(phase) => self.start_worker(phase),
            None if role == "projector" => self.start_projector(false),
            None => panic!("{role} cannot be restarted"),
        }
    }

    /// SIGKILLs a service (`projector`, `worker-<phase>`, `api`, `broker`,
    /// `registry`).
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

    /// Starts `sprocket <args>` on another projection database; the caller
    /// owns the process.
    pub fn spawn_on(&mut self, database: &str, role: &str, args: &[&str]) -> Proc {
        self.spawn_on_env(database, role, args, &[])
    }

    /// Like [`spawn_on`](Self::spawn_on), with extra environment variables.
    pub fn spawn_on_env(
        &mut self,
        database: &str,
        role: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Proc {
        let log = self.log_name(role);
        let old = self.launcher.replace_arg("--database", database);
        let p = self.launcher.spawn_env(&log, args, env);
        self.launcher
            .replace_arg("--database", old.as_deref().expect("--database is set"));
        p
    }

    /// Like [`run_ok`](Self::run_ok), on another projection database.
    pub async fn run_ok_on(&mut self, database: &str, args: &[&str]) -> String {
        let old = self.launcher.replace_arg("--database", database);
        let out = self.run(args).await;
        self.launcher
            .replace_arg("--database", old.as_deref().expect("--database is set"));
        out.expect_success().to_owned()
    }

    /// Runs a `sprocket` command to its end (2 minutes at most).
    pub async fn run(&mut self, args: &[&str]) -> Finished {
        self.run_env(args, &[]).await
    }

    /// Like [`run`](Self::run), with extra environment variables.
    pub async fn run_env(&mut self, args: &[&str], env: &[(&str, &str)]) -> Finished {
        let log = self.log_name(args.first().copied().unwrap_or("cli"));
        self.launcher
            .run_env(&log, args, env, Duration::from_secs(120))
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
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl Drop for Stack {
    /// Stops the services before Kafka, so their logs end with what they
    /// were doing rather than with the broker going away.
    fn drop(&mut self) {
        let infra: Vec<Proc> = ["broker", "registry"]
            .iter()
            .filter_map(|r| self.procs.remove(*r))
            .collect();
        for p in self.procs.values_mut() {
            p.kill();
        }
        drop(infra);
        self.cluster.take();
        // Long runs keep every process's log for a look afterwards.
        if let Some(keep) = std::env::var_os("SPROCKET_KEEP_LOGS") {
            let to = std::path::Path::new(&keep).join(self.db.name.as_str());
            let _ = std::fs::create_dir_all(&to);
            for e in std::fs::read_dir(self.root().join("logs"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = std::fs::copy(e.path(), to.join(e.file_name()));
            }
            eprintln!("logs kept in {}", to.display());
        }
    }
}
