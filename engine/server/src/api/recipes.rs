//! Stored recipes: `PUT /v1/recipes/{name}` (admin) stores a version on
//! `sprocket.recipes`, `GET /v1/recipes[/{name}]` read them (the built-ins
//! too), `GET /v1/recipes/schema` is the JSON Schema a stored recipe meets.
//!
//! The API answers from its own table of the topic
//! ([`RecipeBook`](sprocket_platform::recipes::RecipeBook)); a `PUT` answers
//! only once that table has read the new version back, so the next request
//! to this API (a submission naming it included) sees it.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sprocket_core::recipe::BUILTIN;
use sprocket_core::stored::{self, Put, RecipeStored, MAX_RECIPE_BYTES};
use sprocket_core::{CoreError, Recipe};
use sprocket_platform::codec::catalog;
use utoipa::{IntoParams, ToSchema};

use super::error::{AuthErrors, ErrorBody};
use super::{ApiError, AppState};
use crate::auth::{Admin, Authorized, Read};

/// The published JSON Schema of a stored recipe (`schemas/recipe.json`).
pub const SCHEMA: &str = include_str!("../../../../schemas/recipe.json");

/// How often a `PUT` tries again after another writer took its version.
const TRIES: usize = 5;

/// The body of `PUT /v1/recipes/{name}`: the JSON Schema served at
/// `GET /v1/recipes/schema` (`schemas/recipe.json`) is the full contract.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // documents the body; the handler reads it as a `Recipe`
pub struct RecipeBody {
    /// The name it is stored under (optional; must equal the path's).
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: Option<String>,
    /// The phases to run, in pipeline order, ingest first, each at most once.
    #[schema(min_items = 1, max_items = 4)]
    steps: Vec<sprocket_core::Step>,
}

/// A recipe as the API shows it: a built-in, or a stored version.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipeView {
    pub name: String,
    /// Built in to Sprocket (no versions; cannot be stored over).
    pub builtin: bool,
    /// The stored version (1, 2, 3…); absent for a built-in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    pub recipe: Recipe,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_at: Option<DateTime<Utc>>,
    /// The id of the API key that stored it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_by: Option<String>,
}

impl From<&RecipeStored> for RecipeView {
    fn from(s: &RecipeStored) -> Self {
        RecipeView {
            name: s.name.clone(),
            builtin: false,
            version: Some(s.version),
            recipe: s.recipe.clone(),
            stored_at: Some(s.stored_at),
            stored_by: Some(s.stored_by.clone()),
        }
    }
}

fn builtin(name: &str) -> Option<RecipeView> {
    Recipe::builtin(name).map(|recipe| RecipeView {
        name: name.to_owned(),
        builtin: true,
        version: None,
        recipe,
        stored_at: None,
        stored_by: None,
    })
}

/// `GET /v1/recipes`: the built-ins, then the latest version of every stored recipe.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipeList {
    pub recipes: Vec<RecipeView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    /// A stored version (the latest when absent).
    #[param(minimum = 1)]
    version: Option<u32>,
}

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMA).expect("schemas/recipe.json is JSON");
        catalog::compile(&schema).expect("schemas/recipe.json compiles")
    })
}

/// Reads a `PUT` body: JSON, then the published schema (every violation
/// named by its path, a few at most), then the recipe's own rules, the
/// configured ceilings and each phase's parameters as its worker reads them.
fn read_body(s: &AppState, name: &str, body: &[u8]) -> Result<Recipe, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_request", format!("invalid recipe: {e}")))?;
    let errors: Vec<String> = validator()
        .iter_errors(&value)
        .take(5)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{}: {}", if at.is_empty() { "/" } else { &at }, e.masked())
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_recipe",
            format!(
                "the recipe does not match its schema (GET /v1/recipes/schema): {}",
                errors.join("; ")
            ),
        ));
    }
    let mut value = value;
    if let Some(obj) = value.as_object_mut() {
        obj.entry("name")
            .or_insert_with(|| Value::String(String::new()));
    }
    let recipe: Recipe = serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request("invalid_recipe", format!("invalid recipe: {e}")))?;
    let refuse = |e: CoreError| ApiError::bad_request(e.code(), e.to_string());
    let recipe = stored::storable(name, recipe).map_err(refuse)?;
    s.config.limits.bounds().recipe(&recipe).map_err(refuse)?;
    sprocket_workers::params::check(&recipe)
        .map_err(|e| ApiError::bad_request("invalid_recipe", format!("invalid recipe: {e}")))?;
    Ok(recipe)
}

/// Stores a version of a named recipe. The same recipe as the latest
/// version changes nothing (`200` with that version); anything else is the
/// next version (`201`). Built-in names cannot be stored over.
#[utoipa::path(put, path = "/v1/recipes/{name}", tag = "recipes",
    params(("name" = String, Path, description = "The recipe's name", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    request_body(content = RecipeBody, content_type = "application/json",
        description = "A recipe meeting the JSON Schema at `GET /v1/recipes/schema`"),
    responses(
        (status = 200, description = "The latest version is this very recipe: unchanged", body = RecipeView),
        (status = 201, description = "Stored as the next version", body = RecipeView),
        (status = 400, description = "Not a valid recipe (the message names the failing path), or an invalid name", body = ErrorBody),
        AuthErrors,
        (status = 409, description = "A built-in recipe's name, or other writers kept taking the next version", body = ErrorBody),
        (status = 413, description = "The body is over the recipe limit", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 503, description = "Kafka does not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn put(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Admin>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<RecipeView>), ApiError> {
    let body = body?;
    stored::check_name(&name).map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
    if BUILTIN.contains(&name.as_str()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "builtin_recipe",
            format!("{name} is a built-in recipe: store yours under another name"),
        ));
    }
    if body.len() > MAX_RECIPE_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the recipe is {} bytes, over the limit of {MAX_RECIPE_BYTES}",
                body.len()
            ),
        ));
    }
    super::error::json_body(&headers, &body)?;
    let recipe = read_body(&s, &name, &body)?;
    let book = &s.recipes;
    // The version follows what is on the topic, not what this table has
    // read so far.
    book.catch_up(sprocket_platform::recipes::CATCH_UP)
        .await
        .map_err(ApiError::unavailable)?;
    for _ in 0..TRIES {
        let version = match book.with(|t| match t.put(&name, &recipe) {
            Put::Unchanged(latest) => Err(RecipeView::from(latest)),
            Put::Next(v) => Ok(v),
        }) {
            Ok(v) => v,
            Err(same) => return Ok((StatusCode::OK, Json(same))),
        };
        let record = RecipeStored {
            name: name.clone(),
            version,
            recipe: recipe.clone(),
            stored_at: Utc::now(),
            stored_by: caller.key_id.clone(),
        };
        if book
            .store(&s.bus, &s.producer, &record)
            .await
            .map_err(ApiError::unavailable)?
        {
            tracing::info!(recipe = %name, version, key_id = %caller.key_id, "recipe stored");
            let stored = book.with(|t| t.get(&name, Some(version)).map(RecipeView::from));
            return Ok((
                StatusCode::CREATED,
                Json(stored.unwrap_or_else(|| RecipeView::from(&record))),
            ));
        }
        tracing::info!(recipe = %name, version, "another writer took the version; trying again");
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        format!("other writers kept taking the next version of {name}; try again"),
    ))
}

/// The built-in recipes, then the latest version of every stored one, by name.
#[utoipa::path(get, path = "/v1/recipes", tag = "recipes",
    responses(
        (status = 200, description = "Every recipe a job can name", body = RecipeList),
        AuthErrors,
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(s): State<AppState>,
    _: Authorized<Read>,
) -> Result<Json<RecipeList>, ApiError> {
    let mut recipes: Vec<RecipeView> = BUILTIN.iter().filter_map(|n| builtin(n)).collect();
    s.recipes
        .with(|t| recipes.extend(t.latest().map(RecipeView::from)));
    Ok(Json(RecipeList { recipes }))
}

/// A recipe by name: a built-in, or a stored one's latest version (or the
/// version asked for).
#[utoipa::path(get, path = "/v1/recipes/{name}", tag = "recipes",
    params(
        ("name" = String, Path, description = "The recipe's name"),
        VersionQuery,
    ),
    responses(
        (status = 200, description = "The recipe", body = RecipeView),
        (status = 400, description = "Not a valid version", body = ErrorBody),
        AuthErrors,
        (status = 404, description = "No such recipe, or no such version", body = ErrorBody),
        (status = 503, description = "Kafka does not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn show(
    State(s): State<AppState>,
    _: Authorized<Read>,
    Path(name): Path<String>,
    q: Result<Query<VersionQuery>, QueryRejection>,
) -> Result<Json<RecipeView>, ApiError> {
    let Query(q) = q?;
    if let Some(b) = builtin(&name) {
        return match q.version {
            None => Ok(Json(b)),
            Some(_) => Err(ApiError::not_found(format!(
                "{name} is a built-in recipe: it has no versions"
            ))),
        };
    }
    let find = || {
        s.recipes
            .with(|t| t.get(&name, q.version).map(RecipeView::from))
    };
    // Stored by another API a moment ago? Read the topic to its end once.
    let found = match find() {
        Some(r) => Some(r),
        None => {
            s.recipes
                .catch_up(sprocket_platform::recipes::CATCH_UP)
                .await
                .map_err(ApiError::unavailable)?;
            find()
        }
    };
    let missing = match q.version {
        Some(v) => format!("recipe {name} has no version {v}"),
        None => format!("no recipe {name}"),
    };
    found.map(Json).ok_or_else(|| ApiError::not_found(missing))
}

/// The JSON Schema (draft-07) a stored recipe meets (`schemas/recipe.json`).
#[utoipa::path(get, path = "/v1/recipes/schema", tag = "recipes",
    responses(
        (status = 200, description = "The recipe's JSON Schema", body = Object),
        AuthErrors,
    ),
    security(("bearer" = [])),
)]
pub async fn schema(_: Authorized<Read>) -> Json<Value> {
    Json(serde_json::from_str(SCHEMA).expect("schemas/recipe.json is JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_accepts_the_built_ins_and_names_what_it_refuses() {
        for name in BUILTIN {
            let mut r = serde_json::to_value(Recipe::builtin(name).unwrap()).unwrap();
            r.as_object_mut().unwrap().remove("name");
            assert!(validator().is_valid(&r), "{name}");
        }
        let bad = serde_json::json!({"steps": [{"phase": "ingest", "params": {"timeout_s": -1}},
            {"phase": "paint"}]});
        let at: Vec<String> = validator()
            .iter_errors(&bad)
            .map(|e| e.instance_path().to_string())
            .collect();
        assert!(
            at.contains(&"/steps/0/params/timeout_s".to_owned()),
            "{at:?}"
        );
        assert!(at.contains(&"/steps/1/phase".to_owned()), "{at:?}");
        assert!(!validator().is_valid(&serde_json::json!({"steps": [], "x": 1})));
    }
}
