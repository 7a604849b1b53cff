//! A job's state, folded from its events.
//!
//! The fold is total and idempotent: unknown or out-of-order events never panic,
//! duplicates of an event never change the result, and a redelivered phase (the
//! same attempt run again) converges to the same state.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{Artifact, MediaInfo};
use crate::machine::{self, advance, Action, Claim};
use crate::{
    Envelope, ErrorInfo, EventBody, JobId, JobStatus, Phase, PhaseTimes as Times, Recipe,
    RecipeRef, Source, WorkItem,
};

/// When a phase started and finished, and its highest attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PhaseTimes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub status: JobStatus,
    /// The phase running now, or the last one that ran.
    pub phase: Option<Phase>,
    /// Progress of the current phase, 0–100.
    pub phase_progress: f64,
    pub source: Option<Source>,
    pub recipe: Option<RecipeRef>,
    /// The stored recipe's version the job runs (its recipe is then that
    /// version inline); none for built-in and inline recipes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe_version: Option<u32>,
    pub labels: BTreeMap<String, String>,
    /// The tenant the job belongs to, as its submission was recorded (none
    /// for jobs recorded before tenants existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub phases: BTreeMap<Phase, PhaseTimes>,
    pub artifacts: BTreeMap<String, Artifact>,
    /// What retention did to each artifact it acted on, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kept: BTreeMap<String, crate::retention::Kept>,
    /// The artifacts with an archive copy (not yet expired), by name.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub archived: BTreeSet<String>,
    /// The retention rules that acted on the job (`retention.work`, …).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub retired_by: BTreeSet<String>,
    pub media: Option<MediaInfo>,
    pub error: Option<ErrorInfo>,
    pub cancel_requested: bool,
    pub submitted_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Job {
    pub fn new(id: JobId) -> Self {
        Job {
            id,
            status: JobStatus::Queued,
            phase: None,
            phase_progress: 0.0,
            source: None,
            recipe: None,
            recipe_version: None,
            labels: BTreeMap::new(),
            tenant: None,
            phases: BTreeMap::new(),
            artifacts: BTreeMap::new(),
            kept: BTreeMap::new(),
            archived: BTreeSet::new(),
            retired_by: BTreeSet::new(),
            media: None,
            error: None,
            cancel_requested: false,
            submitted_at: None,
            updated_at: None,
        }
    }

    /// The resolved recipe, when the submission named a valid one.
    pub fn resolved_recipe(&self) -> Option<Recipe> {
        self.recipe.as_ref().and_then(|r| r.resolve().ok())
    }

    /// Takes the recipe of the job's submission as its canonical copy (on
    /// `sprocket.events`, as the ingest worker accepted it) has it: a
    /// submission read first on the intake names a stored recipe, which its
    /// acceptance pins to that recipe inline with its version. `e` must be
    /// the same event as the submission this job was folded from.
    pub fn adopt(&mut self, e: &Envelope) {
        if let (EventBody::JobSubmitted(s), Some(_)) = (&e.body, &self.recipe) {
            self.recipe = Some(s.recipe.clone());
            self.recipe_version = s.recipe_version;
        }
    }

    /// Highest attempt of any phase.
    pub fn attempts(&self) -> u32 {
        self.phases.values().map(|p| p.attempts).max().unwrap_or(0)
    }

    /// Overall progress 0–100: finished phases plus the share of the running one.
    pub fn progress(&self) -> f64 {
        if self.status == JobStatus::Succeeded {
            return 100.0;
        }
        let total = self
            .resolved_recipe()
            .map(|r| r.steps.len())
            .unwrap_or(Phase::ALL.len())
            .max(1) as f64;
        let done = self
            .phases
            .values()
            .filter(|p| p.finished_at.is_some())
            .count() as f64;
        let running = if self.status == JobStatus::Running {
            self.phase_progress / 100.0
        } else {
            0.0
        };
        ((done + running) / total * 100.0).clamp(0.0, 100.0)
    }

    /// The work item that runs `phase` of this job, rebuilt from its state:
    /// what the finished phases before it produced. `None` before a valid
    /// submission.
    pub fn work_item(&self, phase: Phase) -> Option<WorkItem> {
        Some(WorkItem {
            job_id: self.id.clone(),
            phase,
            recipe: self.resolved_recipe()?,
            source: self.source.clone()?,
            labels: self.labels.clone(),
            submitted_at: self.submitted_at?,
            artifacts: self.artifacts.clone(),
            media: self.media.clone(),
            phases: self
                .phases
                .iter()
                .filter(|(p, t)| **p < phase && t.finished_at.is_some())
                .map(|(p, t)| (*p, Times::clone(t)))
                .collect(),
        })
    }

    /// Folds one event into the state and returns what follows from it, as
    /// the core decides it for the adapters (replay ignores them).
    #[must_use = "the actions are what follows from the event"]
    pub fn apply(&mut self, e: &Envelope) -> Vec<Action> {
        if e.job_id != self.id {
            return vec![];
        }
        // The first submission wins; a job id submitted again changes nothing.
        if matches!(e.body, EventBody::JobSubmitted(_)) && self.source.is_some() {
            return vec![Action::IgnoreDuplicate];
        }
        self.updated_at = Some(
            self.updated_at
                .map_or(e.occurred_at, |t| t.max(e.occurred_at)),
        );
        let terminal = self.status.is_terminal();
        match &e.body {
            EventBody::JobSubmitted(s) => {
                self.source = Some(s.source.clone());
                self.recipe = Some(s.recipe.clone());
                self.recipe_version = s.recipe_version;
                self.labels = s.labels.clone();
                self.tenant = s.tenant.clone();
                self.submitted_at = Some(e.occurred_at);
                // The ingest worker decides under the configured bounds; the
                // fold says what the contract's defaults would decide.
                vec![machine::accept(e, Claim::Ours, &crate::Bounds::default())]
            }
            EventBody::PhaseStarted(p) => {
                let t = self.phases.entry(p.phase).or_default();
                t.started_at = Some(t.started_at.map_or(e.occurred_at, |s| s.min(e.occurred_at)));
                t.attempts = t.attempts.max(e.attempt);
                if !terminal && t.finished_at.is_none() && self.phase <= Some(p.phase) {
                    self.status = JobStatus::Running;
                    if self.phase != Some(p.phase) {
                        self.phase_progress = 0.0;
                    }
                    self.phase = Some(p.phase);
                }
                vec![]
            }
            EventBody::PhaseProgress(p) => {
                if !terminal && self.phase == Some(p.phase) {
                    self.phase_progress = self.phase_progress.max(p.percent.clamp(0.0, 100.0));
                }
                vec![]
            }
            EventBody::MediaIngested(_)
            | EventBody::MediaAnalyzed(_)
            | EventBody::MediaRendered(_)
            | EventBody::MediaArchived(_) => self.complete(e),
            EventBody::PhaseRetryScheduled(r) => {
                let t = self.phases.entry(r.phase).or_default();
                t.attempts = t.attempts.max(e.attempt);
                vec![]
            }
            EventBody::PhaseFailed(f) => {
                let t = self.phases.entry(f.phase).or_default();
                t.attempts = t.attempts.max(e.attempt);
                if f.retryable || terminal {
                    vec![]
                } else {
                    vec![Action::Fail {
                        phase: Some(f.phase),
                        error: f.error.clone(),
                        dead_letter: None,
                    }]
                }
            }
            EventBody::JobSucceeded(_) => {
                if !terminal {
                    self.status = JobStatus::Succeeded;
                    self.phase_progress = 100.0;
                    self.error = None;
                }
                vec![]
            }
            EventBody::JobFailed(f) => {
                if !matches!(self.status, JobStatus::Succeeded | JobStatus::Cancelled) {
                    self.status = JobStatus::Failed;
                    self.error = Some(f.error.clone());
                    if f.phase.is_some() {
                        self.phase = f.phase;
                    }
                }
                vec![]
            }
            EventBody::JobCancelRequested(_) => {
                if terminal {
                    return vec![];
                }
                self.cancel_requested = true;
                self.phase
                    .filter(|_| self.status == JobStatus::Running)
                    .map(Action::Abort)
                    .into_iter()
                    .collect()
            }
            EventBody::JobCancelled(_) => {
                if !matches!(self.status, JobStatus::Succeeded | JobStatus::Failed) {
                    self.status = JobStatus::Cancelled;
                }
                vec![]
            }
            EventBody::JobDeadLettered(d) => {
                if !terminal {
                    self.status = JobStatus::Failed;
                    self.phase = Some(d.phase);
                    self.error = Some(ErrorInfo::new("dead_lettered", d.reason.clone()));
                }
                vec![]
            }
            EventBody::JobRedriven(r) => {
                if self.status == JobStatus::Failed {
                    self.status = JobStatus::Queued;
                    self.error = None;
                    self.phase = Some(r.phase);
                    self.phase_progress = 0.0;
                    if let Some(t) = self.phases.get_mut(&r.phase) {
                        t.finished_at = None;
                    }
                    return self
                        .work_item(r.phase)
                        .map(|item| Action::Dispatch(Box::new(item)))
                        .into_iter()
                        .collect();
                }
                vec![]
            }
            EventBody::JobDataExpired(_)
            | EventBody::JobArchiveTiered(_)
            | EventBody::JobArchiveExpired(_) => {
                if let Some(rule) = crate::retention::rule_of(&e.body) {
                    self.retired_by.insert(rule.to_owned());
                }
                crate::retention::fold(&mut self.kept, &mut self.archived, e.occurred_at, &e.body);
                vec![]
            }
            EventBody::WorkItem(_) => vec![],
        }
    }

    fn complete(&mut self, e: &Envelope) -> Vec<Action> {
        let phase = e.body.completes().expect("called for completion events");
        // Only a phase's first completion records its outputs: a late duplicate
        // (say, a render completion redelivered after archive) must not overwrite
        // what later phases recorded under the same names.
        let first = self
            .phases
            .get(&phase)
            .is_none_or(|t| t.finished_at.is_none());
        if first {
            match &e.body {
                EventBody::MediaIngested(m) => {
                    self.media = Some(m.media.clone());
                    self.artifacts
                        .insert(m.source.name.clone(), m.source.clone());
                }
                EventBody::MediaAnalyzed(m) => {
                    for a in [&m.analysis].into_iter().chain(&m.thumbnails) {
                        self.artifacts.insert(a.name.clone(), a.clone());
                    }
                }
                EventBody::MediaRendered(m) => {
                    for a in &m.artifacts {
                        self.artifacts.insert(a.name.clone(), a.clone());
                    }
                }
                EventBody::MediaArchived(m) => {
                    for a in m.artifacts.iter().chain([&m.manifest]) {
                        self.archived.insert(a.name.clone());
                        self.artifacts.insert(a.name.clone(), a.clone());
                    }
                }
                _ => unreachable!(),
            }
        }
        let t = self.phases.entry(phase).or_default();
        t.finished_at = Some(
            t.finished_at
                .map_or(e.occurred_at, |f| f.min(e.occurred_at)),
        );
        t.attempts = t.attempts.max(e.attempt);
        if t.started_at.is_none() {
            t.started_at = Some(e.occurred_at);
        }
        if self.status.is_terminal() || !first {
            return vec![];
        }
        if self.phase <= Some(phase) {
            self.phase = Some(phase);
            self.phase_progress = 100.0;
        }
        let Some(recipe) = self.resolved_recipe() else {
            return vec![];
        };
        match advance(&recipe, phase) {
            Some(next) => self
                .work_item(next)
                .map(|item| Action::Dispatch(Box::new(item)))
                .into_iter()
                .collect(),
            None => vec![Action::Succeed],
        }
    }
}
