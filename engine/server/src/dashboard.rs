//! The web dashboard, served by the API at `/`: one HTML page, its script
//! modules and its stylesheet, built into the binary (plain HTML, JS and CSS
//! under `dashboard/`; no framework, no build step).
//!
//! The page holds no data: it calls the `/v1` API from the browser with the
//! API key a person types in, so these routes need no key themselves. They
//! are pages, not API operations, and stay out of the OpenAPI document
//! (`api::router` merges them beside the documented routes).
//!
//! Every answer carries a strict `Content-Security-Policy` (scripts and
//! styles only from these files, nothing inline; media and images also from
//! the `blob:` URLs the page makes of artifacts it downloads with the key),
//! `Cache-Control: no-cache` with an `ETag`, so a browser revalidates with
//! one small request and never runs a script older than the page.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::api::ApiError;

/// The policy of every dashboard answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// One file of the dashboard.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("dashboard/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file, `index.html` first (served at `/`, the others at `/ui/<name>`).
const ASSETS: [Asset; 15] = [
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("sse.js", JS),
    asset!("util.js", JS),
    asset!("login.js", JS),
    asset!("jobs.js", JS),
    asset!("job.js", JS),
    asset!("timeline.js", JS),
    asset!("outputs.js", JS),
    asset!("phases.js", JS),
    asset!("dead.js", JS),
    asset!("submit.js", JS),
];

/// The dashboard's routes, for [`crate::api::router`] to merge.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{file}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().skip(1).position(|a| a.name == name) {
        Some(i) => serve(i + 1, &headers),
        None => ApiError::not_found(format!("the dashboard has no file {name:?}")).into_response(),
    }
}

/// Each asset's `ETag`: a digest of its bytes, made once.
fn etags() -> &'static [HeaderValue] {
    static TAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.body.as_bytes());
                HeaderValue::from_str(&format!("\"{}\"", &hex::encode(digest)[..20]))
                    .expect("hex is a header value")
            })
            .collect()
    })
}

/// Asset `i`, or `304 Not Modified` when the browser's copy is current.
fn serve(i: usize, headers: &HeaderMap) -> Response {
    let asset = &ASSETS[i];
    let etag = &etags()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, etag.clone()),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
