//! Load at a fixed rate with oha (`scripts/bench-tools.sh install`), its JSON
//! summary read back. Latencies are corrected for coordinated omission
//! (`--latency-correction`: from when a request was due, not when it was sent).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::Value;

/// What oha is pointed at.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    /// One URL, every request.
    Url(&'a str),
    /// One URL per line of the file, in turn.
    Urls(&'a Path),
}

/// A load to run.
#[derive(Clone, Copy)]
pub struct Load<'a> {
    pub target: Target<'a>,
    /// Requests per second (`-q`).
    pub rate: u32,
    pub seconds: u32,
    /// Connections (`-c`): enough that the rate, not the connections, bounds it.
    pub connections: u32,
    /// The API key every request sends.
    pub key: &'a str,
}

/// What oha measured.
#[derive(Debug, Clone)]
pub struct Measured {
    pub command: String,
    pub requests: u64,
    /// Responses by HTTP status.
    pub statuses: BTreeMap<String, u64>,
    /// Requests that got no response (connection errors, timeouts).
    pub errors: u64,
    pub per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Measured {
    /// Share of requests answered 200.
    pub fn ok_share(&self) -> f64 {
        let ok = self.statuses.get("200").copied().unwrap_or(0);
        ok as f64 / (self.requests + self.errors).max(1) as f64
    }
}

/// `$SPROCKET_TOOLS/bin/oha`, else `~/.cache/sprocket/bin/oha`, else `oha` on the PATH.
fn oha() -> PathBuf {
    let root = std::env::var_os("SPROCKET_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/sprocket")));
    root.map(|r| r.join("bin/oha"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("oha"))
}

pub async fn run(load: &Load<'_>) -> anyhow::Result<Measured> {
    let mut args: Vec<String> = [
        "--no-tui",
        "--output-format",
        "json",
        "--latency-correction",
        "-w",
    ]
    .map(String::from)
    .to_vec();
    args.extend([
        "-q".into(),
        load.rate.to_string(),
        "-z".into(),
        format!("{}s", load.seconds),
        "-c".into(),
        load.connections.to_string(),
    ]);
    match load.target {
        Target::Url(url) => args.push(url.into()),
        Target::Urls(file) => {
            args.push("--urls-from-file".into());
            args.push(file.display().to_string());
        }
    }
    let exe = oha();
    // The report shows the command without the key.
    let command = format!("oha -H 'Authorization: Bearer …' {}", args.join(" "));
    args.splice(
        0..0,
        [
            "-H".to_owned(),
            format!("Authorization: Bearer {}", load.key),
        ],
    );
    let out = tokio::process::Command::new(&exe)
        .args(&args)
        .output()
        .await
        .with_context(|| {
            format!(
                "running {} (install it: bash scripts/bench-tools.sh install)",
                exe.display()
            )
        })?;
    if !out.status.success() {
        bail!(
            "{command} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("oha's JSON")?;
    let statuses: BTreeMap<String, u64> = v["statusCodeDistribution"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
        .collect();
    let errors = v["errorDistribution"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum();
    let ms = |path: &str| v["latencyPercentiles"][path].as_f64().unwrap_or(f64::NAN) * 1000.0;
    Ok(Measured {
        requests: statuses.values().sum(),
        statuses,
        errors,
        per_s: v["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        p50_ms: ms("p50"),
        p99_ms: ms("p99"),
        max_ms: v["summary"]["slowest"].as_f64().unwrap_or(f64::NAN) * 1000.0,
        command,
    })
}
