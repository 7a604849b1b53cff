use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

/// An API error: the status and `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (a 429 over a quota).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429: a tenant's quota is spent; `retry_after` seconds is when to try again.
    pub fn over_quota(message: impl Into<String>, retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "over_quota", message)
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unavailable(message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            message.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    /// A 5xx says what failed only in the log, under a request id its body
    /// and `x-request-id` header carry: internal error text (database hosts,
    /// store paths, driver messages) never reaches the client.
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            let request_id = uuid::Uuid::now_v7().to_string();
            tracing::error!(%request_id, code = self.code, status = %self.status, error = %self.message, "request failed");
            let body = json!({"error": {
                "code": self.code,
                "message": format!("the server could not answer this request; quote request id {request_id}"),
                "request_id": request_id,
            }});
            return (
                self.status,
                [("x-request-id", request_id.as_str())],
                Json(body),
            )
                .into_response();
        }
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = (self.status, Json(body)).into_response();
        let headers = resp.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"sprocket\""),
            );
        }
        resp
    }
}

/// Refuses a body that does not say it is JSON (`Content-Type:
/// application/json`, or `…+json`), so a form a browser posts across sites
/// cannot pass for a request. An empty body needs no type.
pub fn json_body(headers: &axum::http::HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    if body.is_empty() {
        return Ok(());
    }
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        });
    if json {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON, with Content-Type: application/json",
        ))
    }
}

/// A JSON request body ([`json_body`]'s type check, then parsed): a body
/// that is not a `what` is 400 `invalid_request`, saying why.
pub fn read_json<T: serde::de::DeserializeOwned>(
    headers: &axum::http::HeaderMap,
    body: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    json_body(headers, body)?;
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_request", format!("invalid {what}: {e}")))
}

impl From<sprocket_projections::ProjectionError> for ApiError {
    /// A cursor the client sent that no page handed out is the client's
    /// mistake (400); anything else means the projections are not answering.
    fn from(e: sprocket_projections::ProjectionError) -> Self {
        match e {
            sprocket_projections::ProjectionError::InvalidCursor(_) => {
                ApiError::bad_request("invalid_cursor", e.to_string())
            }
            e => ApiError::unavailable(format!("projections: {e}")),
        }
    }
}

/// The body of every error: `{"error": {"code", "message"}}`, and for a 5xx
/// the `request_id` to quote (the details are only in the server's log).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code (`invalid_request`, `not_found`, …).
    pub code: String,
    pub message: String,
    /// Only on 5xx answers, also in the `x-request-id` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The errors of every operation on one job (`/v1/jobs/{id}…`), for the
/// document: operations list their own other errors beside it.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // only the document reads it
pub enum JobErrors {
    /// Not a valid job id, query or body.
    #[response(status = 400, description = "Not a valid job id, query or body")]
    BadRequest(ErrorBody),
    /// No such job (or artifact).
    #[response(status = 404, description = "No such job (or artifact, or it is gone)")]
    NotFound(ErrorBody),
    /// Kafka, the stores or the projections do not answer.
    #[response(
        status = 503,
        description = "Kafka, the stores or the projections do not answer"
    )]
    Unavailable(ErrorBody),
}

/// The errors of every operation that needs a key, for the document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // only the document reads it
pub enum AuthErrors {
    /// No key, or not a live one.
    #[response(
        status = 401,
        description = "No `Authorization: Bearer <key>`, or the key is unknown or revoked"
    )]
    Unauthorized(ErrorBody),
    /// The key lacks the operation's scope.
    #[response(status = 403, description = "The key lacks the scope this needs")]
    Forbidden(ErrorBody),
}

/// A query string axum could not read (unknown key, bad number) as a 400 in
/// the API's error shape rather than axum's plain text.
impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", e.body_text())
    }
}

/// A body axum could not read: over the body limit (413) or cut off (400).
impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(e: axum::extract::rejection::BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.body_text(),
            )
        } else {
            ApiError::bad_request("invalid_body", e.body_text())
        }
    }
}

/// A path segment axum could not read (not UTF-8).
impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        ApiError::bad_request("invalid_path", e.body_text())
    }
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

#[cfg(test)]
mod tests {
    use sprocket_projections::ProjectionError;

    use super::*;

    async fn body(resp: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// A 5xx says only its request id; a 401 names the scheme; a 429 says
    /// when to come back.
    #[tokio::test]
    async fn answers_carry_what_the_client_needs_and_no_internals() {
        let internal = ApiError::unavailable("projections: connection to db.internal:5432 refused");
        let resp = internal.into_response();
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        let b = body(resp).await;
        assert_eq!(b["error"]["request_id"], id.as_str());
        assert!(!b.to_string().contains("db.internal"), "{b}");

        let resp =
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "no key").into_response();
        assert!(resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        let resp = ApiError::over_quota("too many", 0).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["retry-after"], "1", "at least a second");
        assert_eq!(body(resp).await["error"]["code"], "over_quota");
    }

    /// Found by schemathesis: `GET /v1/jobs?after=` with a cursor no page
    /// handed out answered 503, as if the projections were down.
    #[test]
    fn a_foreign_cursor_is_the_clients_mistake() {
        let e = ApiError::from(ProjectionError::InvalidCursor("x".into()));
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "invalid_cursor")
        );
    }
}
