//! The option groups commands are made of: each command takes the groups it
//! uses and no others, so a flag a command would ignore is refused instead
//! (`sprocket scale-plan --kafka …` is an error: it reads the API).
//!
//! Server commands take the configuration they read (`--config` and the
//! flags over it); client commands take only where the API is and the key.

use std::path::PathBuf;

use clap::Args;
use sprocket_platform::config::Overrides;

/// The configuration file under the flags.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArg {
    /// A TOML configuration file (layered over the defaults, under SPROCKET__
    /// environment variables and the flags).
    #[arg(long, env = "SPROCKET_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Kafka and the schema registry.
#[derive(Debug, Clone, Default, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (`kafka.brokers`).
    #[arg(long)]
    pub kafka: Option<String>,
    /// Schema registry URL (`registry.url`).
    #[arg(long)]
    pub registry: Option<String>,
}

/// The projection database.
#[derive(Debug, Clone, Default, Args)]
pub struct DatabaseArg {
    /// Projection database, postgres://… or sqlite://… (`database.url`).
    #[arg(long)]
    pub database: Option<String>,
}

/// The object stores.
#[derive(Debug, Clone, Default, Args)]
pub struct StoreArgs {
    /// Working object store, file:///…, s3://… or memory:// (`store.url`).
    #[arg(long)]
    pub store: Option<String>,
    /// Archive object store (`archive.url`).
    #[arg(long)]
    pub archive: Option<String>,
}

/// Every setting a command can be given: for the commands that read them
/// all (a worker, the API, `config`).
#[derive(Debug, Clone, Default, Args)]
pub struct AllSettings {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub database: DatabaseArg,
    #[command(flatten)]
    pub stores: StoreArgs,
}

impl AllSettings {
    pub fn settings(&self) -> Settings {
        Settings::new(&self.config)
            .kafka(&self.kafka)
            .database(&self.database)
            .stores(&self.stores)
    }
}

/// Where the status API is and the key to send it.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The status API.
    #[arg(long, env = "SPROCKET_API", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// The API key to send (default: the key `sprocket dev` saved in
    /// ./data/api-key).
    #[arg(long, env = "SPROCKET_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

impl ClientArgs {
    /// The API, reached with `--api-key` / `SPROCKET_API_KEY`, or else the
    /// key `sprocket dev` saved under its default data directory.
    pub fn api(&self) -> anyhow::Result<super::client::Api> {
        let saved = || {
            std::fs::read_to_string(
                std::path::Path::new("data").join(sprocket_server::auth::DEV_KEY_FILE),
            )
            .ok()
        };
        let key = self.api_key.clone().or_else(saved);
        super::client::Api::new(&self.api, key.as_deref().map(str::trim))
    }
}

/// What a server command gives the configuration: its file and the flags
/// over it.
#[derive(Debug, Default)]
pub struct Settings {
    pub file: Option<PathBuf>,
    pub flags: Overrides,
}

impl Settings {
    pub fn new(config: &ConfigArg) -> Settings {
        Settings {
            file: config.config.clone(),
            flags: Overrides::default(),
        }
    }

    pub fn kafka(mut self, k: &KafkaArgs) -> Settings {
        self.flags.kafka_brokers = k.kafka.clone();
        self.flags.registry_url = k.registry.clone();
        self
    }

    pub fn database(mut self, d: &DatabaseArg) -> Settings {
        self.flags.database_url = d.database.clone();
        self
    }

    pub fn stores(mut self, s: &StoreArgs) -> Settings {
        self.flags.store_url = s.store.clone();
        self.flags.archive_url = s.archive.clone();
        self
    }
}

/// Where `sprocket dev` (and `demo`) keeps its data and listens, and the
/// Kafka and schema registry it runs on instead of embedding them, if any.
#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub api_addr: String,
    /// Where the embedded broker listens (without `--kafka`).
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub kafka_addr: String,
    /// Where the embedded schema registry listens (without `--registry`).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub registry_addr: String,
    /// An existing Kafka (bootstrap servers) to run on instead of the
    /// embedded broker; Sprocket's topics are made there.
    #[arg(long)]
    pub kafka: Option<String>,
    /// An existing schema registry (URL) instead of the embedded one.
    #[arg(long)]
    pub registry: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
}

impl DevArgs {
    /// The dev stack these flags describe, with a worker for every phase.
    pub fn options(&self) -> sprocket_server::dev::DevOptions {
        sprocket_server::dev::DevOptions {
            data_dir: self.data_dir.clone(),
            api_addr: self.api_addr.clone(),
            kafka_addr: self.kafka_addr.clone(),
            registry_addr: self.registry_addr.clone(),
            workers: sprocket_core::Phase::ALL.to_vec(),
            kafka: self.kafka.clone(),
            registry: self.registry.clone(),
        }
    }

    pub fn settings(&self) -> Settings {
        Settings::new(&self.config).kafka(&KafkaArgs {
            kafka: self.kafka.clone(),
            registry: self.registry.clone(),
        })
    }
}

impl super::Command {
    /// The configuration file and flags of a server command (client
    /// commands read no configuration: the defaults).
    pub fn settings(&self) -> Settings {
        use super::{Command as C, DlqAction, KeysAction, TopicsAction};
        match self {
            C::Dev { dev } | C::Demo { dev, .. } => dev.settings(),
            C::Broker { config, .. } => Settings::new(config),
            C::Migrate { config, database }
            | C::Keys {
                action:
                    KeysAction::Bootstrap {
                        config, database, ..
                    },
            } => Settings::new(config).database(database),
            C::Topics {
                action: TopicsAction::Create { config, kafka },
            }
            | C::Dlq {
                action: DlqAction::List { config, kafka } | DlqAction::Redrive { config, kafka, .. },
            } => Settings::new(config).kafka(kafka),
            C::Projector {
                config,
                kafka,
                database,
                ..
            }
            | C::Webhooks {
                config,
                kafka,
                database,
            } => Settings::new(config).kafka(kafka).database(database),
            C::Worker { settings, .. } | C::Config { settings } | C::Janitor { settings } => {
                settings.settings()
            }
            C::Api { api_addr, settings } => {
                let mut s = settings.settings();
                s.flags.api_addr = api_addr.clone();
                s
            }
            _ => Settings::default(),
        }
    }
}
