//! `cargo bench -p sprocket-tests --bench engine`: the Sprocket worker runtime
//! against a plain rdkafka transactional chain of the same four hops, on Apache
//! Kafka (a one-node KRaft cluster) and on the embedded broker, in one run.
//!
//! On each broker: the runtime with no-op phase work, a batched and a
//! per-message exactly-once chain, and a step-by-step probe of the runtime's
//! per-item work; on Kafka also the runtime with the embedded broker's
//! workaround forced on, and the `minimal` recipe with the real phases. It
//! prints a Markdown report, writes it to `target/bench-engine.md`, and ends
//! with one line: `engine: <J> jobs/s, chain: <M> msgs/s, ratio <J/M>` (Kafka,
//! the no-op runtime against the batched chain).
//!
//! Sizes: see [`sizes::Sizes`]. What the rows mean: `tests/bench/ENGINE.md`.

mod anatomy;
mod broker;
mod chain;
mod cpu;
mod jobs;
mod machine;
mod measure;
mod noop;
mod observe;
mod probe;
mod relay;
mod report;
mod rows;
mod sizes;
mod spans;
mod stack;
mod stats;

use std::path::PathBuf;

use anyhow::Context;

use broker::{Broker, PARTITIONS};
use measure::Sitting;
use rows::Kind;
use sizes::Sizes;

/// Tokio worker threads, as in the end-to-end tests: the transactional calls
/// block (in `block_in_place`), so more threads than cores.
const THREADS: usize = 4;

fn main() -> anyhow::Result<()> {
    spans::install();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_all()
        .build()?
        .block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let sizes = Sizes::from_env()?;
    let load_before = machine::loadavg();
    let data = tempfile::Builder::new()
        .prefix("sprocket-bench-engine-")
        .tempdir()?;

    let kafka = Broker::kafka().await?;
    let on_kafka = measure::sitting(&kafka, &sizes, &data.path().join("kafka")).await?;
    drop(kafka);
    let embedded = Broker::embedded().await?;
    let on_embedded = measure::sitting(&embedded, &sizes, &data.path().join("embedded")).await?;
    drop(embedded);
    let sittings = [on_kafka, on_embedded];

    let worker = sprocket_platform::config::Config::default().worker;
    let max_in_flight = worker.max_in_flight;
    let report = report::Report {
        command: "cargo bench -p sprocket-tests --bench engine".into(),
        machine: machine::describe(&load_before, &machine::loadavg(), THREADS),
        setup: vec![
            (
                "sizes".into(),
                format!(
                    "{} rounds of {} no-op jobs, {} batched and {} per-message chain messages (each after a warm-up of a tenth, at least 10); {} one at a time; {} `minimal` jobs with the real phases; {} probe items",
                    sizes.rounds, sizes.jobs, sizes.messages, sizes.txn_messages, sizes.serial, sizes.real_jobs, sizes.probe
                ),
            ),
            ("partitions per topic".into(), PARTITIONS.to_string()),
            (
                "worker.max_in_flight".into(),
                format!(
                    "{} for the no-op workers (SPROCKET_BENCH_IN_FLIGHT), {max_in_flight} (the default: nproc) with the real phases",
                    crate::sizes::in_flight()
                ),
            ),
            (
                "a lane's transaction (the defaults)".into(),
                format!(
                    "up to worker.commit_max_items = {} items, the oldest waiting at most worker.commit_interval_ms = {} ms",
                    worker.commit_max_items, worker.commit_interval_ms
                ),
            ),
            ("batched chain: most messages per transaction".into(), sizes.batch.to_string()),
            (
                "Kafka".into(),
                "Apache Kafka 4.4.0, one KRaft node (scripts/kafka.sh), on loopback".into(),
            ),
            (
                "embedded".into(),
                "librdkafka's mock cluster behind Sprocket's relay, in the bench's process".into(),
            ),
        ],
        sittings: &sittings,
    }
    .render();
    println!("{report}");
    let out = target_dir().join("bench-engine.md");
    std::fs::write(&out, &report).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("report written to {}", out.display());
    println!("{}", summary(&sittings[0])?);
    Ok(())
}

/// The last line: the no-op runtime against the batched chain on Kafka.
fn summary(kafka: &Sitting) -> anyhow::Result<String> {
    let j = kafka.rate(Kind::Runtime).context("the runtime's row")?;
    let m = kafka
        .rate(Kind::Batched)
        .context("the batched chain's row")?;
    Ok(format!(
        "engine: {j:.2} jobs/s, chain: {m:.2} msgs/s, ratio {:.3}",
        j / m
    ))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}
