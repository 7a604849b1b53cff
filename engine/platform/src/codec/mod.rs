//! The wire format of every Sprocket message: JSON validated against the schema of its
//! event type, written in the Confluent wire format (byte 0 = 0x00, bytes 1–4 = the
//! big-endian schema id, then the JSON) through `schema_registry_converter`. Readers
//! also accept bare JSON (first non-whitespace byte `{`), so that a producer without a
//! registry client can submit a job.
//!
//! Subjects follow RecordNameStrategy (`sprocket.<Type>`, the schema's title);
//! `JobSubmitted` is also registered under `<prefix>ingest-value` (TopicNameStrategy)
//! for producers that use the default strategy. See `schemas/subjects.json`.

pub mod catalog;
mod error;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonschema::Validator;
use schema_registry_converter::async_impl::json::{JsonDecoder, JsonEncoder};
use schema_registry_converter::async_impl::schema_registry::{post_schema, SrSettings};
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde_json::Value;
use sprocket_core::event::Fill;
use sprocket_core::wire::Frame;
use sprocket_core::Envelope;

pub use error::CodecError;

/// How long one registry call may take.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);
/// The first and the longest wait of [`Codec::decode_patiently`].
const PATIENCE_FIRST: Duration = Duration::from_millis(100);
const PATIENCE_MAX: Duration = Duration::from_secs(5);

/// Encodes and decodes envelopes. Cheap to clone; clones share caches.
#[derive(Clone)]
pub struct Codec {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    encoder: JsonEncoder,
    decoder: JsonDecoder,
    /// The ids our embedded schemas got, by type, and back.
    ids: HashMap<&'static str, u32>,
    kinds: HashMap<u32, &'static str>,
    /// Validators of schemas other writers registered, by id.
    foreign: Mutex<HashMap<u32, Arc<Validator>>>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("registry", &self.inner.url)
            .field("ids", &self.inner.ids)
            .finish_non_exhaustive()
    }
}

fn supplied(subject: &str, kind: &str) -> SuppliedSchema {
    let text = catalog::schema_of(kind).expect("a known event type");
    SuppliedSchema::new(Some(subject.to_owned()), SchemaType::Json, text.to_owned())
}

/// The RecordNameStrategy subject of an event type.
fn record_subject(kind: &str) -> String {
    format!("sprocket.{kind}")
}

impl Codec {
    /// Connects to the registry at `url` and registers every schema in `schemas/` under
    /// its subjects (idempotent); `prefix` is the topic prefix (default `"sprocket."`).
    pub async fn connect(url: &str, prefix: &str) -> Result<Codec, CodecError> {
        let url = url.trim_end_matches('/').to_owned();
        let settings = SrSettings::new_builder(url.clone())
            .set_timeout(REGISTRY_TIMEOUT)
            .build()
            .map_err(|e| CodecError::from_converter(&url, &e, None))?;
        let mut ids = HashMap::new();
        for (subject, kind) in catalog::subjects(prefix) {
            let registered = post_schema(&settings, subject.clone(), supplied(&subject, kind))
                .await
                .map_err(|e| match CodecError::from_converter(&url, &e, None) {
                    CodecError::Registry {
                        message,
                        retryable: false,
                        ..
                    } => CodecError::Registration {
                        url: url.clone(),
                        subject: subject.clone(),
                        kind: kind.to_owned(),
                        message,
                    },
                    other => other,
                })?;
            ids.entry(kind).or_insert(registered.id);
        }
        let kinds = ids.iter().map(|(k, id)| (*id, *k)).collect();
        Ok(Codec {
            inner: Arc::new(Inner {
                encoder: JsonEncoder::new(settings.clone()),
                decoder: JsonDecoder::new(settings),
                url,
                ids,
                kinds,
                foreign: Mutex::default(),
            }),
        })
    }

    /// The schema id the registry gave the embedded schema of an event type.
    pub fn schema_id(&self, kind: &str) -> Option<u32> {
        self.inner.ids.get(kind).copied()
    }

    /// Validates the envelope against its type's schema and writes the Confluent wire
    /// format through schema_registry_converter.
    pub async fn encode(&self, env: &Envelope) -> Result<Vec<u8>, CodecError> {
        let kind = env.kind().0;
        let value =
            serde_json::to_value(env).map_err(|e| CodecError::InvalidJson(e.to_string()))?;
        let validator = catalog::validators()
            .get(kind)
            .ok_or_else(|| CodecError::UnknownType(kind.to_owned()))?;
        catalog::check(validator, kind, &value)?;
        let subject = record_subject(kind);
        let strategy = SubjectNameStrategy::RecordNameStrategyWithSchema(supplied(&subject, kind));
        self.inner
            .encoder
            .encode(&value, strategy)
            .await
            .map_err(|e| CodecError::from_converter(&self.inner.url, &e, None))
    }

    /// Reads the wire format (schema id looked up in the registry, cached) or bare JSON
    /// (first non-whitespace byte `{`), validates it against the schema of the envelope's
    /// type, and parses it with [`Envelope::from_json`] (`fill` supplies what an outside
    /// `JobSubmitted` may leave out).
    pub async fn decode(
        &self,
        payload: &[u8],
        fill: impl FnOnce() -> Fill,
    ) -> Result<Envelope, CodecError> {
        match sprocket_core::wire::frame(payload).map_err(CodecError::NotWireFormat)? {
            Frame::Bare(json) => self.decode_bare(json, fill),
            Frame::Registered { .. } => self.decode_wire(payload, fill).await,
        }
    }

    /// Like [`decode`](Self::decode), but waits out errors that may pass (the
    /// schema registry unreachable or overloaded), retrying with backoff from
    /// 100 ms to 5 s and telling `waiting` each time, so a good message is never
    /// given up for a registry outage. Only errors that can never pass are
    /// returned. Dropping the future stops the wait.
    pub async fn decode_patiently(
        &self,
        payload: &[u8],
        fill: impl Fn() -> Fill,
        mut waiting: impl FnMut(&CodecError, Duration),
    ) -> Result<Envelope, CodecError> {
        let mut delay = PATIENCE_FIRST;
        loop {
            match self.decode(payload, &fill).await {
                Err(e) if e.retryable() => {
                    waiting(&e, delay);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(PATIENCE_MAX);
                }
                done => return done,
            }
        }
    }

    fn decode_bare(
        &self,
        json: &[u8],
        fill: impl FnOnce() -> Fill,
    ) -> Result<Envelope, CodecError> {
        let value: Value =
            serde_json::from_slice(json).map_err(|e| CodecError::InvalidJson(e.to_string()))?;
        let kind = type_of(&value)?;
        let validator = catalog::validators()
            .get(kind)
            .ok_or_else(|| CodecError::UnknownType(kind.to_owned()))?;
        catalog::check(validator, kind, &value)?;
        parse(json, kind, fill)
    }

    async fn decode_wire(
        &self,
        payload: &[u8],
        fill: impl FnOnce() -> Fill,
    ) -> Result<Envelope, CodecError> {
        let id = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
        let decoded = self
            .inner
            .decoder
            .decode(Some(payload))
            .await
            .map_err(|e| CodecError::from_converter(&self.inner.url, &e, Some(id)))?
            .ok_or_else(|| CodecError::NotWireFormat("the payload is empty".into()))?;
        let kind = type_of(&decoded.value)?;
        if !catalog::validators().contains_key(kind) {
            return Err(CodecError::UnknownType(kind.to_owned()));
        }
        let schema_kind = match self.inner.kinds.get(&id) {
            Some(k) => (*k).to_owned(),
            None => catalog::kind_of_schema(&decoded.schema.schema).ok_or_else(|| {
                CodecError::BadSchema {
                    id,
                    message: "it names no event type (no title \"sprocket.<Type>\" and no const \"type\")".into(),
                }
            })?,
        };
        if schema_kind != kind {
            return Err(CodecError::TypeMismatch {
                id,
                schema_type: schema_kind,
                value_type: kind.to_owned(),
            });
        }
        let foreign;
        let validator: &Validator = match self.inner.kinds.get(&id) {
            Some(_) => &catalog::validators()[kind],
            None => {
                foreign = self.foreign(id, &decoded.schema.schema)?;
                &foreign
            }
        };
        catalog::check(validator, kind, &decoded.value)?;
        parse(&payload[5..], kind, fill)
    }

    /// The validator of a schema registered by another writer, compiled once.
    fn foreign(&self, id: u32, schema: &Value) -> Result<Arc<Validator>, CodecError> {
        let mut cache = self.inner.foreign.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = cache.get(&id) {
            return Ok(v.clone());
        }
        let v = Arc::new(
            catalog::compile(schema).map_err(|message| CodecError::BadSchema { id, message })?,
        );
        cache.insert(id, v.clone());
        Ok(v)
    }
}

fn type_of(value: &Value) -> Result<&str, CodecError> {
    value
        .get("type")
        .and_then(Value::as_str)
        .ok_or(CodecError::MissingType)
}

fn parse(json: &[u8], kind: &str, fill: impl FnOnce() -> Fill) -> Result<Envelope, CodecError> {
    Envelope::from_json(json, fill).map_err(|source| CodecError::Envelope {
        event_type: kind.to_owned(),
        source,
    })
}
