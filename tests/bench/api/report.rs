//! The Markdown report and the bench's last line.

use std::fmt::Write;

use crate::fill::Filled;
use crate::oha::Measured;
use crate::plans::Plan;

/// The targets: a job by id, and a page of a listing (p99, ms).
const LOOKUP_TARGET_MS: f64 = 10.0;
const LIST_TARGET_MS: f64 = 50.0;

pub struct Row {
    pub name: String,
    pub m: Measured,
}

impl Row {
    pub fn new(name: String, m: Measured) -> Row {
        eprintln!(
            "[api]   {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {:.2} % 200",
            m.per_s,
            m.p50_ms,
            m.p99_ms,
            m.max_ms,
            m.ok_share() * 100.0
        );
        Row { name, m }
    }

    fn is_list(&self) -> bool {
        self.name.starts_with("GET /v1/jobs?")
    }
}

pub struct Report {
    pub machine: Vec<(String, String)>,
    pub filled: Filled,
    /// Pages of the full listing and of `status=running`.
    pub pages: (usize, usize),
    pub rows: Vec<Row>,
    pub plans: Vec<Plan>,
    /// The lookups' rate (requests/s).
    pub rate: u32,
}

impl Report {
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# API bench\n");
        let _ = writeln!(
            s,
            "`cargo bench -p sprocket-tests --bench api` — the real API server on PostgreSQL, \
             {} jobs ({} events, filled through `Projections::apply` and analysed in {:.1} s; {} pages of 50, \
             {} of them `running`), oha at a fixed rate with latency correction.\n",
            self.filled.jobs, self.filled.events, self.filled.seconds, self.pages.0, self.pages.1
        );
        let _ = writeln!(s, "| machine | |\n|---|---|");
        for (k, v) in &self.machine {
            let _ = writeln!(s, "| {k} | {v} |");
        }
        let _ = writeln!(
            s,
            "\n| read | rate kept (req/s) | requests | p50 ms | p99 ms | max ms | answered 200 | target (p99) |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        for r in &self.rows {
            let target = if r.is_list() {
                LIST_TARGET_MS
            } else {
                LOOKUP_TARGET_MS
            };
            let met = if r.m.p99_ms < target {
                "met"
            } else {
                "**missed**"
            };
            let _ = writeln!(
                s,
                "| {} | {:.0} | {} | {:.2} | {:.2} | {:.1} | {:.2} % | < {target:.0} ms: {met} |",
                r.name,
                r.m.per_s,
                r.m.requests + r.m.errors,
                r.m.p50_ms,
                r.m.p99_ms,
                r.m.max_ms,
                r.m.ok_share() * 100.0,
            );
        }
        let _ = writeln!(s, "\nCommands (the port changes from run to run):\n");
        for r in &self.rows {
            let _ = writeln!(s, "- {}: `{}`", r.name, r.m.command);
        }
        let _ = writeln!(s, "\n## Plans\n");
        for p in &self.plans {
            let _ = writeln!(
                s,
                "{}:\n\n```sql\n{}\n```\n\n```\n{}\n```\n",
                p.name, p.sql, p.plan
            );
        }
        s
    }

    pub fn last_line(&self) -> String {
        let lookup = self.rows.iter().find(|r| !r.is_list());
        let lists = self
            .rows
            .iter()
            .filter(|r| r.is_list())
            .map(|r| r.m.p99_ms)
            .fold(f64::NAN, f64::max);
        format!(
            "api: GET /v1/jobs/{{id}} p50 {:.2} p99 {:.2} ms at {}/s (target < {LOOKUP_TARGET_MS} ms), lists p99 {:.2} ms (target < {LIST_TARGET_MS} ms)",
            lookup.map_or(f64::NAN, |r| r.m.p50_ms),
            lookup.map_or(f64::NAN, |r| r.m.p99_ms),
            self.rate,
            lists,
        )
    }
}
