//! `sprocket dev`: everything in one process on embedded defaults — the embedded
//! broker and schema registry, SQLite projections, local object stores under the
//! data directory, the projector, one worker per phase and the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use sprocket_broker::EmbeddedBroker;
use sprocket_core::{Phase, Topics};
use sprocket_platform::config::Config;
use sprocket_platform::registry;
use sprocket_workers::WorkerHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::services;

#[derive(Debug, Clone)]
pub struct DevOptions {
    pub data_dir: PathBuf,
    pub api_addr: String,
    pub kafka_addr: String,
    pub registry_addr: String,
    /// Phases to run a worker for (all four in `sprocket dev`).
    pub workers: Vec<Phase>,
}

/// The embedded broker and registry alone (`sprocket broker`, and the base of dev).
pub struct Infra {
    /// Shared with the fault-injection server when one is served.
    pub broker: Arc<EmbeddedBroker>,
    pub registry_addr: SocketAddr,
    registry: JoinHandle<std::io::Result<()>>,
}

impl Infra {
    /// Starts the broker, creates Sprocket's topics on it, and starts the registry.
    pub async fn start(
        kafka_addr: &str,
        registry_addr: &str,
        topics: &Topics,
        partitions: i32,
    ) -> anyhow::Result<Infra> {
        let broker = Arc::new(EmbeddedBroker::start(kafka_addr).await?);
        for t in topics.all() {
            broker.create_topic(&t, partitions)?;
        }
        let listener = TcpListener::bind(registry_addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {registry_addr}: {e}"))?;
        let registry_addr = listener.local_addr()?;
        let registry = tokio::spawn(registry::serve(listener, std::future::pending()));
        tracing::info!(%registry_addr, "embedded schema registry listening");
        Ok(Infra {
            broker,
            registry_addr,
            registry,
        })
    }

    pub fn registry_url(&self) -> String {
        format!("http://{}", self.registry_addr)
    }
}

impl Drop for Infra {
    fn drop(&mut self) {
        self.registry.abort();
    }
}

/// A running dev stack.
pub struct Dev {
    pub infra: Infra,
    pub api_addr: SocketAddr,
    pub config: Arc<Config>,
    stop: watch::Sender<bool>,
    workers: Vec<WorkerHandle>,
    tasks: Vec<JoinHandle<()>>,
    api: JoinHandle<std::io::Result<()>>,
}

impl Dev {
    /// Starts everything; `base` supplies the options dev does not set itself
    /// (limits, allowed directories, retry policy).
    pub async fn start(opts: &DevOptions, mut base: Config) -> anyhow::Result<Dev> {
        std::fs::create_dir_all(&opts.data_dir)?;
        let data = std::fs::canonicalize(&opts.data_dir)?;
        let topics = Topics::new(base.kafka.topic_prefix.clone());
        let infra = Infra::start(
            &opts.kafka_addr,
            &opts.registry_addr,
            &topics,
            base.kafka.partitions,
        )
        .await?;
        base.kafka.brokers = infra.broker.bootstrap_servers();
        base.registry.url = infra.registry_url();
        base.database.url = format!("sqlite://{}", data.join("sprocket.db").display());
        base.store.url = format!("file://{}", data.join("store").display());
        base.archive.url = format!("file://{}", data.join("archive").display());
        let inbox = data.join("inbox");
        std::fs::create_dir_all(&inbox)?;
        if base.ingest.allowed_dirs.is_empty() {
            base.ingest.allowed_dirs.push(inbox);
        }
        base.api.addr = opts.api_addr.clone();
        base.validate()?;
        let cfg = Arc::new(base);

        let (stop, stopped) = watch::channel(false);
        let projector = services::start_projector(cfg.clone(), false, stopped.clone()).await?;
        let mut workers = Vec::new();
        for &phase in &opts.workers {
            workers.push(services::start_worker(cfg.clone(), phase).await?);
        }
        let listener = TcpListener::bind(&opts.api_addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", opts.api_addr))?;
        let api_addr = listener.local_addr()?;
        let api = services::start_api(cfg.clone(), listener, stopped).await?;
        tracing::info!(%api_addr, data_dir = %data.display(), "sprocket dev is up");
        Ok(Dev {
            infra,
            api_addr,
            config: cfg,
            stop,
            workers,
            tasks: vec![projector],
            api,
        })
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// Stops every service at once; uncommitted work is redone by the next run.
    pub async fn stop(self) {
        self.shutdown(std::time::Duration::ZERO).await
    }

    /// Stops every service, giving in-flight work `grace` to finish and commit.
    pub async fn shutdown(self, grace: std::time::Duration) {
        let _ = self.stop.send(true);
        futures::future::join_all(self.workers.into_iter().map(|w| w.shutdown(grace))).await;
        for t in self.tasks {
            let _ = t.await;
        }
        let _ = self.api.await;
    }
}
