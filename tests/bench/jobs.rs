//! Jobs through a [`Stack`]: `JobSubmitted` produced to the intake topic as
//! an outside producer would, each job done once its `JobSucceeded` is read
//! `read_committed` from `sprocket.events`.

use std::collections::HashMap;

use anyhow::{bail, Context};
use sprocket_core::event::Submitted;
use sprocket_core::{Envelope, EventBody, JobId, Phase, RecipeRef, Source};

use crate::broker::Broker;
use crate::cpu::Cpu;
use crate::observe::{Observer, Position, Seen, What};
use crate::rows::Batch;
use crate::stack::Stack;
use crate::stats::Samples;

/// Names of the hand-offs, in pipeline order: hop `k` ends when phase `k`
/// started.
pub const HOPS: [&str; 4] = [
    "submitted → ingest",
    "ingest → analyze",
    "analyze → render",
    "render → archive",
];

/// One job's moments (ms since the epoch) and where its work items sat.
#[derive(Debug, Default, Clone)]
pub struct Timeline {
    /// `JobSubmitted.occurred_at`, stamped just before it was produced.
    pub submitted: f64,
    /// Each phase's work item: its position and CreateTime.
    pub items: [Option<(Position, f64)>; 4],
    /// `PhaseStarted.occurred_at` per phase (first occurrence).
    pub started: [Option<f64>; 4],
    /// The completion event's `occurred_at` per phase.
    pub done: [Option<f64>; 4],
    /// `JobSucceeded`: its CreateTime, and when the observer read it.
    pub succeeded: Option<(f64, f64)>,
}

impl Timeline {
    fn record(&mut self, seen: &Seen) -> anyhow::Result<()> {
        let first = |slot: &mut Option<f64>, t: f64| {
            *slot = Some(slot.map_or(t, |s| s.min(t)));
        };
        match &seen.what {
            What::Item(p) => {
                let slot = &mut self.items[*p as usize];
                if slot.is_none() {
                    *slot = Some((seen.position.clone(), seen.created_ms));
                }
            }
            What::Event {
                kind,
                phase,
                occurred_ms,
            } => match (kind.as_str(), phase) {
                ("PhaseStarted", Some(p)) => first(&mut self.started[*p as usize], *occurred_ms),
                ("MediaIngested", _) => first(&mut self.done[0], *occurred_ms),
                ("MediaAnalyzed", _) => first(&mut self.done[1], *occurred_ms),
                ("MediaRendered", _) => first(&mut self.done[2], *occurred_ms),
                ("MediaArchived", _) => first(&mut self.done[3], *occurred_ms),
                ("JobSucceeded", _) if self.succeeded.is_none() => {
                    self.succeeded = Some((seen.created_ms, seen.arrived_ms))
                }
                ("JobFailed" | "JobDeadLettered" | "PhaseFailed", _) => {
                    bail!("job {} failed: {kind}", seen.job)
                }
                _ => {}
            },
        }
        Ok(())
    }

    /// Everything the report reads is known.
    fn complete(&self) -> bool {
        self.succeeded.is_some()
            && self.items.iter().all(Option::is_some)
            && self.started.iter().all(Option::is_some)
            && self.done.iter().all(Option::is_some)
    }
}

/// What one batch of jobs measured: its [`Batch`], whose hops are [`HOPS`]
/// (the previous phase's completion event, hop 0: the submission → the next
/// phase's `PhaseStarted`, both `occurred_at`) and whose end to end runs from
/// the submission to its `JobSucceeded` read by the observer.
#[derive(Debug, Default)]
pub struct JobRun {
    pub batch: Batch,
    pub timelines: Vec<Timeline>,
}

/// Submits `n` jobs named `<batch>-NNNNN` from `source`: all at once
/// (`burst`), or each after the previous one succeeded.
pub async fn run(
    broker: &Broker,
    stack: &Stack,
    obs: &mut Observer,
    source: &Source,
    batch: &str,
    n: usize,
    burst: bool,
) -> anyhow::Result<JobRun> {
    let bus = &stack.bus;
    let producer = &stack.submitter;
    let intake = bus.topics.phase(Phase::Ingest);
    let ids: Vec<String> = (0..n).map(|i| format!("{batch}-{i:05}")).collect();
    let mut timelines: HashMap<String, Timeline> = HashMap::new();
    let submit = |id: &str| {
        let env = Envelope::new(
            JobId::parse(id).expect("a valid job id"),
            "sprocket-bench",
            1,
            EventBody::JobSubmitted(Submitted {
                source: source.clone(),
                recipe: RecipeRef::Name("minimal".into()),
                recipe_version: None,
                labels: Default::default(),
                tenant: None,
            }),
        );
        let stamp = env.occurred_at.timestamp_micros() as f64 / 1000.0;
        let intake = &intake;
        async move {
            let rec = bus.record(intake, &env).await?;
            bus.send(producer, &rec).await?;
            anyhow::Ok(stamp)
        }
    };
    let cpu = Cpu::start(broker);
    let committed = || {
        sprocket_platform::metrics::metrics()
            .transactions
            .with_label_values(&["committed"])
            .get()
    };
    let txns_before = committed();
    let mut first = f64::MAX;
    let mut last = 0.0f64;
    let waves: Vec<&[String]> = if burst {
        vec![&ids[..]]
    } else {
        ids.chunks(1).collect()
    };
    for wave in waves {
        let stamps = futures::future::join_all(wave.iter().map(|id| submit(id))).await;
        for (id, stamp) in wave.iter().zip(stamps) {
            let stamp = stamp.with_context(|| format!("submitting {id}"))?;
            first = first.min(stamp);
            timelines.entry(id.clone()).or_default().submitted = stamp;
        }
        while wave.iter().any(|id| !timelines[id].complete()) {
            let seen = obs.next().await.with_context(|| {
                let done = timelines.values().filter(|t| t.complete()).count();
                format!("{batch}: {done} of {n} jobs done")
            })?;
            if let Some(t) = timelines.get_mut(&seen.job) {
                t.record(&seen)?;
                if let Some((_, read)) = t.succeeded {
                    last = last.max(read);
                }
            }
        }
    }
    // Four transactions carry a job (one per phase) when each holds one item.
    let txns = committed().saturating_sub(txns_before);
    crate::measure::progress(
        broker,
        batch,
        &format!(
            "{txns} transactions for {n} jobs: {:.1} items each",
            (4 * n) as f64 / txns.max(1) as f64
        ),
    );
    let mut out = JobRun {
        batch: Batch {
            items: n,
            cpu: cpu.stop(),
            wall_s: (last - first) / 1000.0,
            hops: vec![Samples::default(); HOPS.len()],
            e2e: Samples::default(),
        },
        timelines: Vec::with_capacity(n),
    };
    for id in &ids {
        let t = timelines.remove(id).expect("every job was submitted");
        let at = |v: Option<f64>| v.expect("a complete timeline");
        let mut prev = t.submitted;
        for (k, hop) in out.batch.hops.iter_mut().enumerate() {
            hop.push(at(t.started[k]) - prev);
            prev = at(t.done[k]);
        }
        out.batch
            .e2e
            .push(t.succeeded.expect("a complete timeline").1 - t.submitted);
        out.timelines.push(t);
    }
    Ok(out)
}
