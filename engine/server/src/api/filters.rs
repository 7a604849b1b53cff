//! The job filters the listing (`GET /v1/jobs`) and the tenant's event
//! stream (`GET /v1/events/stream`) both take, read the same way.

use sprocket_core::JobStatus;

use super::ApiError;

/// A `status` filter: one of the job statuses (400 `invalid_status`).
pub fn status(s: &str) -> Result<JobStatus, ApiError> {
    s.parse::<JobStatus>()
        .map_err(|e| ApiError::bad_request("invalid_status", e))
}

/// A `label` filter: `key=value`, split at the first `=`, the key not empty
/// (400 `invalid_label`).
pub fn label(l: &str) -> Result<(String, String), ApiError> {
    match l.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(ApiError::bad_request(
            "invalid_label",
            format!("label {l:?}: write key=value"),
        )),
    }
}
