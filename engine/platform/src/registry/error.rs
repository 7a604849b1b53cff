//! Confluent-style errors: `{"error_code": 40401, "message": "..."}` with the matching status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::reply;

/// An error answered by the embedded registry, with its Confluent error code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    #[error("Version {version} not found for subject '{subject}'.")]
    VersionNotFound { subject: String, version: String },
    #[error("Schema {0} not found.")]
    SchemaNotFound(String),
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    #[error("Invalid compatibility level '{0}'. Valid values are NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE")]
    InvalidCompatibilityLevel(String),
    #[error("Schema being registered is incompatible with an earlier schema for subject '{subject}' under compatibility level {level}; details: {}", .messages.join("; "))]
    Incompatible {
        subject: String,
        level: &'static str,
        messages: Vec<String>,
    },
    #[error("Unsupported content type '{0}': send application/vnd.schemaregistry.v1+json or application/json")]
    UnsupportedMediaType(String),
    #[error("Invalid request body: {0}")]
    InvalidRequest(String),
    #[error("Internal error: {0}")]
    Internal(String),
}

impl RegistryError {
    /// The Confluent `error_code`.
    pub fn error_code(&self) -> u32 {
        match self {
            RegistryError::SubjectNotFound(_) => 40401,
            RegistryError::VersionNotFound { .. } => 40402,
            RegistryError::SchemaNotFound(_) => 40403,
            RegistryError::InvalidSchema(_) => 42201,
            RegistryError::InvalidVersion(_) => 42202,
            RegistryError::InvalidCompatibilityLevel(_) => 42203,
            RegistryError::Incompatible { .. } => 409,
            RegistryError::UnsupportedMediaType(_) => 415,
            RegistryError::InvalidRequest(_) => 422,
            RegistryError::Internal(_) => 50001,
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(&self) -> StatusCode {
        match self.error_code() {
            409 => StatusCode::CONFLICT,
            415 => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            c if c / 100 == 404 => StatusCode::NOT_FOUND,
            c if c / 100 == 422 || c == 422 => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the same request may succeed later: only internal failures may.
    pub fn retryable(&self) -> bool {
        matches!(self, RegistryError::Internal(_))
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.error_code(), "message": self.to_string()});
        reply(self.status(), body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_statuses() {
        let cases = [
            (RegistryError::SubjectNotFound("s".into()), 40401, 404),
            (
                RegistryError::VersionNotFound {
                    subject: "s".into(),
                    version: "2".into(),
                },
                40402,
                404,
            ),
            (RegistryError::SchemaNotFound("7".into()), 40403, 404),
            (RegistryError::InvalidSchema("x".into()), 42201, 422),
            (RegistryError::InvalidVersion("x".into()), 42202, 422),
            (
                RegistryError::InvalidCompatibilityLevel("x".into()),
                42203,
                422,
            ),
            (
                RegistryError::Incompatible {
                    subject: "s".into(),
                    level: "BACKWARD",
                    messages: vec![],
                },
                409,
                409,
            ),
            (RegistryError::UnsupportedMediaType("t".into()), 415, 415),
            (RegistryError::InvalidRequest("x".into()), 422, 422),
            (RegistryError::Internal("x".into()), 50001, 500),
        ];
        for (e, code, status) in cases {
            assert_eq!(e.error_code(), code, "{e}");
            assert_eq!(e.status().as_u16(), status, "{e}");
            assert_eq!(e.retryable(), status == 500, "{e}");
        }
        assert_eq!(
            RegistryError::SubjectNotFound("x".into()).to_string(),
            "Subject 'x' not found."
        );
    }
}
