//! One deployment, driven as its users drive it: a job submitted with the CLI
//! through every phase, a projection rebuilt from the topics, and a job that
//! waits, visibly queued, while its ingest worker is down.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sprocket_tests::video;

use crate::rebuild::rebuild_gives_identical_projections;
use crate::stack::Stack;

/// The outputs of the `highlight` recipe, besides the source itself.
const OUTPUTS: [&str; 4] = [
    "analysis.json",
    "highlight.mp4",
    "poster.jpg",
    "manifest.json",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_processes_on_postgres() {
    let _one_at_a_time = crate::ONE_AT_A_TIME.lock().await;
    let t0 = Instant::now();
    let step = |what: &str| eprintln!("[processes] {what} at {:.1?}", t0.elapsed());
    let mut stack = Stack::start().await;
    step("deployment up");

    let src = stack.media_dir().join("cuts.mp4");
    // 8 s at 25 fps, 320x180, with three hard cuts.
    let cuts = video::with_cuts(&src, &[50, 60, 45, 45], 25, true);
    let id = "procs-highlight";

    let printed = submit_with_the_cli(&mut stack, &src, id).await;
    step("job submitted and finished with the CLI");
    check_over_http(&stack, id, &cuts, &printed).await;
    step("job checked over HTTP");
    rebuild_gives_identical_projections(&mut stack, id).await;
    step("projections rebuilt");
    queued_while_ingest_is_down(&mut stack).await;
    step("queued job completed");

    stack.assert_running();
}

/// `sprocket submit --wait`, then `status` and `jobs`; returns the sha256 the
/// CLI printed for each artifact.
async fn submit_with_the_cli(
    stack: &mut Stack,
    src: &std::path::Path,
    id: &str,
) -> BTreeMap<String, String> {
    let api = stack.api.clone();
    let file = src.display().to_string();
    let out = stack
        .run_ok(&[
            "submit",
            &file,
            "--recipe",
            "highlight",
            "--id",
            id,
            "--wait",
            "--api",
            &api,
        ])
        .await;
    assert!(
        out.lines()
            .any(|l| l.trim() == format!("job {id} succeeded")),
        "submit --wait does not report success:\n{out}"
    );
    // Artifact lines: `  <name>  <bytes> bytes  sha256 <hex>  <url>`.
    let mut printed = BTreeMap::new();
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [name, _, "bytes", "sha256", sha, ..] = words[..] {
            printed.insert(name.to_owned(), sha.to_owned());
        }
    }
    for name in OUTPUTS {
        let sha = printed
            .get(name)
            .unwrap_or_else(|| panic!("submit --wait does not list {name}:\n{out}"));
        assert!(
            sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
            "{name}: sha256 {sha:?}"
        );
    }

    let status = stack.run_ok(&["status", id, "--api", &api]).await;
    assert!(
        status
            .lines()
            .any(|l| l.trim() == format!("job {id} succeeded")),
        "sprocket status:\n{status}"
    );
    for name in OUTPUTS {
        assert!(
            status.contains(name),
            "status does not list {name}:\n{status}"
        );
    }

    let jobs = stack.run_ok(&["jobs", "--api", &api]).await;
    let row = jobs
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.first() == Some(&id))
        .unwrap_or_else(|| panic!("sprocket jobs does not list {id}:\n{jobs}"));
    assert_eq!(row.get(1), Some(&"succeeded"), "sprocket jobs:\n{jobs}");
    printed
}

/// The job as the API shows it: succeeded, the cuts found, artifacts intact.
async fn check_over_http(
    stack: &Stack,
    id: &str,
    cuts: &[u64],
    printed: &BTreeMap<String, String>,
) {
    let job = stack.get_ok(&format!("/v1/jobs/{id}")).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert_eq!(job["progress"], 100.0, "{job:#}");
    let artifacts = job["artifacts"].as_array().expect("artifacts");
    let names: Vec<&str> = artifacts
        .iter()
        .map(|a| a["name"].as_str().expect("artifact name"))
        .collect();
    for name in OUTPUTS {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }

    let analysis: Value = serde_json::from_slice(
        &stack
            .bytes(&format!("/v1/jobs/{id}/artifacts/analysis.json"))
            .await,
    )
    .expect("analysis.json is JSON");
    let starts: Vec<u64> = analysis["shots"]
        .as_array()
        .expect("analysis has shots")
        .iter()
        .map(|s| s["start_frame"].as_u64().expect("start_frame"))
        .collect();
    assert_eq!(starts.first(), Some(&0), "shots {starts:?}");
    assert_eq!(
        starts.len(),
        cuts.len() + 1,
        "shots {starts:?}, cuts {cuts:?}"
    );
    for (found, made) in starts[1..].iter().zip(cuts) {
        assert!(
            found.abs_diff(*made) <= 1,
            "cut found at {found}, made at {made}"
        );
    }

    for a in artifacts {
        let name = a["name"].as_str().unwrap();
        let bytes = stack.bytes(a["url"].as_str().expect("artifact url")).await;
        let sha = sprocket_tests::sha256_hex(&bytes);
        assert_eq!(
            sha,
            a["sha256"].as_str().unwrap(),
            "{name}: downloaded bytes"
        );
        assert_eq!(
            bytes.len() as u64,
            a["bytes"].as_u64().unwrap(),
            "{name}: size"
        );
        if let Some(cli) = printed.get(name) {
            assert_eq!(cli, &sha, "{name}: the CLI printed another digest");
        }
    }
    let poster = stack
        .bytes(&format!("/v1/jobs/{id}/artifacts/poster.jpg"))
        .await;
    assert_eq!(&poster[..2], &[0xFF, 0xD8], "poster is a JPEG");

    // The archive worker wrote to the shared archive store, not to its own disk.
    let archived = stack
        .archive_dir()
        .join("jobs")
        .join(id)
        .join("highlight.mp4");
    assert!(archived.is_file(), "archive copy at {}", archived.display());

    // Every process encoded through the one shared schema registry.
    let subjects = stack.registry_get("/subjects").await;
    for subject in [
        "sprocket.JobSubmitted",
        "sprocket.MediaAnalyzed",
        "sprocket.JobSucceeded",
    ] {
        assert!(
            subjects
                .as_array()
                .is_some_and(|s| s.contains(&json!(subject))),
            "{subject} not in the registry: {subjects}"
        );
    }

    let events = stack.get_ok(&format!("/v1/jobs/{id}/events")).await;
    let types: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("event type"))
        .collect();
    assert_eq!(types.first(), Some(&"JobSubmitted"), "{types:?}");
    assert_eq!(types.last(), Some(&"JobSucceeded"), "{types:?}");
    for done in [
        "MediaIngested",
        "MediaAnalyzed",
        "MediaRendered",
        "MediaArchived",
    ] {
        let n = types.iter().filter(|t| **t == done).count();
        assert_eq!(n, 1, "{done} in {types:?}");
    }
}

/// A job submitted while no ingest worker runs is visible as queued within a
/// second, stays queued, and completes once a worker is back.
async fn queued_while_ingest_is_down(stack: &mut Stack) {
    stack.kill("worker-ingest");
    let clip = stack.media_dir().join("short.mp4");
    video::with_cuts(&clip, &[30, 30], 25, false);
    let upload = stack.upload(&clip).await;
    let id = "procs-queued";

    let submitted = Instant::now();
    let (status, body) = stack
        .post_json(
            "/v1/jobs",
            &json!({"job_id": id, "source": {"upload": upload}, "recipe": "minimal"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let job = loop {
        let (status, job) = stack.get(&format!("/v1/jobs/{id}")).await;
        if status == 200 {
            break job;
        }
        assert!(
            submitted.elapsed() < Duration::from_secs(1),
            "job {id} not visible within 1 s of its submission; last seen: {status} {job}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        submitted.elapsed() < Duration::from_secs(1),
        "job {id} took {:?} to appear",
        submitted.elapsed()
    );
    assert_eq!(job["status"], "queued", "{job:#}");

    // The submission waits on the intake, where nothing takes it up: seen
    // as ingest's lag (read from Kafka), then the job is still queued.
    loop {
        let phases = stack.get_ok("/v1/phases").await;
        let ingest = phases["phases"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["phase"] == "ingest"))
            .cloned()
            .unwrap_or_default();
        if ingest["lag"].as_i64().is_some_and(|lag| lag >= 1) {
            break;
        }
        assert!(
            submitted.elapsed() < Duration::from_secs(30),
            "the submission never showed as ingest's lag: {phases:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job = stack.get_ok(&format!("/v1/jobs/{id}")).await;
    assert_eq!(job["status"], "queued", "nothing ingests it: {job:#}");

    stack.start_worker("ingest");
    let job = stack.wait_terminal(id, Duration::from_secs(90)).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let names: Vec<&str> = job["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    for name in ["poster.jpg", "manifest.json"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}
