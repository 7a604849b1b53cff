use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;
use sprocket_core::JobId;
use sprocket_platform::store::{self, StoreError};

use super::{ApiError, AppState};

/// `GET /v1/jobs/{id}/artifacts/{name}`: the bytes, from the working store or,
/// once retention removed them there, from the archive.
pub async fn download(
    State(s): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id =
        JobId::parse(&id).map_err(|e| ApiError::bad_request("invalid_job_id", e.to_string()))?;
    let p = s.projections.clone();
    let jid = id.clone();
    let job = tokio::task::spawn_blocking(move || p.job(&jid))
        .await
        .map_err(ApiError::unavailable)??
        .ok_or_else(|| ApiError::not_found(format!("job {id} not found")))?;
    let artifact = job
        .artifacts
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("job {id} has no artifact {name:?}")))?;
    let (size, stream) = match store::get_stream(&s.stores.work, &artifact.key).await {
        Ok(found) => found,
        Err(StoreError::NotFound { .. }) => store::get_stream(&s.stores.archive, &artifact.key)
            .await
            .map_err(|e| match e {
                StoreError::NotFound { .. } => {
                    ApiError::not_found(format!("artifact {name:?} is gone"))
                }
                e => ApiError::unavailable(e),
            })?,
        Err(e) => return Err(ApiError::unavailable(e)),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, &artifact.content_type)
        .header(header::CONTENT_LENGTH, size)
        .header("x-sha256", &artifact.sha256)
        .body(Body::from_stream(stream))
        .map_err(ApiError::unavailable)
}
