//! The web dashboard at `/`, driven end to end in headless Chromium
//! (tests/browser/dashboard.mjs with playwright-core; `.ci/setup` installs
//! Debian's chromium and the pinned playwright-core). This test sets the
//! stage on a live stack — a dead-lettered job, a long job to cancel, a
//! read-only key, sample videos — then runs the script and asserts it passed.
//! `SPROCKET_SCREENSHOTS=<dir>` makes the script save a PNG of each page.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use sprocket_platform::config::Config;
use sprocket_tests::{event_types, video, TestApp};

/// The browser script's whole run.
const LIMIT: Duration = Duration::from_secs(540);
const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dashboard_works_in_a_browser() {
    let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    for needed in [
        browser.join("node_modules/playwright-core"),
        CHROMIUM.into(),
    ] {
        assert!(
            needed.exists(),
            "{} is missing: run `bash .ci/setup`",
            needed.display()
        );
    }
    let mut cfg = Config::default();
    cfg.worker.retry_delay_ms = 100;
    // A webhook to a closed port gives up within a second or two.
    cfg.webhooks.allow_private = vec!["127.0.0.1/32".parse().unwrap()];
    cfg.webhooks.retry_delay_ms = 100;
    cfg.webhooks.retry_max_delay_ms = 200;
    cfg.webhooks.max_age_s = 1;
    let app = TestApp::start_with(sprocket_core::Phase::ALL.to_vec(), cfg).await;
    let work = tempfile::tempdir().unwrap();

    // The page itself: served with its type and a strict policy, no key needed.
    let page = reqwest::get(format!("{}/", app.url)).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let (status, me) = app.get("/v1/me").await;
    assert_eq!(status, 200, "{me}");
    let tenant = me["tenant"].as_str().unwrap().to_owned();
    assert_eq!(me["scopes"], json!(["admin"]));
    let (_, reader, _) = app.key(&tenant, &["jobs:read"]).await;

    // A webhook that never answers, for the dead letter's event.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (status, hook) = sprocket_tests::api::post_json(
        &app.http,
        &format!("{}/v1/webhooks", app.url),
        &json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["JobDeadLettered"]}),
    )
    .await;
    assert_eq!(status, 201, "{hook}");

    // A job dead-lettered at archive: a file stands where its archive
    // directory goes, until the job is in the dead letter topic.
    let blocker = std::fs::canonicalize(app.data.path())
        .unwrap()
        .join("archive/jobs/ui-dead");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"not a directory").unwrap();
    let small = work.path().join("small.mp4");
    video::with_cuts(&small, &[20, 20], 10, false);
    app.submit(&small, "minimal", "ui-dead").await;
    let dead = app.wait_terminal("ui-dead", Duration::from_secs(120)).await;
    assert_eq!(dead["status"], "failed", "{dead:#}");
    let (_, events) = app.get("/v1/jobs/ui-dead/events").await;
    assert!(
        event_types(&events).contains(&"JobDeadLettered".to_owned()),
        "{events:#}"
    );
    // Its JobDeadLettered could not be delivered: a webhook dead letter.
    let dead_hooks = format!(
        "/v1/webhooks/{}/deliveries?dead=true",
        hook["id"].as_str().unwrap()
    );
    let started = std::time::Instant::now();
    while app.get(&dead_hooks).await.1["deliveries"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no webhook dead letter"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Fixed: the redrive in the browser will bring it home.
    std::fs::remove_file(&blocker).unwrap();

    // A long job, running while the browser cancels it.
    let long = work.path().join("long.mp4");
    video::with_cuts_sized(&long, &[300; 8], 25, true, (640, 360)).unwrap();
    app.submit(&long, "highlight", "ui-cancel").await;
    app.wait_for("ui-cancel", Duration::from_secs(60), |j| {
        j["status"] == "running"
    })
    .await;

    // The video the browser uploads and follows to its highlight.
    let upload = work.path().join("upload.mp4");
    video::with_cuts(&upload, &[40, 50, 40, 50], 25, true);
    let plan = json!({
        "upload": upload,
        "cancel_job": "ui-cancel",
        "dead_job": "ui-dead",
        "reader_key": reader,
        "tenant": tenant,
    });
    std::fs::write(work.path().join("plan.json"), plan.to_string()).unwrap();

    let started = std::time::Instant::now();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(browser.join("dashboard.mjs"))
        .args([&app.url, &app.dev.api_key])
        .arg(work.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("the browser script ran past {LIMIT:?}"))
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success(),
        "the browser script failed ({}); its output:\n{text}",
        out.status
    );
    eprintln!("browser script: {:?}", started.elapsed());

    // What the browser did, as the API sees it.
    let (_, cancelled) = app.get("/v1/jobs/ui-cancel").await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled:#}");
    let (_, redriven) = app.get("/v1/jobs/ui-dead/events").await;
    assert!(event_types(&redriven).contains(&"JobRedriven".to_owned()));
    let (_, mine) = app.get("/v1/jobs?limit=50").await;
    let from_browser = mine["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["labels"]["from"] == "browser")
        .unwrap_or_else(|| panic!("no job submitted from the browser: {mine:#}"));
    assert_eq!(from_browser["status"], "succeeded", "{from_browser:#}");
    app.dev.stop().await;
}
