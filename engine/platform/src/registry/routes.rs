//! The HTTP routes of the Confluent REST API subset the embedded registry serves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request, State as Shared};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::state::{parse_schema, Entry, Level, State, VersionSpec};
use super::{reply, RegistryError};

type Db = Arc<Mutex<State>>;
type Answer = Result<Response, RegistryError>;

/// Content types a request body may have (none at all is accepted too).
const ACCEPTED: [&str; 4] = [
    "application/vnd.schemaregistry.v1+json",
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/octet-stream",
];

pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { ok(json!({})) }))
        .route("/schemas/types", get(|| async { ok(json!(["JSON"])) }))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/versions", get(id_versions))
        .route("/subjects", get(subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route("/subjects/{subject}/versions", get(versions).post(register))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(raw_schema),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility_with),
        )
        .route("/config", get(global_config).put(set_global_config))
        .route(
            "/config/{subject}",
            get(subject_config)
                .put(set_subject_config)
                .delete(delete_subject_config),
        )
        .with_state(Db::default())
}

fn ok(body: Value) -> Response {
    reply(StatusCode::OK, body)
}

fn lock(db: &Db) -> Result<MutexGuard<'_, State>, RegistryError> {
    db.lock()
        .map_err(|_| RegistryError::Internal("registry state poisoned".into()))
}

fn entry_json(e: Entry) -> Value {
    json!({"subject": e.subject, "version": e.version, "id": e.id, "schema": e.schema, "schemaType": "JSON"})
}

/// A JSON body sent as one of the [`ACCEPTED`] content types.
struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = RegistryError;

    async fn from_request(req: Request, state: &S) -> Result<Self, RegistryError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default();
            let essence = ct.split(';').next().unwrap_or_default().trim();
            if !ACCEPTED.iter().any(|a| a.eq_ignore_ascii_case(essence)) {
                return Err(RegistryError::UnsupportedMediaType(ct.to_owned()));
            }
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| RegistryError::InvalidRequest(e.to_string()))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| RegistryError::InvalidRequest(e.to_string()))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    schema: String,
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Value>,
}

impl SchemaRequest {
    fn checked(&self) -> Result<(&str, Option<&str>), RegistryError> {
        if !self.references.is_empty() {
            return Err(RegistryError::InvalidSchema(
                "schema references are not supported by the embedded registry".into(),
            ));
        }
        Ok((&self.schema, self.schema_type.as_deref()))
    }
}

#[derive(Deserialize)]
struct ConfigRequest {
    compatibility: Option<String>,
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Option<String>,
}

impl ConfigRequest {
    fn level(&self) -> Result<Level, RegistryError> {
        match self
            .compatibility
            .as_ref()
            .or(self.compatibility_level.as_ref())
        {
            Some(l) => Level::parse(l),
            None => Err(RegistryError::InvalidCompatibilityLevel(String::new())),
        }
    }
}

fn parse_id(id: &str) -> Result<u32, RegistryError> {
    id.parse()
        .map_err(|_| RegistryError::SchemaNotFound(id.to_owned()))
}

async fn schema_by_id(Shared(db): Shared<Db>, Path(id): Path<String>) -> Answer {
    let db = lock(&db)?;
    let schema = db.schema(parse_id(&id)?)?;
    Ok(ok(json!({"schema": schema, "schemaType": "JSON"})))
}

async fn id_versions(Shared(db): Shared<Db>, Path(id): Path<String>) -> Answer {
    let found = lock(&db)?.id_versions(parse_id(&id)?)?;
    let list: Vec<Value> = found
        .into_iter()
        .map(|(subject, version)| json!({"subject": subject, "version": version}))
        .collect();
    Ok(ok(json!(list)))
}

async fn subjects(Shared(db): Shared<Db>) -> Answer {
    Ok(ok(json!(lock(&db)?.subjects())))
}

async fn versions(Shared(db): Shared<Db>, Path(subject): Path<String>) -> Answer {
    Ok(ok(json!(lock(&db)?.versions(&subject)?)))
}

async fn register(
    Shared(db): Shared<Db>,
    Path(subject): Path<String>,
    Body(req): Body<SchemaRequest>,
) -> Answer {
    let (schema, schema_type) = req.checked()?;
    let id = lock(&db)?.register(&subject, schema, schema_type)?;
    Ok(ok(json!({"id": id})))
}

async fn lookup(
    Shared(db): Shared<Db>,
    Path(subject): Path<String>,
    Body(req): Body<SchemaRequest>,
) -> Answer {
    let (schema, schema_type) = req.checked()?;
    let found = lock(&db)?.lookup(&subject, schema, schema_type)?;
    Ok(ok(entry_json(found)))
}

async fn version(Shared(db): Shared<Db>, Path((subject, v)): Path<(String, String)>) -> Answer {
    let spec = VersionSpec::parse(&v)?;
    Ok(ok(entry_json(lock(&db)?.version(&subject, spec)?)))
}

async fn raw_schema(Shared(db): Shared<Db>, Path((subject, v)): Path<(String, String)>) -> Answer {
    let spec = VersionSpec::parse(&v)?;
    let entry = lock(&db)?.version(&subject, spec)?;
    let schema: Value = serde_json::from_str(&entry.schema)
        .map_err(|e| RegistryError::Internal(format!("stored schema unreadable: {e}")))?;
    Ok(ok(schema))
}

async fn delete_subject(
    Shared(db): Shared<Db>,
    Path(subject): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let permanent = q.get("permanent").is_some_and(|p| p == "true");
    Ok(ok(json!(lock(&db)?.delete_subject(&subject, permanent)?)))
}

fn compatibility_answer(
    db: &Db,
    subject: &str,
    against: Option<VersionSpec>,
    req: &SchemaRequest,
) -> Answer {
    let (schema, schema_type) = req.checked()?;
    let (value, _) = parse_schema(schema, schema_type)?;
    let db = lock(db)?;
    let problems = db.problems_against(subject, against, &value, db.level(subject))?;
    Ok(ok(
        json!({"is_compatible": problems.is_empty(), "messages": problems}),
    ))
}

async fn compatibility(
    Shared(db): Shared<Db>,
    Path(subject): Path<String>,
    Body(req): Body<SchemaRequest>,
) -> Answer {
    compatibility_answer(&db, &subject, None, &req)
}

async fn compatibility_with(
    Shared(db): Shared<Db>,
    Path((subject, v)): Path<(String, String)>,
    Body(req): Body<SchemaRequest>,
) -> Answer {
    let spec = VersionSpec::parse(&v)?;
    compatibility_answer(&db, &subject, Some(spec), &req)
}

async fn global_config(Shared(db): Shared<Db>) -> Answer {
    let level = lock(&db)?.global_level();
    Ok(ok(json!({"compatibilityLevel": level.as_str()})))
}

async fn set_global_config(Shared(db): Shared<Db>, Body(req): Body<ConfigRequest>) -> Answer {
    let level = req.level()?;
    lock(&db)?.set_global_level(level);
    Ok(ok(json!({"compatibility": level.as_str()})))
}

/// A subject's level: its own, or the global one when it has none.
async fn subject_config(Shared(db): Shared<Db>, Path(subject): Path<String>) -> Answer {
    let level = lock(&db)?.level(&subject);
    Ok(ok(json!({"compatibilityLevel": level.as_str()})))
}

async fn set_subject_config(
    Shared(db): Shared<Db>,
    Path(subject): Path<String>,
    Body(req): Body<ConfigRequest>,
) -> Answer {
    let level = req.level()?;
    lock(&db)?.set_level(&subject, Some(level));
    Ok(ok(json!({"compatibility": level.as_str()})))
}

async fn delete_subject_config(Shared(db): Shared<Db>, Path(subject): Path<String>) -> Answer {
    let mut db = lock(&db)?;
    let was = db.level(&subject);
    db.set_level(&subject, None);
    Ok(ok(json!({"compatibilityLevel": was.as_str()})))
}
