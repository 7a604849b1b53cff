//! A row of the report: one pipeline on one broker, its measured rounds
//! folded into a throughput (the median round, with the spread) and latency
//! samples pooled over the rounds — the same shape for Sprocket's runtime and
//! for the chain, so the two read side by side.

use crate::chain::ChainRun;
use crate::cpu::CpuUse;
use crate::jobs::JobRun;
use crate::stats::Samples;

/// Hand-offs 0–3 and end to end. Hop 0 is the intake (submission → ingest
/// started; the chain's source → relay 0); hops 1–3 are the transactional
/// hand-offs between phases (the chain's relay → relay).
#[derive(Debug, Default, Clone)]
pub struct Latency {
    pub hops: [Samples; 4],
    pub e2e: Samples,
}

/// What one batch of items measured, jobs and messages alike.
#[derive(Debug, Default)]
pub struct Batch {
    pub items: usize,
    /// First item sent → last one done, in seconds.
    pub wall_s: f64,
    /// From hop 0 on; rows show the first four.
    pub hops: Vec<Samples>,
    pub e2e: Samples,
    /// From the first item sent to the last one done.
    pub cpu: CpuUse,
}

impl Batch {
    pub fn per_s(&self) -> f64 {
        self.items as f64 / self.wall_s
    }
}

impl AsRef<Batch> for JobRun {
    fn as_ref(&self) -> &Batch {
        &self.batch
    }
}

impl AsRef<Batch> for ChainRun {
    fn as_ref(&self) -> &Batch {
        &self.batch
    }
}

impl Latency {
    fn add(&mut self, run: &Batch) {
        for (mine, theirs) in self.hops.iter_mut().zip(&run.hops) {
            mine.extend(theirs);
        }
        self.e2e.extend(&run.e2e);
    }

    pub fn of(run: &Batch) -> Latency {
        let mut l = Latency::default();
        l.add(run);
        l
    }
}

/// Which pipeline a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The runtime with no-op work, stand-in as production decides.
    Runtime,
    /// The runtime with no-op work and the stand-in workaround forced on.
    Forced,
    /// The runtime with the real phases.
    Real,
    /// The chain, batching.
    Batched,
    /// The chain, a transaction per message.
    PerMessage,
}

impl Kind {
    /// What its rate counts.
    pub fn unit(self) -> &'static str {
        match self {
            Kind::Runtime | Kind::Forced | Kind::Real => "jobs/s",
            Kind::Batched | Kind::PerMessage => "msgs/s",
        }
    }
}

pub struct Row {
    pub broker: &'static str,
    pub kind: Kind,
    pub what: String,
    /// `jobs/s` or `msgs/s`.
    pub unit: &'static str,
    /// Items per measured round.
    pub items: usize,
    /// Items per second, per round.
    pub rates: Vec<f64>,
    /// Under load: pooled over the rounds.
    pub loaded: Latency,
    /// One at a time, where measured.
    pub unloaded: Option<Latency>,
    /// Over the measured stretches of all rounds.
    pub cpu: CpuUse,
    /// Over a few idle seconds after the warm-up: what the pipeline costs
    /// with nothing to do.
    pub idle: CpuUse,
}

impl Row {
    pub fn of<R: AsRef<Batch>>(
        broker: &'static str,
        kind: Kind,
        what: impl Into<String>,
        rounds: &[R],
        serial: Option<&R>,
        idle: CpuUse,
    ) -> Row {
        let mut loaded = Latency::default();
        let mut cpu = CpuUse::default();
        for r in rounds.iter().map(AsRef::as_ref) {
            loaded.add(r);
            cpu.add(r.cpu);
        }
        Row {
            broker,
            kind,
            what: what.into(),
            unit: kind.unit(),
            items: rounds.first().map_or(0, |r| r.as_ref().items),
            rates: rounds.iter().map(|r| r.as_ref().per_s()).collect(),
            loaded,
            unloaded: serial.map(|s| Latency::of(s.as_ref())),
            cpu,
            idle,
        }
    }

    /// The median round's rate.
    pub fn rate(&self) -> f64 {
        let mut v = self.rates.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    }

    pub fn spread(&self) -> (f64, f64) {
        let min = self.rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (min, max)
    }

    /// Items over every measured round.
    pub fn total_items(&self) -> usize {
        self.items * self.rates.len()
    }
}
