//! The README's first command ends in `sprocket demo`: run as a person runs
//! it, from the repository's root, it makes a sample from the fixture
//! photographs, runs it through every phase, and says where the dashboard is
//! and which key logs in to it.

use std::path::Path;
use std::time::Duration;

use sprocket_tests::procs::sprocket_bin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_a_photo_sample_and_names_the_dashboard_and_its_key() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(sprocket_bin())
        .current_dir(&root)
        .env_remove("SPROCKET_MODELS_DIR")
        .args(["demo", "--data-dir"])
        .arg(data.path())
        .args([
            "--api-addr",
            "127.0.0.1:0",
            "--kafka-addr",
            "127.0.0.1:0",
            "--registry-addr",
            "127.0.0.1:0",
        ])
        .env("SPROCKET_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the demo finishes")
        .expect("the demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("from four photographs"), "{stdout}");
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line: {stdout}"))
            .to_owned()
    };
    assert!(
        line("dashboard: http://127.0.0.1:").contains('/'),
        "{stdout}"
    );
    let key = line("admin API key: ");
    let saved = std::fs::read_to_string(data.path().join("api-key")).unwrap();
    assert_eq!(key, saved.trim(), "the printed key is the one saved");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("job ") && l.ends_with(" succeeded")),
        "{stdout}"
    );
    // Faces were found: the analysis of the photo sample says so.
    let jobs = data.path().join("store/jobs");
    let job = std::fs::read_dir(&jobs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let analysis: serde_json::Value =
        serde_json::from_slice(&std::fs::read(job.join("analysis.json")).unwrap()).unwrap();
    let faces: Vec<u64> = analysis["shots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["faces"].as_u64().unwrap())
        .collect();
    assert_eq!(faces.len(), 4, "{analysis:#}");
    assert!(faces[0] >= 1 && faces[1] == 0 && faces[3] >= 2, "{faces:?}");
}
