//! API keys, for admin keys: make one (shown once), list them, revoke one.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use sprocket_projections::ApiKey;
use utoipa::ToSchema;

use super::error::{AuthErrors, ErrorBody};
use super::{ApiError, AppState};
use crate::auth::{self, Admin, Authorized, Scope};

/// `POST /v1/keys` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// The tenant the key acts for: 1–64 of `A-Z a-z 0-9 _ -`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    tenant: String,
    /// At least one of `jobs:read`, `jobs:write`, `admin`.
    #[schema(value_type = Vec<String>, min_items = 1)]
    scopes: Vec<Scope>,
    /// A note for people: what the key is for.
    #[schema(max_length = 200)]
    name: Option<String>,
}

/// A new key: `key` is shown here only, never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCreated {
    pub id: String,
    pub key: String,
    pub tenant: String,
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<ApiKey>,
}

#[utoipa::path(post, path = "/v1/keys", tag = "keys",
    request_body(content = CreateKey, content_type = "application/json"),
    responses(
        (status = 201, description = "The key, shown this once", body = KeyCreated),
        (status = 400, description = "Not a valid request (tenant, scopes, name)", body = ErrorBody),
        AuthErrors,
        (status = 413, description = "The body is over the limit", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(s): State<AppState>,
    _: Authorized<Admin>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<KeyCreated>), ApiError> {
    let req: CreateKey = super::error::read_json(&headers, &body?, "key request")?;
    let p = s.projections.clone();
    let (record, key) =
        tokio::task::spawn_blocking(move || auth::create(&p, &req.tenant, &req.scopes, req.name))
            .await
            .map_err(ApiError::unavailable)??;
    tracing::info!(key_id = %record.id, tenant = %record.tenant, scopes = ?record.scopes, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(KeyCreated {
            id: record.id,
            key,
            tenant: record.tenant,
            scopes: record.scopes,
            name: record.name,
            created_at: record.created_at,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    responses(
        (status = 200, description = "Every key, revoked ones included, oldest first", body = KeyList),
        AuthErrors,
        (status = 503, description = "The database does not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(s): State<AppState>,
    _: Authorized<Admin>,
) -> Result<Json<KeyList>, ApiError> {
    let p = s.projections.clone();
    let keys = tokio::task::spawn_blocking(move || p.keys(None))
        .await
        .map_err(ApiError::unavailable)??;
    Ok(Json(KeyList { keys }))
}

/// Revokes a key: within a second no API replica accepts it.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "The key's id (not the key)")),
    responses(
        (status = 200, description = "Revoked (revoking again changes nothing)", body = ApiKey),
        AuthErrors,
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn revoke(
    State(s): State<AppState>,
    _: Authorized<Admin>,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    let p = s.projections.clone();
    let key_id = id.clone();
    let key = tokio::task::spawn_blocking(move || p.revoke_key(&key_id, None, chrono::Utc::now()))
        .await
        .map_err(ApiError::unavailable)??
        .ok_or_else(|| ApiError::not_found(format!("key {id} not found")))?;
    tracing::info!(key_id = %key.id, tenant = %key.tenant, "API key revoked");
    Ok(Json(key))
}
