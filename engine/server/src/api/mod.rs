//! The status API (axum). It writes only to Kafka (and uploads to the object
//! store) and reads only the projections.

mod artifacts;
mod control;
mod error;
mod filters;
mod health;
mod jobs;
mod keys;
mod me;
pub mod openapi;
mod phases;
mod quota;
mod recipes;
mod stream;
mod uploads;
mod view;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use rdkafka::producer::FutureProducer;
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;
use sprocket_projections::Projections;
use sprocket_workers::Stores;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;
pub use view::JobView;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub bus: Bus,
    pub producer: FutureProducer,
    pub projections: Projections,
    pub stores: Stores,
    pub config: Arc<Config>,
    pub lag: Arc<crate::lag::LagProbe>,
    pub keys: Arc<crate::auth::Keys>,
    /// The stored recipes, read from `sprocket.recipes`.
    pub recipes: sprocket_platform::recipes::RecipeBook,
    /// Cancelled when the API begins to shut down: open event streams end,
    /// so that the graceful shutdown does not wait on them for ever.
    pub closing: tokio_util::sync::CancellationToken,
}

impl AppState {
    /// Produces an event to `topic` and waits for Kafka's acknowledgement.
    pub async fn publish(
        &self,
        topic: &str,
        env: &sprocket_core::Envelope,
    ) -> Result<(), ApiError> {
        let record = self
            .bus
            .record(topic, env)
            .await
            .map_err(ApiError::unavailable)?;
        self.bus
            .send(&self.producer, &record)
            .await
            .map_err(ApiError::unavailable)?;
        Ok(())
    }
}

/// Every route with its documentation: `routes!` adds a handler to the router
/// and its `#[utoipa::path]` to the OpenAPI document together.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(<openapi::ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(uploads::create))
        .routes(routes!(jobs::submit, jobs::list))
        .routes(routes!(jobs::show))
        .routes(routes!(jobs::events))
        .routes(routes!(stream::job))
        .routes(routes!(stream::tenant))
        .routes(routes!(control::cancel))
        .routes(routes!(control::retry))
        .routes(routes!(artifacts::download))
        .routes(routes!(phases::list))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::revoke))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(recipes::list))
        .routes(routes!(recipes::schema))
        .routes(routes!(recipes::put, recipes::show))
        .routes(routes!(me::show))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi::serve))
}

pub fn router(state: AppState) -> Router {
    let (router, _) = routes().split_for_parts();
    let router = router
        // The web dashboard (`/`, `/ui/…`): pages for people, not API
        // operations, so not in the OpenAPI document.
        .merge(crate::dashboard::router())
        .fallback(error::not_found);
    hardened(router, &state.config.api.cors_origins).with_state(state)
}

/// The layers around every route: a handler that panics answers 500 with a
/// request id (counted by `track` like any other answer) instead of dropping
/// the connection; bodies over 1 MiB are refused unless a route allows more;
/// and CORS only for the configured origins.
fn hardened<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    cors_origins: &[String],
) -> Router<S> {
    let router = router
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn(track))
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20));
    match cors(cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// A handler's panic as the server error every 5xx is: the details in the
/// log under a request id, only the id in the answer.
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("the handler panicked: {what}"),
    )
    .into_response()
}

/// CORS for `origins` (checked by `Config::validate`), or none at all.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([
                header::RETRY_AFTER,
                header::CONTENT_DISPOSITION,
                HeaderName::from_static("x-request-id"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// Counts every request and its latency by route template and status.
async fn track(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let m = sprocket_platform::metrics::metrics();
    m.http_requests.with_label_values(&[&route, &status]).inc();
    m.http_duration
        .with_label_values(&[&route, &status])
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// Serves the API on `listener` until `shutdown` completes; then event
/// streams end and requests under way finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = state.closing.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            closing.cancel();
        })
        .await
}

#[cfg(test)]
mod hardening_tests;
