use sprocket_core::{CoreError, ErrorInfo, Phase};
use sprocket_media::MediaError;
use sprocket_platform::bus::BusError;
use sprocket_platform::outbound::FetchError;
use sprocket_platform::store::StoreError;

/// Why a phase's work did not complete. Each error is retryable or permanent:
/// permanent errors fail the job at once, retryable ones are tried again.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error("{phase}: {source}")]
    Media {
        phase: Phase,
        #[source]
        source: MediaError,
    },
    #[error("{phase}: {source}")]
    Store {
        phase: Phase,
        #[source]
        source: StoreError,
    },
    #[error("{phase}: {source}")]
    Bus {
        phase: Phase,
        #[source]
        source: BusError,
    },
    /// A URL source was not fetched.
    #[error("{phase}: {source}")]
    Fetch {
        phase: Phase,
        #[source]
        source: FetchError,
    },
    #[error("{phase}: {message}")]
    Rejected {
        phase: Phase,
        code: &'static str,
        message: String,
    },
    #[error("{phase}: {source}")]
    Core {
        phase: Phase,
        #[source]
        source: CoreError,
    },
    #[error("{phase}: internal error: {message}")]
    Internal { phase: Phase, message: String },
    #[error("{phase}: over its time limit of {after:?}; the work was stopped")]
    TimedOut {
        phase: Phase,
        after: std::time::Duration,
    },
}

impl WorkError {
    pub fn retryable(&self) -> bool {
        match self {
            WorkError::Media { source, .. } => source.retryable(),
            WorkError::Store { source, .. } => source.retryable(),
            WorkError::Bus { source, .. } => source.retryable(),
            WorkError::Fetch { source, .. } => source.retryable(),
            WorkError::Rejected { .. } | WorkError::Core { .. } => false,
            WorkError::Internal { .. } | WorkError::TimedOut { .. } => true,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            WorkError::Media { source, .. } => source.code(),
            WorkError::Store {
                source: StoreError::NotFound { .. },
                ..
            } => "not_found",
            WorkError::Store {
                source: StoreError::TooLarge { .. },
                ..
            } => "too_large",
            WorkError::Store { .. } => "store_error",
            WorkError::Bus { .. } => "kafka_error",
            WorkError::Fetch { source, .. } => match source {
                FetchError::Unreachable => "source_unreachable",
                FetchError::Status(_) => "source_unreadable",
                FetchError::TooLarge { .. } => "source_too_large",
            },
            WorkError::Rejected { code, .. } => code,
            WorkError::Core { source, .. } => source.code(),
            WorkError::Internal { .. } => "internal",
            WorkError::TimedOut { .. } => "timeout",
        }
    }

    /// The readable cause recorded on the job.
    pub fn info(&self) -> ErrorInfo {
        let message = match self {
            WorkError::Media { source, .. } => source.to_string(),
            WorkError::Store { source, .. } => source.to_string(),
            WorkError::Bus { source, .. } => source.to_string(),
            WorkError::Fetch { source, .. } => source.to_string(),
            WorkError::Rejected { message, .. } => message.clone(),
            WorkError::Core { source, .. } => source.to_string(),
            WorkError::Internal { message, .. } => message.clone(),
            e @ WorkError::TimedOut { .. } => e.to_string(),
        };
        ErrorInfo::new(self.code(), message)
    }

    pub fn media(phase: Phase) -> impl FnOnce(MediaError) -> WorkError {
        move |source| WorkError::Media { phase, source }
    }

    pub fn store(phase: Phase) -> impl FnOnce(StoreError) -> WorkError {
        move |source| WorkError::Store { phase, source }
    }

    pub fn internal(phase: Phase, e: impl std::fmt::Display) -> WorkError {
        WorkError::Internal {
            phase,
            message: e.to_string(),
        }
    }
}
