//! `sprocket dev --kafka HOST:PORT`: the whole stack in one process on an
//! existing Kafka (a real KRaft cluster here) instead of the embedded broker,
//! with the embedded schema registry; its topics are made there with
//! CreateTopics, and a job goes through every phase.

use std::time::Duration;

use sprocket_tests::kafka::KafkaCluster;
use sprocket_tests::procs::Launcher;
use sprocket_tests::video;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_runs_on_an_existing_kafka() {
    let _one_at_a_time = crate::ONE_AT_A_TIME.lock().await;
    let cluster = KafkaCluster::start(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = std::fs::canonicalize(dir.path()).expect("tempdir path");
    let logs = root.join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let launcher = Launcher::new(&logs);
    let data = root.join("data").display().to_string();
    let mut dev = launcher.spawn(
        "dev",
        &[
            "dev",
            "--kafka",
            &cluster.bootstrap,
            "--data-dir",
            &data,
            "--api-addr",
            "127.0.0.1:0",
            "--registry-addr",
            "127.0.0.1:0",
        ],
    );
    let banner = dev.wait_for_line("sprocket dev: API ", Duration::from_secs(60));
    let api = banner
        .split(" | ")
        .next()
        .expect("API address")
        .trim()
        .to_owned();
    assert!(
        banner.contains(&format!("| Kafka {} |", cluster.bootstrap)),
        "dev runs on the given Kafka, not an embedded one: {banner}"
    );
    let topics = cluster.tool_ok(
        "kafka-topics",
        &["--bootstrap-server", &cluster.bootstrap, "--list"],
    );
    for t in [
        "sprocket.events",
        "sprocket.ingest",
        "sprocket.render.retry",
        "sprocket.cancellations",
    ] {
        assert!(
            topics.lines().any(|l| l.trim() == t),
            "{t} not made on the cluster:\n{topics}"
        );
    }

    // The admin key dev made on its first start, printed and kept in the
    // data directory.
    let key = std::fs::read_to_string(root.join("data/api-key")).expect("dev saves its key");
    let key = key.trim();
    let printed = dev.wait_for_line("admin API key (saved in ", Duration::from_secs(5));
    assert!(
        printed.ends_with(key),
        "dev prints the key it saved: {printed}"
    );

    let clip = root.join("clip.mp4");
    video::with_cuts(&clip, &[40, 40], 25, false);
    let file = clip.display().to_string();
    let out = launcher
        .run_env(
            "submit",
            &[
                "submit", &file, "--recipe", "minimal", "--id", "on-kafka", "--wait", "--api", &api,
            ],
            &[("SPROCKET_API_KEY", key)],
            Duration::from_secs(120),
        )
        .await;
    let stdout = out.expect_success();
    assert!(
        stdout.lines().any(|l| l.trim() == "job on-kafka succeeded"),
        "{stdout}"
    );
    dev.assert_running();
}
