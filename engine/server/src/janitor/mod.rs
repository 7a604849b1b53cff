//! The janitor's effects: carries out the retention rules the core says a
//! finished job owes ([`retention::due`]) on the stores, and returns the
//! event that records each, with the deterministic id of its job and rule
//! ([`retention::event_id`]), so a rerun after a kill writes the same event.
//! A removal of an object already gone counts as done.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::FutureProducer;
use sprocket_core::event::{JobArchiveTiered, Retired};
use sprocket_core::retention::{self, Due, JobRetention, Keep, Overrides};
use sprocket_core::{Artifact, Envelope, EventBody, Job, JobStatus};
use sprocket_platform::bus::{self, Bus};
use sprocket_platform::config::Config;
use sprocket_platform::store::{self, StoreError};
use sprocket_platform::{liveness, metrics};
use sprocket_projections::{ProjectionError, Projections};
use sprocket_workers::Stores;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ServerError;

/// Jobs read from the projections at a time.
const PAGE: u32 = 500;

/// Starts the janitor (`sprocket janitor`, a task of `sprocket dev`): every
/// `retention.interval` it reads the finished jobs from the projections and
/// carries out and records what each owes. It ends when `stop` turns true.
///
/// Its events are written in transactions of the transactional id
/// `<stem>-janitor`: a janitor that starts fences any other still writing
/// (a replica started twice, one paused and resumed) and aborts what a
/// killed one left open.
pub async fn start(
    cfg: Arc<Config>,
    projections: Projections,
    stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, ServerError> {
    let bus = Bus::connect(&cfg, crate::services::producer_name("janitor")).await?;
    let txn_id = bus.topics.named("janitor");
    let producer = Some(bus.transactional_producer(&txn_id)?);
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
        uploads: cfg.retention.uploads,
        projections,
        bus,
        txn_id,
        producer,
        written: BTreeMap::new(),
    };
    Ok(tokio::spawn(janitor.run(every, stop)))
}

/// Runs a projections call off the async threads.
async fn blocking<T: Send + 'static>(
    p: &Projections,
    f: impl FnOnce(&Projections) -> Result<T, ProjectionError> + Send + 'static,
) -> Result<T, ServerError> {
    let p = p.clone();
    Ok(tokio::task::spawn_blocking(move || f(&p))
        .await
        .expect("projections call")?)
}

/// How long a sweep waits for the projections to show the events of the
/// one before, so that it does not carry out a rule again (which would
/// remove nothing, but write the event a second time).
const PROJECTED_WITHIN: Duration = Duration::from_secs(30);

struct Janitor {
    sweeper: Sweeper,
    /// `retention.uploads`.
    uploads: Keep,
    projections: Projections,
    bus: Bus,
    txn_id: String,
    /// The transactional producer; none after a failed transaction, until
    /// the next event makes a new one.
    producer: Option<FutureProducer>,
    /// The highest offset this janitor wrote, per partition of
    /// `sprocket.events`.
    written: BTreeMap<i32, i64>,
}

impl Janitor {
    async fn run(mut self, every: Duration, mut stop: watch::Receiver<bool>) {
        let name = format!("janitor {}", uuid::Uuid::now_v7());
        let heartbeat = liveness::register(&name);
        loop {
            heartbeat.beat();
            self.wait_projected(&stop).await;
            match self.sweep(&stop).await {
                Ok(()) => metrics::metrics().janitor_sweeps.inc(),
                Err(e) => {
                    metrics::metrics().janitor_errors.inc();
                    tracing::warn!(error = %e, "janitor: a sweep stopped early; the next one goes on");
                }
            }
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
        liveness::forget(&name);
        bus::close_detached("janitor", self, bus::CLOSE_WITHIN).await;
    }

    /// Waits (at most [`PROJECTED_WITHIN`]) until the projections have read
    /// past every event this janitor wrote, then forgets them.
    async fn wait_projected(&mut self, stop: &watch::Receiver<bool>) {
        if self.written.is_empty() {
            return;
        }
        let topic = self.bus.topics.events();
        let start = tokio::time::Instant::now();
        while start.elapsed() < PROJECTED_WITHIN && !*stop.borrow() {
            let behind = match blocking(&self.projections, |p| p.offsets()).await {
                Ok(read) => self.written.iter().any(|(partition, offset)| {
                    !read.iter().any(|r| {
                        r.topic == topic && r.partition == *partition && r.offset > *offset
                    })
                }),
                Err(e) => {
                    tracing::debug!(error = %e, "janitor: reading the projections' offsets");
                    true
                }
            };
            if !behind {
                self.written.clear();
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!(
            "janitor: the projections have not shown its last events within {PROJECTED_WITHIN:?}; \
             sweeping anyway (a rule carried out again removes nothing, and its event keeps its id)"
        );
    }

    /// One pass over the finished jobs. A rule that fails is logged, counted
    /// and left for the next sweep (nothing is recorded before the stores
    /// are done with, and redoing a rule removes nothing twice).
    async fn sweep(&mut self, stop: &watch::Receiver<bool>) -> Result<(), ServerError> {
        let now = chrono::Utc::now();
        for status in [
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ] {
            let mut after: Option<String> = None;
            loop {
                let a = after.clone();
                let page = blocking(&self.projections, move |p| {
                    p.jobs(Some(status), PAGE, a.as_deref())
                })
                .await?;
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
        self.sweep_uploads(now).await
    }

    /// Carries out `due` on the stores, then records it on `sprocket.events`
    /// in a transaction of its own.
    async fn carry_out(&mut self, job: &Job, due: &Due) -> Result<(), ServerError> {
        let upload = match due {
            Due::Work(_) => {
                if !self.claim_work(job).await? {
                    tracing::info!(job_id = %job.id,
                        "janitor: a retry took the job's working data; it is left alone");
                    return Ok(());
                }
                self.expire_with(job, chrono::Utc::now()).await?
            }
            _ => None,
        };
        let env = self.sweeper.act(job, due).await?;
        let record = self.bus.record(&self.bus.topics.events(), &env).await?;
        let producer = match self.producer.take() {
            Some(p) => p,
            None => self.bus.transactional_producer(&self.txn_id)?,
        };
        let p = producer.clone();
        let written =
            tokio::task::spawn_blocking(move || bus::write_alone(&p, &[record], "janitor"))
                .await
                .expect("janitor transaction");
        match written {
            Ok(at) => {
                self.producer = Some(producer);
                for (partition, offset) in at {
                    let o = self.written.entry(partition).or_insert(offset);
                    *o = (*o).max(offset);
                }
            }
            Err(e) => {
                // Fenced, or a transaction in an unknown state: the next
                // event starts over with a new producer.
                bus::close_detached("janitor producer", producer, bus::CLOSE_WITHIN).await;
                return Err(e.into());
            }
        }
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
        if let Some(u) = upload {
            self.remove_upload(&u).await?;
        }
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
                for (name, a) in archived(job) {
                    // Streamed: an archive copy may be a long video.
                    match store::get_stream(&self.stores.archive, &a.key).await {
                        Ok((_, body)) => {
                            let copy =
                                store::put_stream(cold, &a.key, Box::pin(body), u64::MAX).await?;
                            if copy.sha256 != a.sha256 {
                                return Err(StoreError::Body(format!(
                                    "{}: the cold copy's sha256 {} is not {}",
                                    a.key, copy.sha256, a.sha256
                                )));
                            }
                            store::delete(&self.stores.archive, &a.key).await?;
                        }
                        // Moved by an earlier run that was killed before its event.
                        Err(StoreError::NotFound { .. }) if store::exists(cold, &a.key).await? => {}
                        Err(e) => return Err(e),
                    }
                    // What the rule moved, whichever run moved it.
                    bytes += a.bytes;
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
                for (name, a) in archived(job) {
                    for s in std::iter::once(&self.stores.archive).chain(&self.stores.cold) {
                        store::delete(s, &a.key).await?;
                    }
                    // What the rule freed, once per artifact, whichever run
                    // removed it and however many copies a cut-short tier left.
                    bytes += a.bytes;
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

/// The artifacts of `job` with an archive copy, by name.
fn archived(job: &Job) -> impl Iterator<Item = (&String, &Artifact)> {
    job.archived
        .iter()
        .filter_map(|name| Some((name, job.artifacts.get(name)?)))
}

mod claims;
#[cfg(test)]
mod tests;
