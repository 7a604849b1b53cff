//! Layered configuration: built-in defaults, then a TOML file, then `SPROCKET__…`
//! environment variables (`__` separates levels: `SPROCKET__KAFKA__BROKERS`), then
//! command-line flags. Unknown keys are errors; every value is checked at start.
//! Secrets (S3 keys) are never part of it: they come from the `AWS_*` environment.

use std::net::SocketAddr;
use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

mod retention;
mod sections;

pub use retention::*;
pub use sections::*;

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
    pub archive: ArchiveConfig,
    pub api: ApiConfig,
    pub ingest: IngestConfig,
    pub worker: WorkerConfig,
    pub metrics: MetricsConfig,
    pub limits: LimitsConfig,
    pub tenants: TenantsConfig,
    pub webhooks: WebhooksConfig,
    pub retention: RetentionConfig,
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
            archive: ArchiveConfig::default(),
            api: ApiConfig {
                addr: "127.0.0.1:8080".into(),
                max_upload_bytes: 2 << 30,
                sse_keep_alive_ms: 10_000,
                cors_origins: Vec::new(),
            },
            ingest: IngestConfig::default(),
            worker: WorkerConfig::default(),
            metrics: MetricsConfig::default(),
            limits: LimitsConfig::default(),
            tenants: TenantsConfig::default(),
            webhooks: WebhooksConfig::default(),
            retention: RetentionConfig::default(),
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
        let cold = self.archive.cold_url.as_ref();
        for (key, url) in [
            ("store.url", &self.store.url),
            ("archive.url", &self.archive.url),
        ]
        .into_iter()
        .chain(cold.map(|u| ("archive.cold_url", u)))
        {
            let scheme = url.split("://").next().unwrap_or_default();
            if !url.contains("://") || !["file", "s3", "memory"].contains(&scheme) {
                return invalid(
                    key,
                    format!("{url:?}: use file:///…, s3://bucket/prefix or memory://"),
                );
            }
        }
        for t in std::iter::once(&self.tenants.default).chain(self.tenants.quotas.keys()) {
            if let Err(e) = sprocket_core::ids::tenant(t) {
                return invalid("tenants", e.to_string());
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
        let hooks = &self.webhooks;
        for (key, value) in [
            ("webhooks.timeout_ms", hooks.timeout_ms),
            ("webhooks.retry_delay_ms", hooks.retry_delay_ms),
            ("webhooks.max_age_s", hooks.max_age_s),
            ("webhooks.max_in_flight", hooks.max_in_flight as u64),
        ] {
            if value == 0 {
                return invalid(key, "must be ≥ 1".into());
            }
        }
        if hooks.retry_max_delay_ms < hooks.retry_delay_ms {
            return invalid(
                "webhooks.retry_max_delay_ms",
                "must be ≥ webhooks.retry_delay_ms".into(),
            );
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
        if let Some(bad) = self.api.cors_origins.iter().find(|o| !is_origin(o)) {
            return invalid(
                "api.cors_origins",
                format!("{bad:?} is not an origin: scheme://host[:port], http or https, no path"),
            );
        }
        self.retention.validate(&self.archive)?;
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
        if let Some(url) = &mut c.archive.cold_url {
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

/// A web origin as browsers send it: `http(s)://host[:port]`, nothing after.
fn is_origin(o: &str) -> bool {
    let Some(rest) = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
        && url::Url::parse(o).is_ok_and(|u| u.host_str().is_some())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests;
