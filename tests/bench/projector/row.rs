//! One row: fresh topics, the real projector from them into the bench's
//! database, the load produced, then the wait until every message is visible.

use std::time::{Duration, Instant};

use sprocket_core::Phase;
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;
use sprocket_server::projector::{Batching, Projector};

use crate::broker::Broker;
use crate::commits::Commits;
use crate::cpu::{Cpu, CpuUse};
use crate::load::{self, Load};
use crate::stats::{ms, now_ms};
use crate::watch::{self, Lags, Watcher};

/// Messages sent in a row's first seconds are not counted: clients connect
/// and the first fetches settle.
const WARMUP: Duration = Duration::from_secs(3);

/// How long after its load a row waits for the projector to catch up.
const DRAIN: Duration = Duration::from_secs(60);

/// What a row runs.
#[derive(Debug, Clone)]
pub struct Setup {
    pub name: String,
    pub batching: Batching,
    pub load: Load,
}

impl Setup {
    pub fn new(name: &str, batching: Batching, load: Load) -> Setup {
        Setup {
            name: name.into(),
            batching,
            load,
        }
    }
}

/// What a row measured.
pub struct Row {
    pub setup: Setup,
    /// The most the producer fell behind its schedule (ms).
    pub behind_ms: f64,
    /// Messages projected per second, from the load's start until all were
    /// visible (or the drain gave up).
    pub projected_per_s: f64,
    pub lags: Lags,
    pub commits: Commits,
    pub cpu: CpuUse,
    /// CPU seconds of the machine's PostgreSQL processes over the row.
    pub postgres_s: f64,
    /// From the load's last message until every message was visible; `None`
    /// when the projector had not caught up after [`DRAIN`].
    pub caught_up_after: Option<Duration>,
}

impl Row {
    /// Whether the projector kept up: caught up, and p99 under a second.
    pub fn keeps_up(&self) -> bool {
        self.caught_up_after.is_some() && self.lags.samples.p99().is_some_and(|p| p < 1000.0)
    }

    pub fn summary(&self) -> String {
        format!(
            "producer behind by ≤ {:.0} ms, projected {:.0} msgs/s, lag p50 {} p99 {} max {} ms (until acknowledged p50 {} p99 {} ms){}, {:.1} msgs/transaction of {:.1} ms, {:.2} cores busy (bench process {:.2}, Kafka {:.2}, PostgreSQL {:.2})",
            self.behind_ms,
            self.projected_per_s,
            ms(self.lags.samples.p50()),
            ms(self.lags.samples.p99()),
            ms(self.lags.samples.max()),
            ms(self.lags.produce.p50()),
            ms(self.lags.produce.p99()),
            if self.lags.missing > 0 {
                format!(" ({} never visible: lower bounds)", self.lags.missing)
            } else {
                String::new()
            },
            self.commits.mean_batch(),
            self.commits.mean_transaction_ms(),
            self.cpu.cores_busy(),
            self.cpu.this_s / self.cpu.wall_s,
            self.cpu.broker_s.unwrap_or(0.0) / self.cpu.wall_s,
            self.postgres_s / self.cpu.wall_s,
        )
    }
}

pub async fn run(kafka: &Broker, database: &str, setup: &Setup, name: &str) -> anyhow::Result<Row> {
    let mut cfg = Config::default();
    cfg.kafka.brokers = kafka.bootstrap();
    cfg.registry.url = kafka.registry_url();
    cfg.kafka.topic_prefix = format!("bench-{name}.");
    cfg.database.url = database.to_owned();
    let bus = Bus::connect(&cfg, "sprocket-bench-projector").await?;
    kafka.sprocket_topics(&bus).await?;
    let projections = sprocket_server::services::open_projections(&cfg)?;
    let projector = Projector::new(bus.clone(), projections, false)
        .await?
        .with_batching(setup.batching);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let projecting = tokio::spawn(projector.run(stopped));
    let watcher = Watcher::start(
        database,
        bus.topics.phase(Phase::Ingest),
        bus.topics.events(),
    )?;
    let producer = bus.producer()?;

    let commits = Commits::now();
    let cpu = Cpu::start(kafka);
    let postgres = crate::cpu::named_s("postgres");
    let started = Instant::now();
    let from = now_ms() + WARMUP.as_secs_f64() * 1000.0;
    let produced = load::produce(&bus, &producer, name, setup.load).await?;
    let load_end = Instant::now();
    while !watcher.covers(&produced.sent) && load_end.elapsed() < DRAIN {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let caught_up_after = watcher.covers(&produced.sent).then(|| load_end.elapsed());
    let cpu = cpu.stop();
    let postgres_s = crate::cpu::named_s("postgres") - postgres;
    let commits = Commits::since(commits);
    let wall = started.elapsed().as_secs_f64();
    let until = now_ms();
    let timeline = watcher.stop()?;
    let _ = stop.send(true);
    projecting.await?;
    Ok(Row {
        setup: setup.clone(),
        behind_ms: produced.behind_ms,
        projected_per_s: commits.messages as f64 / wall,
        lags: watch::lags(&timeline, &produced.sent, from, until),
        commits,
        cpu,
        postgres_s,
        caught_up_after,
    })
}
