//! The `sprocket` command line.

mod client;
mod demo;
pub mod dlq;
mod ops;
mod serve;
mod sse;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sprocket_platform::config::Overrides;

#[derive(Debug, Parser)]
#[command(
    name = "sprocket",
    version,
    about = "Event-sourced media workflows on Kafka"
)]
pub struct Cli {
    /// A TOML configuration file (layered over the defaults, under SPROCKET__ env and flags).
    #[arg(long, global = true, env = "SPROCKET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers.
    #[arg(long, global = true)]
    pub kafka: Option<String>,
    /// Schema registry URL.
    #[arg(long, global = true)]
    pub registry: Option<String>,
    /// Projection database (postgres://… or sqlite://…).
    #[arg(long, global = true)]
    pub database: Option<String>,
    /// Working object store (file:///…, s3://…, memory://).
    #[arg(long, global = true)]
    pub store: Option<String>,
    /// Archive object store.
    #[arg(long, global = true)]
    pub archive: Option<String>,
    /// The API key client commands send (default: the key `sprocket dev`
    /// saved in ./data/api-key).
    #[arg(long, global = true, env = "SPROCKET_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one process on embedded defaults.
    Dev {
        #[command(flatten)]
        dev: DevArgs,
    },
    /// Runs a demo job on `sprocket dev`: your video, or a generated sample.
    Demo {
        /// A video to process (default: a sample made with ffmpeg).
        video: Option<PathBuf>,
        #[command(flatten)]
        dev: DevArgs,
        /// Keep Sprocket running after the job, until Ctrl-C.
        #[arg(long)]
        keep_running: bool,
    },
    /// Only the embedded schema registry (Confluent REST API), for separate
    /// processes run against a real Kafka.
    Registry {
        #[arg(long, default_value = "127.0.0.1:8081")]
        registry_addr: String,
    },
    /// Only the embedded broker and schema registry.
    Broker {
        #[arg(long, default_value = "127.0.0.1:9092")]
        kafka_addr: String,
        #[arg(long, default_value = "127.0.0.1:8081")]
        registry_addr: String,
        /// Also serve `POST /faults` here, to inject broker faults (errors on
        /// chosen requests, downtime, round-trip delay) for resilience tests.
        #[arg(long)]
        faults_addr: Option<String>,
    },
    /// Runs the projection database's migrations.
    Migrate,
    /// Topic administration.
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// The projector; `--rebuild` empties the projections and replays the topics.
    Projector {
        #[arg(long)]
        rebuild: bool,
    },
    /// A phase worker.
    Worker { phase: sprocket_core::Phase },
    /// The webhook sender: delivers each tenant's events to its webhooks,
    /// signed, retrying through Kafka (`[webhooks]` settings).
    Webhooks,
    /// The status API.
    Api {
        #[arg(long)]
        api_addr: Option<String>,
    },
    /// Prints the effective configuration.
    Config,
    /// Uploads a file and submits a job for it.
    Submit {
        file: PathBuf,
        #[arg(long, default_value = "highlight")]
        recipe: String,
        /// A job id of your choosing.
        #[arg(long)]
        id: Option<String>,
        /// Follow the job with a progress bar and print its artifacts.
        #[arg(long)]
        wait: bool,
        #[arg(long, env = "SPROCKET_API", default_value = "http://127.0.0.1:8080")]
        api: String,
    },
    /// Follows a job live (its event stream), a progress bar per phase;
    /// exits 0 once it succeeds, non-zero if it fails or is cancelled.
    #[command(after_help = "Example: sprocket watch demo-1")]
    Watch {
        id: String,
        #[arg(long, env = "SPROCKET_API", default_value = "http://127.0.0.1:8080")]
        api: String,
    },
    /// Shows a job.
    Status {
        id: String,
        #[arg(long, env = "SPROCKET_API", default_value = "http://127.0.0.1:8080")]
        api: String,
    },
    /// Per phase: backlog, jobs in flight, group members, oldest waiting item, throughput.
    Lag {
        #[arg(long, env = "SPROCKET_API", default_value = "http://127.0.0.1:8080")]
        api: String,
    },
    /// The replicas KEDA's Kafka scaler and the HPA would settle on now, per
    /// phase, from the lag of its topic and of its retry topic.
    ScalePlan {
        #[command(flatten)]
        trigger: ops::TriggerFlags,
        #[arg(long, env = "SPROCKET_API", default_value = "http://127.0.0.1:8080")]
        api: String,
    },
    /// Cancels a queued or running job.
    Cancel {
        id: String,
        #[arg(long, env = "SPROCKET_API", default_value = "http://127.0.0.1:8080")]
        api: String,
    },
    /// Restarts a failed or dead-lettered job from the phase that failed.
    Retry {
        id: String,
        #[arg(long, env = "SPROCKET_API", default_value = "http://127.0.0.1:8080")]
        api: String,
    },
    /// The dead letter topics.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// API keys: make, list and revoke them through the API (an admin key),
    /// or make a deployment's first admin key in its database (`bootstrap`).
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Lists jobs.
    Jobs {
        #[arg(long)]
        status: Option<String>,
        /// Only jobs with this label, as KEY=VALUE; repeat it for several (a
        /// job must have them all).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// Only jobs submitted at or after this RFC 3339 time, e.g.
        /// 2025-06-01T00:00:00Z.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long, env = "SPROCKET_API", default_value = "http://127.0.0.1:8080")]
        api: String,
    },
}

/// Where `sprocket dev` (and `demo`) keeps its data and listens. With the
/// global `--kafka HOST:PORT` it runs on that Kafka instead of embedding one
/// (and with `--registry URL` on that schema registry).
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub api_addr: String,
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub kafka_addr: String,
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub registry_addr: String,
}

impl DevArgs {
    /// The dev stack these flags (and the global `--kafka`, `--registry`)
    /// describe, with a worker for every phase.
    pub fn options(&self, cli: &Cli) -> sprocket_server::dev::DevOptions {
        sprocket_server::dev::DevOptions {
            data_dir: self.data_dir.clone(),
            api_addr: self.api_addr.clone(),
            kafka_addr: self.kafka_addr.clone(),
            registry_addr: self.registry_addr.clone(),
            workers: sprocket_core::Phase::ALL.to_vec(),
            kafka: cli.kafka.clone(),
            registry: cli.registry.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum DlqAction {
    /// Every dead letter: when, phase, job, where it came from, why.
    List,
    /// Redrives a dead-lettered job (or all of them) through the API.
    Redrive {
        id: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, env = "SPROCKET_API", default_value = "http://127.0.0.1:8080")]
        api: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Makes a key; prints it (shown once) as the last line.
    Create {
        #[arg(long)]
        tenant: String,
        /// Comma-separated: jobs:read, jobs:write, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, env = "SPROCKET_API", default_value = "http://127.0.0.1:8080")]
        api: String,
    },
    /// Lists every key (never the keys themselves).
    List {
        #[arg(long, env = "SPROCKET_API", default_value = "http://127.0.0.1:8080")]
        api: String,
    },
    /// Revokes a key by its id: within a second no API replica accepts it.
    Revoke {
        id: String,
        #[arg(long, env = "SPROCKET_API", default_value = "http://127.0.0.1:8080")]
        api: String,
    },
    /// Makes an admin key straight in the deployment's database (run once,
    /// like `migrate`, with its configuration); prints it as the last line.
    /// Running it again makes another.
    Bootstrap {
        /// The key's tenant (default: `tenants.default`).
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TopicsAction {
    /// Creates Sprocket's topics (existing ones are left as they are).
    Create,
}

impl Cli {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            kafka_brokers: self.kafka.clone(),
            registry_url: self.registry.clone(),
            database_url: self.database.clone(),
            store_url: self.store.clone(),
            archive_url: self.archive.clone(),
            api_addr: match &self.command {
                Command::Api { api_addr } => api_addr.clone(),
                _ => None,
            },
        }
    }

    /// The API at `url`, reached with `--api-key` / `SPROCKET_API_KEY`, or
    /// else the key `sprocket dev` saved under its default data directory.
    pub fn api(&self, url: &str) -> anyhow::Result<client::Api> {
        let saved = || {
            std::fs::read_to_string(
                std::path::Path::new("data").join(sprocket_server::auth::DEV_KEY_FILE),
            )
            .ok()
        };
        let key = self.api_key.clone().or_else(saved);
        client::Api::new(url, key.as_deref().map(str::trim))
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Submit {
            file,
            recipe,
            id,
            wait,
            api,
        } => client::submit(&cli.api(api)?, file, recipe, id.as_deref(), *wait)
            .await
            .map(|_| ()),
        Command::Status { id, api } => client::status(&cli.api(api)?, id).await,
        Command::Watch { id, api } => client::watch(&cli.api(api)?, id).await,
        Command::Lag { api } => ops::lag(&cli.api(api)?).await,
        Command::Cancel { id, api } => client::cancel(&cli.api(api)?, id).await,
        Command::Retry { id, api } => client::retry(&cli.api(api)?, id).await,
        Command::ScalePlan { trigger, api } => ops::scale_plan(&cli.api(api)?, trigger).await,
        Command::Jobs {
            status,
            labels,
            since,
            limit,
            api,
        } => {
            let filters = client::JobFilters {
                status: status.as_deref(),
                labels,
                since: since.as_deref(),
            };
            client::jobs(&cli.api(api)?, &filters, *limit).await
        }
        Command::Keys { action } => match action {
            KeysAction::Create {
                tenant,
                scopes,
                name,
                api,
            } => client::create_key(&cli.api(api)?, tenant, scopes, name.as_deref()).await,
            KeysAction::List { api } => client::list_keys(&cli.api(api)?).await,
            KeysAction::Revoke { id, api } => client::revoke_key(&cli.api(api)?, id).await,
            KeysAction::Bootstrap { .. } => serve::run(&cli).await,
        },
        _ => serve::run(&cli).await,
    }
}
