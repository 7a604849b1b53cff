//! Four phase workers on one broker under a topic prefix of their own: each a
//! real `run_worker(Stepper::new(..))`, as `sprocket worker` starts it, with
//! either the no-op work or the real phases.

use std::path::Path;
use std::sync::Arc;

use rdkafka::producer::FutureProducer;
use sprocket_core::Phase;
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;
use sprocket_server::standin::{is_embedded, MockCluster};
use sprocket_workers::{phase_work, run_worker, PhaseWork, Stepper, Stores, WorkerHandle};

use crate::broker::{Broker, PARTITIONS};
use crate::noop::NoOp;

/// What the workers do with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// [`NoOp`]: the completion at once.
    NoOp,
    /// The real phases (`phase_work`), media work included.
    Real,
}

/// Whether the workers run with the embedded broker's workaround.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandIn {
    /// As production decides: on when the cluster is the embedded broker.
    AsProduction,
    /// On whatever the cluster (to price it on Kafka).
    Forced,
}

pub struct Stack {
    /// A client of the stack's topics, for submitting and observing.
    pub bus: Bus,
    /// The submissions' producer, kept for the stack's life: a new
    /// idempotent producer's first message waits about 500 ms for its
    /// producer id, which no measured job should.
    pub submitter: FutureProducer,
    pub stand_in: bool,
    workers: Vec<WorkerHandle>,
}

/// A configuration for `broker` under `prefix`, with stores and scratch under
/// `data`, and `data/media` the one directory path sources may come from.
pub fn config(broker: &Broker, prefix: &str, data: &Path) -> anyhow::Result<Config> {
    let mut cfg = Config::default();
    cfg.kafka.brokers = broker.bootstrap();
    cfg.kafka.topic_prefix = prefix.into();
    cfg.kafka.partitions = PARTITIONS;
    cfg.registry.url = broker.registry_url();
    for dir in ["store", "archive", "scratch", "media"] {
        std::fs::create_dir_all(data.join(dir))?;
    }
    let data = std::fs::canonicalize(data)?;
    cfg.store.url = format!("file://{}", data.join("store").display());
    cfg.archive.url = format!("file://{}", data.join("archive").display());
    cfg.worker.scratch_dir = Some(data.join("scratch"));
    cfg.ingest.allowed_dirs = vec![data.join("media")];
    cfg.validate()?;
    Ok(cfg)
}

impl Stack {
    /// Makes the prefix's topics, then starts a worker per phase.
    pub async fn start(
        broker: &Broker,
        cfg: Config,
        work: Work,
        stand_in: StandIn,
    ) -> anyhow::Result<Stack> {
        let mut cfg = cfg;
        if matches!(work, Work::NoOp) {
            // No-op work costs nothing: a lane runs many items at once and
            // commits them together, as a pod with cores to spare would.
            cfg.worker.max_in_flight = crate::sizes::in_flight();
        }
        let cfg = Arc::new(cfg);
        let bus = Bus::connect(&cfg, "sprocket-bench").await?;
        broker.sprocket_topics(&bus).await?;
        let on = stand_in == StandIn::Forced || is_embedded(&bus);
        let mut workers = Vec::new();
        for phase in Phase::ALL {
            let bus = Bus::connect(&cfg, format!("sprocket-bench-worker-{phase}")).await?;
            let work: Arc<dyn PhaseWork> = match work {
                Work::NoOp => Arc::new(NoOp(phase)),
                Work::Real => phase_work(phase, &cfg)?,
            };
            let mut stepper = Stepper::new(work, bus, Stores::open(&cfg)?, cfg.clone())?;
            if on {
                stepper = stepper.with_stand_in(Arc::new(MockCluster::default()));
            }
            workers.push(run_worker(stepper)?);
        }
        Ok(Stack {
            submitter: bus.producer()?,
            bus,
            stand_in: on,
            workers,
        })
    }

    pub async fn stop(self) {
        futures::future::join_all(self.workers.into_iter().map(|w| w.stop())).await;
    }
}
