//! The janitor kill test's rules, jobs, configuration and the helpers that
//! look at the stores, the projections and `sprocket.events`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sprocket_tests::procs::Proc;
use sprocket_tests::{event_types, sha256_hex};

use crate::stack::Stack;
use crate::topic_log::Record;

pub(super) const WORK: &str = "retention.work";
pub(super) const TIER: &str = "retention.cold_after";
pub(super) const EXPIRE: &str = "retention.archive";
pub(super) const RETENTION: [&str; 3] = ["JobDataExpired", "JobArchiveTiered", "JobArchiveExpired"];

/// Finished jobs whose archives are tiered, and the one whose recipe expires
/// its archive (after 8 s; it may be tiered first).
pub(super) const TIERED: [&str; 3] = ["jk-done-0", "jk-done-1", "jk-done-2"];
pub(super) const EXPIRED: &str = "jk-expire";
/// Held live: in render with no render worker, and queued with no ingest worker.
pub(super) const RUNNING: &str = "jk-running";
pub(super) const QUEUED: &str = "jk-queued";

pub(super) fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{name}={v:?}: {e}")))
        .unwrap_or(default)
}

/// Second-scale rules, a `file://` cold store and fast group failover (the
/// live jobs' workers are killed and started again at the end).
pub(super) fn config(cold: &Path) -> String {
    format!(
        r#"
[retention]
work = "4s"
uploads = "2s"
cold_after = "6s"
archive = "0"
interval = "1s"

[archive]
cold_url = "file://{}"

[kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
"#,
        cold.display()
    )
}

/// The objects at or under `path` (a `file://` store), by path relative to
/// it, with their size and sha256 (none when it does not exist). The file
/// store writes an object to `<name>#<n>` and renames it into place, so a
/// janitor killed mid-copy leaves such a staging file behind; it is no
/// object (no listing shows it, no reader opens it) and is not counted.
pub(super) fn snapshot(path: &Path) -> BTreeMap<String, (u64, String)> {
    fn staging(p: &Path) -> bool {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.rsplit_once('#'))
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }
    fn walk(root: &Path, p: &Path, out: &mut BTreeMap<String, (u64, String)>) {
        if p.is_dir() {
            for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
                walk(root, &e.path(), out);
            }
        } else if staging(p) {
            eprintln!(
                "[janitor-kill] a killed copy's staging file: {}",
                p.display()
            );
        } else if let Ok(bytes) = std::fs::read(p) {
            let rel = p.strip_prefix(root).expect("under root");
            out.insert(
                rel.display().to_string(),
                (bytes.len() as u64, sha256_hex(&bytes)),
            );
        }
    }
    let mut out = BTreeMap::new();
    walk(path, path, &mut out);
    out
}

pub(super) fn total_bytes(files: &BTreeMap<String, (u64, String)>) -> u64 {
    files.values().map(|(b, _)| b).sum()
}

/// The last path component: an artifact's name in its store folder.
pub(super) fn file_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// Uploads `clip` and submits it as job `id` with `recipe`; returns the upload id.
pub(super) async fn submit(stack: &Stack, clip: &Path, id: &str, recipe: Value) -> String {
    let upload = stack.upload(clip).await;
    let (status, body) = stack
        .post_json(
            "/v1/jobs",
            &json!({"job_id": id, "source": {"upload": upload}, "recipe": recipe}),
        )
        .await;
    assert_eq!(status, 202, "submitting {id}: {body}");
    upload.as_str().expect("an upload id").to_owned()
}

/// How many of each retention event the projections hold for `job`.
pub(super) async fn recorded(stack: &Stack, job: &str) -> BTreeMap<String, usize> {
    let events = stack.get_ok(&format!("/v1/jobs/{job}/events")).await;
    let mut out = BTreeMap::new();
    for t in event_types(&events) {
        if RETENTION.contains(&t.as_str()) {
            *out.entry(t).or_default() += 1;
        }
    }
    out
}

/// A rule's effect seen in the stores: job, rule, what was seen.
pub(super) type Effect = (String, &'static str, String);

/// The (job, rule) a retention record on `sprocket.events` is of.
pub(super) fn rule_of(r: &Record) -> Option<(String, String)> {
    RETENTION.contains(&r.kind()).then(|| {
        (
            r.job().to_owned(),
            r.value["data"]["rule"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    })
}

/// The `/metrics` URL a process started with `SPROCKET__METRICS__ADDR`
/// printed (on stderr, before it starts its work).
pub async fn await_metrics_url(p: &Proc) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(url) = p.metrics_url() {
            return url;
        }
        assert!(
            Instant::now() < deadline,
            "no metrics address printed:\n{}",
            p.stderr_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `sprocket_janitor_sweeps_total` at the janitor's `/metrics` URL.
pub async fn sweeps(metrics: &str) -> u64 {
    let text = reqwest::get(metrics)
        .await
        .and_then(|r| r.error_for_status())
        .expect("the janitor's /metrics answers")
        .text()
        .await
        .expect("the metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix("sprocket_janitor_sweeps_total "))
        .map(|v| v.trim().parse::<f64>().expect("a count") as u64)
        .unwrap_or(0)
}
