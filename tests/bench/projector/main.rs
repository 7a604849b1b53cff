//! `cargo bench -p sprocket-tests --bench projector`: projection lag of the
//! real `Projector` on PostgreSQL and Apache Kafka (a one-node KRaft cluster
//! from `scripts/kafka.sh`), under a steady load of job histories
//! ([`load`]), measured as a reader of the database sees it ([`watch`]).
//!
//! One database, filled first with `SPROCKET_BENCH_PREFILL` jobs (default
//! 20,000) and analysed, as a projection database in service is. Rows, each on
//! fresh topics: the projector's default batching at the target rate; the
//! same with no linger; one event per transaction (the baseline); then the
//! default at higher rates, to find the knee. It prints a Markdown report, writes it to
//! `target/bench-projector.md`, and ends with one line:
//! `projector: p99 <ms> ms at <rate> jobs/s (target < 1000 ms), knee <rate> jobs/s`.
//!
//! Sizes: `SPROCKET_BENCH_SECONDS` (the target-rate row, default 30; other
//! rows half of it), `SPROCKET_BENCH_RATE` (default 200 jobs/s),
//! `SPROCKET_BENCH_KNEE_RATES` (default `400,800,1200,1600`). What the numbers
//! mean: `tests/bench/PROJECTOR.md`.

#[path = "../broker.rs"]
#[allow(dead_code)]
mod broker;
mod commits;
#[path = "../cpu.rs"]
#[allow(dead_code)]
mod cpu;
#[path = "../fill.rs"]
mod fill;
/// The contract tests' job histories (`engine/projections/tests/support`).
#[path = "../../../engine/projections/tests/support/history.rs"]
#[allow(dead_code)]
mod history;
mod load;
#[path = "../machine.rs"]
mod machine;
mod report;
mod row;
#[path = "../stats.rs"]
#[allow(dead_code)]
mod stats;
mod watch;

use std::time::Duration;

use anyhow::Context;
use sprocket_projections::{PoolOptions, Projections};
use sprocket_server::projector::Batching;
use sprocket_tests::pg::PgDatabase;

use broker::Broker;
use load::Load;
use row::Setup;

/// As in the engine bench: blocking calls run beside the async ones.
const THREADS: usize = 4;

/// Seconds of load before the measured rows.
const WARM_UP_S: f64 = 15.0;

fn main() -> anyhow::Result<()> {
    commits::install();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_all()
        .build()?
        .block_on(bench())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

async fn bench() -> anyhow::Result<()> {
    let seconds: f64 = env_or("SPROCKET_BENCH_SECONDS", 30.0)?;
    let rate: f64 = env_or("SPROCKET_BENCH_RATE", 200.0)?;
    let knee_rates: Vec<f64> = std::env::var("SPROCKET_BENCH_KNEE_RATES")
        .unwrap_or_else(|_| "400,800,1200,1600".into())
        .split(',')
        .filter(|r| !r.trim().is_empty())
        .map(|r| r.trim().parse().context("SPROCKET_BENCH_KNEE_RATES"))
        .collect::<anyhow::Result<_>>()?;
    let load_before = machine::loadavg();

    let short = seconds / 2.0;
    let default = Batching::default();
    let mut setups = vec![
        Setup::new(
            "default batching",
            default,
            Load {
                jobs_per_s: rate,
                seconds,
            },
        ),
        Setup::new(
            "no linger",
            Batching {
                linger: Duration::ZERO,
                ..default
            },
            Load {
                jobs_per_s: rate,
                seconds: short,
            },
        ),
        Setup::new(
            "one event per transaction (baseline)",
            Batching {
                max_events: 1,
                linger: Duration::ZERO,
            },
            Load {
                jobs_per_s: rate,
                seconds: short,
            },
        ),
    ];
    for r in knee_rates {
        let load = Load {
            jobs_per_s: r,
            seconds: short,
        };
        setups.push(Setup::new("default batching", default, load));
    }

    let prefill: usize = env_or("SPROCKET_BENCH_PREFILL", 20_000)?;
    let db = tokio::task::block_in_place(|| PgDatabase::create("sprocket_bench_projector"));
    let filled = tokio::task::block_in_place(|| -> anyhow::Result<_> {
        let p = Projections::connect_with(&db.url, PoolOptions::default())?;
        p.migrate()?;
        fill::fill(&db, &p, prefill)
    })?;
    eprintln!(
        "[projector] database filled with {} jobs ({} events) in {:.1} s",
        filled.jobs, filled.events, filled.seconds
    );

    let kafka = Broker::kafka().await?;
    // A fresh broker's JVM compiles its hot paths for a while: warm it up at
    // the target rate before anything is measured.
    eprintln!("[projector] warm-up: {rate} jobs/s for {WARM_UP_S} s (not reported)");
    let warm = Setup::new(
        "warm-up",
        default,
        Load {
            jobs_per_s: rate,
            seconds: WARM_UP_S,
        },
    );
    row::run(&kafka, &db.url, &warm, "warm").await?;
    let mut rows = Vec::new();
    for (i, setup) in setups.iter().enumerate() {
        eprintln!(
            "[projector] row {}/{}: {} at {} jobs/s for {} s",
            i + 1,
            setups.len(),
            setup.name,
            setup.load.jobs_per_s,
            setup.load.seconds
        );
        let row = row::run(&kafka, &db.url, setup, &format!("r{i}")).await?;
        eprintln!("[projector]   {}", row.summary());
        rows.push(row);
    }
    drop(kafka);

    let report = report::Report {
        machine: machine::describe(&load_before, &machine::loadavg(), THREADS),
        filled,
        rows: &rows,
        target_rate: rate,
    };
    machine::publish("bench-projector.md", &report.render(), &report.last_line());
    Ok(())
}
