use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use futures::TryStreamExt;
use serde_json::{json, Value};
use sprocket_platform::store::{self, StoreError};

use super::error::ErrorBody;
use super::view::UploadCreated;
use super::{ApiError, AppState};

/// `POST /v1/uploads`: the raw body streamed into the store, with its sha256.
#[utoipa::path(post, path = "/v1/uploads", tag = "artifacts",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The media file's bytes, any content type"),
    responses(
        (status = 201, description = "Stored; submit it as `{\"upload\": id}`", body = UploadCreated),
        (status = 400, description = "The body was cut off", body = ErrorBody),
        (status = 413, description = "Over `api.max_upload_bytes`", body = ErrorBody),
        (status = 503, description = "The store does not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn create(
    State(s): State<AppState>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let key = format!("uploads/{id}");
    let limit = s.config.api.max_upload_bytes;
    let stream = body.into_data_stream().map_err(|e| e.to_string());
    match store::put_stream(&s.stores.work, &key, Box::pin(stream), limit).await {
        Ok(w) => Ok((
            StatusCode::CREATED,
            Json(json!({"upload": id, "bytes": w.bytes, "sha256": w.sha256})),
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
