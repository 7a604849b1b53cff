//! The HTTP calls the end-to-end harnesses make on Sprocket's status API, in
//! one place: the in-process [`crate::TestApp`] and the process tests' stack
//! both go through these. Transport failures panic with the request named;
//! the status is returned (or asserted where the caller needs a success).

use std::path::Path;

use reqwest::Client;
use serde_json::Value;

/// An HTTP client that sends `key` as `Authorization: Bearer <key>` on
/// every request (and goes through no proxy). A request that gets no
/// answer in a minute fails (streams read with their own clients).
pub fn client(key: Option<&str>) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = key {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {key}")
                .parse()
                .expect("a key is a header value"),
        );
    }
    Client::builder()
        .no_proxy()
        .default_headers(headers)
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// `GET url`: the status and the JSON body (`Null` when there is none).
pub async fn get(http: &Client, url: &str) -> (u16, Value) {
    let r = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `POST url` with a JSON body: the status and the JSON answer.
pub async fn post_json(http: &Client, url: &str, body: &Value) -> (u16, Value) {
    let r = http
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `GET url`, which must answer 200: the body's bytes.
pub async fn bytes(http: &Client, url: &str) -> Vec<u8> {
    let r = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status(), 200, "GET {url}");
    r.bytes().await.expect("body").to_vec()
}

/// Uploads `file` to the API at `base` (`POST /v1/uploads`, which must answer
/// 201): the answer, whose `upload` is the id a job's source names.
pub async fn upload(http: &Client, base: &str, file: &Path) -> Value {
    let bytes = std::fs::read(file).expect("test file");
    let url = format!("{base}/v1/uploads");
    let r = http
        .post(&url)
        .body(bytes)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    assert_eq!(r.status(), 201, "upload");
    r.json().await.expect("upload JSON")
}

/// Whether a job (as `GET /v1/jobs/{id}` shows it) has finished.
pub fn is_terminal(job: &Value) -> bool {
    matches!(
        job["status"].as_str(),
        Some("succeeded" | "failed" | "cancelled")
    )
}
