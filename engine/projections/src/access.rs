//! What the API keeps itself, beside the projections: API keys (by hash)
//! and uploads with their tenant. No topic holds these, so `projector
//! --rebuild` leaves them alone.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::queries::query;
use crate::rows::timestamp;
use crate::schema::{api_keys, uploads};
use crate::{ProjectionError, Projections};

/// An API key as stored and listed: everything but the key, which only its
/// hash stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ApiKey {
    pub id: String,
    pub tenant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub created_at: String,
    /// When it was revoked; absent while it works.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = api_keys, treat_none_as_default_value = false)]
struct KeyRow {
    id: String,
    tenant: String,
    name: Option<String>,
    scopes: String,
    hash: String,
    created_at: String,
    revoked_at: Option<String>,
}

impl From<KeyRow> for ApiKey {
    fn from(r: KeyRow) -> ApiKey {
        ApiKey {
            id: r.id,
            tenant: r.tenant,
            name: r.name,
            scopes: r
                .scopes
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// One upload of a tenant's, for its daily quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadUse {
    pub bytes: u64,
    pub at: DateTime<Utc>,
}

impl Projections {
    /// Stores a new key: its fields and `hash` (SHA-256 of the key, lowercase
    /// hex). `key.revoked_at` is ignored.
    pub fn insert_key(&self, key: &ApiKey, hash: &str) -> Result<(), ProjectionError> {
        let row = KeyRow {
            id: key.id.clone(),
            tenant: key.tenant.clone(),
            name: key.name.clone(),
            scopes: key.scopes.join(","),
            hash: hash.to_owned(),
            created_at: key.created_at.clone(),
            revoked_at: None,
        };
        self.with_conn(|conn| {
            diesel::insert_into(api_keys::table)
                .values(&row)
                .execute(conn)
                .map(drop)
                .map_err(query("insert key"))
        })
    }

    /// The live (not revoked) key whose hash is `hash`.
    pub fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, ProjectionError> {
        self.with_conn(|conn| {
            api_keys::table
                .filter(api_keys::hash.eq(hash))
                .filter(api_keys::revoked_at.is_null())
                .select(KeyRow::as_select())
                .first(conn)
                .optional()
                .map(|r| r.map(ApiKey::from))
                .map_err(query("find key"))
        })
    }

    /// Every key (of `tenant`, when given), revoked ones included, oldest first.
    pub fn keys(&self, tenant: Option<&str>) -> Result<Vec<ApiKey>, ProjectionError> {
        self.with_conn(|conn| {
            let mut q = api_keys::table.select(KeyRow::as_select()).into_boxed();
            if let Some(t) = tenant {
                q = q.filter(api_keys::tenant.eq(t.to_owned()));
            }
            q.order((api_keys::created_at.asc(), api_keys::id.asc()))
                .load(conn)
                .map(|rows| rows.into_iter().map(ApiKey::from).collect())
                .map_err(query("list keys"))
        })
    }

    /// Revokes key `id` (of `tenant`, when given) at `at`; the key as it now
    /// is, or `None` if there is no such key. Revoking twice keeps the
    /// first time.
    pub fn revoke_key(
        &self,
        id: &str,
        tenant: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<ApiKey>, ProjectionError> {
        self.with_conn(|conn| {
            conn.transaction(|conn| {
                let mut q = api_keys::table
                    .filter(api_keys::id.eq(id))
                    .select(KeyRow::as_select())
                    .into_boxed();
                if let Some(t) = tenant {
                    q = q.filter(api_keys::tenant.eq(t.to_owned()));
                }
                let Some(mut row) = q.first(conn).optional()? else {
                    return Ok(None);
                };
                if row.revoked_at.is_none() {
                    let stamp = timestamp(at);
                    diesel::update(api_keys::table.find(id))
                        .set(api_keys::revoked_at.eq(&stamp))
                        .execute(conn)?;
                    row.revoked_at = Some(stamp);
                }
                Ok(Some(ApiKey::from(row)))
            })
            .map_err(query("revoke key"))
        })
    }

    /// Records that `tenant` uploaded `bytes` as `id` at `at`.
    pub fn record_upload(
        &self,
        id: &str,
        tenant: &str,
        bytes: u64,
        at: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        self.with_conn(|conn| {
            diesel::insert_into(uploads::table)
                .values((
                    uploads::id.eq(id),
                    uploads::tenant.eq(tenant),
                    uploads::bytes.eq(i64::try_from(bytes).unwrap_or(i64::MAX)),
                    uploads::created_at.eq(timestamp(at)),
                ))
                .execute(conn)
                .map(drop)
                .map_err(query("record upload"))
        })
    }

    /// The tenant of upload `id`, if it was recorded.
    pub fn upload_tenant(&self, id: &str) -> Result<Option<String>, ProjectionError> {
        self.with_conn(|conn| {
            uploads::table
                .find(id)
                .select(uploads::tenant)
                .first(conn)
                .optional()
                .map_err(query("find upload"))
        })
    }

    /// The uploads of `tenant` since `since`, oldest first.
    pub fn uploads_since(
        &self,
        tenant: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<UploadUse>, ProjectionError> {
        self.with_conn(|conn| {
            let rows: Vec<(i64, String)> = uploads::table
                .filter(uploads::tenant.eq(tenant))
                .filter(uploads::created_at.ge(timestamp(since)))
                .order(uploads::created_at.asc())
                .select((uploads::bytes, uploads::created_at))
                .load(conn)
                .map_err(query("list uploads"))?;
            rows.into_iter()
                .map(|(bytes, at)| {
                    let at = DateTime::parse_from_rfc3339(&at)
                        .map_err(|e| ProjectionError::Query {
                            context: "list uploads",
                            source: diesel::result::Error::DeserializationError(Box::new(e)),
                        })?
                        .with_timezone(&Utc);
                    Ok(UploadUse {
                        bytes: bytes.max(0) as u64,
                        at,
                    })
                })
                .collect()
        })
    }
}
