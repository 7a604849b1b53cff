//! API keys: who is calling, for which tenant, with which scopes.
//!
//! A key is `spk_` and 64 hex digits of randomness (256 bits), shown once
//! when it is made; the database keeps only its SHA-256 (a key this long
//! needs no slow hash: nothing can be guessed from the digest). Every `/v1`
//! handler takes an [`Authorized`] of the scope it needs, so none can forget
//! to check: no key or an unknown one is 401, a key without the scope 403.
//!
//! Found keys are cached for at most [`CACHE_FOR`], so a revoked key stops
//! working within a second on every API replica without a database read on
//! every request.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sprocket_core::Job;
use sprocket_projections::{ApiKey, ProjectionError, Projections};

use crate::api::{ApiError, AppState};

/// How long a found key is trusted before it is looked up again.
pub const CACHE_FOR: Duration = Duration::from_millis(500);
/// Most keys cached at once (a full cache is emptied).
const CACHE_MAX: usize = 10_000;

/// What a key may do. `admin` may do everything, for every tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Scope {
    #[serde(rename = "jobs:read")]
    JobsRead,
    #[serde(rename = "jobs:write")]
    JobsWrite,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::JobsRead, Scope::JobsWrite, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::JobsRead => "jobs:read",
            Scope::JobsWrite => "jobs:write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?}: use jobs:read, jobs:write or admin"))
    }
}

/// The caller behind a valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: String,
    pub tenant: String,
    pub scopes: Vec<Scope>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.scopes.contains(&Scope::Admin)
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.is_admin() || self.scopes.contains(&scope)
    }

    /// The tenant whose rows a listing shows: the caller's, or every
    /// tenant's (`None`) for an admin.
    pub fn listing(&self) -> Option<&str> {
        (!self.is_admin()).then_some(self.tenant.as_str())
    }

    /// Whether the caller may see `job`: its tenant's, or any for an admin.
    pub fn sees(&self, job: &Job) -> bool {
        self.is_admin() || job.tenant.as_deref() == Some(self.tenant.as_str())
    }

    fn from_key(key: &ApiKey) -> Caller {
        Caller {
            key_id: key.id.clone(),
            tenant: key.tenant.clone(),
            scopes: key
                .scopes
                .iter()
                .filter_map(|s| Scope::parse(s).ok())
                .collect(),
        }
    }
}

/// The scope a handler needs, as a type ([`Authorized`]'s parameter).
pub trait Needs {
    /// The scope a key must have; `None`: any live key will do.
    const SCOPE: Option<Scope>;
}

/// `jobs:read`: see the tenant's jobs, their events and artifacts, phases.
pub struct Read;
/// `jobs:write`: upload, submit, cancel and retry.
pub struct Write;
/// `admin`: keys, metrics, and every tenant.
pub struct Admin;
/// Any live key, whatever its scopes (`GET /v1/me`).
pub struct AnyScope;

impl Needs for Read {
    const SCOPE: Option<Scope> = Some(Scope::JobsRead);
}
impl Needs for Write {
    const SCOPE: Option<Scope> = Some(Scope::JobsWrite);
}
impl Needs for Admin {
    const SCOPE: Option<Scope> = Some(Scope::Admin);
}
impl Needs for AnyScope {
    const SCOPE: Option<Scope> = None;
}

/// A caller with a valid key that has scope `S`; extracting it answers 401
/// or 403 otherwise.
pub struct Authorized<S: Needs>(pub Caller, pub PhantomData<S>);

impl<S: Needs> FromRequestParts<AppState> for Authorized<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, key) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
            })
            .ok_or_else(|| unauthorized("send an API key as `Authorization: Bearer <key>`"))?;
        let caller = s
            .keys
            .caller(key)
            .await?
            .ok_or_else(|| unauthorized("the API key is not valid (unknown or revoked)"))?;
        if let Some(scope) = S::SCOPE.filter(|s| !caller.has(*s)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this key lacks the {} scope", scope.as_str()),
            ));
        }
        Ok(Authorized(caller, PhantomData))
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// Keys as the API checks them: looked up by hash, found ones cached briefly.
pub struct Keys {
    projections: Projections,
    cache: Mutex<HashMap<String, (Instant, Caller)>>,
}

impl Keys {
    pub fn new(projections: Projections) -> Keys {
        Keys {
            projections,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The caller behind `key`, if it is a live key.
    pub async fn caller(&self, key: &str) -> Result<Option<Caller>, ApiError> {
        if !looks_like_a_key(key) {
            return Ok(None);
        }
        let hash = hash(key);
        if let Some((at, caller)) = self.cache.lock().expect("key cache").get(&hash) {
            if at.elapsed() < CACHE_FOR {
                return Ok(Some(caller.clone()));
            }
        }
        let (p, h) = (self.projections.clone(), hash.clone());
        let found = tokio::task::spawn_blocking(move || p.key_by_hash(&h))
            .await
            .map_err(ApiError::unavailable)??;
        let mut cache = self.cache.lock().expect("key cache");
        match found {
            Some(key) => {
                let caller = Caller::from_key(&key);
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
                cache.insert(hash, (Instant::now(), caller.clone()));
                Ok(Some(caller))
            }
            None => {
                cache.remove(&hash);
                Ok(None)
            }
        }
    }
}

/// `spk_` and 64 lowercase hex digits.
fn looks_like_a_key(key: &str) -> bool {
    key.strip_prefix("spk_")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// SHA-256 of a key, lowercase hex: what the database keeps.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new key with its record: the key itself is returned only here.
pub fn create(
    projections: &Projections,
    tenant: &str,
    scopes: &[Scope],
    name: Option<String>,
) -> Result<(ApiKey, String), CreateError> {
    sprocket_core::ids::tenant(tenant).map_err(|e| CreateError::Invalid(e.to_string()))?;
    if scopes.is_empty() {
        return Err(CreateError::Invalid(
            "a key needs at least one scope: jobs:read, jobs:write or admin".into(),
        ));
    }
    if let Some(n) = &name {
        if n.len() > 200 || n.chars().any(char::is_control) {
            return Err(CreateError::Invalid(
                "a key's name is at most 200 characters, none of them control characters".into(),
            ));
        }
    }
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let key = format!("spk_{}", hex::encode(secret));
    let mut scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    scopes.sort_unstable();
    scopes.dedup();
    let record = ApiKey {
        id: uuid::Uuid::now_v7().simple().to_string(),
        tenant: tenant.to_owned(),
        name,
        scopes: scopes.into_iter().map(str::to_owned).collect(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        revoked_at: None,
    };
    projections.insert_key(&record, &hash(&key))?;
    Ok((record, key))
}

/// The file under a dev stack's data directory that holds its admin key.
pub const DEV_KEY_FILE: &str = "api-key";

/// The admin key of the dev stack whose data directory is `data`: the one
/// saved in `data/api-key` while it is still live, or a new one for
/// `tenant`, saved there (mode 0600).
pub fn dev_key(
    projections: &Projections,
    data: &std::path::Path,
    tenant: &str,
) -> Result<String, crate::ServerError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = data.join(DEV_KEY_FILE);
    let context = || format!("the dev API key {}", path.display());
    if let Ok(saved) = std::fs::read_to_string(&path) {
        let saved = saved.trim();
        let live = looks_like_a_key(saved)
            && projections
                .key_by_hash(&hash(saved))?
                .is_some_and(|k| k.scopes.iter().any(|s| s == Scope::Admin.as_str()));
        if live {
            return Ok(saved.to_owned());
        }
    }
    let (_, key) = create(
        projections,
        tenant,
        &[Scope::Admin],
        Some("sprocket dev".into()),
    )
    .map_err(|e| match e {
        CreateError::Invalid(m) => crate::ServerError::Key(m),
        CreateError::Projections(e) => e.into(),
    })?;
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(crate::ServerError::io(context()))?;
    writeln!(f, "{key}").map_err(crate::ServerError::io(context()))?;
    Ok(key)
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Projections(#[from] ProjectionError),
}

impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Invalid(m) => ApiError::bad_request("invalid_key_request", m),
            CreateError::Projections(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Projections) {
        let dir = tempfile::tempdir().unwrap();
        let p = Projections::connect(&format!("sqlite://{}", dir.path().join("k.db").display()))
            .unwrap();
        p.migrate().unwrap();
        (dir, p)
    }

    #[test]
    fn keys_are_long_random_and_stored_only_as_their_hash() {
        let (_dir, p) = db();
        let (a, key_a) = create(&p, "acme", &[Scope::JobsRead], Some("ci".into())).unwrap();
        let (_, key_b) = create(&p, "acme", &[Scope::JobsRead], None).unwrap();
        assert!(looks_like_a_key(&key_a) && key_a != key_b);
        let snapshot = format!("{:?}", p.keys(None).unwrap());
        assert!(!snapshot.contains(&key_a[4..]), "{snapshot}");
        assert_eq!(p.key_by_hash(&hash(&key_a)).unwrap(), Some(a));
        assert_eq!(p.key_by_hash(&hash("spk_nope")).unwrap(), None);
    }

    #[test]
    fn scopes_and_tenants_decide_what_a_caller_sees() {
        let reader = Caller {
            key_id: "k".into(),
            tenant: "acme".into(),
            scopes: vec![Scope::JobsRead],
        };
        let admin = Caller {
            scopes: vec![Scope::Admin],
            ..reader.clone()
        };
        assert!(reader.has(Scope::JobsRead) && !reader.has(Scope::JobsWrite));
        assert!(Scope::ALL.iter().all(|s| admin.has(*s)));
        let mut job = Job::new(sprocket_core::JobId::parse("j").unwrap());
        job.tenant = Some("acme".into());
        assert!(reader.sees(&job) && admin.sees(&job));
        job.tenant = Some("other".into());
        assert!(!reader.sees(&job) && admin.sees(&job));
        job.tenant = None;
        assert!(!reader.sees(&job) && admin.sees(&job));
        assert_eq!(reader.listing(), Some("acme"));
        assert_eq!(admin.listing(), None);
    }

    #[test]
    fn bad_requests_for_keys_are_refused() {
        let (_dir, p) = db();
        for (tenant, scopes) in [
            ("", &[Scope::Admin][..]),
            ("a b", &[Scope::Admin]),
            ("t", &[]),
        ] {
            assert!(matches!(
                create(&p, tenant, scopes, None),
                Err(CreateError::Invalid(_))
            ));
        }
        assert!(Scope::parse("jobs:delete").is_err());
    }
}
