//! `sprocket dev`: everything in one process on embedded defaults — the embedded
//! broker and schema registry, SQLite projections, local object stores under the
//! data directory, the projector, one worker per phase and the API. Given
//! `--kafka` (and optionally `--registry`), it runs on an existing Kafka
//! (and registry) instead of embedding them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use sprocket_broker::EmbeddedBroker;
use sprocket_core::{Phase, Topics};
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;
use sprocket_platform::registry;
use sprocket_workers::WorkerHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{services, ServerError};

#[derive(Debug, Clone)]
pub struct DevOptions {
    pub data_dir: PathBuf,
    pub api_addr: String,
    /// Where the embedded broker listens (when no `kafka` is given).
    pub kafka_addr: String,
    /// Where the embedded schema registry listens (when no `registry` is given).
    pub registry_addr: String,
    /// Phases to run a worker for (all four in `sprocket dev`).
    pub workers: Vec<Phase>,
    /// An existing Kafka (bootstrap servers) to run on instead of embedding
    /// one; Sprocket's topics are created there with CreateTopics.
    pub kafka: Option<String>,
    /// An existing schema registry (URL) to use instead of embedding one.
    pub registry: Option<String>,
}

/// The embedded schema registry alone (`sprocket registry`; part of
/// `sprocket broker` and `sprocket dev`). Dropping it stops it.
pub struct EmbeddedRegistry {
    pub addr: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
}

impl EmbeddedRegistry {
    pub async fn start(addr: &str) -> Result<EmbeddedRegistry, ServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Listen {
                addr: addr.to_owned(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(ServerError::io("the registry's address"))?;
        let task = tokio::spawn(registry::serve(listener, std::future::pending()));
        tracing::info!(registry_addr = %addr, "embedded schema registry listening");
        Ok(EmbeddedRegistry { addr, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for EmbeddedRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The Kafka and schema registry a stack runs on: embedded ones, or existing
/// ones named by the caller.
pub struct Infra {
    /// The embedded broker; `None` on an existing Kafka. Shared with the
    /// fault-injection server when one is served.
    pub broker: Option<Arc<EmbeddedBroker>>,
    /// Bootstrap servers.
    pub kafka: String,
    /// The embedded registry; `None` when an existing one is used.
    pub registry: Option<EmbeddedRegistry>,
    registry_url: String,
}

impl Infra {
    /// Starts the embedded broker, creates Sprocket's topics on it, and starts
    /// the embedded registry (`sprocket broker`).
    pub async fn start(
        kafka_addr: &str,
        registry_addr: &str,
        topics: &Topics,
        partitions: i32,
    ) -> Result<Infra, ServerError> {
        let broker = Self::embedded_broker(kafka_addr, topics, partitions).await?;
        let registry = EmbeddedRegistry::start(registry_addr).await?;
        Ok(Infra {
            kafka: broker.bootstrap_servers(),
            broker: Some(broker),
            registry_url: registry.url(),
            registry: Some(registry),
        })
    }

    async fn embedded_broker(
        kafka_addr: &str,
        topics: &Topics,
        partitions: i32,
    ) -> Result<Arc<EmbeddedBroker>, ServerError> {
        let broker = Arc::new(EmbeddedBroker::start(kafka_addr).await?);
        for t in topics.all() {
            broker.create_topic(&t, partitions)?;
        }
        Ok(broker)
    }

    /// What `sprocket dev` runs on: the Kafka and registry the options name,
    /// embedded ones for those they leave out. On an existing Kafka, Sprocket's
    /// topics are created with CreateTopics (as `sprocket topics create` does).
    pub async fn for_dev(opts: &DevOptions, cfg: &Config) -> Result<Infra, ServerError> {
        let topics = Topics::new(cfg.kafka.topic_prefix.clone());
        let broker = match &opts.kafka {
            Some(_) => None,
            None => {
                Some(Self::embedded_broker(&opts.kafka_addr, &topics, cfg.kafka.partitions).await?)
            }
        };
        let registry = match &opts.registry {
            Some(_) => None,
            None => Some(EmbeddedRegistry::start(&opts.registry_addr).await?),
        };
        let infra = Infra {
            kafka: match (&opts.kafka, &broker) {
                (Some(k), _) => k.clone(),
                (None, b) => b.as_ref().expect("embedded").bootstrap_servers(),
            },
            registry_url: match (&opts.registry, &registry) {
                (Some(url), _) => url.clone(),
                (None, r) => r.as_ref().expect("embedded").url(),
            },
            broker,
            registry,
        };
        if opts.kafka.is_some() {
            let mut cfg = cfg.clone();
            cfg.kafka.brokers = infra.kafka.clone();
            cfg.registry.url = infra.registry_url.clone();
            let bus = Bus::connect(&cfg, services::producer_name("dev")).await?;
            let report = bus.create_topics().await?;
            tracing::info!(kafka = %infra.kafka, "topics:\n{report}");
            if !report.differing().is_empty() {
                return Err(ServerError::Topics(format!(
                    "Sprocket's topics on {} differ from its configuration:\n{report}",
                    infra.kafka
                )));
            }
        }
        Ok(infra)
    }

    pub fn bootstrap_servers(&self) -> String {
        self.kafka.clone()
    }

    pub fn registry_url(&self) -> String {
        self.registry_url.clone()
    }
}

/// A running dev stack.
pub struct Dev {
    pub infra: Infra,
    pub api_addr: SocketAddr,
    /// The stack's admin key, saved in `<data-dir>/api-key`.
    pub api_key: String,
    pub config: Arc<Config>,
    stop: watch::Sender<bool>,
    workers: Vec<WorkerHandle>,
    tasks: Vec<JoinHandle<()>>,
    api: JoinHandle<std::io::Result<()>>,
}

impl Dev {
    /// Starts everything; `base` supplies the options dev does not set itself
    /// (limits, allowed directories, retry policy).
    pub async fn start(opts: &DevOptions, mut base: Config) -> Result<Dev, ServerError> {
        let data_dir = ServerError::io(format!("data dir {}", opts.data_dir.display()));
        std::fs::create_dir_all(&opts.data_dir).map_err(data_dir)?;
        let data = std::fs::canonicalize(&opts.data_dir).map_err(ServerError::io(format!(
            "data dir {}",
            opts.data_dir.display()
        )))?;
        let infra = Infra::for_dev(opts, &base).await?;
        base.kafka.brokers = infra.bootstrap_servers();
        base.registry.url = infra.registry_url();
        base.database.url = format!("sqlite://{}", data.join("sprocket.db").display());
        base.store.url = format!("file://{}", data.join("store").display());
        base.archive.url = format!("file://{}", data.join("archive").display());
        let inbox = data.join("inbox");
        std::fs::create_dir_all(&inbox)
            .map_err(ServerError::io(format!("inbox {}", inbox.display())))?;
        if base.ingest.allowed_dirs.is_empty() {
            base.ingest.allowed_dirs.push(inbox);
        }
        base.api.addr = opts.api_addr.clone();
        base.validate()?;
        let cfg = Arc::new(base);
        let api_key = crate::auth::dev_key(
            &services::open_projections(&cfg)?,
            &data,
            &cfg.tenants.default,
        )?;

        let (stop, stopped) = watch::channel(false);
        let projector = services::start_projector(cfg.clone(), false, stopped.clone()).await?;
        let mut tasks = vec![projector];
        tasks.extend(
            crate::webhooks::start(
                cfg.clone(),
                services::open_projections(&cfg)?,
                stopped.clone(),
            )
            .await?,
        );
        tasks.push(
            crate::janitor::start(
                cfg.clone(),
                services::open_projections(&cfg)?,
                stopped.clone(),
            )
            .await?,
        );
        let mut workers = Vec::new();
        for &phase in &opts.workers {
            workers.push(services::start_worker(cfg.clone(), phase).await?);
        }
        let listener =
            TcpListener::bind(&opts.api_addr)
                .await
                .map_err(|source| ServerError::Listen {
                    addr: opts.api_addr.clone(),
                    source,
                })?;
        let api_addr = listener
            .local_addr()
            .map_err(ServerError::io("the API's address"))?;
        let api = services::start_api(cfg.clone(), listener, stopped).await?;
        tracing::info!(%api_addr, data_dir = %data.display(), "sprocket dev is up");
        Ok(Dev {
            infra,
            api_addr,
            api_key,
            config: cfg,
            stop,
            workers,
            tasks,
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
