//! Events live, as Server-Sent Events: one job's (its history first, then
//! each event as the projector records it, until the job ends), or every
//! event of the caller's tenant from now on.
//!
//! A job stream's `id:` is the event's place in the job's history (1, 2, …
//! without gaps); a tenant stream's is its place in the order the projector
//! recorded every event (its ordinal). Either way a client that reconnects
//! with `Last-Event-ID: n` gets everything after it: no gap, no repeat.
//! `data:` is the event envelope's JSON. New events are read from the
//! projections every [`POLL`]; comments keep an idle connection open.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use sprocket_core::{Envelope, EventBody, JobId, JobStatus};
use sprocket_projections::Projections;
use tokio_util::sync::CancellationToken;

use super::error::{AuthErrors, ErrorBody, JobErrors};
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
    let after = last_event_id(&headers)?.unwrap_or(0);
    Ok(sse(&s, Scope::Job(id), after))
}

/// `GET /v1/events/stream?status=&label=` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    /// Only events of jobs now in this status.
    #[param(value_type = Option<JobStatus>)]
    status: Option<String>,
    /// Only events of jobs with this label, as `key=value`.
    label: Option<String>,
}

/// `GET /v1/events/stream`: every event of the caller's tenant (an admin's:
/// every tenant's) from now on, or after `Last-Event-ID`.
#[utoipa::path(get, path = "/v1/events/stream", tag = "jobs",
    params(
        TenantQuery,
        ("Last-Event-ID" = Option<String>, Header,
            description = "The `id` of the last event received: the stream goes on after it"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: each event as `id: <ordinal>` and \
            `data: <envelope JSON>`, for as long as the client stays",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "A bad filter or `Last-Event-ID`", body = ErrorBody),
        AuthErrors,
        (status = 503, description = "The projections do not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn tenant(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    q: Result<Query<TenantQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(q) = q?;
    let status = q
        .status
        .as_deref()
        .map(super::filters::status)
        .transpose()?;
    let label = q.label.as_deref().map(super::filters::label).transpose()?;
    let after = match last_event_id(&headers)? {
        Some(n) => n,
        None => {
            let p = s.projections.clone();
            tokio::task::spawn_blocking(move || p.last_ordinal())
                .await
                .map_err(ApiError::unavailable)??
        }
    };
    let scope = Scope::Tenant {
        tenant: caller.listing().map(str::to_owned),
        status,
        label,
    };
    Ok(sse(&s, scope, after))
}

/// The `Last-Event-ID` a reconnecting client sent, if any.
fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_last_event_id",
                        "Last-Event-ID must be the id of an event this stream sent",
                    )
                })
        })
        .transpose()
}

fn sse(
    s: &AppState,
    scope: Scope,
    after: i64,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let keep_alive = Duration::from_millis(s.config.api.sse_keep_alive_ms.max(1));
    let events = follow(s.projections.clone(), scope, after, s.closing.clone());
    Sse::new(events).keep_alive(KeepAlive::new().interval(keep_alive))
}

/// What a stream follows.
enum Scope {
    /// One job's events, by their place in its history; it ends with the job.
    Job(JobId),
    /// The events of a tenant's jobs (`None`: every tenant's), by ordinal.
    Tenant {
        tenant: Option<String>,
        status: Option<JobStatus>,
        label: Option<(String, String)>,
    },
}

/// Most events a tenant stream reads at once.
const TENANT_PAGE: u32 = 500;

impl Scope {
    /// The events after `after`, and how far that read went (past events
    /// that were read and filtered out).
    fn read(&self, p: &Projections, after: i64) -> Result<(Vec<(i64, Envelope)>, i64), ApiError> {
        match self {
            Scope::Job(id) => {
                let events = p.events_after(id, after)?;
                let to = events.last().map_or(after, |(n, _)| *n);
                Ok((events, to))
            }
            Scope::Tenant {
                tenant,
                status,
                label,
            } => {
                let rows = p.recorded_after(tenant.as_deref(), *status, after, TENANT_PAGE)?;
                let to = rows.last().map_or(after, |(n, _, _)| *n);
                let wanted = |state: &str| {
                    label.as_ref().is_none_or(|(k, v)| {
                        serde_json::from_str::<serde_json::Value>(state)
                            .is_ok_and(|job| job["labels"][k] == v.as_str())
                    })
                };
                let events = rows
                    .into_iter()
                    .filter(|(_, _, state)| wanted(state))
                    .map(|(n, e, _)| (n, e))
                    .collect();
                Ok((events, to))
            }
        }
    }
}

/// Where a stream is: what it follows, how far it has read, the events read
/// but not sent, whether its job has ended.
struct Cursor {
    projections: Projections,
    scope: std::sync::Arc<Scope>,
    after: i64,
    pending: VecDeque<(i64, Envelope)>,
    ended: bool,
    /// The API is shutting down.
    closing: CancellationToken,
}

/// The scope's events after `after`, as they are recorded; a job's stream
/// ends with its terminal event.
fn follow(
    projections: Projections,
    scope: Scope,
    after: i64,
    closing: CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let cursor = Cursor {
        projections,
        scope: std::sync::Arc::new(scope),
        after,
        pending: VecDeque::new(),
        ended: false,
        closing,
    };
    futures::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some((seq, env)) = c.pending.pop_front() {
                // A job's terminal event, and the last there is: a failed
                // job that was retried goes on past its `JobFailed`.
                c.ended =
                    matches!(*c.scope, Scope::Job(_)) && is_terminal(&env) && c.pending.is_empty();
                let data = String::from_utf8(env.to_json()).expect("JSON is UTF-8");
                return Some((Ok(Event::default().id(seq.to_string()).data(data)), c));
            }
            if c.ended || c.closing.is_cancelled() {
                return None;
            }
            let (p, scope, after) = (c.projections.clone(), c.scope.clone(), c.after);
            let read = tokio::task::spawn_blocking(move || scope.read(&p, after))
                .await
                .unwrap_or_else(|e| Err(ApiError::unavailable(e)));
            match read {
                Ok((events, to)) => {
                    c.after = to;
                    if events.is_empty() {
                        c.pause().await;
                    }
                    c.pending.extend(events);
                }
                Err(e) => {
                    // The database is away: the client sees a quiet stream
                    // (keep-alives) and gets everything once it is back.
                    tracing::warn!(error = %e.message, "event stream: reading events");
                    c.pause().await;
                }
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
