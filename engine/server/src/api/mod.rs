//! The status API (axum). It writes only to Kafka (and uploads to the object
//! store) and reads only the projections.

mod artifacts;
mod control;
mod error;
mod health;
mod jobs;
mod phases;
mod uploads;
mod view;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use rdkafka::producer::FutureProducer;
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;
use sprocket_projections::Projections;
use sprocket_workers::Stores;

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

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/uploads", post(uploads::create))
        .route("/v1/jobs", post(jobs::submit).get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::show))
        .route("/v1/jobs/{id}/events", get(jobs::events))
        .route("/v1/jobs/{id}/cancel", post(control::cancel))
        .route("/v1/jobs/{id}/retry", post(control::retry))
        .route("/v1/jobs/{id}/artifacts/{name}", get(artifacts::download))
        .route("/v1/phases", get(phases::list))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route(
            "/metrics",
            get(|| async { sprocket_platform::metrics::exposition() }),
        )
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn(track))
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        .with_state(state)
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

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
