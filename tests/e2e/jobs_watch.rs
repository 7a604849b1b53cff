//! `sprocket jobs --watch`: the jobs table stays live; a job submitted while
//! it runs shows up, and its status moves on, without the command being run
//! again.

use std::time::{Duration, Instant};

use sprocket_tests::procs::sprocket_bin;
use sprocket_tests::{video, TestApp};
use tokio::io::AsyncBufReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_jobs_table_follows_new_jobs_to_their_end() {
    let app = TestApp::start().await;
    let src = app.inbox().join("w.mp4");
    video::with_cuts(&src, &[20], 10, false);
    app.submit(&src, "minimal", "before-watch").await;
    app.wait_terminal("before-watch", Duration::from_secs(90))
        .await;

    let mut watch = tokio::process::Command::new(sprocket_bin())
        .args(["jobs", "--watch", "--api", &app.url])
        .env("SPROCKET_API_KEY", &app.dev.api_key)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sprocket jobs --watch runs");
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    until(&mut lines, &mut seen, "the first table", |s| {
        s.contains("--- sprocket jobs at ")
            && s.lines()
                .any(|l| l.starts_with("before-watch ") && l.contains("succeeded"))
    })
    .await;
    app.submit(&src, "minimal", "during-watch").await;
    until(&mut lines, &mut seen, "the new job, succeeded", |s| {
        s.lines()
            .any(|l| l.starts_with("during-watch ") && l.contains("succeeded"))
    })
    .await;
    assert!(
        seen.matches("--- sprocket jobs at ").count() >= 3,
        "redrawn as it went:\n{seen}"
    );
    watch.kill().await.unwrap();
}

type Lines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>;

/// Reads the command's output into `seen` until `done` holds for it.
async fn until(lines: &mut Lines, seen: &mut String, what: &str, done: fn(&str) -> bool) {
    let start = Instant::now();
    while !done(seen) {
        let left = Duration::from_secs(90).saturating_sub(start.elapsed());
        let line = tokio::time::timeout(left, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{what} never shown; the table said:\n{seen}"))
            .unwrap()
            .unwrap_or_else(|| panic!("jobs --watch ended; it said:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
    }
}
