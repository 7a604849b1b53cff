//! `cargo bench -p sprocket-tests --bench pipeline`: Sprocket's throughput and
//! per-hop latency on `sprocket dev`, next to a bare rdkafka consume → produce
//! chain of the same length on the same embedded broker, at-least-once and
//! exactly-once. Prints a Markdown report and writes it to
//! `target/bench-pipeline.md`.
//!
//! Environment: `SPROCKET_BENCH_JOBS` (burst jobs, default 40),
//! `SPROCKET_BENCH_SERIAL_JOBS` (jobs one at a time, default 5),
//! `SPROCKET_BENCH_MESSAGES` (chain burst, default 2000),
//! `SPROCKET_BENCH_SERIAL_MESSAGES` (chain one at a time, default 30).

mod chain;
mod jobs;
mod report;
mod stats;

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;
use sprocket_core::Phase;
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;
use sprocket_tests::TestApp;

use chain::Mode;

/// Tokio worker threads, as in the end-to-end tests.
const THREADS: usize = 4;

fn main() -> anyhow::Result<()> {
    // Keep stdout for the report: the logs go there too (the test writer).
    if std::env::var_os("SPROCKET_LOG").is_none() {
        std::env::set_var("SPROCKET_LOG", "off");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS)
        .enable_all()
        .build()?
        .block_on(bench())
}

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("{name}={v}: expected a positive integer")),
        Err(_) => Ok(default),
    }
}

async fn bench() -> anyhow::Result<()> {
    let n = env_usize("SPROCKET_BENCH_JOBS", 40)?;
    let n_serial = env_usize("SPROCKET_BENCH_SERIAL_JOBS", 5)?;
    let m = env_usize("SPROCKET_BENCH_MESSAGES", 2000)?;
    let m_serial = env_usize("SPROCKET_BENCH_SERIAL_MESSAGES", 30)?;
    let load_before = loadavg();

    let cfg = Config::default();
    let partitions = cfg.kafka.partitions;
    let app = TestApp::start_with(Phase::ALL.to_vec(), cfg).await;
    let dir = tempfile::tempdir()?;
    let video = jobs::make_video(dir.path())?;
    let up = app.upload(&video).await;
    let upload = up["upload"].as_str().context("upload id")?.to_owned();

    eprintln!("sprocket: warm-up job");
    jobs::run(&app, &upload, "bench-warmup", 1, false).await?;
    eprintln!("sprocket: {n_serial} jobs one at a time");
    let serial = jobs::run(&app, &upload, "bench-serial", n_serial, false).await?;
    eprintln!("sprocket: {n} jobs at once");
    let burst = jobs::run(&app, &upload, "bench-burst", n, true).await?;

    let bus = Bus::connect(&app.dev.config, "sprocket-bench").await?;
    let infra = &app.dev.infra;
    let mut chain = Vec::new();
    for (all_at_once, count) in [(false, m_serial), (true, m)] {
        for mode in [Mode::AtLeastOnce, Mode::ExactlyOnce] {
            let tag = format!(
                "{}-{}",
                if mode == Mode::AtLeastOnce {
                    "alo"
                } else {
                    "eos"
                },
                if all_at_once { "burst" } else { "serial" }
            );
            eprintln!("chain {tag}: {count} messages");
            chain.push(chain::run(infra, &bus, &tag, mode, count, all_at_once, partitions).await?);
        }
    }
    let load_after = loadavg();
    app.dev.stop().await;

    let mut chain = chain.into_iter();
    let mut next = || chain.next().expect("four chain runs");
    let chain_serial = [next(), next()];
    let chain_burst = [next(), next()];
    let report = report::Report {
        machine: machine(&load_before, &load_after),
        setup: vec![
            (
                "Sprocket jobs (burst / one at a time)".into(),
                format!("{n} / {n_serial}, recipe `minimal`, one upload shared by all"),
            ),
            (
                "source video".into(),
                format!(
                    "160x90, 2 s, 10 fps, H.264 ({} bytes)",
                    std::fs::metadata(&video)?.len()
                ),
            ),
            ("partitions per topic".into(), partitions.to_string()),
            (
                "chain messages (burst / one at a time)".into(),
                format!("{m} / {m_serial}, ~1 KB JSON, keyed `bench-job-NNNNN`"),
            ),
            (
                "broker".into(),
                "embedded (librdkafka mock cluster) behind Sprocket's relay, same process".into(),
            ),
        ],
        burst,
        serial,
        chain_burst,
        chain_serial,
    }
    .render();
    println!("{report}");
    let out = target_dir().join("bench-pipeline.md");
    std::fs::write(&out, &report).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("report written to {}", out.display());
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn machine(load_before: &str, load_after: &str) -> Vec<(String, String)> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let ffmpeg = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "?".into());
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "optimised (bench profile)"
    };
    vec![
        ("nproc".into(), cpus.to_string()),
        ("CPU".into(), model),
        (
            "load average before / after".into(),
            format!("{load_before} / {load_after}"),
        ),
        ("build".into(), profile.into()),
        ("tokio worker threads".into(), THREADS.to_string()),
        ("ffmpeg".into(), ffmpeg),
        (
            "date (UTC)".into(),
            chrono::Utc::now().format("%Y-%m-%d %H:%M").to_string(),
        ),
    ]
}
