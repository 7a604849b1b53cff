use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use sprocket_core::retention::Kept;
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
/// once retention removed them there, from the archive or its cold tier; an
/// artifact retention removed everywhere answers `410 Gone` with when and by
/// which rule. Always a download
/// (`Content-Disposition: attachment`) that browsers must not sniff into
/// another type; media may be asked for inline. A name may hold `/`
/// (`hls/master.m3u8`), so the HLS ladder's playlists name their renditions
/// by relative URIs that resolve under this same route.
#[utoipa::path(get, path = "/v1/jobs/{id}/artifacts/{*name}", tag = "artifacts",
    params(
        ("id" = String, Path, description = "The job id", pattern = "^[A-Za-z0-9_-]{1,64}$"),
        ("name" = String, Path, description = "The artifact's name, which may hold `/` \
            (`poster.jpg`, `hls/master.m3u8`, `hls/720p.mp4`)"),
        DownloadQuery,
    ),
    responses(
        (status = 200, description = "The artifact's bytes, in its own content type, with `x-sha256`",
            content_type = "*/*", body = Vec<u8>),
        (status = 410, description = "Retention removed it: the message says when and by which rule",
            body = super::error::ErrorBody),
        JobErrors,
        AuthErrors,
    ),
    security(("bearer" = [])),
)]
pub async fn download(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    q: Result<Query<DownloadQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let id = super::jobs::job_id(&id)?;
    let name = artifact_name(&name)?;
    let job = super::jobs::load(&s, &caller, &id).await?;
    let artifact = job
        .artifacts
        .get(name)
        .ok_or_else(|| ApiError::not_found(format!("job {id} has no artifact {name:?}")))?;
    // Retention decides where the bytes are now, or that none are left.
    let kept = job.kept.get(name);
    if let Some(Kept::Expired { at, rule }) = kept {
        return Err(ApiError::new(
            StatusCode::GONE,
            "expired",
            format!(
                "artifact {name:?} of job {id} expired at {} by rule {rule}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ),
        ));
    }
    // A player reads an HLS rendition by byte ranges; one range is served
    // (206), several or a malformed header get the whole object (200), as
    // RFC 9110 allows.
    let wanted = match q_range(&headers, artifact.bytes) {
        Ranged::Whole => None,
        Ranged::Part(r) => Some(r),
        Ranged::Unsatisfiable => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{}", artifact.bytes))
                .body(Body::empty())
                .map_err(ApiError::unavailable);
        }
    };
    let get = |store| store::get_part(store, &artifact.key, wanted.clone());
    let found = match (kept, &s.stores.cold) {
        (Some(Kept::Tiered { .. }), Some(cold)) => get(cold).await,
        (Some(Kept::Tiered { to, .. }), None) => {
            return Err(ApiError::unavailable(format!(
                "artifact {name:?} is in the cold store {to}, which archive.cold_url does not name"
            )))
        }
        (Some(Kept::Archived { .. }), _) => get(&s.stores.archive).await,
        _ => get(&s.stores.work).await,
    };
    let (size, stream) = match found {
        Ok(found) => found,
        Err(StoreError::NotFound { .. }) => get(&s.stores.archive).await.map_err(|e| match e {
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
    let mut response = Response::builder();
    response = match &wanted {
        Some(r) => response
            .status(StatusCode::PARTIAL_CONTENT)
            .header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end - 1),
            )
            .header(header::CONTENT_LENGTH, r.end - r.start),
        None => response.header(header::CONTENT_LENGTH, size),
    };
    response
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, &artifact.content_type)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(
            header::CONTENT_DISPOSITION,
            format!(
                "{disposition}; filename=\"{}\"",
                filename(name.rsplit('/').next().unwrap_or(name))
            ),
        )
        .header("x-sha256", &artifact.sha256)
        .body(Body::from_stream(stream))
        .map_err(ApiError::unavailable)
}

/// What a request's `Range` header asks of an object of `size` bytes.
#[derive(Debug, PartialEq)]
enum Ranged {
    Whole,
    Part(std::ops::Range<u64>),
    Unsatisfiable,
}

/// Reads a single `bytes=` range (`a-b`, `a-`, `-n`); anything else (none,
/// several ranges, another unit, garbage) is the whole object.
fn q_range(headers: &HeaderMap, size: u64) -> Ranged {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let num = |t: &str| t.trim().parse::<u64>().ok();
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        // The last n bytes.
        (true, false) => match num(b) {
            Some(0) => return Ranged::Unsatisfiable,
            Some(n) => (size.saturating_sub(n), size),
            None => return Ranged::Whole,
        },
        (false, true) => match num(a) {
            Some(a) => (a, size),
            None => return Ranged::Whole,
        },
        (false, false) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => (a, b.saturating_add(1).min(size)),
            _ => return Ranged::Whole,
        },
        (true, true) => return Ranged::Whole,
    };
    if start >= size {
        Ranged::Unsatisfiable
    } else {
        Ranged::Part(start..end)
    }
}

/// The artifact name of a request, refused (400 `invalid_artifact_name`)
/// when it could leave the job's prefix or is not a plain relative path:
/// empty segments, `.` or `..`, a backslash or a control character.
fn artifact_name(name: &str) -> Result<&str, ApiError> {
    let plain = !name.is_empty()
        && name.len() <= 512
        && !name.contains('\\')
        && !name.chars().any(char::is_control)
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if plain {
        Ok(name)
    } else {
        Err(ApiError::bad_request(
            "invalid_artifact_name",
            format!("no artifact may be named {name:?}"),
        ))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_rfc_9110_reads_them() {
        let ask = |v: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.insert(header::RANGE, v.parse().unwrap());
            }
            q_range(&h, 100)
        };
        assert_eq!(ask(None), Ranged::Whole);
        assert_eq!(ask(Some("bytes=0-9")), Ranged::Part(0..10));
        assert_eq!(ask(Some("bytes=90-")), Ranged::Part(90..100));
        assert_eq!(ask(Some("bytes=-10")), Ranged::Part(90..100));
        assert_eq!(ask(Some("bytes=-500")), Ranged::Part(0..100));
        assert_eq!(ask(Some("bytes=95-200")), Ranged::Part(95..100));
        assert_eq!(ask(Some("bytes=100-")), Ranged::Unsatisfiable);
        assert_eq!(ask(Some("bytes=-0")), Ranged::Unsatisfiable);
        for whole in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=9-3",
            "bytes=x-",
            "bytes=-",
            "bytes=7",
        ] {
            assert_eq!(ask(Some(whole)), Ranged::Whole, "{whole}");
        }
    }

    #[test]
    fn names_stay_inside_the_job() {
        for ok in ["poster.jpg", "hls/master.m3u8", "hls/720p.mp4", "a..b.txt"] {
            assert_eq!(artifact_name(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "..",
            "../other-job/source",
            "hls/../../x",
            "hls/./master.m3u8",
            "/etc/passwd",
            "hls//master.m3u8",
            "hls/",
            "a\\..\\b",
            "bad\nname",
        ] {
            let err = artifact_name(bad).unwrap_err();
            assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }
}
