//! Layered configuration: built-in defaults, then a TOML file, then `SPROCKET__…`
//! environment variables (`__` separates levels: `SPROCKET__KAFKA__BROKERS`), then
//! command-line flags. Unknown keys are errors; every value is checked at start.
//! Secrets (S3 keys) are never part of it: they come from the `AWS_*` environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::outbound::{self, Cidr};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub registry: RegistryConfig,
    pub database: DatabaseConfig,
    pub store: StoreConfig,
    pub archive: StoreConfig,
    pub api: ApiConfig,
    pub ingest: IngestConfig,
    pub worker: WorkerConfig,
    pub metrics: MetricsConfig,
    pub limits: LimitsConfig,
}

/// Ceilings on what a submission's recipe may ask for (over them: 400 at
/// the API, a failed job and a dead letter on the intake topic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Longest `timeout_s` a recipe step may set, in seconds.
    pub max_timeout_s: f64,
    /// Most `retry.max_attempts` a recipe step may set.
    pub max_attempts: u32,
    /// Longest retry delay a recipe step may set, in milliseconds; a
    /// `retry-at` header further away than this is brought forward to it.
    pub max_retry_delay_ms: u64,
    /// Largest record a worker writes (librdkafka's `message.max.bytes`
    /// default); an outcome with a larger one fails its job for good.
    pub max_record_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let b = sprocket_core::Bounds::default();
        LimitsConfig {
            max_timeout_s: b.max_timeout_s,
            max_attempts: b.max_attempts,
            max_retry_delay_ms: b.max_retry_delay_ms,
            max_record_bytes: 1_000_000,
        }
    }
}

impl LimitsConfig {
    pub fn bounds(&self) -> sprocket_core::Bounds {
        sprocket_core::Bounds {
            max_timeout_s: self.max_timeout_s,
            max_attempts: self.max_attempts,
            max_retry_delay_ms: self.max_retry_delay_ms,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where workers and the projector serve `/metrics` (the API serves it on its
    /// own address). Unset: not served.
    pub addr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated (`SPROCKET__KAFKA__BROKERS`, `--kafka`).
    pub brokers: String,
    /// Prefix of every topic name (`sprocket.` gives `sprocket.events`, …).
    pub topic_prefix: String,
    /// Partitions per topic when Sprocket creates its topics.
    pub partitions: i32,
    /// Replication factor when Sprocket creates its topics.
    pub replication: i32,
    /// Extra librdkafka properties for every client (e.g. `security.protocol`,
    /// `sasl.username`): TOML `[kafka.properties]`, or
    /// `SPROCKET__KAFKA__PROPERTIES__SASL__USERNAME`-style variables (`__` or
    /// `.` between the name's words; see [`crate::bus::properties`]).
    #[serde(deserialize_with = "crate::bus::properties::deserialize")]
    pub properties: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Schema registry URL (`SPROCKET__REGISTRY__URL`, `--registry`).
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Projection database: `postgres://…` or `sqlite://<path>`
    /// (`SPROCKET__DATABASE__URL`, `--database`).
    pub url: String,
    /// Most connections each process keeps to it (`SPROCKET__DATABASE__POOL_SIZE`):
    /// API reads run side by side on them and beside the projector's writes.
    /// Opened as needed, closed after idling. `sqlite://:memory:` is always one.
    pub pool_size: u32,
    /// How long a query waits for a free connection, or for the database to
    /// come back, before it fails (the API answers 503, the projector retries),
    /// in milliseconds (`SPROCKET__DATABASE__POOL_TIMEOUT_MS`).
    pub pool_timeout_ms: u64,
}

impl DatabaseConfig {
    /// Largest accepted `pool_size`: well past what one process can use, and
    /// still under PostgreSQL's default `max_connections`.
    pub const MAX_POOL_SIZE: u32 = 64;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Object store URL: `file:///…`, `s3://bucket/prefix` or `memory://`
    /// (`SPROCKET__STORE__URL`/`--store`, `SPROCKET__ARCHIVE__URL`/`--archive`).
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address of the status API (`SPROCKET__API__ADDR`, `--api-addr`).
    pub addr: String,
    /// Largest upload accepted by `POST /v1/uploads`, in bytes.
    pub max_upload_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Directories a `{"path": …}` source may come from. Empty: path sources refused.
    pub allowed_dirs: Vec<PathBuf>,
    /// Largest source accepted, in bytes.
    pub max_bytes: u64,
    /// Longest source accepted, in seconds.
    pub max_duration_s: f64,
    /// Widest source accepted, in pixels.
    pub max_width: u32,
    /// Tallest source accepted, in pixels.
    pub max_height: u32,
    /// Where an `{"object": "s3://…"}` source may come from: a bucket
    /// (`"media"`) or a bucket and key prefix (`"media/incoming/"`, matched as
    /// written, so end a folder with `/`). Empty: S3 object sources refused.
    /// `file://` objects obey `allowed_dirs`.
    pub allowed_objects: Vec<String>,
    /// Internal networks a `{"url": …}` source may be fetched from all the
    /// same, as CIDR blocks (`["10.20.0.0/16"]`). Loopback, private,
    /// link-local (cloud metadata), shared (CGNAT), unique-local, multicast
    /// and reserved addresses are refused unless listed here.
    pub url_allow_private: Vec<Cidr>,
    /// Longest wait to connect to a URL source, name resolution included,
    /// in milliseconds.
    pub url_connect_timeout_ms: u64,
    /// Longest wait for the next bytes from a URL source once connected, in
    /// milliseconds.
    pub url_read_timeout_ms: u64,
    /// Longest a URL source's whole download may take, redirects included,
    /// in seconds.
    pub url_timeout_s: u64,
}

impl IngestConfig {
    /// How URL sources are fetched.
    pub fn url_fetch(&self) -> outbound::Settings {
        outbound::Settings {
            allow_private: self.url_allow_private.clone(),
            connect_timeout: Duration::from_millis(self.url_connect_timeout_ms),
            read_timeout: Duration::from_millis(self.url_read_timeout_ms),
            total_timeout: Duration::from_secs(self.url_timeout_s),
        }
    }

    /// Whether `allowed_objects` admits the object `key` of S3 `bucket`.
    pub fn object_allowed(&self, bucket: &str, key: &str) -> bool {
        self.allowed_objects.iter().any(|entry| {
            let (b, prefix) = entry.split_once('/').unwrap_or((entry, ""));
            b == bucket && key.starts_with(prefix)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Scratch directory for media work (default: the system temp dir).
    pub scratch_dir: Option<PathBuf>,
    /// Where the analyze phase finds its model weights (`mtcnn/…`, made by
    /// `models/fetch.sh`). Default: `SPROCKET_MODELS_DIR`, else `./models`,
    /// else the source tree's `models/`.
    pub models_dir: Option<PathBuf>,
    /// Attempts at a phase before the job fails and its item is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the first retry, in milliseconds (doubles each attempt).
    pub retry_delay_ms: u64,
    /// Each retry's delay is the previous one times this (exponential backoff).
    pub retry_multiplier: f64,
    /// Longest delay between attempts, in milliseconds.
    pub retry_max_delay_ms: u64,
    /// A phase's time limit, in seconds: going over it stops the work and counts
    /// as a retryable failure.
    pub timeout_s: f64,
    /// Per-phase defaults over the above, with the same keys a recipe step uses:
    /// `[worker.phases.render] timeout_s = 1800` or
    /// `[worker.phases.archive.retry] max_attempts = 8`.
    pub phases: std::collections::BTreeMap<
        sprocket_core::Phase,
        serde_json::Map<String, serde_json::Value>,
    >,
    /// On SIGTERM, how long in-flight work may run on to finish and commit before
    /// it is abandoned (uncommitted, so redone elsewhere). Keep it under the
    /// orchestrator's kill deadline with a margin for the last commit
    /// (`infra/` sizes both per phase: render 240 s in a 270 s termination period).
    pub shutdown_grace_s: u64,
    /// Work items one worker process runs at once, across its partitions and
    /// within one (a partition's items still commit in offset order).
    /// Default: the CPUs this process may use.
    pub max_in_flight: usize,
    /// Most finished work items of one partition committed in one Kafka
    /// transaction (their events, next items and offset together).
    pub commit_max_items: usize,
    /// Longest a finished work item waits, in milliseconds, for others of its
    /// partition to share its transaction; it commits at once when nothing
    /// else of its partition runs.
    pub commit_interval_ms: u64,
    /// How often the consumer lag gauge is refreshed, in milliseconds.
    pub lag_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            kafka: KafkaConfig::default(),
            registry: RegistryConfig {
                url: "http://127.0.0.1:8081".into(),
            },
            database: DatabaseConfig {
                url: "sqlite://data/sprocket.db".into(),
                pool_size: 10,
                pool_timeout_ms: 2_000,
            },
            store: StoreConfig {
                url: "file://data/store".into(),
            },
            archive: StoreConfig {
                url: "file://data/archive".into(),
            },
            api: ApiConfig {
                addr: "127.0.0.1:8080".into(),
                max_upload_bytes: 2 << 30,
            },
            ingest: IngestConfig::default(),
            worker: WorkerConfig::default(),
            metrics: MetricsConfig::default(),
            limits: LimitsConfig::default(),
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            topic_prefix: "sprocket.".into(),
            partitions: 3,
            replication: 1,
            properties: Default::default(),
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            allowed_dirs: vec![],
            max_bytes: 4 << 30,
            max_duration_s: 4.0 * 3600.0,
            max_width: 7680,
            max_height: 4320,
            allowed_objects: vec![],
            url_allow_private: vec![],
            url_connect_timeout_ms: 5_000,
            url_read_timeout_ms: 30_000,
            url_timeout_s: 3_600,
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            scratch_dir: None,
            models_dir: None,
            max_attempts: 3,
            retry_delay_ms: 1000,
            retry_multiplier: 2.0,
            retry_max_delay_ms: 60_000,
            timeout_s: 3600.0,
            phases: Default::default(),
            shutdown_grace_s: 25,
            max_in_flight: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
            commit_max_items: 500,
            commit_interval_ms: 100,
            lag_interval_ms: 5_000,
        }
    }
}

/// Values given as flags; `None` leaves the lower layers alone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    pub kafka_brokers: Option<String>,
    pub registry_url: Option<String>,
    pub database_url: Option<String>,
    pub store_url: Option<String>,
    pub archive_url: Option<String>,
    pub api_addr: Option<String>,
}

impl Config {
    /// Loads defaults, then `file` (if given), then the environment, then `flags`.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Config, ConfigError> {
        Self::load_from(file, flags, Env::prefixed("SPROCKET__").split("__"))
    }

    fn load_from(file: Option<&Path>, flags: &Overrides, env: Env) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError::Invalid {
                    key: "config file",
                    reason: format!("{} does not exist", f.display()),
                });
            }
            fig = fig.merge(Toml::file(f));
        }
        fig = fig.merge(env.map(|k| k.as_str().to_ascii_lowercase().into()));
        let set = |fig: Figment, key: &str, v: &Option<String>| match v {
            Some(v) => fig.merge((key, v.clone())),
            None => fig,
        };
        fig = set(fig, "kafka.brokers", &flags.kafka_brokers);
        fig = set(fig, "registry.url", &flags.registry_url);
        fig = set(fig, "database.url", &flags.database_url);
        fig = set(fig, "store.url", &flags.store_url);
        fig = set(fig, "archive.url", &flags.archive_url);
        fig = set(fig, "api.addr", &flags.api_addr);
        let cfg: Config = fig.extract().map_err(Box::new)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every value that can be checked without connecting anywhere.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
        if self.kafka.brokers.trim().is_empty() {
            return invalid("kafka.brokers", "is empty".into());
        }
        if self.kafka.partitions < 1 || self.kafka.replication < 1 {
            return invalid(
                "kafka.partitions",
                "partitions and replication must be ≥ 1".into(),
            );
        }
        if !self
            .kafka
            .topic_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return invalid(
                "kafka.topic_prefix",
                "use letters, digits, '.', '_', '-'".into(),
            );
        }
        if url::Url::parse(&self.registry.url).is_err() {
            return invalid(
                "registry.url",
                format!("{:?} is not a URL", self.registry.url),
            );
        }
        let db = &self.database.url;
        if !(db.starts_with("sqlite://")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return invalid("database.url", "use postgres://… or sqlite://…".into());
        }
        let pool = self.database.pool_size;
        if !(1..=DatabaseConfig::MAX_POOL_SIZE).contains(&pool) {
            return invalid(
                "database.pool_size",
                format!("{pool}: must be 1–{}", DatabaseConfig::MAX_POOL_SIZE),
            );
        }
        if self.database.pool_timeout_ms == 0 {
            return invalid("database.pool_timeout_ms", "must be ≥ 1".into());
        }
        for (key, url) in [
            ("store.url", &self.store.url),
            ("archive.url", &self.archive.url),
        ] {
            let scheme = url.split("://").next().unwrap_or_default();
            if !url.contains("://") || !["file", "s3", "memory"].contains(&scheme) {
                return invalid(
                    key,
                    format!("{url:?}: use file:///…, s3://bucket/prefix or memory://"),
                );
            }
        }
        if self.api.addr.parse::<SocketAddr>().is_err() {
            return invalid("api.addr", format!("{:?} is not host:port", self.api.addr));
        }
        for d in &self.ingest.allowed_dirs {
            if d.is_relative() {
                return invalid(
                    "ingest.allowed_dirs",
                    format!("{} is not absolute", d.display()),
                );
            }
        }
        for entry in &self.ingest.allowed_objects {
            let bucket = entry.split('/').next().unwrap_or_default();
            let bucket_chars =
                |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-".contains(c);
            if bucket.is_empty() || !bucket.chars().all(bucket_chars) {
                return invalid(
                    "ingest.allowed_objects",
                    format!("{entry:?}: write a bucket or bucket/prefix/, like \"media/in/\""),
                );
            }
        }
        for (key, value) in [
            (
                "ingest.url_connect_timeout_ms",
                self.ingest.url_connect_timeout_ms,
            ),
            (
                "ingest.url_read_timeout_ms",
                self.ingest.url_read_timeout_ms,
            ),
            ("ingest.url_timeout_s", self.ingest.url_timeout_s),
        ] {
            if value == 0 {
                return invalid(key, "must be ≥ 1".into());
            }
        }
        if let Some(addr) = &self.metrics.addr {
            if addr.parse::<SocketAddr>().is_err() {
                return invalid("metrics.addr", format!("{addr:?} is not host:port"));
            }
        }
        if !(self.worker.retry_multiplier >= 1.0 && self.worker.timeout_s > 0.0) {
            return invalid(
                "worker",
                "retry_multiplier must be ≥ 1 and timeout_s > 0".into(),
            );
        }
        if self.worker.max_attempts == 0 {
            return invalid("worker.max_attempts", "must be ≥ 1".into());
        }
        if self.worker.max_in_flight == 0 {
            return invalid("worker.max_in_flight", "must be ≥ 1".into());
        }
        if self.worker.commit_max_items == 0 {
            return invalid("worker.commit_max_items", "must be ≥ 1".into());
        }
        if self.worker.lag_interval_ms == 0 {
            return invalid("worker.lag_interval_ms", "must be ≥ 1".into());
        }
        Ok(())
    }

    /// The configuration with its secrets hidden, as `sprocket config`
    /// prints it: URL passwords and secret client properties.
    pub fn redacted(&self) -> Config {
        use sprocket_core::redact;
        let mut c = self.clone();
        for url in [
            &mut c.database.url,
            &mut c.registry.url,
            &mut c.store.url,
            &mut c.archive.url,
        ] {
            *url = redact::password(url);
        }
        for (k, v) in c.kafka.properties.iter_mut() {
            if redact::is_secret(k) {
                *v = "***".into();
            }
        }
        c
    }

    /// The configuration as TOML, for `sprocket config`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes to TOML")
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "s.toml",
                "[kafka]\nbrokers = \"file:1\"\n[api]\naddr = \"127.0.0.1:1\"\n",
            )?;
            jail.set_env("SPROCKET__API__ADDR", "127.0.0.1:2");
            jail.set_env("SPROCKET__DATABASE__URL", "postgres://x/y");
            let flags = Overrides {
                database_url: Some("sqlite://z.db".into()),
                ..Default::default()
            };
            let c = Config::load(Some(Path::new("s.toml")), &flags).unwrap();
            assert_eq!(c.kafka.brokers, "file:1");
            assert_eq!(c.api.addr, "127.0.0.1:2");
            assert_eq!(c.database.url, "sqlite://z.db");
            Ok(())
        });
    }

    #[test]
    fn the_pool_is_sized_from_the_environment_and_checked() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(c.database.pool_size, 10);
            jail.set_env("SPROCKET__DATABASE__POOL_SIZE", "24");
            jail.set_env("SPROCKET__DATABASE__POOL_TIMEOUT_MS", "500");
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(
                (c.database.pool_size, c.database.pool_timeout_ms),
                (24, 500)
            );
            for bad in ["0", "65"] {
                jail.set_env("SPROCKET__DATABASE__POOL_SIZE", bad);
                let e = Config::load(None, &Overrides::default()).unwrap_err();
                assert!(e.to_string().contains("database.pool_size"), "{e}");
            }
            jail.set_env("SPROCKET__DATABASE__POOL_SIZE", "4");
            jail.set_env("SPROCKET__DATABASE__POOL_TIMEOUT_MS", "0");
            let e = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("database.pool_timeout_ms"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[kafka]\nbrokerz = \"x\"\n")?;
            let e = Config::load(Some(Path::new("bad.toml")), &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("brokerz"), "{e}");
            jail.set_env("SPROCKET__STORE__URL", "ftp://x");
            let e = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(e.to_string().contains("store.url"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn sprocket_config_hides_secrets() {
        let mut c = Config::default();
        c.database.url = "postgres://app:hunter2@db/sprocket".into();
        c.kafka
            .properties
            .insert("sasl.password".into(), "hunter2".into());
        c.kafka
            .properties
            .insert("sasl.username".into(), "worker".into());
        let shown = c.redacted().to_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://app:***@db/sprocket"), "{shown}");
        assert!(shown.contains("worker"), "{shown}");
    }

    #[test]
    fn url_and_object_sources_are_configured_and_checked() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None, &Overrides::default()).unwrap();
            assert!(c.ingest.url_allow_private.is_empty());
            assert!(
                !c.ingest.object_allowed("media", "a.mp4"),
                "none by default"
            );
            let fetch = c.ingest.url_fetch();
            assert_eq!(
                (
                    fetch.connect_timeout,
                    fetch.read_timeout,
                    fetch.total_timeout
                ),
                (
                    Duration::from_secs(5),
                    Duration::from_secs(30),
                    Duration::from_secs(3600)
                )
            );

            jail.create_file(
                "s.toml",
                "[ingest]\nurl_allow_private = [\"127.0.0.0/8\", \"fd00::/8\"]\nallowed_objects = [\"media/in/\", \"open\"]\n",
            )?;
            let c = Config::load(Some(Path::new("s.toml")), &Overrides::default()).unwrap();
            let blocks: Vec<String> = c
                .ingest
                .url_allow_private
                .iter()
                .map(|b| b.to_string())
                .collect();
            assert_eq!(blocks, ["127.0.0.0/8", "fd00::/8"]);
            assert!(c.to_toml().contains("\"127.0.0.0/8\""), "{}", c.to_toml());
            assert!(c.ingest.object_allowed("media", "in/a.mp4"));
            assert!(c.ingest.object_allowed("open", "any/key"));
            assert!(!c.ingest.object_allowed("media", "out/a.mp4"));
            assert!(!c.ingest.object_allowed("other", "in/a.mp4"));

            for (key, value, says) in [
                (
                    "URL_ALLOW_PRIVATE",
                    "[\"127.0.0.1/8\"]",
                    "bits set past the /8 prefix",
                ),
                ("URL_ALLOW_PRIVATE", "[\"localhost\"]", "not an IP address"),
                ("URL_ALLOW_PRIVATE", "[\"10.0.0.0/33\"]", "prefix length"),
                (
                    "ALLOWED_OBJECTS",
                    "[\"s3://media\"]",
                    "ingest.allowed_objects",
                ),
                ("ALLOWED_OBJECTS", "[\"/in\"]", "ingest.allowed_objects"),
                ("URL_READ_TIMEOUT_MS", "0", "ingest.url_read_timeout_ms"),
            ] {
                jail.set_env(format!("SPROCKET__INGEST__{key}"), value);
                let e = Config::load(None, &Overrides::default())
                    .unwrap_err()
                    .to_string();
                assert!(e.contains(says), "{key}={value}: {e}");
                jail.clear_env();
            }
            jail.set_env("SPROCKET__INGEST__URL_ALLOW_PRIVATE", "[\"10.0.0.0/33\"]");
            let e = Config::load(None, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(
                e.to_lowercase().contains("ingest.url_allow_private"),
                "names the key: {e}"
            );
            Ok(())
        });
    }
}
