//! Filling a projection database fast, through the projections' own `apply`
//! (the projector's write path without Kafka): `jobs` job histories of a
//! realistic mix — 70 % succeeded, 15 % running, 10 % queued, 5 % failed —
//! two jobs a second apart in submission time, ids `job-00000`, `job-00001`, …
//! Then `VACUUM ANALYZE`, as autovacuum would in time: a database in service
//! has its statistics.

use std::time::Instant;

use diesel::connection::SimpleConnection;
use sprocket_core::{ErrorInfo, Phase};
use sprocket_projections::Projections;
use sprocket_tests::pg::PgDatabase;

use crate::history::{at, History};

/// Events per `apply` (one transaction).
const BATCH_EVENTS: usize = 2_000;

/// A job's id in the fill.
pub fn job_id(i: usize) -> String {
    format!("job-{i:05}")
}

/// The histories of job `i`.
fn history(i: usize) -> History {
    let id = job_id(i);
    let second = (i / 2) as i64;
    match i % 20 {
        0..=13 => History::successful(&id, second),
        14..=16 => {
            let mut h = History::new(&id, second);
            h.submitted().phase(Phase::Ingest).started(Phase::Analyze);
            h
        }
        17 | 18 => {
            let mut h = History::new(&id, second);
            h.submitted();
            h
        }
        _ => {
            let mut h = History::new(&id, second);
            let error = ErrorInfo::new("unsupported_media", "no video stream");
            h.submitted()
                .started(Phase::Ingest)
                .failed(Phase::Ingest, &error);
            h
        }
    }
}

/// What the fill wrote, and how fast.
pub struct Filled {
    pub jobs: usize,
    pub events: usize,
    pub seconds: f64,
}

/// Fills `db` (migrated, through `p`) and analyses it.
pub fn fill(db: &PgDatabase, p: &Projections, jobs: usize) -> anyhow::Result<Filled> {
    let started = Instant::now();
    let mut batch = Vec::new();
    let (mut events, mut offset) = (0, 0i64);
    for i in 0..jobs {
        let h = history(i);
        batch.extend(at(0, offset, &h.events));
        offset += h.events.len() as i64;
        if batch.len() >= BATCH_EVENTS || i + 1 == jobs {
            events += p.apply(&batch)?.events;
            batch.clear();
        }
    }
    let mut conn = db.connect();
    for table in ["jobs", "events"] {
        conn.batch_execute(&format!("VACUUM ANALYZE {table}"))?;
    }
    Ok(Filled {
        jobs,
        events,
        seconds: started.elapsed().as_secs_f64(),
    })
}
