use serde::{Deserialize, Serialize};

/// Errors raised by the pure core while validating input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoreError {
    #[error("invalid job id {0:?}: use 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")]
    InvalidJobId(String),
    #[error("unknown recipe {0:?} (built-in recipes: {1})")]
    UnknownRecipe(String, String),
    #[error("invalid recipe: {0}")]
    InvalidRecipe(String),
    #[error("invalid source: {0}")]
    InvalidSource(String),
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    #[error("over a limit: {0}")]
    OverLimit(String),
    #[error("invalid tenant {0:?}: use 1-64 characters of A-Z, a-z, 0-9, '_' or '-'")]
    InvalidTenant(String),
}

impl CoreError {
    /// A stable machine-readable code for API errors and failed jobs.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::InvalidJobId(_) => "invalid_job_id",
            CoreError::UnknownRecipe(..) => "unknown_recipe",
            CoreError::InvalidRecipe(_) => "invalid_recipe",
            CoreError::InvalidSource(_) => "invalid_source",
            CoreError::InvalidEvent(_) => "invalid_event",
            CoreError::OverLimit(_) => "over_limit",
            CoreError::InvalidTenant(_) => "invalid_tenant",
        }
    }
}

/// An error as recorded on a failed phase or job: a stable code and a readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
}

impl ErrorInfo {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<&CoreError> for ErrorInfo {
    fn from(e: &CoreError) -> Self {
        ErrorInfo::new(e.code(), e.to_string())
    }
}
