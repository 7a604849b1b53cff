//! `GET /v1/me`: who the key is, so a client (the dashboard) can show the
//! tenant and offer only what the key's scopes allow.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{AuthErrors, ErrorBody};
use super::{ApiError, AppState};
use crate::auth::{Admin, Authorized, Caller, Read, Write};

/// The caller behind the key.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The tenant the key acts for (an `admin` key sees every tenant).
    pub tenant: String,
    /// The key's scopes: `jobs:read`, `jobs:write`, `admin`.
    pub scopes: Vec<String>,
    /// The key's id (as `GET /v1/keys` lists it), never the key.
    pub key_id: String,
}

#[utoipa::path(get, path = "/v1/me", tag = "keys",
    responses(
        (status = 200, description = "The tenant, scopes and id of the key sent", body = Me),
        AuthErrors,
        (status = 503, description = "The database does not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
/// Any live key may ask, whatever its scopes.
pub async fn show(Keyed(caller): Keyed) -> Json<Me> {
    Json(Me {
        tenant: caller.tenant,
        scopes: caller
            .scopes
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        key_id: caller.key_id,
    })
}

/// A caller with a live key of any scope. Every key has at least one of the
/// three, so one of them lets it through; a 403 only means "try the next",
/// and a 401 (no key, or a dead one) answers at once.
pub struct Keyed(Caller);

impl FromRequestParts<AppState> for Keyed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let forbidden = |e: &ApiError| e.status == StatusCode::FORBIDDEN;
        match Authorized::<Read>::from_request_parts(parts, s).await {
            Ok(Authorized(c, _)) => return Ok(Keyed(c)),
            Err(e) if !forbidden(&e) => return Err(e),
            Err(_) => {}
        }
        match Authorized::<Write>::from_request_parts(parts, s).await {
            Ok(Authorized(c, _)) => return Ok(Keyed(c)),
            Err(e) if !forbidden(&e) => return Err(e),
            Err(_) => {}
        }
        let Authorized(c, _) = Authorized::<Admin>::from_request_parts(parts, s).await?;
        Ok(Keyed(c))
    }
}
