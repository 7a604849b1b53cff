//! What can go wrong encoding and decoding, and whether trying again may help.

use std::error::Error as _;

use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::RawError;
use sprocket_core::CoreError;

/// A codec error. Every variant but [`CodecError::RegistryUnavailable`] (and a registry
/// failing with a 5xx) is permanent: the payload or schema is wrong and stays wrong, so
/// the message goes to the dead-letter headers as it is.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("schema registry at {url} cannot be reached: {message}")]
    RegistryUnavailable { url: String, message: String },
    #[error("schema registry at {url} failed: {message}")]
    Registry {
        url: String,
        message: String,
        retryable: bool,
    },
    #[error(
        "schema registry at {url} refused the {kind} schema under subject '{subject}': {message}"
    )]
    Registration {
        url: String,
        subject: String,
        kind: String,
        message: String,
    },
    #[error("schema id {0} is not known to the schema registry")]
    UnknownSchemaId(u32),
    #[error("schema id {id} is not a usable JSON schema: {message}")]
    BadSchema { id: u32, message: String },
    #[error("schema id {id} is the schema of {schema_type} but the value's type is {value_type}")]
    TypeMismatch {
        id: u32,
        schema_type: String,
        value_type: String,
    },
    #[error("payload is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("payload has no string field \"type\"")]
    MissingType,
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{event_type} does not match its schema: {details}")]
    SchemaViolation { event_type: String, details: String },
    #[error("{event_type} cannot be read: {source}")]
    Envelope {
        event_type: String,
        source: CoreError,
    },
    #[error("payload is neither the Confluent wire format (first byte 0x00, then a 4-byte schema id) nor JSON (first byte '{{'): {0}")]
    NotWireFormat(String),
}

impl CodecError {
    /// Whether the same call may succeed later (the registry was down or overloaded).
    pub fn retryable(&self) -> bool {
        match self {
            CodecError::RegistryUnavailable { .. } => true,
            CodecError::Registry { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// Classifies an error of schema_registry_converter. `id` is the schema id being read.
    pub(crate) fn from_converter(url: &str, e: &SRCError, id: Option<u32>) -> CodecError {
        let message = match &e.cause {
            Some(cause) => format!("{}: {cause}", e.error),
            None => e.error.clone(),
        };
        let source = e.source();
        let raw = source.and_then(|s| s.downcast_ref::<RawError>());
        if let (Some(raw), Some(id)) = (raw, id) {
            if raw.error_code == 40403 {
                return CodecError::UnknownSchemaId(id);
            }
        }
        if e.retriable {
            return CodecError::RegistryUnavailable {
                url: url.to_owned(),
                message,
            };
        }
        if let Some(raw) = raw {
            return CodecError::Registry {
                url: url.to_owned(),
                message,
                retryable: raw.error_code >= 50000 || (500..600).contains(&raw.error_code),
            };
        }
        if let Some(json) = source.and_then(|s| s.downcast_ref::<serde_json::Error>()) {
            return CodecError::InvalidJson(json.to_string());
        }
        match id {
            Some(id) if e.error.contains("is not correct") => CodecError::BadSchema { id, message },
            _ => CodecError::Registry {
                url: url.to_owned(),
                message,
                retryable: false,
            },
        }
    }
}
