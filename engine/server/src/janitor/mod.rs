//! The janitor's effects: carries out the retention rules the core says a
//! finished job owes ([`retention::due`]) on the stores, and returns the
//! event that records each, with the deterministic id of its job and rule
//! ([`retention::event_id`]), so a rerun after a kill writes the same event.
//! A removal of an object already gone counts as done.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::FutureProducer;
use sprocket_core::event::{JobArchiveTiered, Retired};
use sprocket_core::retention::{self, Due, JobRetention, Overrides};
use sprocket_core::{Envelope, EventBody, Job, JobStatus};
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;
use sprocket_platform::store::{self, StoreError};
use sprocket_platform::{liveness, metrics};
use sprocket_projections::Projections;
use sprocket_workers::Stores;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ServerError;

/// Jobs read from the projections at a time.
const PAGE: u32 = 500;

/// Starts the janitor (`sprocket janitor`, a task of `sprocket dev`): every
/// `retention.interval` it reads the finished jobs from the projections and
/// carries out and records what each owes. It ends when `stop` turns true.
pub async fn start(
    cfg: Arc<Config>,
    projections: Projections,
    stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, ServerError> {
    let bus = Bus::connect(&cfg, crate::services::producer_name("janitor")).await?;
    let producer = bus.producer()?;
    let sweeper = Sweeper {
        stores: Stores::open(&cfg)?,
        rules: cfg.retention.job(),
        cold_url: cfg
            .archive
            .cold_url
            .as_deref()
            .map(sprocket_core::redact::password),
        producer: bus.producer_name.clone(),
    };
    let every = cfg
        .retention
        .interval
        .period()
        .unwrap_or(Duration::from_secs(60));
    let janitor = Janitor {
        sweeper,
        projections,
        bus,
        producer,
    };
    Ok(tokio::spawn(janitor.run(every, stop)))
}

struct Janitor {
    sweeper: Sweeper,
    projections: Projections,
    bus: Bus,
    producer: FutureProducer,
}

impl Janitor {
    async fn run(self, every: Duration, mut stop: watch::Receiver<bool>) {
        let name = format!("janitor {}", uuid::Uuid::now_v7());
        let heartbeat = liveness::register(&name);
        loop {
            heartbeat.beat();
            if let Err(e) = self.sweep(&stop).await {
                metrics::metrics().janitor_errors.inc();
                tracing::warn!(error = %e, "janitor: a sweep stopped early; the next one goes on");
            }
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
        liveness::forget(&name);
        sprocket_platform::bus::close_detached(
            "janitor",
            self,
            sprocket_platform::bus::CLOSE_WITHIN,
        )
        .await;
    }

    /// One pass over the finished jobs. A rule that fails is logged, counted
    /// and left for the next sweep (nothing is recorded before the stores
    /// are done with, and redoing a rule removes nothing twice).
    async fn sweep(&self, stop: &watch::Receiver<bool>) -> Result<(), ServerError> {
        let now = chrono::Utc::now();
        for status in [
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ] {
            let mut after: Option<String> = None;
            loop {
                let (p, a) = (self.projections.clone(), after.clone());
                let page =
                    tokio::task::spawn_blocking(move || p.jobs(Some(status), PAGE, a.as_deref()))
                        .await
                        .expect("jobs query")?;
                for job in &page.items {
                    if *stop.borrow() {
                        return Ok(());
                    }
                    for due in self.sweeper.due(job, now) {
                        if let Err(e) = self.carry_out(job, &due).await {
                            metrics::metrics().janitor_errors.inc();
                            tracing::warn!(job_id = %job.id, rule = due.rule(), error = %e,
                                "janitor: could not carry out a rule; retrying next sweep");
                        }
                    }
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// Carries out `due` on the stores, then records it on `sprocket.events`.
    async fn carry_out(&self, job: &Job, due: &Due) -> Result<(), ServerError> {
        let env = self.sweeper.act(job, due).await?;
        let record = self.bus.record(&self.bus.topics.events(), &env).await?;
        self.bus.send(&self.producer, &record).await?;
        let m = metrics::metrics();
        match &env.body {
            EventBody::JobDataExpired(r) => m
                .janitor_bytes_freed
                .with_label_values(&["work"])
                .inc_by(r.bytes),
            EventBody::JobArchiveExpired(r) => m
                .janitor_bytes_freed
                .with_label_values(&["archive"])
                .inc_by(r.bytes),
            EventBody::JobArchiveTiered(t) => m.janitor_objects_moved.inc_by(t.moved.len() as u64),
            _ => {}
        }
        tracing::info!(job_id = %job.id, rule = due.rule(), event_id = %env.event_id,
            "janitor: retention carried out");
        Ok(())
    }
}

/// What the janitor acts with.
pub struct Sweeper {
    pub stores: Stores,
    /// The deployment's rules (a job's recipe may override them).
    pub rules: JobRetention,
    /// The cold store's URL without credentials, as `JobArchiveTiered.to`.
    pub cold_url: Option<String>,
    pub producer: String,
}

impl Sweeper {
    /// The rules `job` owes at `now`, under its recipe's overrides.
    pub fn due(&self, job: &Job, now: chrono::DateTime<chrono::Utc>) -> Vec<Due> {
        let overrides = job
            .recipe
            .as_ref()
            .and_then(|r| r.resolve().ok())
            .and_then(|r| Overrides::of(&r).ok())
            .unwrap_or_default();
        retention::due(job, &overrides.over(self.rules), now)
    }

    /// Carries out one rule on the stores and returns its event.
    pub async fn act(&self, job: &Job, due: &Due) -> Result<Envelope, StoreError> {
        let finished = retention::finished_at(job).unwrap_or_default();
        let body = match due {
            Due::Work(keep) => {
                let mut bytes = 0;
                for (key, size) in
                    store::list(&self.stores.work, &sprocket_core::work::job_prefix(&job.id))
                        .await?
                {
                    if store::delete(&self.stores.work, &key).await? {
                        bytes += size;
                    }
                }
                EventBody::JobDataExpired(Retired {
                    rule: due.rule().into(),
                    after: keep.to_string(),
                    removed: job.artifacts.keys().cloned().collect(),
                    bytes,
                })
            }
            Due::Tier(keep) => {
                let Some(cold) = &self.stores.cold else {
                    return Err(StoreError::InvalidUrl {
                        url: String::new(),
                        reason: "retention.cold_after is due but archive.cold_url is unset".into(),
                    });
                };
                let mut bytes = 0;
                let mut moved = vec![];
                for name in &job.archived {
                    let Some(a) = job.artifacts.get(name) else {
                        continue;
                    };
                    match store::get_bytes(&self.stores.archive, &a.key).await {
                        Ok(data) => {
                            store::put_bytes(cold, &a.key, data.to_vec()).await?;
                            let copy = store::digest(cold, &a.key).await?;
                            if copy.sha256 != a.sha256 {
                                return Err(StoreError::Body(format!(
                                    "{}: the cold copy's sha256 {} is not {}",
                                    a.key, copy.sha256, a.sha256
                                )));
                            }
                            store::delete(&self.stores.archive, &a.key).await?;
                            bytes += copy.bytes;
                        }
                        // Moved by an earlier run that was killed before its event.
                        Err(StoreError::NotFound { .. }) if store::exists(cold, &a.key).await? => {}
                        Err(e) => return Err(e),
                    }
                    moved.push(name.clone());
                }
                EventBody::JobArchiveTiered(JobArchiveTiered {
                    rule: due.rule().into(),
                    after: keep.to_string(),
                    moved,
                    to: self.cold_url.clone().unwrap_or_default(),
                    bytes,
                })
            }
            Due::Archive(keep) => {
                let mut bytes = 0;
                let mut removed = vec![];
                for name in &job.archived {
                    let Some(a) = job.artifacts.get(name) else {
                        continue;
                    };
                    for s in std::iter::once(&self.stores.archive).chain(&self.stores.cold) {
                        if store::delete(s, &a.key).await? {
                            bytes += a.bytes;
                        }
                    }
                    removed.push(name.clone());
                }
                EventBody::JobArchiveExpired(Retired {
                    rule: due.rule().into(),
                    after: keep.to_string(),
                    removed,
                    bytes,
                })
            }
        };
        let mut e = Envelope::new(job.id.clone(), self.producer.clone(), 1, body);
        e.event_id = retention::event_id(&job.id, due.rule(), finished);
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprocket_core::event::{Artifact, MediaArchived, MediaRendered};
    use sprocket_core::retention::Keep;
    use sprocket_core::{JobId, JobStatus};

    async fn artifact(s: &store::Store, name: &str, body: &[u8]) -> Artifact {
        let key = format!("jobs/j/{name}");
        let w = store::put_bytes(s, &key, body.to_vec()).await.unwrap();
        Artifact {
            name: name.into(),
            key,
            bytes: w.bytes,
            sha256: w.sha256,
            content_type: "application/octet-stream".into(),
        }
    }

    fn sweeper() -> Sweeper {
        Sweeper {
            stores: Stores {
                work: store::open("memory://").unwrap(),
                archive: store::open("memory://").unwrap(),
                cold: Some(store::open("memory://").unwrap()),
            },
            rules: JobRetention {
                work: Keep::parse("1s").unwrap(),
                archive: Keep::parse("1h").unwrap(),
                cold_after: Keep::parse("2s").unwrap(),
            },
            cold_url: Some("memory://cold".into()),
            producer: "sprocket-janitor".into(),
        }
    }

    #[tokio::test]
    async fn expiry_and_tiering_empty_the_stores_and_a_rerun_writes_the_same_event() {
        let sw = sweeper();
        let mut job = Job::new(JobId::parse("j").unwrap());
        let poster = artifact(&sw.stores.work, "poster.jpg", b"jpeg").await;
        let scratch = artifact(&sw.stores.work, "source.mp4", b"video").await;
        let archived = artifact(&sw.stores.archive, "poster.jpg", b"jpeg").await;
        let manifest = artifact(&sw.stores.archive, "manifest.json", b"{}").await;
        for body in [
            EventBody::MediaRendered(MediaRendered {
                artifacts: vec![poster, scratch],
            }),
            EventBody::MediaArchived(MediaArchived {
                artifacts: vec![archived.clone()],
                manifest: manifest.clone(),
            }),
        ] {
            let _ = job.apply(&Envelope::new(job.id.clone(), "t", 1, body));
        }
        job.status = JobStatus::Succeeded;
        let end = retention::finished_at(&job).unwrap();
        let now = end + chrono::Duration::seconds(3);
        let due = sw.due(&job, now);
        assert_eq!(due.len(), 2, "{due:?}");

        let expired = sw.act(&job, &due[0]).await.unwrap();
        assert!(store::list(&sw.stores.work, "jobs/j/")
            .await
            .unwrap()
            .is_empty());
        let EventBody::JobDataExpired(r) = &expired.body else {
            panic!("{expired:?}")
        };
        assert_eq!(r.bytes, 4 + 5);
        assert_eq!(r.rule, "retention.work");
        // Killed before its event: the rerun finds nothing left, deletes
        // nothing twice and writes an event with the same id.
        let again = sw.act(&job, &due[0]).await.unwrap();
        assert_eq!(again.event_id, expired.event_id);

        let tiered = sw.act(&job, &due[1]).await.unwrap();
        let EventBody::JobArchiveTiered(t) = &tiered.body else {
            panic!("{tiered:?}")
        };
        assert_eq!(t.moved, vec!["manifest.json", "poster.jpg"]);
        let cold = sw.stores.cold.as_ref().unwrap();
        assert!(store::list(&sw.stores.archive, "jobs/j/")
            .await
            .unwrap()
            .is_empty());
        for a in [&archived, &manifest] {
            assert_eq!(store::digest(cold, &a.key).await.unwrap().sha256, a.sha256);
        }
        let again = sw.act(&job, &due[1]).await.unwrap();
        assert_eq!(again.event_id, tiered.event_id);
        assert_eq!(
            again.body,
            EventBody::JobArchiveTiered(JobArchiveTiered {
                bytes: 0,
                ..t.clone()
            })
        );

        for e in [&expired, &tiered] {
            let _ = job.apply(e);
        }
        assert_eq!(sw.due(&job, now), vec![]);
        let later = sw.due(&job, end + chrono::Duration::hours(2));
        assert_eq!(later, vec![Due::Archive(sw.rules.archive)]);
        let gone = sw.act(&job, &later[0]).await.unwrap();
        assert!(store::list(cold, "jobs/j/").await.unwrap().is_empty());
        let _ = job.apply(&gone);
        assert!(job
            .kept
            .values()
            .all(|k| matches!(k, retention::Kept::Expired { .. })));
    }

    #[tokio::test]
    async fn a_running_job_owes_nothing() {
        let sw = sweeper();
        let mut job = Job::new(JobId::parse("j").unwrap());
        job.status = JobStatus::Running;
        job.submitted_at = Some(chrono::Utc::now() - chrono::Duration::days(30));
        assert_eq!(sw.due(&job, chrono::Utc::now()), vec![]);
    }
}
