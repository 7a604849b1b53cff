//! Per-tenant quotas (`[tenants]`): jobs queued or running at once, and
//! bytes uploaded in the last 24 hours. Over one, the API answers 429 with
//! `Retry-After`. Both are read from the projections, so a burst of
//! submissions faster than the projector can overshoot the job quota by
//! what is not projected yet.

use chrono::{Duration as ChronoDuration, Utc};

use super::{ApiError, AppState};

/// How long a client over the job quota is asked to wait: jobs finish at
/// no known time, so a few seconds.
const ACTIVE_RETRY_S: u64 = 5;
/// The upload quota's window.
const DAY: ChronoDuration = ChronoDuration::hours(24);

/// Refuses a new job while `tenant` has its quota of jobs queued or running.
pub async fn active_jobs(s: &AppState, tenant: &str) -> Result<(), ApiError> {
    let max = s.config.tenants.quota(tenant).max_active_jobs;
    if max == 0 {
        return Ok(());
    }
    let (p, t) = (s.projections.clone(), tenant.to_owned());
    let active = tokio::task::spawn_blocking(move || p.active_jobs(&t))
        .await
        .map_err(ApiError::unavailable)??;
    if active >= max {
        return Err(ApiError::over_quota(
            format!("tenant {tenant} has {active} jobs queued or running, its quota is {max}"),
            ACTIVE_RETRY_S,
        ));
    }
    Ok(())
}

/// How many more bytes `tenant` may upload now (`None`: no quota), or 429
/// when none, with `Retry-After` at the time its oldest upload of the last
/// day leaves the window.
pub async fn upload_room(s: &AppState, tenant: &str) -> Result<Option<u64>, ApiError> {
    let max = s.config.tenants.quota(tenant).max_upload_bytes_per_day;
    if max == 0 {
        return Ok(None);
    }
    let now = Utc::now();
    let (p, t) = (s.projections.clone(), tenant.to_owned());
    let recent = tokio::task::spawn_blocking(move || p.uploads_since(&t, now - DAY))
        .await
        .map_err(ApiError::unavailable)??;
    let used: u64 = recent.iter().map(|u| u.bytes).sum();
    if used < max {
        return Ok(Some(max - used));
    }
    let frees_at = recent.first().map_or(now, |u| u.at + DAY);
    Err(ApiError::over_quota(
        format!("tenant {tenant} uploaded {used} bytes in the last 24 hours, its quota is {max}"),
        (frees_at - now).num_seconds().max(1) as u64,
    ))
}
