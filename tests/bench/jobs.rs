//! The Sprocket side: `minimal` jobs through the whole system, timed from the
//! `occurred_at` of their own events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use sprocket_tests::TestApp;

use crate::stats::{now_ms, Samples};

const PHASES: [&str; 4] = ["ingest", "analyze", "render", "archive"];
const DONE: [&str; 4] = [
    "MediaIngested",
    "MediaAnalyzed",
    "MediaRendered",
    "MediaArchived",
];

/// What one batch of jobs measured.
#[derive(Debug, Default)]
pub struct JobRun {
    pub jobs: usize,
    /// First submission sent → last `JobSucceeded.occurred_at`, in seconds.
    pub wall_s: f64,
    /// First submission sent → every job seen `succeeded` by polling the API.
    pub observed_s: f64,
    /// Time to get every submission accepted (`202`), in seconds.
    pub submit_s: f64,
    /// Events in the jobs' histories, by type.
    pub by_type: BTreeMap<String, usize>,
    /// Hand-offs: a phase's completion (or the submission) → the next phase started.
    pub hops: Vec<(String, Samples)>,
    /// Each phase's own work: started → completed.
    pub work: Vec<(String, Samples)>,
    /// `JobSubmitted` → `JobSucceeded`.
    pub e2e: Samples,
}

impl JobRun {
    pub fn events(&self) -> usize {
        self.by_type.values().sum()
    }

    pub fn transitions_per_s(&self) -> f64 {
        self.events() as f64 / self.wall_s
    }

    pub fn jobs_per_s(&self) -> f64 {
        self.jobs as f64 / self.wall_s
    }
}

/// A tiny H.264 source: 160x90, 2 s at 10 fps, no audio.
pub fn make_video(dir: &Path) -> anyhow::Result<PathBuf> {
    let out = dir.join("bench.mp4");
    let st = Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=160x90:rate=10,trim=duration=2")
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .arg(&out)
        .status()
        .context("running ffmpeg")?;
    if !st.success() {
        bail!("ffmpeg could not make the source video");
    }
    Ok(out)
}

/// Submits `n` jobs on `upload`, all at once (`burst`) or one after another,
/// waits for all to succeed, then reads their histories.
pub async fn run(
    app: &TestApp,
    upload: &str,
    prefix: &str,
    n: usize,
    burst: bool,
) -> anyhow::Result<JobRun> {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:05}")).collect();
    let timeout = Duration::from_secs(120 + 10 * n as u64);
    let t0 = now_ms();
    let start = Instant::now();
    let mut submit_s = 0.0;
    if burst {
        let posts = ids.iter().map(|id| submit(app, upload, id));
        for r in futures::future::join_all(posts).await {
            r?;
        }
        submit_s = start.elapsed().as_secs_f64();
        wait_all(app, prefix, n, timeout).await?;
    } else {
        for id in &ids {
            let s = Instant::now();
            submit(app, upload, id).await?;
            submit_s += s.elapsed().as_secs_f64();
            let job = app.wait_terminal(id, timeout).await;
            if job["status"] != "succeeded" {
                bail!("job {id} ended {}: {}", job["status"], job["error"]);
            }
        }
    }
    let observed_s = start.elapsed().as_secs_f64();

    let mut out = JobRun {
        jobs: n,
        observed_s,
        submit_s,
        ..JobRun::default()
    };
    let mut hops: Vec<Samples> = vec![Samples::default(); 4];
    let mut work: Vec<Samples> = vec![Samples::default(); 4];
    let mut last_success = t0;
    for id in &ids {
        let (status, body) = app.get(&format!("/v1/jobs/{id}/events")).await;
        if status != 200 {
            bail!("GET /v1/jobs/{id}/events: {status} {body}");
        }
        let events = body["events"].as_array().context("events array")?;
        let t = Timeline::of(events)?;
        for e in events {
            let ty = e["type"].as_str().unwrap_or("?").to_owned();
            *out.by_type.entry(ty).or_default() += 1;
        }
        let mut prev = t.submitted;
        for (i, (hop, work)) in hops.iter_mut().zip(work.iter_mut()).enumerate() {
            hop.push(t.started[i] - prev);
            work.push(t.done[i] - t.started[i]);
            prev = t.done[i];
        }
        out.e2e.push(t.succeeded - t.submitted);
        last_success = last_success.max(t.succeeded);
    }
    out.wall_s = (last_success - t0) / 1000.0;
    out.hops = hop_names().into_iter().zip(hops).collect();
    out.work = PHASES
        .iter()
        .map(|p| format!("{p} work (started → done)"))
        .zip(work)
        .collect();
    Ok(out)
}

/// Names of the four hand-offs, in pipeline order.
pub fn hop_names() -> Vec<String> {
    let mut v = vec!["intake → ingest started".to_owned()];
    for w in PHASES.windows(2) {
        v.push(format!("{} done → {} started", w[0], w[1]));
    }
    v
}

async fn submit(app: &TestApp, upload: &str, id: &str) -> anyhow::Result<()> {
    let (status, body) = app
        .post_job(json!({
            "job_id": id,
            "source": {"upload": upload},
            "recipe": "minimal",
            "labels": {"bench": "pipeline"},
        }))
        .await;
    if status != 202 {
        bail!("POST /v1/jobs for {id}: {status} {body}");
    }
    Ok(())
}

/// Polls the job list until `n` jobs of this batch succeeded; fails fast on a failure.
async fn wait_all(app: &TestApp, prefix: &str, n: usize, timeout: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let failed = count(app, "failed", prefix).await?;
        if failed > 0 {
            bail!("{failed} benchmark job(s) failed");
        }
        let ok = count(app, "succeeded", prefix).await?;
        if ok >= n {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("only {ok} of {n} jobs succeeded in {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Jobs of this batch with `status`, over every page of `GET /v1/jobs`.
async fn count(app: &TestApp, status: &str, prefix: &str) -> anyhow::Result<usize> {
    let mut after: Option<String> = None;
    let mut n = 0;
    loop {
        let mut path = format!("/v1/jobs?status={status}&limit=500");
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let (code, page) = app.get(&path).await;
        if code != 200 {
            bail!("GET {path}: {code} {page}");
        }
        let jobs = page["jobs"].as_array().context("jobs array")?;
        n += jobs
            .iter()
            .filter(|j| j["id"].as_str().is_some_and(|id| id.starts_with(prefix)))
            .count();
        match page["next"].as_str() {
            Some(next) if !jobs.is_empty() => after = Some(next.to_owned()),
            _ => return Ok(n),
        }
    }
}

/// The moments of one job, in ms since the epoch.
struct Timeline {
    submitted: f64,
    started: [f64; 4],
    done: [f64; 4],
    succeeded: f64,
}

impl Timeline {
    fn of(events: &[Value]) -> anyhow::Result<Timeline> {
        let at = |e: &Value| -> anyhow::Result<f64> {
            let s = e["occurred_at"].as_str().context("occurred_at")?;
            let t = chrono::DateTime::parse_from_rfc3339(s)?;
            Ok(t.timestamp_micros() as f64 / 1000.0)
        };
        // The first occurrence of each: retries and redeliveries repeat facts.
        let first = |pred: &dyn Fn(&Value) -> bool, what: &str| -> anyhow::Result<f64> {
            let mut best: Option<f64> = None;
            for e in events.iter().filter(|e| pred(e)) {
                let t = at(e)?;
                best = Some(best.map_or(t, |b| b.min(t)));
            }
            best.with_context(|| format!("no {what} event"))
        };
        let mut started = [0.0; 4];
        let mut done = [0.0; 4];
        for (i, (s, d)) in started.iter_mut().zip(done.iter_mut()).enumerate() {
            *s = first(
                &|e| e["type"] == "PhaseStarted" && e["data"]["phase"] == PHASES[i],
                "PhaseStarted",
            )?;
            *d = first(&|e| e["type"] == DONE[i], DONE[i])?;
        }
        Ok(Timeline {
            submitted: first(&|e| e["type"] == "JobSubmitted", "JobSubmitted")?,
            started,
            done,
            succeeded: first(&|e| e["type"] == "JobSucceeded", "JobSucceeded")?,
        })
    }
}
