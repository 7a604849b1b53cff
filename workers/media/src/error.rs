use std::path::PathBuf;

/// Errors of media work. Each is classed: unusable input is permanent (retrying
/// cannot help), everything else may succeed on a retry.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The input is not usable media: the message says why, for the job's `error`.
    #[error("{0}")]
    Unusable(String),
    /// Parameters in the recipe that this phase cannot use.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// ffmpeg or ffprobe failed on input that probed as usable.
    #[error("{tool} failed on {path}: {message}")]
    Tool {
        tool: &'static str,
        path: PathBuf,
        message: String,
    },
    /// The work was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A model's weights are missing or unusable: the message names the file
    /// and the setup command. Not retryable: the installation must change.
    #[error("model unavailable: {0}")]
    Model(String),
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl MediaError {
    /// Whether trying again could succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, MediaError::Tool { .. } | MediaError::Io { .. })
    }

    /// A stable code for the job's `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            MediaError::Unusable(_) => "unusable_media",
            MediaError::InvalidParams(_) => "invalid_recipe",
            MediaError::Tool { .. } => "media_tool_failed",
            MediaError::Cancelled => "cancelled",
            MediaError::Model(_) => "model_unavailable",
            MediaError::Tensor(_) => "analysis_failed",
            MediaError::Io { .. } => "io_error",
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MediaError::Io {
            path: path.into(),
            source,
        }
    }
}
