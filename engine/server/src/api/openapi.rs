//! The API's OpenAPI 3.1 document, generated from the handlers' annotations
//! and types, and served at `GET /openapi.json`.

use std::sync::OnceLock;

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

/// The name of the bearer scheme the `/v1` operations declare.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sprocket status API",
        description = "Submit media jobs, follow them, cancel or retry them and download \
                       their artifacts. Errors answer `{\"error\": {\"code\", \"message\"}}`; \
                       a 5xx adds `request_id` (also in `x-request-id`), under which the \
                       server logged what failed.\n\nEvery `/v1` operation needs an API key \
                       as `Authorization: Bearer <key>` (401 without a live one) with \
                       the scope it names (403 without): `jobs:read`, `jobs:write` or \
                       `admin`. A key acts for one tenant and sees only that tenant's \
                       jobs and uploads; an admin key sees every tenant's."
    ),
    modifiers(&Bearer),
    tags(
        (name = "jobs", description = "Submitting and reading jobs"),
        (name = "control", description = "Cancelling and retrying jobs"),
        (name = "artifacts", description = "Uploads and artifact downloads"),
        (name = "operations", description = "Phases, health, metrics and this document"),
        (name = "keys", description = "API keys: the caller's own (`/v1/me`, any key) and all of them (admin)"),
        (name = "recipes", description = "Named recipes stored as data (admin to store, \
            versioned 1, 2, 3…; the built-ins `highlight` and `minimal` stay as they are); a job \
            naming one runs its latest version, or the `recipe_version` it asks for, and records \
            the recipe and version it ran"),
        (name = "webhooks", description = "Signed POSTs of a tenant's events: each delivery \
            carries `X-Sprocket-Event-Id` and `X-Sprocket-Signature: t=<unix seconds>,v1=<hex \
            HMAC-SHA256 of \"<t>.<body>\" with the webhook's secret>`; failed deliveries are \
            retried with backoff for up to a day, then kept as dead letters"),
    )
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut Document) {
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key as `Authorization: Bearer <key>` (`spk_` and 64 hex digits).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document of the routes [`super::routes`] serves, built once.
pub fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = super::routes().split_for_parts().1;
        // axum's catch-all `{*name}` (artifact names may hold `/`) is a
        // plain `{name}` in OpenAPI's path templates.
        doc.paths.paths = std::mem::take(&mut doc.paths.paths)
            .into_iter()
            .map(|(path, item)| (path.replace("{*", "{"), item))
            .collect();
        doc
    })
}

/// `GET /openapi.json`: this API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)),
)]
pub async fn serve() -> Json<&'static Document> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// Every route `routes()` serves, as (method, path). `routes()` registers
    /// handlers only through `utoipa_axum::routes!`, which puts each into the
    /// router and the document together; this list and the check of
    /// `mod.rs` below catch a route added by hand.
    const SERVED: [(&str, &str); 27] = [
        ("post", "/v1/uploads"),
        ("post", "/v1/jobs"),
        ("get", "/v1/jobs"),
        ("get", "/v1/jobs/{id}"),
        ("get", "/v1/jobs/{id}/events"),
        ("get", "/v1/jobs/{id}/events/stream"),
        ("get", "/v1/events/stream"),
        ("post", "/v1/jobs/{id}/cancel"),
        ("post", "/v1/jobs/{id}/retry"),
        ("get", "/v1/jobs/{id}/artifacts/{name}"),
        ("get", "/v1/phases"),
        ("post", "/v1/keys"),
        ("get", "/v1/keys"),
        ("delete", "/v1/keys/{id}"),
        ("get", "/v1/me"),
        ("get", "/v1/recipes"),
        ("get", "/v1/recipes/schema"),
        ("put", "/v1/recipes/{name}"),
        ("get", "/v1/recipes/{name}"),
        ("post", "/v1/webhooks"),
        ("get", "/v1/webhooks"),
        ("delete", "/v1/webhooks/{id}"),
        ("get", "/v1/webhooks/{id}/deliveries"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ];

    fn doc() -> Value {
        serde_json::to_value(document()).unwrap()
    }

    #[test]
    fn is_openapi_3_1_with_every_route() {
        let doc = doc();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{}",
            doc["openapi"]
        );
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                    .map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        let mut served: Vec<(String, String)> = SERVED
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
    }

    #[test]
    fn routes_are_only_added_with_their_documentation() {
        let src = include_str!("mod.rs");
        let body = src.split("pub fn routes()").nth(1).unwrap();
        let body = &body[..body.find("\n}\n").unwrap()];
        assert!(
            !body.contains(".route(") && !body.contains(".nest("),
            "add routes with `.routes(routes!(handler))` so they are documented"
        );
        let router = src.split("pub fn router(").nth(1).unwrap();
        let router = &router[..router.find("\n}\n").unwrap()];
        assert!(!router.contains(".route(") && !router.contains(".nest("));
        // The one router merged beside the documented ones is the web
        // dashboard's: pages at `/` and `/ui/…`, not API operations (its
        // own test pins those paths).
        let merged: Vec<&str> = router
            .lines()
            .map(str::trim)
            .filter(|l| l.contains(".merge("))
            .collect();
        assert_eq!(merged, [".merge(crate::dashboard::router())"]);
    }

    /// Every operation but health, readiness and this document needs a key,
    /// and says so: the scheme, and its 401 and 403 answers.
    #[test]
    fn keyed_operations_declare_the_bearer_scheme_and_its_errors() {
        let doc = doc();
        let scheme = &doc["components"]["securitySchemes"][BEARER];
        assert_eq!(scheme["type"], "http");
        assert_eq!(scheme["scheme"], "bearer");
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let declared = op["security"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r.get(BEARER).is_some()));
                let keyed = path.starts_with("/v1/") || path == "/metrics";
                assert_eq!(declared, keyed, "{method} {path}");
                for code in ["401", "403"] {
                    assert_eq!(
                        op["responses"][code].is_object(),
                        keyed,
                        "{method} {path} documents {code}"
                    );
                }
            }
        }
    }

    #[test]
    fn errors_have_the_documented_shape() {
        let doc = doc();
        let detail = &doc["components"]["schemas"]["ErrorDetail"];
        let required: Vec<&str> = detail["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(required, ["code", "message"]);
        assert!(detail["properties"]["request_id"].is_object());
        let submit = &doc["paths"]["/v1/jobs"]["post"]["responses"];
        for code in ["202", "400", "413", "415", "422", "503"] {
            assert!(submit[code].is_object(), "POST /v1/jobs documents {code}");
        }
        for op in ["cancel", "retry"] {
            let r = &doc["paths"][format!("/v1/jobs/{{id}}/{op}")]["post"]["responses"];
            for code in ["202", "404", "409"] {
                assert!(r[code].is_object(), "{op} documents {code}");
            }
        }
    }
}
