//! The configuration's sections, each with its defaults and the helpers
//! that turn it into what its users take.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::outbound::{self, Cidr};

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

/// Tenants: the one a submission written straight to Kafka without a
/// `tenant` belongs to, and what each tenant may hold at once (0: no limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantsConfig {
    /// The tenant of a submission that names none (`tenants.default`).
    pub default: String,
    /// Every tenant's jobs queued or running at once, unless `quotas` names
    /// it (0: no limit).
    pub max_active_jobs: u64,
    /// Every tenant's bytes uploaded in the last 24 hours, unless `quotas`
    /// names it (0: no limit).
    pub max_upload_bytes_per_day: u64,
    /// Quotas of particular tenants (`[tenants.quotas.<tenant>]`).
    pub quotas: std::collections::BTreeMap<String, Quota>,
}

/// Webhooks (`[webhooks]`): where deliveries may go, how long each may
/// take, and how long a delivery is retried before it is a dead letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Internal networks a webhook may be delivered to all the same, as CIDR
    /// blocks (`["10.20.0.0/16"]`); other internal addresses are refused,
    /// as for `ingest.url_allow_private`.
    pub allow_private: Vec<Cidr>,
    /// Longest one delivery may take (connecting, sending, the answer), in
    /// milliseconds.
    pub timeout_ms: u64,
    /// The wait before the first retry, in milliseconds; each further wait
    /// is twice the last, up to `retry_max_delay_ms`.
    pub retry_delay_ms: u64,
    /// The longest wait between two attempts, in milliseconds.
    pub retry_max_delay_ms: u64,
    /// How long after its first attempt a delivery is retried before it is a
    /// dead letter, in seconds (24 hours).
    pub max_age_s: u64,
    /// Deliveries under way at once per sender process.
    pub max_in_flight: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_private: vec![],
            timeout_ms: 10_000,
            retry_delay_ms: 5_000,
            retry_max_delay_ms: 3_600_000,
            max_age_s: 24 * 3600,
            max_in_flight: 32,
        }
    }
}

impl WebhooksConfig {
    /// How deliveries reach their destinations.
    pub fn outbound(&self) -> outbound::Settings {
        let t = Duration::from_millis(self.timeout_ms);
        outbound::Settings {
            allow_private: self.allow_private.clone(),
            connect_timeout: t,
            read_timeout: t,
            total_timeout: t,
        }
    }

    /// The wait after failed attempt `attempt` (from 1).
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .retry_delay_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(40));
        Duration::from_millis(doubled.min(self.retry_max_delay_ms))
    }
}

/// What one tenant may hold: over it, the API answers 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quota {
    /// Jobs queued or running at once (0: no limit).
    pub max_active_jobs: u64,
    /// Bytes uploaded in the last 24 hours (0: no limit).
    pub max_upload_bytes_per_day: u64,
}

impl Default for TenantsConfig {
    fn default() -> Self {
        TenantsConfig {
            default: "default".into(),
            max_active_jobs: 0,
            max_upload_bytes_per_day: 0,
            quotas: Default::default(),
        }
    }
}

impl TenantsConfig {
    /// The quota of `tenant`.
    pub fn quota(&self, tenant: &str) -> Quota {
        self.quotas.get(tenant).copied().unwrap_or(Quota {
            max_active_jobs: self.max_active_jobs,
            max_upload_bytes_per_day: self.max_upload_bytes_per_day,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where the API, the workers and the projector serve `/metrics` (and
    /// `/healthz`) without a key, for scrapers; the API also serves
    /// `/metrics` on its own address, to admin keys. Unset: not served.
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
    /// How often an idle event stream sends a keep-alive comment, in ms.
    #[serde(default = "ApiConfig::default_sse_keep_alive_ms")]
    pub sse_keep_alive_ms: u64,
    /// Web origins (`https://app.example.com`) whose pages may call the API
    /// from a browser (CORS). Empty, the default: no CORS headers at all, so
    /// browsers allow only the API's own origin (its dashboard).
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

impl ApiConfig {
    fn default_sse_keep_alive_ms() -> u64 {
        10_000
    }
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
    /// else of its partition runs or waits to be taken up.
    pub commit_interval_ms: u64,
    /// How often the consumer lag gauge is refreshed, in milliseconds.
    pub lag_interval_ms: u64,
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
