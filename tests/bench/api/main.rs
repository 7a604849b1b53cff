//! `cargo bench -p sprocket-tests --bench api`: the status API's reads on
//! PostgreSQL under a fixed request rate from oha (`scripts/bench-tools.sh
//! install`).
//!
//! A fresh database is filled with `SPROCKET_BENCH_JOBS` jobs (default 50,000;
//! [`fill`]), then the real API (`sprocket_server::services::start_api`, Kafka being
//! the embedded broker: these routes never touch it) serves:
//! `GET /v1/jobs/{id}` for random ids at `SPROCKET_BENCH_RATE` requests/s
//! (default 2,000) for `SPROCKET_BENCH_SECONDS` (default 30), with the default
//! pool and with a pool of one connection (the baseline: one connection, as
//! before the pool); and job lists — the first page, and pages deep in the
//! table through their keyset cursors, all jobs and one status — at
//! `SPROCKET_BENCH_LIST_RATE` (default 200). It prints a Markdown report
//! (also `target/bench-api.md`) and ends with one line:
//! `api: GET /v1/jobs/{id} p50 <ms> p99 <ms> ms at <rate>/s (target < 10 ms), lists p99 <ms> ms (target < 50 ms)`.

#[path = "../broker.rs"]
#[allow(dead_code)]
mod broker;
#[path = "../fill.rs"]
mod fill;
/// The contract tests' job histories (`engine/projections/tests/support`).
#[path = "../../../engine/projections/tests/support/history.rs"]
#[allow(dead_code)]
mod history;
#[path = "../machine.rs"]
mod machine;
mod oha;
mod plans;
mod report;
mod serve;

use std::io::Write;

use anyhow::Context;
use rand::Rng;
use sprocket_core::JobStatus;
use sprocket_projections::{PoolOptions, Projections};
use sprocket_tests::pg::PgDatabase;

use broker::Broker;
use oha::{Load, Target};
use report::{Report, Row};

/// Rows per list page, the API's default.
const PAGE: u32 = 50;

fn main() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SPROCKET_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    // As `sprocket api` runs: tokio's default runtime, a worker per core.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}

fn env_or(name: &str, default: u32) -> anyhow::Result<u32> {
    match std::env::var(name) {
        Ok(v) => v.parse().with_context(|| format!("{name}={v:?}")),
        Err(_) => Ok(default),
    }
}

async fn bench() -> anyhow::Result<()> {
    let jobs = env_or("SPROCKET_BENCH_JOBS", 50_000)? as usize;
    let rate = env_or("SPROCKET_BENCH_RATE", 2_000)?;
    let seconds = env_or("SPROCKET_BENCH_SECONDS", 30)?;
    let list_rate = env_or("SPROCKET_BENCH_LIST_RATE", 200)?;
    let load_before = machine::loadavg();
    let dir = tempfile::Builder::new()
        .prefix("sprocket-bench-api-")
        .tempdir()?;

    let db = tokio::task::block_in_place(|| PgDatabase::create("sprocket_bench_api"));
    let p = Projections::connect_with(&db.url, PoolOptions::default())?;
    p.migrate()?;
    // Requests go past the key check as every client's do (a cached key).
    let (_, key) = sprocket_server::auth::create(
        &p,
        "bench",
        &[sprocket_server::auth::Scope::Admin],
        Some("api bench".into()),
    )?;
    eprintln!("[api] filling {jobs} jobs");
    let filled = tokio::task::block_in_place(|| fill::fill(&db, &p, jobs))?;
    eprintln!(
        "[api] {} events in {:.1} s, analysed",
        filled.events, filled.seconds
    );
    let plans = tokio::task::block_in_place(|| plans::explain(&db, &p))?;

    // The URLs: random ids, and the cursor of every page of two listings.
    let ids = dir.path().join("ids.txt");
    let deep = dir.path().join("deep.txt");
    let running = dir.path().join("running.txt");
    let cursors_all = tokio::task::block_in_place(|| cursors(&p, None))?;
    let cursors_running = tokio::task::block_in_place(|| cursors(&p, Some(JobStatus::Running)))?;
    drop(p);

    let broker = Broker::embedded().await?;
    let mut rows = Vec::new();
    for pool in [PoolOptions::default().size, 1] {
        let api = serve::Api::start(&broker, &db.url, pool).await?;
        let base = api.url.clone();
        let mut rng = rand::rng();
        write_lines(
            &ids,
            (0..20_000)
                .map(|_| format!("{base}/v1/jobs/{}", fill::job_id(rng.random_range(0..jobs)))),
        )?;
        let lookups = Load {
            target: Target::Urls(&ids),
            rate,
            seconds,
            connections: 64,
            key: &key,
        };
        eprintln!("[api] pool {pool}: warming up");
        oha::run(&Load {
            seconds: 5,
            ..lookups
        })
        .await?;
        eprintln!("[api] pool {pool}: GET /v1/jobs/{{id}} at {rate}/s for {seconds} s");
        let m = oha::run(&lookups).await?;
        rows.push(Row::new(format!("GET /v1/jobs/{{id}}, pool {pool}"), m));
        if pool > 1 {
            let first = format!("{base}/v1/jobs?limit={PAGE}");
            write_lines(
                &deep,
                cursors_all.iter().map(|c| format!("{first}&after={c}")),
            )?;
            write_lines(
                &running,
                cursors_running
                    .iter()
                    .map(|c| format!("{first}&status=running&after={c}")),
            )?;
            let lists = [
                ("GET /v1/jobs?limit=50 (first page)", Target::Url(&first)),
                (
                    "GET /v1/jobs?limit=50&after= (every page)",
                    Target::Urls(&deep),
                ),
                (
                    "GET /v1/jobs?status=running&limit=50&after= (every page)",
                    Target::Urls(&running),
                ),
            ];
            for (name, target) in lists {
                eprintln!("[api] {name} at {list_rate}/s");
                let load = Load {
                    target,
                    rate: list_rate,
                    seconds: seconds.div_ceil(2),
                    connections: 32,
                    key: &key,
                };
                rows.push(Row::new(name.into(), oha::run(&load).await?));
            }
        }
        api.stop().await?;
    }
    drop(broker);

    let report = Report {
        machine: machine::describe(
            &load_before,
            &machine::loadavg(),
            std::thread::available_parallelism().map_or(1, usize::from),
        ),
        filled,
        pages: (cursors_all.len() + 1, cursors_running.len() + 1),
        rows,
        plans,
        rate,
    };
    machine::publish("bench-api.md", &report.render(), &report.last_line());
    Ok(())
}

/// The `next` cursor of every page of a listing, walked to its end.
fn cursors(p: &Projections, status: Option<JobStatus>) -> anyhow::Result<Vec<String>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = p.jobs(status, PAGE, after.as_deref())?;
        match page.next {
            Some(next) => {
                all.push(next.clone());
                after = Some(next);
            }
            None => return Ok(all),
        }
    }
}

fn write_lines(path: &std::path::Path, lines: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for l in lines {
        writeln!(f, "{l}")?;
    }
    Ok(f.flush()?)
}
