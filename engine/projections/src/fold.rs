//! Folding a batch in memory: given what the database already holds for the
//! batch's events and jobs, decide every row to write. No I/O here; `apply`
//! reads the inputs in a few queries and writes the plan in a few statements.

use std::collections::{BTreeMap, HashMap, HashSet};

use sprocket_core::{Action, Envelope, EventBody, Job};

use crate::rows::{parse_job, timestamp, EventRow, JobRow};
use crate::{Applied, Position, ProjectionError};

/// What the database holds for a batch: event ids already stored, and the
/// stored rows of the jobs the batch's new events belong to.
#[derive(Debug, Default)]
pub(crate) struct Known {
    pub events: HashSet<String>,
    pub jobs: HashMap<String, StoredJob>,
}

/// A job row as stored.
#[derive(Debug)]
pub(crate) struct StoredJob {
    pub state: String,
    pub submitted_at: String,
    pub last_seq: i64,
}

/// A job touched by the batch, written back once at the end.
pub(crate) struct Touched {
    pub job: Job,
    /// The sort key to use while the job has no submission: the stored one, or
    /// the time of the first event seen.
    fallback_submitted: String,
    next_seq: i64,
    /// The last event of the batch that changed it, for error context.
    pub last: (Position, String),
}

impl Touched {
    pub fn row(&self) -> JobRow {
        JobRow::from_job(&self.job, &self.fallback_submitted, self.next_seq - 1)
    }
}

/// Every write a batch makes.
#[derive(Default)]
pub(crate) struct Plan {
    /// Events stored from another topic first, now at their canonical
    /// position; with the canonical body for a submission (its recipe pinned
    /// on acceptance).
    pub moves: Vec<(String, Position, Option<String>)>,
    /// New event rows, in batch order.
    pub events: Vec<EventRow>,
    /// Jobs to write back, by id.
    pub jobs: BTreeMap<String, Touched>,
    pub applied: Applied,
}

/// Folds the batch, as if one event at a time: skip work items, event ids
/// already stored (earlier or in this batch) and resubmissions of a known job;
/// otherwise fold the event into its job (stored, or new) and store it with
/// the job's next sequence number. An event already stored that arrives on
/// `canonical` takes its position there.
pub(crate) fn plan(
    batch: &[(Position, Envelope)],
    canonical: Option<&str>,
    mut known: Known,
) -> Result<Plan, ProjectionError> {
    let mut plan = Plan::default();
    // New events of this batch: index in `plan.events`.
    let mut new: HashMap<&str, usize> = HashMap::new();
    for (position, e) in batch {
        if matches!(e.body, EventBody::WorkItem(_)) {
            plan.applied.skipped += 1;
            continue;
        }
        let to_canonical = canonical == Some(position.topic.as_str());
        let submission = matches!(e.body, EventBody::JobSubmitted(_));
        if known.events.contains(&e.event_id) {
            if to_canonical {
                let body = submission.then(|| EventRow::body_of(e));
                plan.moves
                    .push((e.event_id.clone(), position.clone(), body));
                if submission {
                    adopt(&mut plan, &mut known, e)?;
                }
            }
            plan.applied.skipped += 1;
            continue;
        }
        if let Some(&i) = new.get(e.event_id.as_str()) {
            if to_canonical {
                plan.events[i].place(position);
                if submission {
                    plan.events[i].body = EventRow::body_of(e);
                    adopt(&mut plan, &mut known, e)?;
                }
            }
            plan.applied.skipped += 1;
            continue;
        }
        let key = e.job_id.as_str();
        let t = match plan.jobs.get_mut(key) {
            Some(t) => t,
            None => {
                let t = touch(e, known.jobs.remove(key))?;
                plan.jobs.entry(key.to_owned()).or_insert(t)
            }
        };
        // Only a job's first submission is part of its history. Replay
        // executes nothing: the actions only say whether the event was a
        // duplicate submission.
        if t.job.apply(e).contains(&Action::IgnoreDuplicate) {
            plan.applied.skipped += 1;
            continue;
        }
        new.insert(&e.event_id, plan.events.len());
        plan.events.push(EventRow::new(position, e, t.next_seq));
        t.next_seq += 1;
        t.last = (position.clone(), e.event_id.clone());
        plan.applied.events += 1;
    }
    Ok(plan)
}

/// The canonical copy of a submission stored from the intake first: its job
/// takes the recipe as accepted ([`Job::adopt`]).
fn adopt(plan: &mut Plan, known: &mut Known, e: &Envelope) -> Result<(), ProjectionError> {
    let key = e.job_id.as_str();
    if !plan.jobs.contains_key(key) {
        let Some(stored) = known.jobs.remove(key) else {
            return Ok(());
        };
        plan.jobs.insert(key.to_owned(), touch(e, Some(stored))?);
    }
    if let Some(t) = plan.jobs.get_mut(key) {
        t.job.adopt(e);
    }
    Ok(())
}

/// The job `e` belongs to, as stored or new, with its next sequence number.
fn touch(e: &Envelope, stored: Option<StoredJob>) -> Result<Touched, ProjectionError> {
    let (job, fallback_submitted, last_seq) = match stored {
        Some(s) => (
            parse_job(e.job_id.as_str(), &s.state)?,
            s.submitted_at,
            s.last_seq,
        ),
        None => (Job::new(e.job_id.clone()), timestamp(e.occurred_at), 0),
    };
    Ok(Touched {
        job,
        fallback_submitted,
        next_seq: last_seq + 1,
        last: (Position::new("", 0, 0), e.event_id.clone()),
    })
}

/// `next_offset = offset + 1` of the last message of each partition in the
/// batch, whatever was skipped.
pub(crate) fn next_offsets(batch: &[(Position, Envelope)]) -> BTreeMap<(&str, i32), i64> {
    let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for (p, _) in batch {
        let n = next.entry((p.topic.as_str(), p.partition)).or_insert(0);
        *n = (*n).max(p.offset.saturating_add(1));
    }
    next
}
