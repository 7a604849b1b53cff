//! Why a service could not start.

use sprocket_platform::bus::BusError;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("projections: {0}")]
    Projections(#[from] sprocket_projections::ProjectionError),
    #[error(transparent)]
    Projector(#[from] crate::projector::ProjectorError),
    #[error("store: {0}")]
    Store(#[from] sprocket_platform::store::StoreError),
    #[error(transparent)]
    Work(#[from] sprocket_workers::WorkError),
    #[error("configuration: {0}")]
    Config(#[from] sprocket_platform::config::ConfigError),
    #[error("embedded broker: {0}")]
    Broker(#[from] sprocket_broker::BrokerError),
    #[error("topics: {0}")]
    Topics(String),
    #[error("API key: {0}")]
    Key(String),
    #[error("the webhook sender's HTTP client: {0}")]
    WebhookClient(#[source] reqwest::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ServerError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
        let context = context.into();
        move |source| ServerError::Io { context, source }
    }
}
