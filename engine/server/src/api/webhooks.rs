//! Webhooks of the caller's tenant: make one (its secret shown once), list
//! them, see one's delivery attempts and dead letters, delete one.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use sprocket_core::EventKind;
use sprocket_platform::outbound::{self, AddressPolicy};
use sprocket_projections::{Delivery, Webhook};
use utoipa::ToSchema;

use super::error::{AuthErrors, ErrorBody};
use super::{ApiError, AppState};
use crate::auth::{Authorized, Read, Write};
use crate::webhooks::sign::new_secret;

/// Longest URL a webhook may have.
const MAX_URL: usize = 2048;
/// Most webhooks one tenant may have.
const MAX_PER_TENANT: usize = 100;

/// `POST /v1/webhooks` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where deliveries are POSTed: an `http` or `https` URL.
    #[schema(max_length = 2048)]
    url: String,
    /// Event types to deliver (`JobSucceeded`, `PhaseProgress`, …), or
    /// `["*"]` for every type.
    #[schema(min_items = 1)]
    events: Vec<String>,
    /// The signing secret, 16–256 characters; a random one is made when
    /// absent.
    #[schema(min_length = 16, max_length = 256)]
    secret: Option<String>,
}

/// A new webhook: `secret` is shown here only, never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: Webhook,
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<Webhook>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only dead letters (deliveries given up on).
    dead: Option<bool>,
    /// How many, 1–500 (100 when absent; values outside are clamped).
    limit: Option<u32>,
}

#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    request_body(content = CreateWebhook, content_type = "application/json"),
    responses(
        (status = 201, description = "The webhook, with its secret shown this once", body = WebhookCreated),
        (status = 400, description = "Not a valid request (URL, event types, secret)", body = ErrorBody),
        AuthErrors,
        (status = 409, description = "The tenant has the most webhooks it may have", body = ErrorBody),
        (status = 413, description = "The body is over the limit", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Write>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<WebhookCreated>), ApiError> {
    let body = body?;
    super::error::json_body(&headers, &body)?;
    let req: CreateWebhook = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_request", format!("invalid webhook: {e}")))?;
    check_url(&req.url, &s.config.webhooks.allow_private)?;
    let events = check_events(req.events)?;
    let secret = match req.secret {
        Some(secret) if !(16..=256).contains(&secret.chars().count()) => {
            return Err(ApiError::bad_request(
                "invalid_secret",
                "a secret has 16–256 characters",
            ))
        }
        Some(secret) => secret,
        None => new_secret(),
    };
    let hook = Webhook {
        id: format!("wh_{}", uuid::Uuid::now_v7().simple()),
        tenant: caller.tenant.clone(),
        url: req.url,
        events,
        secret: secret.clone(),
        created_at: sprocket_projections::timestamp(chrono::Utc::now()),
    };
    let p = s.projections.clone();
    let stored = hook.clone();
    tokio::task::spawn_blocking(move || {
        if p.webhooks(Some(&stored.tenant))?.len() >= MAX_PER_TENANT {
            return Ok(false);
        }
        p.insert_webhook(&stored).map(|()| true)
    })
    .await
    .map_err(ApiError::unavailable)?
    .map_err(ApiError::from)?
    .then_some(())
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "too_many_webhooks",
            format!("a tenant may have {MAX_PER_TENANT} webhooks; delete one first"),
        )
    })?;
    tracing::info!(webhook_id = %hook.id, tenant = %hook.tenant, "webhook created");
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreated {
            webhook: hook,
            secret,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "The tenant's webhooks (an admin's: every tenant's), oldest first", body = WebhookList),
        AuthErrors,
        (status = 503, description = "The database does not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
) -> Result<Json<WebhookList>, ApiError> {
    let p = s.projections.clone();
    let tenant = caller.listing().map(str::to_owned);
    let webhooks = tokio::task::spawn_blocking(move || p.webhooks(tenant.as_deref()))
        .await
        .map_err(ApiError::unavailable)??;
    Ok(Json(WebhookList { webhooks }))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id"), DeliveryQuery),
    responses(
        (status = 200, description = "Its latest delivery attempts, newest first", body = DeliveryList),
        (status = 400, description = "A bad query", body = ErrorBody),
        AuthErrors,
        (status = 404, description = "No such webhook of the caller's tenant", body = ErrorBody),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn deliveries(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    Path(id): Path<String>,
    q: Result<Query<DeliveryQuery>, QueryRejection>,
) -> Result<Json<DeliveryList>, ApiError> {
    let Query(q) = q?;
    let p = s.projections.clone();
    let tenant = caller.listing().map(str::to_owned);
    let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 500));
    let hook = id.clone();
    let deliveries =
        tokio::task::spawn_blocking(move || match p.webhook(&hook, tenant.as_deref())? {
            Some(_) => p
                .deliveries(&hook, q.dead.unwrap_or(false), limit)
                .map(Some),
            None => Ok(None),
        })
        .await
        .map_err(ApiError::unavailable)??
        .ok_or_else(|| ApiError::not_found(format!("webhook {id} not found")))?;
    Ok(Json(DeliveryList { deliveries }))
}

/// Deletes a webhook: within a second or so nothing more is delivered to it.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's id")),
    responses(
        (status = 204, description = "Deleted"),
        AuthErrors,
        (status = 404, description = "No such webhook of the caller's tenant", body = ErrorBody),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn delete(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Write>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let p = s.projections.clone();
    let tenant = caller.listing().map(str::to_owned);
    let hook = id.clone();
    let deleted = tokio::task::spawn_blocking(move || {
        p.delete_webhook(&hook, tenant.as_deref(), chrono::Utc::now())
    })
    .await
    .map_err(ApiError::unavailable)??;
    if !deleted {
        return Err(ApiError::not_found(format!("webhook {id} not found")));
    }
    tracing::info!(webhook_id = %id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// An `http(s)` URL, not too long, whose host, if an address, may be
/// delivered to (a name is checked on every delivery, as it may change).
fn check_url(
    url: &str,
    allow_private: &[sprocket_platform::outbound::Cidr],
) -> Result<(), ApiError> {
    let bad = |m: String| ApiError::bad_request("invalid_url", m);
    if url.len() > MAX_URL {
        return Err(bad(format!("a webhook URL has at most {MAX_URL} bytes")));
    }
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
    let policy = AddressPolicy::new(allow_private.to_vec());
    match outbound::refusal(&parsed, &policy) {
        Some(why) => Err(bad(format!(
            "{why}: a webhook goes to an http(s) URL, and to an internal address only when \
             webhooks.allow_private lists it"
        ))),
        None => Ok(()),
    }
}

/// Known event types (work items are not events), or `*` alone; sorted,
/// without repeats.
fn check_events(mut events: Vec<String>) -> Result<Vec<String>, ApiError> {
    events.sort();
    events.dedup();
    if events.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_events",
            "name at least one event type, or \"*\"",
        ));
    }
    if events.iter().any(|e| e == "*") {
        return Ok(vec!["*".into()]);
    }
    for e in &events {
        if e == "WorkItem" || !EventKind::ALL.contains(&e.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_events",
                format!("{e:?} is not an event type"),
            ));
        }
    }
    Ok(events)
}
