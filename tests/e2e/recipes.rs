//! Recipes as data: stored with `PUT /v1/recipes/{name}`, versioned, read
//! back (through the API and `sprocket recipes`), kept on Kafka across a
//! restart of the stack, and recorded with their version by the jobs that
//! name them, whether submitted through the API or straight to the intake.

use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{json, Value};
use sprocket_core::{Phase, Topics};
use sprocket_platform::config::Config;
use sprocket_server::dev::{Dev, DevOptions, Infra};
use sprocket_tests::procs::sprocket_bin;
use sprocket_tests::{api, kcat_consume, kcat_produce, TestApp};

async fn put(http: &Client, base: &str, name: &str, body: &Value) -> (u16, Value) {
    let resp = http
        .put(format!("{base}/v1/recipes/{name}"))
        .json(body)
        .send()
        .await
        .expect("PUT answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn clip(max_seconds: f64) -> Value {
    json!({"steps": [
        {"phase": "ingest"},
        {"phase": "analyze", "params": {"max_seconds": max_seconds}},
        {"phase": "render", "params": {"outputs": ["poster"]}},
    ]})
}

/// Polls `GET path` until `done` holds for its body, or panics after 30 s.
async fn eventually(http: &Client, url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, body) = api::get(http, url).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{url} never got there; last seen: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recipes_are_stored_versioned_validated_and_pinned_by_jobs() {
    // The ingest worker accepts submissions; no media work is needed.
    let app = TestApp::start_with(vec![Phase::Ingest], Config::default()).await;
    let (http, url) = (&app.http, app.url.as_str());

    let (status, schema) = api::get(http, &format!("{url}/v1/recipes/schema")).await;
    assert_eq!(status, 200);
    assert_eq!(schema["title"], "sprocket.Recipe", "{schema}");

    // Versions: a new body is the next version, the same body is no change.
    let (status, v1) = put(http, url, "clip", &clip(1.0)).await;
    assert_eq!((status, &v1["version"]), (201, &json!(1)), "{v1}");
    assert_eq!(v1["recipe"]["name"], "clip");
    let (status, same) = put(http, url, "clip", &clip(1.0)).await;
    assert_eq!((status, &same["version"]), (200, &json!(1)), "{same}");
    let (status, v2) = put(http, url, "clip", &clip(2.0)).await;
    assert_eq!((status, &v2["version"]), (201, &json!(2)), "{v2}");

    // Refusals, each saying where.
    let (status, e) = put(http, url, "highlight", &clip(1.0)).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("builtin_recipe"))
    );
    let bad_phase = json!({"steps": [{"phase": "ingest"}, {"phase": "paint"}]});
    let (status, e) = put(http, url, "bad", &bad_phase).await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/steps/1/phase"),
        "{e}"
    );
    let unordered = json!({"steps": [{"phase": "render"}, {"phase": "ingest"}]});
    let (status, e) = put(http, url, "bad", &unordered).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_recipe")),
        "{e}"
    );
    let gif = json!({"steps": [{"phase": "ingest"}, {"phase": "render", "params": {"outputs": [{"output": "gif"}]}}]});
    let (status, e) = put(http, url, "bad", &gif).await;
    assert_eq!(status, 400, "{e}");
    let says = e["error"]["message"].as_str().unwrap();
    assert!(says.contains("/steps/1/params/outputs/0"), "{e}");
    // What only the render worker's own reading refuses.
    let twice = json!({"steps": [{"phase": "ingest"}, {"phase": "render", "params": {"outputs": ["poster", "poster"]}}]});
    let (status, e) = put(http, url, "bad", &twice).await;
    assert_eq!(status, 400, "{e}");
    let says = e["error"]["message"].as_str().unwrap();
    assert!(says.contains("/steps/1") && says.contains("twice"), "{e}");
    let (status, _) = put(http, url, "Bad Name", &clip(1.0)).await;
    assert_eq!(status, 400);
    let (_, _, writer) = app.key("acme", &["jobs:read", "jobs:write"]).await;
    assert_eq!(put(&writer, url, "mine", &clip(1.0)).await.0, 403);
    let (status, e) = api::get(http, &format!("{url}/v1/recipes/bad")).await;
    assert_eq!(status, 404, "nothing refused was stored: {e}");

    // Reading: the built-ins, then the latest of each stored name.
    let (status, all) = api::get(&writer, &format!("{url}/v1/recipes")).await;
    assert_eq!(status, 200, "a jobs:read key lists them");
    let names: Vec<(&str, &Value)> = all["recipes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), &r["version"]))
        .collect();
    assert_eq!(
        names,
        [
            ("highlight", &Value::Null),
            ("minimal", &Value::Null),
            ("clip", &json!(2))
        ]
    );
    assert_eq!(all["recipes"][0]["builtin"], true);
    let (_, old) = api::get(http, &format!("{url}/v1/recipes/clip?version=1")).await;
    assert_eq!(
        old["recipe"]["steps"][1]["params"]["max_seconds"], 1.0,
        "{old}"
    );
    assert_eq!(
        api::get(http, &format!("{url}/v1/recipes/clip?version=3"))
            .await
            .0,
        404
    );

    // A job through the API runs the latest version, recorded with it.
    let missing = app.inbox().join("absent.mp4");
    let source = json!({"path": missing});
    let (status, body) = app
        .post_job(json!({"job_id": "api-clip", "source": source, "recipe": "clip"}))
        .await;
    assert_eq!(status, 202, "{body}");
    let job = eventually(http, &format!("{url}/v1/jobs/api-clip"), |j| {
        !j["recipe_version"].is_null()
    })
    .await;
    assert_eq!(job["recipe_version"], 2, "{job}");
    assert_eq!(job["recipe"]["name"], "clip");
    assert_eq!(
        job["recipe"]["steps"][1]["params"]["max_seconds"], 2.0,
        "{job}"
    );
    // … or the version it pins; an unknown name or version is refused.
    let (status, body) = app
        .post_job(
            json!({"job_id": "api-clip1", "source": source, "recipe": "clip", "recipe_version": 1}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let job = eventually(http, &format!("{url}/v1/jobs/api-clip1"), |j| {
        !j["recipe_version"].is_null()
    })
    .await;
    assert_eq!(job["recipe_version"], 1, "{job}");
    for (recipe, version) in [("nope", None), ("clip", Some(9))] {
        let (status, e) = app
            .post_job(json!({"source": source, "recipe": recipe, "recipe_version": version}))
            .await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (422, Some("unknown_recipe")),
            "{e}"
        );
    }

    // Stored, then at once submitted straight to the intake by name: the
    // ingest worker reads the recipes topic to its end before refusing, and
    // records the recipe inline with its version.
    let (status, _) = put(http, url, "straight", &clip(1.5)).await;
    assert_eq!(status, 201);
    let submission = json!({"job_id": "kafka-straight", "type": "JobSubmitted",
        "data": {"source": source, "recipe": "straight"}});
    kcat_produce(
        &app.kafka(),
        "sprocket.ingest",
        "kafka-straight",
        submission.to_string().as_bytes(),
    );
    let job = eventually(http, &format!("{url}/v1/jobs/kafka-straight"), |j| {
        !j["recipe_version"].is_null()
    })
    .await;
    assert_eq!(job["recipe_version"], 1, "{job}");
    assert_eq!(
        job["recipe"]["steps"][1]["params"]["max_seconds"], 1.5,
        "{job}"
    );
    let (_, events) = api::get(http, &format!("{url}/v1/jobs/kafka-straight/events")).await;
    assert_eq!(events["events"][0]["data"]["recipe_version"], 1, "{events}");
    // Kafka tooling sees the stored versions on sprocket.recipes, keyed by name.
    let records = kcat_consume(&app.kafka(), "sprocket.recipes", "%k %s\n");
    let mut keys: Vec<&str> = records
        .lines()
        .filter_map(|l| l.split(' ').next())
        .collect();
    keys.sort();
    assert_eq!(keys, ["clip", "clip", "straight"], "{records}");

    // The CLI.
    let file = app.data.path().join("cli.json");
    std::fs::write(&file, clip(3.0).to_string()).unwrap();
    let sprocket = |args: &[&str]| {
        let out = std::process::Command::new(sprocket_bin())
            .args(args)
            .args(["--api", url])
            .env("SPROCKET_API_KEY", &app.dev.api_key)
            .output()
            .expect("sprocket runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "sprocket {args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let put_out = sprocket(&["recipes", "put", "clip", file.to_str().unwrap()]);
    assert!(put_out.contains("stored as version 3"), "{put_out}");
    let again = sprocket(&["recipes", "put", "clip", file.to_str().unwrap()]);
    assert!(again.contains("unchanged"), "{again}");
    let listed = sprocket(&["recipes", "list"]);
    let row = listed
        .lines()
        .find(|l| l.starts_with("clip "))
        .expect(&listed);
    assert!(
        row.contains(" 3 ") && row.contains("ingest → analyze → render"),
        "{listed}"
    );
    assert!(listed
        .lines()
        .any(|l| l.starts_with("minimal") && l.contains("built-in")));
    let shown = sprocket(&["recipes", "show", "clip", "--version", "2"]);
    let json_part: String = shown.lines().skip(1).collect::<Vec<_>>().join("\n");
    let shown: Value = serde_json::from_str(&json_part).expect(&shown);
    assert_eq!(shown["steps"][1]["params"]["max_seconds"], 2.0);
    app.dev.stop().await;
}

/// The stored recipes live on Kafka: a stack started again on the same
/// Kafka (with fresh projections) reads them back, and a job names them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stored_recipes_outlive_a_restart() {
    let infra = Infra::start("127.0.0.1:0", "127.0.0.1:0", &Topics::default(), 3)
        .await
        .unwrap();
    let start = |data: &std::path::Path| {
        let opts = DevOptions {
            data_dir: data.to_owned(),
            api_addr: "127.0.0.1:0".into(),
            kafka_addr: "127.0.0.1:0".into(),
            registry_addr: "127.0.0.1:0".into(),
            workers: vec![Phase::Ingest],
            kafka: Some(infra.bootstrap_servers()),
            registry: Some(infra.registry_url()),
        };
        async move { Dev::start(&opts, Config::default()).await.unwrap() }
    };
    let (first_data, second_data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    let first = start(first_data.path()).await;
    let http = api::client(Some(&first.api_key));
    let (status, stored) = put(&http, &first.api_url(), "kept", &clip(1.0)).await;
    assert_eq!(status, 201, "{stored}");
    let (status, _) = put(&http, &first.api_url(), "kept", &clip(2.0)).await;
    assert_eq!(status, 201);
    first.stop().await;

    let second = start(second_data.path()).await;
    let (http, url) = (api::client(Some(&second.api_key)), second.api_url());
    let (status, back) = api::get(&http, &format!("{url}/v1/recipes/kept")).await;
    assert_eq!((status, &back["version"]), (200, &json!(2)), "{back}");
    assert_eq!(back["stored_by"], stored["stored_by"]);
    let (status, v1) = api::get(&http, &format!("{url}/v1/recipes/kept?version=1")).await;
    assert_eq!(
        (status, &v1["recipe"]["steps"][1]["params"]["max_seconds"]),
        (200, &json!(1.0))
    );
    // Storing the latest again after the restart changes nothing.
    assert_eq!(put(&http, &url, "kept", &clip(2.0)).await.0, 200);

    let (status, body) = api::post_json(
        &http,
        &format!("{url}/v1/jobs"),
        &json!({"job_id": "after-restart", "source": {"path": "/nowhere/x.mp4"}, "recipe": "kept"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let job = eventually(&http, &format!("{url}/v1/jobs/after-restart"), |j| {
        !j["recipe_version"].is_null()
    })
    .await;
    assert_eq!(job["recipe_version"], 2, "{job}");
    second.stop().await;
    drop(infra);
}
