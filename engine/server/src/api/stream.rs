//! A job's events live, as Server-Sent Events: its history first, then each
//! event as the projector records it, until the job ends.
//!
//! Each event's `id:` is its place in the job's history (1, 2, … without
//! gaps), so a client that reconnects with `Last-Event-ID: n` gets
//! everything after the n-th event: no gap, no repeat. `data:` is the event
//! envelope's JSON. New events are read from the projections every
//! [`POLL`]; comments keep an idle connection open.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use sprocket_core::{Envelope, EventBody, JobId};
use sprocket_projections::Projections;
use tokio_util::sync::CancellationToken;

use super::error::{AuthErrors, JobErrors};
use super::jobs::{job_id, load};
use super::{ApiError, AppState};
use crate::auth::{Authorized, Read};

/// How often a stream looks for new events.
pub const POLL: Duration = Duration::from_millis(200);

/// `GET /v1/jobs/{id}/events/stream`.
#[utoipa::path(get, path = "/v1/jobs/{id}/events/stream", tag = "jobs",
    params(
        ("id" = String, Path, description = "The job id", pattern = "^[A-Za-z0-9_-]{1,64}$"),
        ("Last-Event-ID" = Option<String>, Header,
            description = "The `id` of the last event received: the stream goes on after it"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: each event as `id: <n>` and \
            `data: <envelope JSON>`; the stream ends after the job's terminal event",
            content_type = "text/event-stream", body = String),
        JobErrors,
        AuthErrors,
    ),
    security(("bearer" = [])),
)]
pub async fn job(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = job_id(&id)?;
    load(&s, &caller, &id).await?;
    let after = match headers.get("last-event-id") {
        None => 0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_last_event_id",
                    "Last-Event-ID must be the id of an event this stream sent",
                )
            })?,
    };
    let keep_alive = Duration::from_millis(s.config.api.sse_keep_alive_ms.max(1));
    let events = follow(s.projections.clone(), id, after, s.closing.clone());
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(keep_alive)))
}

/// Where a stream is: the last event sent, the events read but not sent,
/// whether the job has ended.
struct Cursor {
    projections: Projections,
    id: JobId,
    after: i64,
    pending: VecDeque<(i64, Envelope)>,
    ended: bool,
    /// The API is shutting down.
    closing: CancellationToken,
}

/// The job's events after the `after`-th, as they are recorded, ending with
/// its terminal event.
fn follow(
    projections: Projections,
    id: JobId,
    after: i64,
    closing: CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let cursor = Cursor {
        projections,
        id,
        after,
        pending: VecDeque::new(),
        ended: false,
        closing,
    };
    futures::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some((seq, env)) = c.pending.pop_front() {
                c.after = seq;
                // Terminal, and the last event there is: a failed job that
                // was retried goes on past its `JobFailed`.
                c.ended = is_terminal(&env) && c.pending.is_empty();
                let data = String::from_utf8(env.to_json()).expect("JSON is UTF-8");
                return Some((Ok(Event::default().id(seq.to_string()).data(data)), c));
            }
            if c.ended || c.closing.is_cancelled() {
                return None;
            }
            let (p, id, after) = (c.projections.clone(), c.id.clone(), c.after);
            match tokio::task::spawn_blocking(move || p.events_after(&id, after)).await {
                Ok(Ok(events)) if !events.is_empty() => c.pending.extend(events),
                Ok(Err(e)) => {
                    // The database is away: the client sees a quiet stream
                    // (keep-alives) and gets everything once it is back.
                    tracing::warn!(job_id = %c.id, error = %e, "event stream: reading events");
                    c.pause().await;
                }
                _ => c.pause().await,
            }
        }
    })
}

impl Cursor {
    /// Waits before looking again, or until the API shuts down.
    async fn pause(&self) {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = self.closing.cancelled() => {}
        }
    }
}

/// An event after which nothing more happens to the job (unless it is
/// retried, which a new stream follows).
fn is_terminal(e: &Envelope) -> bool {
    matches!(
        e.body,
        EventBody::JobSucceeded(_) | EventBody::JobFailed(_) | EventBody::JobCancelled(_)
    )
}
