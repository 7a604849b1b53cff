//! Uploads under retention. An upload no job names goes `retention.uploads`
//! after it was uploaded (and last claimed); one a job names goes with that
//! job's working data (`retention.work`) once no queued or running job
//! names it. The projections decide each in one conditional update
//! ([`Projections::expire_upload`]) that a submission's claim cannot slip
//! past, and record it on the upload's row: when, by which rule, with which
//! job. The object is removed after that record; a janitor killed in between
//! removes it on its next sweep.

use chrono::{DateTime, Utc};
use sprocket_core::retention::{self, Keep};
use sprocket_core::{Job, Source};
use sprocket_platform::metrics;
use sprocket_platform::store;
use sprocket_projections::{UploadRef, UploadRule, WorkClaim};

use super::{blocking, Janitor, PAGE};
use crate::error::ServerError;

/// `now` less `keep`, or `None` when kept for ever.
fn cutoff(keep: Keep, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let d = chrono::Duration::from_std(keep.period()?).ok()?;
    now.checked_sub_signed(d)
}

impl Janitor {
    /// Removes what a killed janitor left marked, then expires the uploads
    /// no job has named for `retention.uploads`: a page of each per sweep.
    pub(super) async fn sweep_uploads(&self, now: DateTime<Utc>) -> Result<(), ServerError> {
        let left = blocking(&self.projections, |p| p.uploads_to_remove(PAGE.into())).await?;
        for u in &left {
            self.remove_upload(u).await?;
        }
        let Some(before) = cutoff(self.uploads, now) else {
            return Ok(());
        };
        let unused = blocking(&self.projections, move |p| {
            p.unused_uploads(before, PAGE.into())
        })
        .await?;
        for u in unused {
            let rule = UploadRule::Unused { before };
            let id = u.id.clone();
            let marked =
                blocking(&self.projections, move |p| p.expire_upload(&id, rule, now)).await?;
            if let Some(u) = marked {
                self.remove_upload(&u).await?;
            }
        }
        Ok(())
    }

    /// For `retention.work` on `job`: marks the upload its source names
    /// expired if nothing can still use it, and returns it for removal once
    /// the job's event is written.
    pub(super) async fn expire_with(
        &self,
        job: &Job,
        now: DateTime<Utc>,
    ) -> Result<Option<UploadRef>, ServerError> {
        let Some(Source::Upload(upload)) = &job.source else {
            return Ok(None);
        };
        let (upload, id) = (upload.clone(), job.id.to_string());
        // A claim no job followed for a whole `retention.uploads` was given up.
        let abandoned = cutoff(self.uploads, now).unwrap_or(DateTime::<Utc>::MIN_UTC);
        blocking(&self.projections, move |p| {
            let rule = UploadRule::WithJob {
                job: &id,
                abandoned,
            };
            p.expire_upload(&upload, rule, now)
        })
        .await
    }

    /// Takes `job`'s working data from any retry after its finish (a retry
    /// accepted since would run on data being removed); false when a retry
    /// holds it.
    pub(super) async fn claim_work(&self, job: &Job) -> Result<bool, ServerError> {
        let finished = retention::finished_at(job).unwrap_or_default();
        let id = job.id.to_string();
        blocking(&self.projections, move |p| {
            p.claim_work(&id, WorkClaim::Expiring { finished }, Utc::now())
        })
        .await
    }

    /// Removes an expired upload's object and records it removed.
    pub(super) async fn remove_upload(&self, u: &UploadRef) -> Result<(), ServerError> {
        let key = sprocket_core::work::upload_key(&u.id);
        let gone = store::delete(&self.sweeper.stores.work, &key).await?;
        let freed = if gone { u.bytes } else { 0 };
        let id = u.id.clone();
        blocking(&self.projections, move |p| p.upload_removed(&id, freed)).await?;
        metrics::metrics()
            .janitor_bytes_freed
            .with_label_values(&["uploads"])
            .inc_by(freed);
        tracing::info!(upload = %u.id, bytes = freed, "janitor: upload removed");
        Ok(())
    }
}
