use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::Response;
use serde::Deserialize;
use sprocket_platform::store::{self, StoreError};

use super::error::{AuthErrors, JobErrors};
use super::{ApiError, AppState};
use crate::auth::{Authorized, Read};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    /// `true` asks for media (video, image, audio) to be shown in place
    /// (`Content-Disposition: inline`); anything else is an attachment.
    #[serde(default)]
    #[param(value_type = Option<bool>)]
    inline: bool,
}

/// `GET /v1/jobs/{id}/artifacts/{name}`: the bytes, from the working store or,
/// once retention removed them there, from the archive. Always a download
/// (`Content-Disposition: attachment`) that browsers must not sniff into
/// another type; media may be asked for inline.
#[utoipa::path(get, path = "/v1/jobs/{id}/artifacts/{name}", tag = "artifacts",
    params(
        ("id" = String, Path, description = "The job id", pattern = "^[A-Za-z0-9_-]{1,64}$"),
        ("name" = String, Path, description = "The artifact's name"),
        DownloadQuery,
    ),
    responses(
        (status = 200, description = "The artifact's bytes, in its own content type, with `x-sha256`",
            content_type = "*/*", body = Vec<u8>),
        JobErrors,
        AuthErrors,
    ),
    security(("bearer" = [])),
)]
pub async fn download(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    Path((id, name)): Path<(String, String)>,
    q: Result<Query<DownloadQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let id = super::jobs::job_id(&id)?;
    let job = super::jobs::load(&s, &caller, &id).await?;
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
    let media = ["video/", "image/", "audio/"]
        .iter()
        .any(|m| artifact.content_type.starts_with(m));
    let disposition = if q.inline && media {
        "inline"
    } else {
        "attachment"
    };
    Response::builder()
        .header(header::CONTENT_TYPE, &artifact.content_type)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(
            header::CONTENT_DISPOSITION,
            format!("{disposition}; filename=\"{}\"", filename(&name)),
        )
        .header(header::CONTENT_LENGTH, size)
        .header("x-sha256", &artifact.sha256)
        .body(Body::from_stream(stream))
        .map_err(ApiError::unavailable)
}

/// An artifact name as a quoted-string filename: printable ASCII without
/// quotes or backslashes (anything else becomes `_`).
fn filename(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect()
}
