//! Starting Sprocket's services, shared by `sprocket dev` and the one-service
//! commands (`api`, `projector`, `worker`).

use std::sync::Arc;

use sprocket_core::Phase;
use sprocket_platform::bus::{Bus, BusError};
use sprocket_platform::config::Config;
use sprocket_projections::{PoolOptions, Projections};
use sprocket_workers::{phase_work, run_worker, Stepper, Stores, WorkerHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::projector::Projector;
use crate::ServerError;

/// A name for the `producer` field: the service and the host.
pub fn producer_name(service: &str) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("sprocket-{service}@{host}")
}

pub fn open_projections(cfg: &Config) -> Result<Projections, ServerError> {
    let url = absolutize_sqlite(&cfg.database.url);
    let pool = PoolOptions {
        size: cfg.database.pool_size,
        timeout: std::time::Duration::from_millis(cfg.database.pool_timeout_ms),
    };
    let p = Projections::connect_with(&url, pool)?;
    p.migrate()?;
    Ok(p)
}

/// `sqlite://relative/path` is relative to the working directory.
fn absolutize_sqlite(url: &str) -> String {
    match url.strip_prefix("sqlite://") {
        Some(rest) if !rest.starts_with('/') && !rest.starts_with(':') => {
            let abs = std::env::current_dir().unwrap_or_default().join(rest);
            if let Some(dir) = abs.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            format!("sqlite://{}", abs.display())
        }
        _ => url.to_owned(),
    }
}

pub async fn start_api(
    cfg: Arc<Config>,
    listener: TcpListener,
    stop: watch::Receiver<bool>,
) -> Result<JoinHandle<std::io::Result<()>>, ServerError> {
    let bus = Bus::connect(&cfg, producer_name("api")).await?;
    let producer = bus.producer()?;
    let lag = Arc::new(
        crate::lag::LagProbe::new(bus.client_config(), bus.topics.clone())
            .map_err(BusError::kafka("the lag probe"))?,
    );
    let projections = open_projections(&cfg)?;
    let state = AppState {
        lag,
        producer,
        keys: Arc::new(crate::auth::Keys::new(projections.clone())),
        recipes: sprocket_platform::recipes::RecipeBook::follow(&bus)?,
        closing: Default::default(),
        projections,
        stores: Stores::open(&cfg)?,
        bus,
        config: cfg,
    };
    Ok(tokio::spawn(api::serve(listener, state, stopped(stop))))
}

pub async fn start_projector(
    cfg: Arc<Config>,
    rebuild: bool,
    stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, ServerError> {
    let bus = Bus::connect(&cfg, producer_name("projector")).await?;
    let projector = Projector::new(bus, open_projections(&cfg)?, rebuild)
        .await?
        .with_default_tenant(&cfg.tenants.default);
    Ok(tokio::spawn(projector.run(stop)))
}

pub async fn start_worker(cfg: Arc<Config>, phase: Phase) -> Result<WorkerHandle, ServerError> {
    let bus = Bus::connect(&cfg, producer_name(&format!("worker-{phase}"))).await?;
    let stores = Stores::open(&cfg)?;
    let embedded = crate::standin::is_embedded(&bus);
    let mut stepper = Stepper::new(phase_work(phase, &cfg)?, bus, stores, cfg)?;
    if embedded {
        tracing::info!(%phase, "the cluster is the embedded broker: its workarounds are on");
        stepper =
            stepper.with_stand_in(std::sync::Arc::new(crate::standin::MockCluster::default()));
    }
    Ok(run_worker(stepper)?)
}

/// Resolves when `stop` turns true.
pub async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}
