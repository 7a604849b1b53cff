//! `GET /v1/me`: who the key is, so a client (the dashboard) can show the
//! tenant and offer only what the key's scopes allow.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{AuthErrors, ErrorBody};
use crate::auth::{AnyScope, Authorized};

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
pub async fn show(Authorized(caller, _): Authorized<AnyScope>) -> Json<Me> {
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
