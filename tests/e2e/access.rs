//! Who may do what: API keys with scopes, tenants that see only their own
//! jobs and uploads, per-tenant quotas, revocation, the dev key and the
//! `sprocket keys` commands.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use reqwest::{Client, Method};
use serde_json::{json, Value};
use sprocket_core::Phase;
use sprocket_platform::config::{Config, Quota};
use sprocket_server::auth::{Keys, CACHE_FOR};
use sprocket_tests::procs::sprocket_bin;
use sprocket_tests::{api, kcat_produce, video, TestApp};

/// A key made with the app's admin key: its id, and a client that sends it.
async fn key(app: &TestApp, tenant: &str, scopes: &[&str]) -> (String, Client) {
    let (id, _, http) = app.key(tenant, scopes).await;
    (id, http)
}

async fn call(
    http: &Client,
    method: Method,
    url: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = http
        .request(method.clone(), url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap_or(Value::Null), headers)
}

/// Every operation the document says needs a key answers 401 without one
/// (and with a made-up one), naming the scheme; the open ones answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_keyed_operation_refuses_a_request_without_a_live_key() {
    let app = TestApp::start_with(vec![], Config::default()).await;
    let (_, doc) = app.get("/openapi.json").await;
    let anonymous = api::client(None);
    let forged = api::client(Some(&format!("spk_{}", "0".repeat(64))));
    let mut keyed = 0;
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        let url = format!(
            "{}{}",
            app.url,
            path.replace("{id}", "some-job").replace("{name}", "a.mp4")
        );
        for (method, op) in ops.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            if op["security"].is_null() {
                let (status, _, _) = call(&anonymous, method.clone(), &url).await;
                assert_eq!(status, 200, "{method} {path} is open");
                continue;
            }
            keyed += 1;
            for http in [&anonymous, &forged] {
                let (status, body, headers) = call(http, method.clone(), &url).await;
                assert_eq!(status, 401, "{method} {path}: {body}");
                assert_eq!(body["error"]["code"], "unauthorized");
                assert!(headers["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer"));
            }
        }
    }
    // 20, and the recipes' four (PUT and GET of one, the list, the schema).
    assert_eq!(keyed, 24, "keyed operations in the document");
    app.dev.stop().await;
}

/// Scopes decide what a key may do; tenants decide what it may see. Another
/// tenant's job, events, artifacts and uploads are as good as absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_act_within_their_scopes_and_their_tenant() {
    let app = TestApp::start().await;
    let (_, reader) = key(&app, "acme", &["jobs:read"]).await;
    let (_, writer) = key(&app, "acme", &["jobs:write"]).await;
    let (_, acme) = key(&app, "acme", &["jobs:read", "jobs:write"]).await;
    let (_, other) = key(&app, "globex", &["jobs:read", "jobs:write"]).await;
    let url = |p: &str| format!("{}{p}", app.url);

    // Scopes.
    let src = app.inbox().join("a.mp4");
    video::with_cuts(&src, &[15, 15], 10, true);
    let (s, body) = api::post_json(
        &reader,
        &url("/v1/jobs"),
        &json!({"source": {"upload": "x"}}),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (s, _) = api::get(&writer, &url("/v1/jobs")).await;
    assert_eq!(s, 403);
    for http in [&reader, &acme] {
        let (s, _) = api::post_json(
            http,
            &url("/v1/keys"),
            &json!({"tenant": "acme", "scopes": ["admin"]}),
        )
        .await;
        assert_eq!(s, 403, "only admin keys make keys");
        assert_eq!(api::get(http, &url("/v1/keys")).await.0, 403);
        assert_eq!(api::get(http, &url("/metrics")).await.0, 403);
    }
    let metrics = app.http.get(url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200, "an admin key reads /metrics");

    // acme's job, from acme's upload.
    let up = api::upload(&acme, &app.url, &src).await;
    let (s, body) = api::post_json(
        &acme,
        &url("/v1/jobs"),
        &json!({"job_id": "acme-1", "source": {"upload": up["upload"]}, "recipe": "minimal"}),
    )
    .await;
    assert_eq!(s, 202, "{body}");
    let job = wait_terminal(&acme, &url("/v1/jobs/acme-1")).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let artifact = job["artifacts"][0]["url"]
        .as_str()
        .expect("an artifact")
        .to_owned();
    assert_eq!(api::get(&reader, &url("/v1/jobs/acme-1")).await.0, 200);

    // globex sees none of it, and cannot act on it.
    for path in ["/v1/jobs/acme-1", "/v1/jobs/acme-1/events", &artifact] {
        let (s, body) = api::get(&other, &url(path)).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "GET {path}: {body}"
        );
    }
    for op in ["cancel", "retry"] {
        let (s, _) =
            api::post_json(&other, &url(&format!("/v1/jobs/acme-1/{op}")), &json!({})).await;
        assert_eq!(s, 404, "{op}");
    }
    let (s, body) = api::post_json(
        &other,
        &url("/v1/jobs"),
        &json!({"job_id": "globex-1", "source": {"upload": up["upload"]}}),
    )
    .await;
    assert_eq!(
        (
            s,
            body["error"]["message"]
                .as_str()
                .map(|m| m.contains("upload"))
        ),
        (404, Some(true)),
        "{body}"
    );
    let (s, body) = api::post_json(
        &other,
        &url("/v1/jobs"),
        &json!({"job_id": "acme-1", "source": {"upload": "u"}}),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("job_id_taken")),
        "{body}"
    );
    let ids = |page: &Value| -> Vec<String> {
        page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(ids(&api::get(&other, &url("/v1/jobs")).await.1).is_empty());
    assert_eq!(ids(&api::get(&acme, &url("/v1/jobs")).await.1), ["acme-1"]);
    assert_eq!(
        ids(&app.get("/v1/jobs").await.1),
        ["acme-1"],
        "admin sees every tenant"
    );

    // Straight to Kafka: a named tenant, or the default one.
    for (id, tenant) in [("kafka-globex", Some("globex")), ("kafka-default", None)] {
        let mut data = json!({"source": {"path": src.to_str().unwrap()}, "recipe": "minimal"});
        if let Some(t) = tenant {
            data["tenant"] = json!(t);
        }
        let env = json!({"job_id": id, "type": "JobSubmitted", "data": data});
        kcat_produce(
            &app.kafka(),
            "sprocket.ingest",
            id,
            env.to_string().as_bytes(),
        );
    }
    for id in ["kafka-globex", "kafka-default"] {
        app.wait_terminal(id, Duration::from_secs(60)).await;
    }
    assert_eq!(api::get(&other, &url("/v1/jobs/kafka-globex")).await.0, 200);
    assert_eq!(api::get(&acme, &url("/v1/jobs/kafka-globex")).await.0, 404);
    let (_, default_reader) = key(&app, "default", &["jobs:read"]).await;
    assert_eq!(
        api::get(&default_reader, &url("/v1/jobs/kafka-default"))
            .await
            .0,
        200
    );
    assert_eq!(
        api::get(&other, &url("/v1/jobs/kafka-default")).await.0,
        404
    );
    app.dev.stop().await;
}

async fn wait_terminal(http: &Client, url: &str) -> Value {
    for _ in 0..600 {
        let (s, job) = api::get(http, url).await;
        if s == 200 && api::is_terminal(&job) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not finish in 60 s");
}

/// A revoked key is refused once the cache's time has passed, by this API
/// and by any other reading the same database (another replica).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_key_stops_working_on_every_replica() {
    let app = TestApp::start_with(vec![], Config::default()).await;
    let (id, secret, http) = app.key("acme", &["jobs:read"]).await;
    let replica = Keys::new(
        sprocket_projections::Projections::connect(&app.dev.config.database.url).unwrap(),
    );
    assert!(replica.caller(&secret).await.unwrap().is_some());
    assert_eq!(
        api::get(&http, &format!("{}/v1/jobs", app.url)).await.0,
        200
    );
    let (other, _) = key(&app, "acme", &["jobs:read"]).await;

    for key_id in [&id, &other] {
        let r = app
            .http
            .delete(format!("{}/v1/keys/{key_id}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep(CACHE_FOR).await;
    assert_eq!(
        api::get(&http, &format!("{}/v1/jobs", app.url)).await.0,
        401
    );
    assert!(replica.caller(&secret).await.unwrap().is_none());
    let (_, keys) = app.get("/v1/keys").await;
    let revoked = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["revoked_at"].is_string())
        .count();
    assert_eq!(revoked, 2, "{keys:#}");
    assert!(
        !keys.to_string().contains(&secret[4..]),
        "keys are never listed"
    );
    let r = app
        .http
        .delete(format!("{}/v1/keys/nope", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.dev.stop().await;
}

/// Over a tenant's quota of jobs queued or running, or of bytes uploaded
/// in a day: 429 with `Retry-After`; other tenants are not held back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quotas_answer_429_with_retry_after() {
    let mut cfg = Config::default();
    cfg.tenants.quotas.insert(
        "small".into(),
        Quota {
            max_active_jobs: 1,
            max_upload_bytes_per_day: 3000,
        },
    );
    // No workers: submitted jobs stay queued.
    let app = TestApp::start_with(vec![], cfg).await;
    let (_, small) = key(&app, "small", &["jobs:read", "jobs:write"]).await;
    let (_, big) = key(&app, "big", &["jobs:read", "jobs:write"]).await;
    let dir = tempfile::tempdir().unwrap();
    let upload = |http: Client, bytes: usize| {
        let url = format!("{}/v1/uploads", app.url);
        async move {
            let r = http.post(url).body(vec![7u8; bytes]).send().await.unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            (r.status().as_u16(), retry, r.json::<Value>().await.unwrap())
        }
    };
    let (s, _, first) = upload(small.clone(), 2000).await;
    assert_eq!(s, 201);
    let (s, retry, body) = upload(small.clone(), 2000).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (429, Some("over_quota")),
        "{body}"
    );
    assert!(retry.is_some_and(|r| r >= 1));
    assert_eq!(
        upload(small.clone(), 1000).await.0,
        201,
        "what is left of the quota"
    );
    let (s, retry, _) = upload(small.clone(), 1).await;
    assert_eq!(s, 429);
    let retry = retry.expect("Retry-After");
    assert!(
        (86_000..=86_400).contains(&retry),
        "the first upload leaves the day's window in {retry} s"
    );
    assert_eq!(
        upload(big.clone(), 5000).await.0,
        201,
        "another tenant is not held back"
    );

    let submit = |http: Client, id: &str| {
        let (url, body) = (
            format!("{}/v1/jobs", app.url),
            json!({"job_id": id, "source": {"upload": first["upload"]}}),
        );
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            let retry = r.headers().get("retry-after").is_some();
            (r.status().as_u16(), retry)
        }
    };
    assert_eq!(submit(small.clone(), "small-1").await.0, 202);
    let job = format!("{}/v1/jobs/small-1", app.url);
    for _ in 0..100 {
        if api::get(&small, &job).await.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(submit(small.clone(), "small-2").await, (429, true));
    drop(dir);
    app.dev.stop().await;
}

/// `sprocket dev` keeps its admin key in `<data-dir>/api-key` (0600) and
/// uses it again on the next start; `sprocket keys` makes, lists and
/// revokes keys through the API with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_dev_key_and_the_keys_commands() {
    let app = TestApp::start_with(vec![], Config::default()).await;
    let file = app.data.path().join("api-key");
    let meta = std::fs::metadata(&file).expect("the dev key file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        app.dev.api_key
    );

    let sprocket = |args: &[&str]| {
        let out = std::process::Command::new(sprocket_bin())
            .args(args)
            .args(["--api", &app.url])
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
    let made = sprocket(&[
        "keys",
        "create",
        "--tenant",
        "cli",
        "--scopes",
        "jobs:read,jobs:write",
        "--name",
        "from the CLI",
    ]);
    let key = made.lines().last().unwrap().trim().to_owned();
    let cli = api::client(Some(&key));
    assert_eq!(api::get(&cli, &format!("{}/v1/jobs", app.url)).await.0, 200);
    let listed = sprocket(&["keys", "list"]);
    let row = listed
        .lines()
        .find(|l| l.contains("from the CLI"))
        .expect(&listed);
    let id = row.split_whitespace().next().unwrap().to_owned();
    assert!(
        row.contains("jobs:read,jobs:write") && !listed.contains(&key[4..]),
        "{listed}"
    );
    sprocket(&["keys", "revoke", &id]);
    tokio::time::sleep(CACHE_FOR).await;
    assert_eq!(api::get(&cli, &format!("{}/v1/jobs", app.url)).await.0, 401);

    // A restart on the same data directory keeps the key.
    let data = app.data.path().to_owned();
    let before = app.dev.api_key.clone();
    app.dev.stop().await;
    let opts = sprocket_server::dev::DevOptions {
        data_dir: data,
        api_addr: "127.0.0.1:0".into(),
        kafka_addr: "127.0.0.1:0".into(),
        registry_addr: "127.0.0.1:0".into(),
        workers: vec![Phase::Ingest],
        kafka: None,
        registry: None,
    };
    let again = sprocket_server::dev::Dev::start(&opts, Config::default())
        .await
        .unwrap();
    assert_eq!(again.api_key, before);
    again.stop().await;
}
