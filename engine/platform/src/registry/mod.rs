//! The embedded schema registry: an in-memory subset of the Confluent Schema Registry
//! REST API, for JSON Schemas, so that `sprocket dev` and `sprocket broker` need no other
//! service and any Confluent client (schema_registry_converter, kcat, the Java and
//! Python serializers) can talk to it.
//!
//! # Endpoints
//!
//! | method | path | answer |
//! |---|---|---|
//! | `POST` | `/subjects/{subject}/versions` | register `{"schema", "schemaType": "JSON"}` → `{"id"}` |
//! | `POST` | `/subjects/{subject}` | look a schema up under a subject → `{"subject", "id", "version", "schema", "schemaType"}` |
//! | `GET` | `/schemas/ids/{id}` | `{"schema", "schemaType"}` |
//! | `GET` | `/schemas/ids/{id}/versions` | `[{"subject", "version"}]` |
//! | `GET` | `/schemas/types` | `["JSON"]` |
//! | `GET` | `/subjects` | subject names |
//! | `GET` | `/subjects/{subject}/versions` | version numbers |
//! | `GET` | `/subjects/{subject}/versions/{version or latest}` | as the lookup |
//! | `GET` | `/subjects/{subject}/versions/{version}/schema` | the schema itself |
//! | `DELETE` | `/subjects/{subject}[?permanent=true]` | the deleted version numbers |
//! | `POST` | `/compatibility/subjects/{subject}/versions[/{version}]` | `{"is_compatible", "messages"}` |
//! | `GET`/`PUT` | `/config`, `/config/{subject}` (and `DELETE /config/{subject}`) | `{"compatibilityLevel"}` |
//!
//! Ids are global: identical schemas (equal after sorting object keys) share one id
//! across subjects, and registering a schema again under a subject returns its id.
//! Registering a schema the subject's compatibility level refuses answers 409.
//! `GET /config/{subject}` answers the level in force for the subject (its own, else
//! the global one, `BACKWARD` by default). Errors are `{"error_code", "message"}` with
//! the Confluent codes (40401 subject, 40402 version, 40403 schema not found; 42201
//! invalid schema, 42202 invalid version, 42203 invalid level; 409 incompatible; 415
//! unsupported content type). Requests may be sent as
//! `application/vnd.schemaregistry.v1+json` or `application/json`; answers are
//! `application/vnd.schemaregistry.v1+json`. Only `schemaType: JSON` is stored, and
//! schema references are refused.
//!
//! # Compatibility rules
//!
//! `BACKWARD` means a reader holding the new schema can read every value valid under the
//! old one ("old data fits the new schema"); `FORWARD` is the same check the other way
//! round, `FULL` both; the `_TRANSITIVE` levels check against every live version rather
//! than the latest. The check walks both schemas together (following local `$ref`s,
//! recursing into `properties`, `additionalProperties`, `items`, `allOf`, `anyOf` and
//! `oneOf`) and reports, with a JSON-pointer path to where it is:
//!
//! * a property newly `required` → incompatible (removing `required` is compatible);
//! * `type` changed or narrowed (`number` → `integer`, `[string, null]` → `string`), or a
//!   type added where any was accepted → incompatible; widening (`integer` → `number`,
//!   adding `null`) is compatible;
//! * `enum`/`const` narrowed (a value no longer allowed) or added → incompatible;
//!   widening an `enum` is compatible;
//! * a property removed from a closed new schema (`additionalProperties: false`) that
//!   the old one declared → incompatible; removed from an open one → compatible (or
//!   checked against the new `additionalProperties` schema);
//! * `additionalProperties` changed from open (absent or `true`) to closed, or narrowed
//!   to a schema → incompatible;
//! * a property added: compatible when the old schema was closed (old data cannot hold
//!   it); when the old schema was open, old data may hold any value under that name, so
//!   it is incompatible unless the new property accepts everything (Confluent's
//!   "property added to open content model");
//! * a lower bound (`minimum`, `minLength`, `minItems`, `minProperties`, exclusive
//!   minimum) raised or added, an upper bound lowered or added → incompatible;
//!   `pattern`, `format`, `multipleOf` added or changed, `uniqueItems` added →
//!   incompatible;
//! * every alternative of an old `anyOf`/`oneOf` must fit some alternative of the new
//!   one (the exclusivity of `oneOf` is not checked); a new `allOf` must be met part by
//!   part;
//! * any other keyword (`not`, `if`, `patternProperties`, tuple `items`, remote `$ref`…)
//!   must be unchanged, since its effect is not analysed.
//!
//! Keywords of the old schema the check does not understand are ignored, which can only
//! make it stricter: it never calls a change compatible that it cannot prove to be.

mod compat;
mod error;
mod routes;
mod shape;
mod state;

#[cfg(test)]
mod compat_tests;
#[cfg(test)]
mod http_tests;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub use compat::read_problems;
pub use error::RegistryError;
pub use routes::router;
pub use state::Level;

/// The media type of every answer.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Serves the registry on `listener` until `shutdown` completes. Whoever can
/// reach it may read; only a client on this machine may register, delete or
/// reconfigure ([`loopback_writes`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router().layer(axum::middleware::from_fn(loopback_writes));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Refuses (403) a request that changes the registry — registering a
/// version, deleting, setting compatibility — from a peer that is not on
/// this machine. Lookups and compatibility checks (POSTs that change
/// nothing) stay open.
pub async fn loopback_writes(
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::Method;
    let path = req.uri().path();
    let changes = match *req.method() {
        Method::PUT | Method::DELETE => true,
        Method::POST => path.starts_with("/subjects/") && path.ends_with("/versions"),
        _ => false,
    };
    if changes && !peer.ip().to_canonical().is_loopback() {
        return reply(
            StatusCode::FORBIDDEN,
            serde_json::json!({"error_code": 40301, "message": "changes are accepted from this machine only"}),
        );
    }
    next.run(req).await
}

fn reply(status: StatusCode, body: Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    res
}
