//! Everything measured on one broker, one pipeline at a time: each is started,
//! warmed up, left idle a few seconds (its CPU read), measured in rounds of
//! everything at once, then one item at a time, and stopped before the next
//! starts — on two cores, another pipeline idling beside it would take a
//! share of the CPU it is measured on. Then the step probe; on Kafka, last,
//! the real phases.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context;
use sprocket_core::Source;
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;

use crate::anatomy::{self, Anatomy};
use crate::broker::Broker;
use crate::chain::{Chain, ChainRun};
use crate::cpu::{Cpu, CpuUse};
use crate::jobs::{self, JobRun};
use crate::observe::Observer;
use crate::probe::{self, Probe};
use crate::relay::TxnTimes;
use crate::rows::{Batch, Kind, Row};
use crate::sizes::Sizes;
use crate::stack::{self, Stack, StandIn, Work};

/// What one broker's sitting measured.
pub struct Sitting {
    pub broker: &'static str,
    pub rows: Vec<Row>,
    /// The no-op runtime's anatomy: one job at a time, and under load.
    pub anatomy: [Anatomy; 2],
    /// Each chain's transactions: one message at a time (the per-message
    /// chain only), and under load.
    pub txn: Vec<(String, Option<TxnTimes>, TxnTimes)>,
    pub probe: Probe,
}

impl Sitting {
    /// The median rate of the row of `kind`, if measured here.
    pub fn rate(&self, kind: Kind) -> Option<f64> {
        self.rows.iter().find(|r| r.kind == kind).map(Row::rate)
    }
}

/// How long a pipeline is left idle while its CPU is read.
const IDLE: Duration = Duration::from_secs(3);

/// Tells how far the bench got, with the time since it started.
pub fn progress(broker: &Broker, what: &str, step: &str) {
    static START: OnceLock<Instant> = OnceLock::new();
    let at = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("[{at:6.1} s] {}: {what} — {step}", broker.name());
}

/// Something items are pushed through, a batch at a time.
trait Pipeline {
    type Run: AsRef<Batch>;
    fn label(&self) -> &str;
    /// `n` items named by `batch`: all at once (`burst`) or one at a time.
    async fn run(
        &mut self,
        broker: &Broker,
        batch: &str,
        n: usize,
        burst: bool,
    ) -> anyhow::Result<Self::Run>;
}

/// How much goes through a pipeline: a warm-up, rounds, then one at a time.
struct Load {
    warmup: usize,
    rounds: usize,
    per_round: usize,
    serial: usize,
}

/// What a pipeline measured under a [`Load`].
struct Measures<R> {
    rounds: Vec<R>,
    serial: Option<R>,
    idle: CpuUse,
}

impl<R: AsRef<Batch>> Measures<R> {
    fn row(&self, broker: &Broker, kind: Kind, label: &str) -> Row {
        let (rounds, serial) = (&self.rounds, self.serial.as_ref());
        Row::of(broker.name(), kind, label, rounds, serial, self.idle)
    }
}

async fn measure<P: Pipeline>(
    broker: &Broker,
    p: &mut P,
    load: &Load,
) -> anyhow::Result<Measures<P::Run>> {
    let label = p.label().to_owned();
    let step = |what: String| progress(broker, &label, &what);
    step(format!("warm-up: {}", load.warmup));
    p.run(broker, "warm", load.warmup, true).await?;
    step(format!("idle {IDLE:?}"));
    let cpu = Cpu::start(broker);
    tokio::time::sleep(IDLE).await;
    let idle = cpu.stop();
    let mut rounds = Vec::new();
    for r in 0..load.rounds {
        step(format!("round {r}: {} at once", load.per_round));
        rounds.push(
            p.run(broker, &format!("r{r}"), load.per_round, true)
                .await?,
        );
    }
    let serial = if load.serial > 0 {
        step(format!("{} one at a time", load.serial));
        Some(p.run(broker, "serial", load.serial, false).await?)
    } else {
        None
    };
    Ok(Measures {
        rounds,
        serial,
        idle,
    })
}

/// Four workers and the observer of their events.
struct Runtime {
    label: String,
    stack: Stack,
    obs: Observer,
    source: Source,
}

impl Runtime {
    async fn start(
        broker: &Broker,
        kind: Kind,
        cfg: Config,
        source: Source,
    ) -> anyhow::Result<Runtime> {
        let (work, stand_in, label) = match kind {
            Kind::Forced => (
                Work::NoOp,
                StandIn::Forced,
                "Sprocket runtime, no-op work, stand-in workaround forced",
            ),
            Kind::Real => (
                Work::Real,
                StandIn::AsProduction,
                "Sprocket runtime, `minimal` recipe, real phases",
            ),
            _ => (
                Work::NoOp,
                StandIn::AsProduction,
                "Sprocket runtime, no-op work",
            ),
        };
        let stack = Stack::start(broker, cfg, work, stand_in).await?;
        let obs = Observer::start(&stack.bus).await?;
        let label = match (kind, stack.stand_in) {
            (Kind::Runtime, true) => {
                format!("{label} (stand-in workaround on, as production runs it)")
            }
            _ => label.to_owned(),
        };
        Ok(Runtime {
            label,
            stack,
            obs,
            source,
        })
    }

    async fn stop(self) {
        self.obs.stop().await;
        self.stack.stop().await;
    }
}

impl Pipeline for Runtime {
    type Run = JobRun;

    fn label(&self) -> &str {
        &self.label
    }

    async fn run(
        &mut self,
        broker: &Broker,
        batch: &str,
        n: usize,
        burst: bool,
    ) -> anyhow::Result<JobRun> {
        let (stack, obs, source) = (&self.stack, &mut self.obs, &self.source);
        jobs::run(broker, stack, obs, source, batch, n, burst)
            .await
            .with_context(|| format!("{} on {}", self.label, broker.name()))
    }
}

/// A chain with its label.
struct Labelled(String, Chain);

impl Pipeline for Labelled {
    type Run = ChainRun;

    fn label(&self) -> &str {
        &self.0
    }

    async fn run(
        &mut self,
        broker: &Broker,
        _batch: &str,
        n: usize,
        burst: bool,
    ) -> anyhow::Result<ChainRun> {
        self.1.run(broker, n, burst).await
    }
}

pub async fn sitting(broker: &Broker, sizes: &Sizes, data: &Path) -> anyhow::Result<Sitting> {
    let kafka = matches!(broker, Broker::Kafka { .. });
    let run = uuid::Uuid::now_v7().simple().to_string();
    let run = &run[run.len() - 8..];
    let cfg = |what: &str| stack::config(broker, &format!("bench-{run}-{what}."), &data.join(what));
    let jobs = Load {
        warmup: Sizes::warmup(sizes.jobs),
        rounds: sizes.rounds,
        per_round: sizes.jobs,
        serial: sizes.serial,
    };
    let mut rows = Vec::new();

    // The no-op ingest never reads its source.
    let noop = Source::Upload("bench".into());
    let mut rt = Runtime::start(broker, Kind::Runtime, cfg("noop")?, noop.clone()).await?;
    let m = measure(broker, &mut rt, &jobs).await?;
    rows.push(m.row(broker, Kind::Runtime, &rt.label));
    let anatomy = [anatomy::of(m.serial.as_ref()), anatomy::of(&m.rounds)];
    rt.stop().await;
    if kafka {
        let mut rt = Runtime::start(broker, Kind::Forced, cfg("forced")?, noop).await?;
        let m = measure(broker, &mut rt, &jobs).await?;
        rows.push(m.row(broker, Kind::Forced, &rt.label));
        rt.stop().await;
    }

    let bus = Bus::connect(&cfg("chain")?, "sprocket-bench-chain").await?;
    let chains = [
        (
            Kind::Batched,
            format!(
                "rdkafka chain, batched (≤ {} msgs per transaction)",
                sizes.batch
            ),
            sizes.batch,
            sizes.messages,
        ),
        (
            Kind::PerMessage,
            "rdkafka chain, a transaction per message".to_owned(),
            1,
            sizes.txn_messages,
        ),
    ];
    let mut txn = Vec::new();
    for (i, (kind, label, max_batch, n)) in chains.into_iter().enumerate() {
        let chain = Chain::start(broker, &bus, &format!("c{i}"), max_batch).await?;
        let mut chain = Labelled(label, chain);
        let load = Load {
            warmup: Sizes::warmup(n),
            rounds: sizes.rounds,
            per_round: n,
            // One at a time, a batch holds one message: only the per-message
            // chain is run so.
            serial: if max_batch == 1 { sizes.serial } else { 0 },
        };
        let m = measure(broker, &mut chain, &load).await?;
        let mut loaded = TxnTimes::default();
        for r in &m.rounds {
            loaded.add(&r.txn);
        }
        txn.push((
            chain.0.clone(),
            m.serial.as_ref().map(|s| s.txn.clone()),
            loaded,
        ));
        rows.push(m.row(broker, kind, &chain.0));
        chain.1.stop().await;
    }

    progress(broker, "probe", &format!("{} items", sizes.probe));
    let probe = probe::run(broker, &cfg("probe")?, sizes.probe).await?;

    if kafka {
        let cfg = cfg("real")?;
        // Two segments of 10 frames at 10 fps, 320x180, one hard cut.
        let video = cfg.ingest.allowed_dirs[0].join("bench.mp4");
        sprocket_media::sample::with_cuts(&video, &[10, 10], 10, false);
        let source = Source::Path(video.display().to_string());
        let mut rt = Runtime::start(broker, Kind::Real, cfg, source).await?;
        let load = Load {
            warmup: 2,
            rounds: 1,
            per_round: sizes.real_jobs,
            serial: sizes.serial.min(5),
        };
        let m = measure(broker, &mut rt, &load).await?;
        rows.push(m.row(broker, Kind::Real, &rt.label));
        rt.stop().await;
    }
    Ok(Sitting {
        broker: broker.name(),
        rows,
        anatomy,
        txn,
        probe,
    })
}
