//! The Markdown report: the rows side by side, their ratios, and where the
//! runtime's time goes.

use std::fmt::Write;

use crate::anatomy::SEGMENTS;
use crate::jobs::HOPS;
use crate::measure::Sitting;
use crate::probe::STEPS;
use crate::relay::TxnTimes;
use crate::rows::{Kind, Latency, Row};
use crate::stats::{ms, Samples};

/// What the rows measure (a description of the setup, not a result).
const NOTES: &str = "
## What the rows measure

* **Sprocket runtime, no-op work**: four real workers (`run_worker(Stepper::new(..))`,
  one per phase, each its own consumer group, one lane and transactional producer
  per partition, at most `worker.max_in_flight` items at once per worker) whose
  `PhaseWork` returns its completion at once. Jobs are `JobSubmitted` produced to
  the intake topic (recipe `minimal`); a job is done when its `JobSucceeded` is read
  `read_committed` from `sprocket.events`. Per job: four transactions (each with
  the completion event and the next work item or `JobSucceeded`, plus the offset),
  four live `PhaseStarted` publishes, the acceptance republish, the claim in the
  work store.
* **stand-in workaround forced**: the same on Kafka with
  `Stepper::with_stand_in(MockCluster)`: a synchronous consumer offset commit after
  every transaction, and lanes skipping redelivered messages below their commit.
* **rdkafka chain**: a source produces ~1 KB JSON messages to `hop0`; four relays
  each consume one topic and, in a transaction, produce to the next, await the
  records' delivery (as Sprocket's `commit.rs` does) and send the offsets; a sink
  reads `hop4` `read_committed`. Same client settings (`Bus`), same
  lane-per-partition structure, no codec, registry, events or work. *Batched*: a
  lane takes the next message and every other one of its partition already
  waiting, up to the batch limit, and commits them in one transaction (as Kafka
  Streams commits per interval). *A transaction per message*: Sprocket's protocol.
  msgs/s counts messages through all four hops, so it compares with jobs/s.
* **`minimal` recipe, real phases**: the workers run `phase_work` (ingest copies and
  probes the source; analyze decodes the first second and runs the shot kernels;
  render makes a poster; archive copies and verifies the outputs) on a 2 s 320x180
  video with one cut.
* **Hops** (ms, p50 / p99): hop 0 is the intake (the submission's `occurred_at` →
  ingest's `PhaseStarted`; chain: the source's stamp → relay 0 takes it up); hops 1–3
  are the hand-offs between phases (a phase's completion event `occurred_at` → the
  next phase's `PhaseStarted` `occurred_at`, so it holds the encode, the
  transaction, the fetch, the decode; chain: stamp before the transaction → the next
  relay takes it up). End to end: submission → `JobSucceeded` read by the observer
  (chain: source → sink). Under load, hops include queueing behind earlier items.
* **Throughput**: items of a round ÷ (first submission → last completion read); the
  median round, with the slowest and fastest.
* **CPU**: `/proc` user+system time over the measured stretches, per item: this
  process (workers or relays, clients, the observer, and the embedded broker when it
  is the broker) / the Kafka JVM. *Idle*: the same per second of a few idle seconds
  after the warm-up, what the pipeline costs with nothing to do. *Cores busy*: the
  whole machine's busy time ÷ wall time (nproc cores available; other work on the
  machine counts too). Each pipeline runs alone: started, measured, stopped.
";

fn p50p99(s: &Samples) -> String {
    format!("{} / {}", ms(s.p50()), ms(s.p99()))
}

pub struct Report<'a> {
    pub command: String,
    pub machine: Vec<(String, String)>,
    pub setup: Vec<(String, String)>,
    pub sittings: &'a [Sitting],
}

impl Report<'_> {
    pub fn render(&self) -> String {
        let mut o = String::new();
        let w = &mut o;
        let _ = writeln!(w, "# Sprocket engine benchmark\n");
        let _ = writeln!(w, "`{}`\n", self.command);
        let _ = writeln!(w, "| | |\n|---|---|");
        for (k, v) in self.machine.iter().chain(&self.setup) {
            let _ = writeln!(w, "| {k} | {v} |");
        }
        self.throughput(w);
        self.latency(w, "under load (all items of a round at once)", |r| {
            Some(&r.loaded)
        });
        self.latency(w, "unloaded (one at a time)", |r| r.unloaded.as_ref());
        self.ratios(w);
        let _ = writeln!(w, "\n# Where the runtime's time goes\n");
        for s in self.sittings {
            anatomy(w, s);
        }
        for s in self.sittings {
            transactions(w, s);
        }
        probe(w, self.sittings);
        let _ = writeln!(w, "{NOTES}");
        o
    }

    fn rows(&self) -> impl Iterator<Item = &Row> {
        self.sittings.iter().flat_map(|s| &s.rows)
    }

    fn throughput(&self, w: &mut String) {
        let _ = writeln!(w, "\n## Throughput\n");
        let _ = writeln!(
            w,
            "| broker | pipeline | items × rounds | rate (median; min–max) | e2e p50 / p99 ms | CPU ms per item: this process / Kafka | idle CPU ms per s: this process / Kafka | cores busy |\n|---|---|---:|---:|---:|---:|---:|---:|"
        );
        for r in self.rows() {
            let (min, max) = r.spread();
            let (this, broker) = r.cpu.per_item_ms(r.total_items());
            let (idle, idle_broker) = r.idle.per_s_ms();
            let or_dash = |v: Option<f64>, d: usize| v.map_or("–".into(), |v| format!("{v:.d$}"));
            let _ = writeln!(
                w,
                "| {} | {} | {} × {} | **{:.2} {}** ({min:.2}–{max:.2}) | {} | {this:.2} / {} | {idle:.0} / {} | {:.2} |",
                r.broker,
                r.what,
                r.items,
                r.rates.len(),
                r.rate(),
                r.unit,
                p50p99(&r.loaded.e2e),
                or_dash(broker, 2),
                or_dash(idle_broker, 0),
                r.cpu.cores_busy(),
            );
        }
    }

    fn latency(&self, w: &mut String, title: &str, pick: impl Fn(&Row) -> Option<&Latency>) {
        let _ = writeln!(w, "\n## Hand-off latency, {title} (ms, p50 / p99)\n");
        let _ = write!(w, "| broker | pipeline |");
        for h in HOPS {
            let _ = write!(w, " {h} |");
        }
        let _ = writeln!(w, " end to end |\n|---|---|---:|---:|---:|---:|---:|");
        for r in self.rows() {
            let Some(l) = pick(r) else { continue };
            let _ = write!(w, "| {} | {} |", r.broker, r.what);
            for h in &l.hops {
                let _ = write!(w, " {} |", p50p99(h));
            }
            let _ = writeln!(w, " {} |", p50p99(&l.e2e));
        }
    }

    fn ratios(&self, w: &mut String) {
        let _ = writeln!(w, "\n## Ratios\n");
        let _ = writeln!(w, "| comparison | value |\n|---|---:|");
        let mut line = |what: String, a: Option<f64>, b: Option<f64>| {
            let _ = writeln!(w, "| {what} | {} |", ratio3(a, b));
        };
        for s in self.sittings {
            let broker = s.broker;
            let pairs = [
                (
                    "runtime jobs/s ÷ batched chain msgs/s",
                    Kind::Runtime,
                    Kind::Batched,
                ),
                (
                    "runtime jobs/s ÷ per-message chain msgs/s",
                    Kind::Runtime,
                    Kind::PerMessage,
                ),
                (
                    "per-message chain ÷ batched chain: the cost of a transaction per item",
                    Kind::PerMessage,
                    Kind::Batched,
                ),
                (
                    "runtime with the stand-in workaround forced ÷ without",
                    Kind::Forced,
                    Kind::Runtime,
                ),
                (
                    "`minimal` with the real phases ÷ no-op work",
                    Kind::Real,
                    Kind::Runtime,
                ),
            ];
            for (what, a, b) in pairs {
                if s.rate(a).is_some() {
                    line(format!("{broker}: {what}"), s.rate(a), s.rate(b));
                }
            }
        }
    }
}

/// `a / b` with three decimals, or `–`.
fn ratio3(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.3}", a / b),
        _ => "–".into(),
    }
}

fn anatomy(w: &mut String, s: &Sitting) {
    let [unloaded, loaded] = &s.anatomy;
    let _ = writeln!(
        w,
        "\n## {}: a no-op job's time by phase (ms, p50 unloaded / p50 under load)\n",
        s.broker
    );
    let _ = writeln!(
        w,
        "| stretch | ingest | analyze | render | archive |\n|---|---:|---:|---:|---:|"
    );
    for (i, name) in SEGMENTS.iter().enumerate() {
        let _ = write!(w, "| {name} |");
        for p in 0..4 {
            let _ = write!(
                w,
                " {} / {} |",
                ms(unloaded.phases[p][i].p50()),
                ms(loaded.phases[p][i].p50())
            );
        }
        let _ = writeln!(w);
    }
    let _ = write!(
        w,
        "| under load, per lane: a `work` span closed → the next (already waiting) item's span opened, p50 / p99 |"
    );
    for g in &loaded.lane_gap {
        let _ = write!(w, " {} |", p50p99(g));
    }
    let _ = writeln!(w);
    let missing = unloaded.missing + loaded.missing;
    if missing > 0 {
        let _ = writeln!(w, "\n{missing} work items had no `work` span recorded.");
    }
    let _ = writeln!(
        w,
        "\nThe archive phase's \"next record\" is `JobSucceeded`; its \"taken up\" (first \
         row, next phase) does not exist, and its commit shows in the end-to-end latency."
    );
}

fn transactions(w: &mut String, s: &Sitting) {
    let _ = writeln!(
        w,
        "\n## {}: the chains' transactions, step by step (ms, p50 / p99)\n",
        s.broker
    );
    let _ = writeln!(
        w,
        "| chain | load | transactions | msgs per txn p50 / max | begin | produce | await delivery | send_offsets | commit |\n|---|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    let row = |w: &mut String, label: &str, load: &str, t: &TxnTimes| {
        let _ = writeln!(
            w,
            "| {label} | {load} | {} | {} / {} | {} | {} | {} | {} | {} |",
            t.commit.len(),
            ms(t.batch.p50()),
            ms(t.batch.max()),
            p50p99(&t.begin),
            p50p99(&t.produce),
            p50p99(&t.deliver),
            p50p99(&t.send_offsets),
            p50p99(&t.commit),
        );
    };
    for (label, unloaded, loaded) in &s.txn {
        if let Some(u) = unloaded {
            row(w, label, "one at a time", u);
        }
        row(w, label, "all at once", loaded);
    }
}

fn probe(w: &mut String, sittings: &[Sitting]) {
    let _ = writeln!(
        w,
        "\n## The runtime's per-item steps one by one, unloaded (ms, p50 / p99)\n"
    );
    let _ = write!(w, "| step |");
    for s in sittings {
        let _ = write!(w, " {} |", s.broker);
    }
    let _ = writeln!(w, "\n|---|{}", "---:|".repeat(sittings.len()));
    for (i, name) in STEPS.iter().enumerate() {
        let _ = write!(w, "| {name} |");
        for s in sittings {
            let _ = write!(w, " {} |", p50p99(&s.probe[i]));
        }
        let _ = writeln!(w);
    }
    let _ = write!(w, "| sum of the p50s (the stand-in's commit left out) |");
    for s in sittings {
        let sum: f64 = s.probe[..10].iter().filter_map(Samples::p50).sum();
        let _ = write!(w, " {} |", ms(Some(sum)));
    }
    let _ = writeln!(w);
}
