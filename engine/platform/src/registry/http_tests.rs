//! The registry's endpoints over real HTTP, table-driven where the shape allows.

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

struct Registry {
    base: String,
    http: Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start() -> Registry {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(super::serve(listener, async {
        let _ = stopped.await;
    }));
    Registry {
        base,
        http: Client::new(),
        _stop: stop,
    }
}

impl Registry {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req
                .header("content-type", super::CONTENT_TYPE)
                .body(b.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(ct, super::CONTENT_TYPE, "{path}");
        (status, res.json().await.unwrap())
    }
}

fn schema(v: Value) -> Value {
    json!({"schema": v.to_string(), "schemaType": "JSON"})
}

fn v1() -> Value {
    json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false})
}

fn v2() -> Value {
    json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "additionalProperties": false})
}

fn narrowing() -> Value {
    json!({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": false})
}

/// A method, a path and maybe a body.
type Request = (Method, String, Option<Value>);

#[tokio::test]
async fn endpoints_answer_like_confluent() {
    let r = start().await;
    use Method as M;
    let get = |p: &str| (M::GET, p.to_owned(), None);
    let post = |p: &str, b: Value| (M::POST, p.to_owned(), Some(b));
    let put = |p: &str, b: Value| (M::PUT, p.to_owned(), Some(b));
    // (request, expected status, expected body or fields of it)
    let steps: Vec<(Request, u16, Value)> = vec![
        (get("/subjects"), 200, json!([])),
        (
            get("/config"),
            200,
            json!({"compatibilityLevel": "BACKWARD"}),
        ),
        (
            post("/subjects/s/versions", schema(v1())),
            200,
            json!({"id": 1}),
        ),
        (
            post("/subjects/s/versions", schema(v1())),
            200,
            json!({"id": 1}),
        ),
        (
            post("/subjects/other/versions", schema(v1())),
            200,
            json!({"id": 1}),
        ),
        (
            post("/subjects/s/versions", schema(v2())),
            200,
            json!({"id": 2}),
        ),
        (get("/subjects"), 200, json!(["other", "s"])),
        (get("/subjects/s/versions"), 200, json!([1, 2])),
        (
            get("/subjects/s/versions/latest"),
            200,
            json!({"subject": "s", "version": 2, "id": 2, "schemaType": "JSON", "schema": v2().to_string()}),
        ),
        (
            get("/subjects/s/versions/1"),
            200,
            json!({"subject": "s", "version": 1, "id": 1, "schemaType": "JSON", "schema": v1().to_string()}),
        ),
        (get("/subjects/s/versions/1/schema"), 200, v1()),
        (
            get("/schemas/ids/2"),
            200,
            json!({"schema": v2().to_string(), "schemaType": "JSON"}),
        ),
        (
            get("/schemas/ids/1/versions"),
            200,
            json!([{"subject": "other", "version": 1}, {"subject": "s", "version": 1}]),
        ),
        (
            post("/subjects/s", schema(v1())),
            200,
            json!({"subject": "s", "version": 1, "id": 1, "schemaType": "JSON", "schema": v1().to_string()}),
        ),
        (
            post("/compatibility/subjects/s/versions/latest", schema(v2())),
            200,
            json!({"is_compatible": true, "messages": []}),
        ),
        (
            post("/compatibility/subjects/s/versions", schema(v2())),
            200,
            json!({"is_compatible": true, "messages": []}),
        ),
        (
            post("/subjects/s/versions", schema(narrowing())),
            409,
            json!({"error_code": 409}),
        ),
        (
            put("/config/s", json!({"compatibility": "NONE"})),
            200,
            json!({"compatibility": "NONE"}),
        ),
        (get("/config/s"), 200, json!({"compatibilityLevel": "NONE"})),
        (
            get("/config/other"),
            200,
            json!({"compatibilityLevel": "BACKWARD"}),
        ),
        (
            post("/subjects/s/versions", schema(narrowing())),
            200,
            json!({"id": 3}),
        ),
        (
            put("/config", json!({"compatibility": "BACKWARD_TRANSITIVE"})),
            200,
            json!({"compatibility": "BACKWARD_TRANSITIVE"}),
        ),
        (
            put("/config", json!({"compatibility": "SIDEWAYS"})),
            422,
            json!({"error_code": 42203}),
        ),
        (
            get("/subjects/nope/versions"),
            404,
            json!({"error_code": 40401, "message": "Subject 'nope' not found."}),
        ),
        (
            get("/subjects/s/versions/9"),
            404,
            json!({"error_code": 40402}),
        ),
        (
            get("/subjects/s/versions/zero"),
            422,
            json!({"error_code": 42202}),
        ),
        (get("/schemas/ids/99"), 404, json!({"error_code": 40403})),
        (
            post("/subjects/s", schema(json!({"type": "boolean"}))),
            404,
            json!({"error_code": 40403}),
        ),
        (
            post(
                "/subjects/s/versions",
                json!({"schema": "{nope", "schemaType": "JSON"}),
            ),
            422,
            json!({"error_code": 42201}),
        ),
        (
            post(
                "/subjects/s/versions",
                json!({"schema": "{\"type\": 12}", "schemaType": "JSON"}),
            ),
            422,
            json!({"error_code": 42201}),
        ),
        (
            post("/subjects/s/versions", json!({"schema": "{}"})),
            422,
            json!({"error_code": 42201}),
        ),
        ((M::DELETE, "/subjects/other".into(), None), 200, json!([1])),
        (get("/subjects"), 200, json!(["s"])),
        (
            get("/subjects/other/versions"),
            404,
            json!({"error_code": 40401}),
        ),
        (
            get("/schemas/ids/1"),
            200,
            json!({"schema": v1().to_string(), "schemaType": "JSON"}),
        ),
    ];
    for ((method, path, body), status, want) in steps {
        let (got_status, got) = r.call(method.clone(), &path, body).await;
        assert_eq!(got_status.as_u16(), status, "{method} {path}: {got}");
        match (&want, &got) {
            (Value::Object(w), Value::Object(g)) => {
                for (k, v) in w {
                    assert_eq!(g.get(k), Some(v), "{method} {path}: {got}");
                }
            }
            _ => assert_eq!(got, want, "{method} {path}"),
        }
    }
}

#[tokio::test]
async fn incompatible_answers_say_why() {
    let r = start().await;
    r.call(Method::POST, "/subjects/s/versions", Some(schema(v1())))
        .await;
    let (status, body) = r
        .call(
            Method::POST,
            "/compatibility/subjects/s/versions/latest",
            Some(schema(narrowing())),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["is_compatible"], false);
    let messages = body["messages"].as_array().unwrap();
    assert!(
        messages.iter().any(|m| m
            .as_str()
            .unwrap()
            .contains("#/properties/a: type narrowed")),
        "{body}"
    );
    let (status, body) = r
        .call(
            Method::POST,
            "/subjects/s/versions",
            Some(schema(narrowing())),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        body["message"].as_str().unwrap().contains("type narrowed"),
        "{body}"
    );
}

#[tokio::test]
async fn transitive_levels_check_every_version() {
    let r = start().await;
    let s = |t: &str| schema(json!({"type": t}));
    r.call(
        Method::PUT,
        "/config/t",
        Some(json!({"compatibility": "NONE"})),
    )
    .await;
    assert_eq!(
        r.call(Method::POST, "/subjects/t/versions", Some(s("integer")))
            .await
            .0,
        200
    );
    assert_eq!(
        r.call(Method::POST, "/subjects/t/versions", Some(s("string")))
            .await
            .0,
        200
    );
    r.call(
        Method::PUT,
        "/config/t",
        Some(json!({"compatibility": "BACKWARD"})),
    )
    .await;
    // Against the latest only: ["string", "boolean"] reads strings.
    let union = schema(json!({"type": ["string", "boolean"]}));
    let (_, body) = r
        .call(
            Method::POST,
            "/compatibility/subjects/t/versions",
            Some(union.clone()),
        )
        .await;
    assert_eq!(body["is_compatible"], true, "{body}");
    r.call(
        Method::PUT,
        "/config/t",
        Some(json!({"compatibility": "BACKWARD_TRANSITIVE"})),
    )
    .await;
    let (_, body) = r
        .call(
            Method::POST,
            "/compatibility/subjects/t/versions",
            Some(union.clone()),
        )
        .await;
    assert_eq!(body["is_compatible"], false, "{body}");
    assert_eq!(
        r.call(Method::POST, "/subjects/t/versions", Some(union))
            .await
            .0,
        409
    );
}

#[tokio::test]
async fn content_types() {
    let r = start().await;
    let body = schema(v1()).to_string();
    for (ct, status) in [
        ("application/json", 200),
        ("application/vnd.schemaregistry.v1+json", 200),
        ("application/json; charset=utf-8", 200),
        ("text/plain", 415),
    ] {
        let res = r
            .http
            .post(format!("{}/subjects/ct/versions", r.base))
            .header("content-type", ct)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{ct}");
    }
}

/// A peer that is not on this machine may read but not change anything.
#[tokio::test]
async fn only_this_machine_may_change_the_registry() {
    use axum::extract::connect_info::MockConnectInfo;
    // One registry, reached by two peers.
    let registry = super::router();
    let serve_as = |peer: [u8; 4]| {
        let app = registry.clone();
        async move {
            let app = app
                .layer(axum::middleware::from_fn(super::loopback_writes))
                .layer(MockConnectInfo(std::net::SocketAddr::from((peer, 40000))));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            base
        }
    };
    let schema = json!({"schemaType": "JSON", "schema": "{\"type\":\"object\"}"});
    let http = Client::new();
    let send = |base: String, method: Method, path: &'static str| {
        let http = http.clone();
        let body = schema.to_string();
        async move {
            http.request(method, format!("{base}{path}"))
                .header("content-type", super::CONTENT_TYPE)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let remote = serve_as([10, 1, 2, 3]).await;
    assert_eq!(
        send(remote.clone(), Method::POST, "/subjects/s-value/versions").await,
        403
    );
    assert_eq!(
        send(remote.clone(), Method::DELETE, "/subjects/s-value").await,
        403
    );
    assert_eq!(send(remote.clone(), Method::PUT, "/config").await, 403);
    assert_eq!(send(remote.clone(), Method::GET, "/subjects").await, 200);
    let local = serve_as([127, 0, 0, 1]).await;
    assert_eq!(
        send(local.clone(), Method::POST, "/subjects/s-value/versions").await,
        200
    );
    // Once registered, a remote lookup (a POST that changes nothing) answers.
    assert_eq!(send(remote, Method::POST, "/subjects/s-value").await, 200);
}
