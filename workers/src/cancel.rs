//! How workers learn about cancellations: from Kafka. Every worker reads the
//! compacted `sprocket.cancellations` topic from its beginning (no consumer
//! group: each worker needs every partition), so a job cancelled while queued
//! never starts and a running one is stopped at once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use sprocket_core::{EventBody, JobId};
use sprocket_platform::bus::{Bus, BusError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct State {
    cancelled: HashSet<JobId>,
    running: HashMap<JobId, Vec<(u64, CancellationToken)>>,
}

/// The cancellations this worker knows of, and the tokens of its running work.
#[derive(Clone, Default)]
pub struct CancelWatch {
    state: Arc<Mutex<State>>,
    next: Arc<AtomicU64>,
}

/// Unregisters a running item's token when the work ends.
pub struct Registration {
    watch: CancelWatch,
    job: JobId,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut s = self.watch.lock();
        if let Some(tokens) = s.running.get_mut(&self.job) {
            tokens.retain(|(id, _)| *id != self.id);
            if tokens.is_empty() {
                s.running.remove(&self.job);
            }
        }
    }
}

impl CancelWatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_cancelled(&self, job: &JobId) -> bool {
        self.lock().cancelled.contains(job)
    }

    /// Records a cancellation and cancels the job's running work.
    pub fn cancel(&self, job: &JobId) {
        let mut s = self.lock();
        s.cancelled.insert(job.clone());
        for (_, t) in s.running.get(job).into_iter().flatten() {
            t.cancel();
        }
    }

    /// Registers running work; its token is cancelled if (or when) the job is.
    pub fn register(&self, job: &JobId, token: CancellationToken) -> Registration {
        let mut s = self.lock();
        if s.cancelled.contains(job) {
            token.cancel();
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        s.running.entry(job.clone()).or_default().push((id, token));
        Registration {
            watch: self.clone(),
            job: job.clone(),
            id,
        }
    }

    /// Follows `sprocket.cancellations` from its beginning until the task is aborted.
    pub fn follow(&self, bus: &Bus) -> Result<JoinHandle<()>, BusError> {
        let consumer = bus.consumer(
            &bus.topics
                .named(&format!("cancel-watch-{}", uuid::Uuid::now_v7())),
        )?;
        let topic = bus.topics.cancellations();
        let mut tpl = TopicPartitionList::new();
        for p in 0..bus.partition_count(&consumer, &topic)? {
            tpl.add_partition_offset(&topic, p, Offset::Beginning)
                .map_err(BusError::kafka("assigning cancellations"))?;
        }
        consumer
            .assign(&tpl)
            .map_err(BusError::kafka("assigning cancellations"))?;
        let (watch, bus) = (self.clone(), bus.clone());
        Ok(tokio::spawn(async move {
            loop {
                match consumer.recv().await {
                    Ok(m) => match bus.decode(&m).await {
                        Ok(e) if matches!(e.body, EventBody::JobCancelRequested(_)) => {
                            tracing::info!(job_id = %e.job_id, "cancellation requested");
                            watch.cancel(&e.job_id);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "unreadable cancellation skipped"),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "cancellations: consumer error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }))
    }
}
