//! The Markdown report and the bench's last line.

use std::fmt::Write;

use crate::fill::Filled;
use crate::row::Row;
use crate::stats::ms;
use crate::watch::POLL;

pub struct Report<'a> {
    pub machine: Vec<(String, String)>,
    pub filled: Filled,
    pub rows: &'a [Row],
    /// The rate the target is set at (jobs/s).
    pub target_rate: f64,
}

impl Report<'_> {
    /// The first row: default batching at the target rate.
    fn target(&self) -> Option<&Row> {
        self.rows.first()
    }

    /// Rows of the default batching, by rate.
    fn ladder(&self) -> Vec<&Row> {
        let first = self.target().map(|r| r.setup.batching);
        let mut v: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| Some(r.setup.batching) == first)
            .collect();
        v.sort_by(|a, b| a.setup.load.jobs_per_s.total_cmp(&b.setup.load.jobs_per_s));
        v
    }

    /// The knee: the highest rate the default batching keeps up with before
    /// the first it does not (`None` for the latter when it kept up with all).
    pub fn knee(&self) -> (Option<f64>, Option<f64>) {
        let mut ok = None;
        for r in self.ladder() {
            if !r.keeps_up() {
                return (ok, Some(r.setup.load.jobs_per_s));
            }
            ok = Some(r.setup.load.jobs_per_s);
        }
        (ok, None)
    }

    pub fn knee_text(&self) -> String {
        match self.knee() {
            (Some(ok), Some(bad)) => format!("between {ok:.0} and {bad:.0} jobs/s"),
            (Some(ok), None) => format!("above {ok:.0} jobs/s (the highest rate tried)"),
            (None, Some(bad)) => format!("below {bad:.0} jobs/s"),
            (None, None) => "not measured".into(),
        }
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Projector bench\n");
        let _ = writeln!(
            s,
            "`cargo bench -p sprocket-tests --bench projector` — the real `Projector` on \
             PostgreSQL and a one-node Apache Kafka; lag = from a message handed to the \
             producer to the first read of the `offsets` table (same transaction as the \
             rows) that shows it, polled every {} ms. The database held {} jobs ({} events, \
             analysed) before the first row; each row adds its own.\n",
            POLL.as_millis(),
            self.filled.jobs,
            self.filled.events
        );
        let _ = writeln!(s, "| machine | |\n|---|---|");
        for (k, v) in &self.machine {
            let _ = writeln!(s, "| {k} | {v} |");
        }
        let _ = writeln!(
            s,
            "\n| row | jobs/s | s | producer behind ≤ ms | projected msgs/s | lag p50 ms | p95 | p99 | max | never visible | msgs/transaction | ms/transaction | caught up after | cores busy (of which bench process, Kafka, PostgreSQL) |"
        );
        let _ = writeln!(
            s,
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for r in self.rows {
            let l = &r.lags.samples;
            let b = r.setup.batching;
            let _ = writeln!(
                s,
                "| {} (≤ {} msgs, linger {} ms) | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {} | {:.2} ({:.2}, {:.2}, {:.2}) |",
                r.setup.name,
                b.max_events,
                b.linger.as_millis(),
                r.setup.load.jobs_per_s,
                r.setup.load.seconds,
                r.behind_ms,
                r.projected_per_s,
                ms(l.p50()),
                ms(l.pct(95.0)),
                ms(l.p99()),
                ms(l.max()),
                r.lags.missing,
                r.commits.mean_batch(),
                r.commits.mean_transaction_ms(),
                r.caught_up_after
                    .map_or("not within 60 s".into(), |d| format!("{:.1} s", d.as_secs_f64())),
                r.cpu.cores_busy(),
                r.cpu.this_s / r.cpu.wall_s,
                r.cpu.broker_s.unwrap_or(0.0) / r.cpu.wall_s,
                r.postgres_s / r.cpu.wall_s,
            );
        }
        let _ = writeln!(s, "\nKnee of the default batching: {}.", self.knee_text());
        if let (Some(t), Some(base)) = (self.target(), self.baseline()) {
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.0}×", a / b),
                _ => "–".into(),
            };
            let _ = writeln!(
                s,
                "At {:.0} jobs/s, one event per transaction has {} the p99 lag of the default \
                 batching (a lower bound when messages were never visible) and projects {:.2}× \
                 its messages per second.",
                self.target_rate,
                ratio(base.lags.samples.p99(), t.lags.samples.p99()),
                base.projected_per_s / t.projected_per_s.max(1.0),
            );
        }
        s
    }

    fn baseline(&self) -> Option<&Row> {
        self.rows.iter().find(|r| r.setup.batching.max_events == 1)
    }

    pub fn last_line(&self) -> String {
        let p99 = self.target().and_then(|r| r.lags.samples.p99());
        format!(
            "projector: p99 {} ms at {:.0} jobs/s (target < 1000 ms), knee {}",
            ms(p99),
            self.target_rate,
            self.knee_text()
        )
    }
}
