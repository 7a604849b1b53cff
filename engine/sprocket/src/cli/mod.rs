//! The `sprocket` command line.

mod args;
mod client;
mod demo;
pub mod dlq;
mod ops;
mod recipes;
mod serve;
mod sse;
mod table;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use args::{
    AllSettings, ClientArgs, ConfigArg, DatabaseArg, DevArgs, KafkaArgs, Settings, StoreArgs,
};

#[derive(Debug, Parser)]
#[command(
    name = "sprocket",
    version,
    about = "Event-sourced media workflows on Kafka",
    after_help = "Start with `sprocket dev` (everything in one process) or `sprocket demo`; \
                  each command's --help shows an example."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

const API_ENV: &str = "Client commands read the API's address from --api or SPROCKET_API, \
                       and the key from --api-key or SPROCKET_API_KEY (else ./data/api-key).";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Everything in one process on embedded defaults.
    #[command(after_help = "Examples:\n  sprocket dev\n  \
        sprocket dev --data-dir /tmp/sprocket --api-addr 127.0.0.1:9000\n  \
        sprocket dev --kafka 127.0.0.1:9092   # on an existing Kafka")]
    Dev {
        #[command(flatten)]
        dev: DevArgs,
    },
    /// Runs a demo job on `sprocket dev`: your video, or a sample made from
    /// photographs.
    #[command(after_help = "Examples:\n  sprocket demo\n  sprocket demo my.mp4 --keep-running")]
    Demo {
        /// A video to process (default: a sample made from the fixture
        /// photographs, or a pattern video without them).
        video: Option<PathBuf>,
        #[command(flatten)]
        dev: DevArgs,
        /// Keep Sprocket running after the job, until Ctrl-C.
        #[arg(long)]
        keep_running: bool,
    },
    /// Only the embedded schema registry (Confluent REST API), for separate
    /// processes run against a real Kafka.
    #[command(after_help = "Example:\n  sprocket registry --registry-addr 127.0.0.1:8081")]
    Registry {
        #[arg(long, default_value = "127.0.0.1:8081")]
        registry_addr: String,
    },
    /// Only the embedded broker and schema registry.
    #[command(
        after_help = "Example:\n  sprocket broker --kafka-addr 127.0.0.1:9092 --registry-addr 127.0.0.1:8081"
    )]
    Broker {
        #[arg(long, default_value = "127.0.0.1:9092")]
        kafka_addr: String,
        #[arg(long, default_value = "127.0.0.1:8081")]
        registry_addr: String,
        /// Also serve `POST /faults` here, to inject broker faults (errors on
        /// chosen requests, downtime, round-trip delay) for resilience tests.
        #[arg(long)]
        faults_addr: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Runs the projection database's migrations.
    #[command(
        after_help = "Example:\n  sprocket migrate --database postgres://sprocket@db/sprocket"
    )]
    Migrate {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// Topic administration.
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// The projector; `--rebuild` empties the projections and replays the topics.
    #[command(
        after_help = "Example:\n  sprocket projector --kafka kafka:9092 --registry http://registry:8081 \\\n    --database postgres://sprocket@db/sprocket"
    )]
    Projector {
        #[arg(long)]
        rebuild: bool,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// A phase worker.
    #[command(after_help = "Example:\n  sprocket worker render --config /etc/sprocket.toml")]
    Worker {
        phase: sprocket_core::Phase,
        #[command(flatten)]
        settings: AllSettings,
    },
    /// The webhook sender: delivers each tenant's events to its webhooks,
    /// signed, retrying through Kafka (`[webhooks]` settings).
    #[command(after_help = "Example:\n  sprocket webhooks --config /etc/sprocket.toml")]
    Webhooks {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        database: DatabaseArg,
    },
    /// The janitor: every `retention.interval`, carries out and records the
    /// `[retention]` rules finished jobs owe (working data, archive tiers,
    /// archive expiry); never touches a queued or running job.
    #[command(after_help = "Example:\n  sprocket janitor --config /etc/sprocket.toml")]
    Janitor {
        #[command(flatten)]
        settings: AllSettings,
    },
    /// The status API (and the web dashboard at `/`).
    #[command(
        after_help = "Example:\n  sprocket api --api-addr 0.0.0.0:8080 --config /etc/sprocket.toml"
    )]
    Api {
        #[arg(long)]
        api_addr: Option<String>,
        #[command(flatten)]
        settings: AllSettings,
    },
    /// Prints the effective configuration (secrets redacted).
    #[command(
        after_help = "Example:\n  SPROCKET__KAFKA__PARTITIONS=12 sprocket config --config sprocket.toml"
    )]
    Config {
        #[command(flatten)]
        settings: AllSettings,
    },
    /// Uploads a file and submits a job for it.
    #[command(after_help = format!("Example:\n  sprocket submit clip.mp4 --recipe highlight --id clip-1 --wait\n\n{API_ENV}"))]
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
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Follows a job live (its event stream), a progress bar per phase;
    /// exits 0 once it succeeds, non-zero if it fails or is cancelled.
    #[command(after_help = format!("Example:\n  sprocket watch clip-1\n\n{API_ENV}"))]
    Watch {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Shows a job.
    #[command(after_help = format!("Example:\n  sprocket status clip-1\n\n{API_ENV}"))]
    Status {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Per phase: backlog, jobs in flight, group members, oldest waiting item, throughput.
    #[command(after_help = format!("Example:\n  sprocket lag --api http://sprocket-api:8080\n\n{API_ENV}"))]
    Lag {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The replicas KEDA's Kafka scaler and the HPA would settle on now, per
    /// phase, from the lag of its topic and of its retry topic.
    #[command(after_help = format!("Example:\n  sprocket scale-plan --lag-threshold 5 --max-replicas 6\n\n{API_ENV}"))]
    ScalePlan {
        #[command(flatten)]
        trigger: ops::TriggerFlags,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancels a queued or running job.
    #[command(after_help = format!("Example:\n  sprocket cancel clip-1\n\n{API_ENV}"))]
    Cancel {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Restarts a failed or dead-lettered job from the phase that failed.
    #[command(after_help = format!("Example:\n  sprocket retry clip-1\n\n{API_ENV}"))]
    Retry {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
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
    /// Named recipes stored as data: store a version, list them, show one.
    Recipes {
        #[command(subcommand)]
        action: recipes::RecipesAction,
    },
    /// Lists jobs, newest first; `--watch` keeps the table live.
    #[command(after_help = format!("Examples:\n  sprocket jobs --status running\n  \
        sprocket jobs --label team=news --since 2026-12-01T00:00:00Z\n  sprocket jobs --watch\n\n{API_ENV}"))]
    Jobs {
        /// Only jobs in this status (queued, running, succeeded, failed, cancelled).
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
        /// Keep the table up to date from the tenant's event stream, until Ctrl-C.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqAction {
    /// Every dead letter: when, phase, job, where it came from, why.
    #[command(after_help = "Example:\n  sprocket dlq list --kafka kafka:9092")]
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Redrives a dead-lettered job (or all of them) through the API.
    #[command(
        after_help = "Examples:\n  sprocket dlq redrive clip-1\n  sprocket dlq redrive --all --kafka kafka:9092 --api http://sprocket-api:8080"
    )]
    Redrive {
        id: Option<String>,
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Makes a key; prints it (shown once) as the last line.
    #[command(after_help = format!("Example:\n  sprocket keys create --tenant news --scopes jobs:read,jobs:write --name \"news CMS\"\n\n{API_ENV}"))]
    Create {
        #[arg(long)]
        tenant: String,
        /// Comma-separated: jobs:read, jobs:write, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Lists every key (never the keys themselves).
    #[command(after_help = format!("Example:\n  sprocket keys list\n\n{API_ENV}"))]
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revokes a key by its id: within a second no API replica accepts it.
    #[command(after_help = format!("Example:\n  sprocket keys revoke key_0190f3c2\n\n{API_ENV}"))]
    Revoke {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Makes an admin key straight in the deployment's database (run once,
    /// like `migrate`, with its configuration); prints it as the last line.
    /// Running it again makes another.
    #[command(
        after_help = "Example:\n  sprocket keys bootstrap --tenant ops --database postgres://sprocket@db/sprocket"
    )]
    Bootstrap {
        /// The key's tenant (default: `tenants.default`).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        database: DatabaseArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum TopicsAction {
    /// Creates Sprocket's topics (existing ones are left as they are).
    #[command(
        after_help = "Example:\n  sprocket topics create --kafka kafka:9092 --registry http://registry:8081"
    )]
    Create {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Submit {
            file,
            recipe,
            id,
            wait,
            client,
        } => client::submit(&client.api()?, file, recipe, id.as_deref(), *wait)
            .await
            .map(|_| ()),
        Command::Status { id, client } => client::status(&client.api()?, id).await,
        Command::Watch { id, client } => client::watch(&client.api()?, id).await,
        Command::Lag { client } => ops::lag(&client.api()?).await,
        Command::Cancel { id, client } => client::cancel(&client.api()?, id).await,
        Command::Retry { id, client } => client::retry(&client.api()?, id).await,
        Command::ScalePlan { trigger, client } => ops::scale_plan(&client.api()?, trigger).await,
        Command::Jobs {
            status,
            labels,
            since,
            limit,
            watch,
            client,
        } => {
            let filters = client::JobFilters {
                status: status.as_deref(),
                labels,
                since: since.as_deref(),
            };
            if *watch {
                table::watch(&client.api()?, &filters, *limit).await
            } else {
                client::jobs(&client.api()?, &filters, *limit).await
            }
        }
        Command::Keys { action } => match action {
            KeysAction::Create {
                tenant,
                scopes,
                name,
                client,
            } => client::create_key(&client.api()?, tenant, scopes, name.as_deref()).await,
            KeysAction::List { client } => client::list_keys(&client.api()?).await,
            KeysAction::Revoke { id, client } => client::revoke_key(&client.api()?, id).await,
            KeysAction::Bootstrap { .. } => serve::run(&cli).await,
        },
        Command::Recipes { action } => recipes::run(action).await,
        _ => serve::run(&cli).await,
    }
}
