use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use futures::TryStreamExt;
use serde_json::{json, Value};
use sprocket_platform::store::{self, StoreError};
use sprocket_projections::UploadClaim;

use super::error::{AuthErrors, ErrorBody};
use super::view::UploadCreated;
use super::{ApiError, AppState};
use crate::auth::{Authorized, Caller, Write};

/// `POST /v1/uploads`: the raw body streamed into the store, with its sha256.
#[utoipa::path(post, path = "/v1/uploads", tag = "artifacts",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The media file's bytes, any content type"),
    responses(
        (status = 201, description = "Stored; submit it as `{\"upload\": id}`", body = UploadCreated),
        (status = 400, description = "The body was cut off", body = ErrorBody),
        AuthErrors,
        (status = 413, description = "Over `api.max_upload_bytes`", body = ErrorBody),
        (status = 429, description = "Over the tenant's daily upload quota; `Retry-After` says when there is room", body = ErrorBody),
        (status = 503, description = "The store does not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Write>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let room = super::quota::upload_room(&s, &caller.tenant).await?;
    let id = uuid::Uuid::now_v7().simple().to_string();
    let key = sprocket_core::work::upload_key(&id);
    let max = s.config.api.max_upload_bytes;
    let limit = room.map_or(max, |r| r.min(max));
    let stream = body.into_data_stream().map_err(|e| e.to_string());
    match store::put_stream(&s.stores.work, &key, Box::pin(stream), limit).await {
        Ok(w) => {
            let (p, t, uid) = (s.projections.clone(), caller.tenant.clone(), id.clone());
            tokio::task::spawn_blocking(move || p.record_upload(&uid, &t, w.bytes, Utc::now()))
                .await
                .map_err(ApiError::unavailable)??;
            Ok((
                StatusCode::CREATED,
                Json(json!({"upload": id, "bytes": w.bytes, "sha256": w.sha256})),
            ))
        }
        Err(StoreError::TooLarge { .. }) if limit < max => Err(ApiError::over_quota(
            format!(
                "the upload is over what is left of tenant {}'s daily upload quota ({limit} bytes)",
                caller.tenant
            ),
            3600,
        )),
        Err(StoreError::TooLarge { limit, .. }) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload_too_large",
            format!("uploads are limited to {limit} bytes"),
        )),
        Err(StoreError::Body(m)) => Err(ApiError::bad_request("upload_interrupted", m)),
        Err(e) => Err(ApiError::unavailable(e)),
    }
}

/// Refuses a submission of another tenant's upload as if it did not exist.
pub async fn check_owner(s: &AppState, caller: &Caller, upload: &str) -> Result<(), ApiError> {
    if caller.is_admin() {
        return Ok(());
    }
    let (p, id) = (s.projections.clone(), upload.to_owned());
    let owner = tokio::task::spawn_blocking(move || p.upload_tenant(&id))
        .await
        .map_err(ApiError::unavailable)??;
    if owner.as_deref() == Some(caller.tenant.as_str()) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("upload {upload} not found")))
    }
}

/// Claims an upload for a submission, so that retention leaves it for the
/// job; one retention removed answers 410 with when and by which rule. An
/// upload not recorded here is left to ingest to find (or not).
pub async fn claim(s: &AppState, upload: &str) -> Result<(), ApiError> {
    let (p, id) = (s.projections.clone(), upload.to_owned());
    let claim = tokio::task::spawn_blocking(move || p.claim_upload(&id, Utc::now()))
        .await
        .map_err(ApiError::unavailable)??;
    match claim {
        UploadClaim::Claimed | UploadClaim::Unknown => Ok(()),
        UploadClaim::Expired { at, rule } => Err(ApiError::new(
            StatusCode::GONE,
            "upload_expired",
            format!("upload {upload} was removed at {at} by rule {rule}; upload the file again"),
        )),
    }
}
