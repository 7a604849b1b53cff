//! The layers every route sits behind: a panic answers 500 with a request
//! id and nothing of the panic, and CORS is off unless origins are named.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;

use super::hardened;

fn app(cors: &[&str]) -> Router {
    let origins: Vec<String> = cors.iter().map(|o| o.to_string()).collect();
    let router = Router::new().route("/ok", get(|| async { "ok" })).route(
        "/boom",
        get(|| async {
            if std::hint::black_box(true) {
                panic!("db password is hunter2");
            }
            "unreachable"
        }),
    );
    hardened(router, &origins)
}

async fn body(resp: axum::response::Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_panicking_handler_answers_500_with_a_request_id_and_no_details() {
    let app = app(&[]);
    let resp = app
        .clone()
        .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let b = body(resp).await;
    assert_eq!(b["error"]["code"], "internal");
    assert_eq!(b["error"]["request_id"], id.as_str());
    assert!(!b.to_string().contains("hunter2"), "{b}");
    // The server goes on answering.
    let resp = app
        .oneshot(Request::get("/ok").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn cors_answers_only_the_configured_origins() {
    let ask = |app: Router, origin: &'static str| async move {
        let pre = Request::builder()
            .method("OPTIONS")
            .uri("/ok")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .body(Body::empty())
            .unwrap();
        let resp = app.oneshot(pre).await.unwrap();
        resp.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    // Off by default: no origin is told it may call.
    assert_eq!(ask(app(&[]), "https://evil.example").await, None);
    let configured = app(&["https://app.example.com"]);
    assert_eq!(
        ask(configured.clone(), "https://app.example.com")
            .await
            .as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(ask(configured, "https://evil.example").await, None);
}
