//! The Markdown report.

use std::fmt::Write;

use crate::chain::{ChainRun, HOPS};
use crate::jobs::JobRun;
use crate::stats::{ms, ratio, Samples};

/// What the numbers include (a description of the setup, not a result).
const NOTES: &str = "
## What the hops include

* Sprocket hop 0 (intake → ingest started): the API's idempotent produce of
  `JobSubmitted`, the ingest consumer's fetch, decoding and schema validation,
  resolving the recipe and claiming the job id in the object store, republishing
  the acceptance, then `PhaseStarted` is stamped.
* Sprocket hops 1–3 (phase done → next phase started): the `Media*` event is
  stamped once the work is done, then the outcome is encoded (registry codec and
  JSON Schema validation) and committed in one transaction (events, next work
  item, offsets), the next phase's `read_committed` consumer fetches it, decodes
  and validates it, and stamps `PhaseStarted`.
* Chain hops: the same client settings (Sprocket's `Bus`) and lane-per-partition
  structure, with no codec, no registry, no events topic and no media work. In
  exactly-once mode a hop is one transaction with one record and the offsets.
* Phase work in `minimal`: ingest copies the upload into the job's prefix with
  sha256 and runs ffprobe; analyze decodes the first second with ffmpeg and runs
  the shot and quality kernels; render makes one poster with ffmpeg; archive
  copies the outputs to the archive store, verifies them and writes a manifest.
* In the burst run, hop latencies include queueing: one worker per phase and one
  lane per partition, so a job waits behind the jobs ahead of it on its
  partition. The one-at-a-time runs show the bare hand-off cost.
* Everything (broker, registry, SQLite projector, four workers, API, the chain
  and ffmpeg children) shares this machine; other work on it shows up in the
  numbers (see the load average).
";

/// Everything one benchmark run measured.
pub struct Report {
    pub machine: Vec<(String, String)>,
    pub setup: Vec<(String, String)>,
    pub burst: JobRun,
    pub serial: JobRun,
    /// At-least-once then exactly-once, message bursts.
    pub chain_burst: [ChainRun; 2],
    /// At-least-once then exactly-once, one message at a time.
    pub chain_serial: [ChainRun; 2],
}

fn p50p99(s: &Samples) -> String {
    format!("{} / {}", ms(s.p50()), ms(s.p99()))
}

impl Report {
    pub fn render(&self) -> String {
        let mut o = String::new();
        let w = &mut o;
        let _ = writeln!(w, "# Sprocket pipeline benchmark\n");
        let _ = writeln!(w, "## Machine and setup\n");
        let _ = writeln!(w, "| | |\n|---|---|");
        for (k, v) in self.machine.iter().chain(&self.setup) {
            let _ = writeln!(w, "| {k} | {v} |");
        }

        let _ = writeln!(w, "\n## Throughput (burst: everything submitted at once)\n");
        let _ = writeln!(
            w,
            "| pipeline | items | wall (s) | items/s | transitions or records/s |\n|---|---:|---:|---:|---:|"
        );
        let b = &self.burst;
        let _ = writeln!(
            w,
            "| Sprocket, `minimal` jobs | {} jobs ({} events) | {:.2} | {:.2} jobs/s | {:.1} transitions/s |",
            b.jobs,
            b.events(),
            b.wall_s,
            b.jobs_per_s(),
            b.transitions_per_s()
        );
        for c in &self.chain_burst {
            let _ = writeln!(
                w,
                "| rdkafka chain, {} | {} msgs | {:.2} | {:.1} msgs/s | {:.1} records/s |",
                c.mode.label(),
                c.messages,
                c.wall_s,
                c.msgs_per_s(),
                c.records_per_s()
            );
        }
        let _ = writeln!(
            w,
            "\nSprocket wall = first submission → last `JobSucceeded.occurred_at` \
             (submitting took {:.2} s; polling saw all succeeded after {:.2} s). \
             Chain wall = first message produced → last message read at the end; \
             records/s counts the {HOPS} produces per message.",
            b.submit_s, b.observed_s
        );

        self.latency(w, "burst", &self.burst, &self.chain_burst);
        self.latency(
            w,
            "unloaded: one at a time",
            &self.serial,
            &self.chain_serial,
        );

        let _ = writeln!(
            w,
            "\n## Sprocket phase work (started → done), ms p50 / p99\n"
        );
        let _ = writeln!(w, "| phase | burst | unloaded |\n|---|---:|---:|");
        for ((name, a), (_, s)) in self.burst.work.iter().zip(&self.serial.work) {
            let _ = writeln!(w, "| {name} | {} | {} |", p50p99(a), p50p99(s));
        }
        let _ = writeln!(w, "\nEvents per job (burst run, all {} jobs):\n", b.jobs);
        let _ = writeln!(w, "| event | count | per job |\n|---|---:|---:|");
        for (ty, n) in &b.by_type {
            let _ = writeln!(w, "| {ty} | {n} | {:.2} |", *n as f64 / b.jobs as f64);
        }

        self.ratios(w);
        let _ = writeln!(w, "{NOTES}");
        o
    }

    fn latency(&self, w: &mut String, title: &str, s: &JobRun, chains: &[ChainRun; 2]) {
        let _ = writeln!(w, "\n## Per-hop latency, {title} (ms, p50 / p99)\n");
        let _ = writeln!(
            w,
            "Sprocket: {} jobs; chain: {} messages each.\n",
            s.jobs, chains[0].messages
        );
        let _ = writeln!(
            w,
            "| hop | Sprocket hop | Sprocket | chain hop | {} | {} |\n|---|---|---:|---|---:|---:|",
            chains[0].mode.label(),
            chains[1].mode.label()
        );
        for k in 0..HOPS {
            let (name, sp) = match s.hops.get(k) {
                Some((n, x)) => (n.as_str(), p50p99(x)),
                None => ("(none: archive has no successor)", "–".into()),
            };
            let chain = if k == 0 {
                "source → relay 0 (plain produce)".to_owned()
            } else if k == HOPS - 1 {
                format!("relay {} → sink", k - 1)
            } else {
                format!("relay {} → relay {k}", k - 1)
            };
            let _ = writeln!(
                w,
                "| {k} | {name} | {sp} | {chain} | {} | {} |",
                p50p99(&chains[0].hops[k]),
                p50p99(&chains[1].hops[k])
            );
        }
        let _ = writeln!(
            w,
            "| e2e | submitted → succeeded | {} | source → sink | {} | {} |",
            p50p99(&s.e2e),
            p50p99(&chains[0].e2e),
            p50p99(&chains[1].e2e)
        );
    }

    fn ratios(&self, w: &mut String) {
        let b = &self.burst;
        let [alo, eos] = &self.chain_burst;
        let _ = writeln!(w, "\n## Ratios\n");
        let _ = writeln!(w, "| comparison | value |\n|---|---:|");
        let tps = Some(b.transitions_per_s());
        for c in [alo, eos] {
            let _ = writeln!(
                w,
                "| baseline {} msgs/s ÷ Sprocket transitions/s | {} |",
                c.mode.label(),
                ratio(Some(c.msgs_per_s()), tps)
            );
        }
        let _ = writeln!(
            w,
            "| cost of exactly-once: at-least-once msgs/s ÷ exactly-once msgs/s | {} |",
            ratio(Some(alo.msgs_per_s()), Some(eos.msgs_per_s()))
        );
        for (title, s, [alo, eos]) in [
            ("unloaded", &self.serial, &self.chain_serial),
            ("burst", &self.burst, &self.chain_burst),
        ] {
            for (k, (name, sp)) in s.hops.iter().enumerate() {
                let _ = writeln!(
                    w,
                    "| {title}, hop {k} ({name}): Sprocket p50 ÷ at-least-once p50 / ÷ exactly-once p50 | {} / {} |",
                    ratio(sp.p50(), alo.hops[k].p50()),
                    ratio(sp.p50(), eos.hops[k].p50())
                );
            }
            let _ = writeln!(
                w,
                "| {title}, transactional hops 1–3: exactly-once p50 ÷ at-least-once p50 | {} |",
                (1..4)
                    .map(|k| ratio(eos.hops[k].p50(), alo.hops[k].p50()))
                    .collect::<Vec<_>>()
                    .join(" / ")
            );
        }
        let s = &self.serial;
        let work: f64 = s.work.iter().filter_map(|(_, x)| x.p50()).sum();
        let hand: f64 = s.hops.iter().filter_map(|(_, x)| x.p50()).sum();
        let e2e = s.e2e.p50().unwrap_or(f64::NAN);
        let _ = writeln!(
            w,
            "\nUnloaded, a job's p50 end-to-end time of {} ms splits into phase work \
             (sum of p50s) {} ms ({:.0}%) and hand-offs (sum of p50s) {} ms ({:.0}%).",
            ms(Some(e2e)),
            ms(Some(work)),
            100.0 * work / e2e,
            ms(Some(hand)),
            100.0 * hand / e2e
        );
    }
}
