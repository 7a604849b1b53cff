//! The bench's sizes, from the environment. The defaults keep a whole run
//! within about six minutes on a 2-core machine.

use anyhow::Context;

#[derive(Debug, Clone)]
pub struct Sizes {
    /// `SPROCKET_BENCH_JOBS`: no-op jobs per measured round.
    pub jobs: usize,
    /// `SPROCKET_BENCH_ROUNDS`: measured rounds of every loaded row.
    pub rounds: usize,
    /// `SPROCKET_BENCH_SERIAL_JOBS`: jobs (and chain messages) one at a time,
    /// for the unloaded hand-offs.
    pub serial: usize,
    /// `SPROCKET_BENCH_MESSAGES`: batched chain messages per measured round.
    /// The embedded broker keeps 5 MB per partition (librdkafka's mock
    /// cluster), so a burst must stay under about 13,000 of the ~1 KB messages
    /// or relay 0 loses its backlog's head.
    pub messages: usize,
    /// `SPROCKET_BENCH_TXN_MESSAGES`: messages per measured round of the
    /// chain with a transaction per message.
    pub txn_messages: usize,
    /// `SPROCKET_BENCH_BATCH`: the most messages a batched chain lane commits
    /// in one transaction.
    pub batch: usize,
    /// `SPROCKET_BENCH_REAL_JOBS`: `minimal` jobs with the real phases, at once.
    pub real_jobs: usize,
    /// `SPROCKET_BENCH_PROBE`: items through the step-by-step probe.
    pub probe: usize,
}

impl Sizes {
    pub fn from_env() -> anyhow::Result<Sizes> {
        Ok(Sizes {
            jobs: env_usize("SPROCKET_BENCH_JOBS", 200)?,
            rounds: env_usize("SPROCKET_BENCH_ROUNDS", 3)?,
            serial: env_usize("SPROCKET_BENCH_SERIAL_JOBS", 10)?,
            messages: env_usize("SPROCKET_BENCH_MESSAGES", 10000)?,
            txn_messages: env_usize("SPROCKET_BENCH_TXN_MESSAGES", 400)?,
            batch: env_usize("SPROCKET_BENCH_BATCH", 500)?,
            real_jobs: env_usize("SPROCKET_BENCH_REAL_JOBS", 20)?,
            probe: env_usize("SPROCKET_BENCH_PROBE", 50)?,
        })
    }

    /// Warm-up before the measured rounds: a tenth of a round, at least 10.
    pub fn warmup(n: usize) -> usize {
        (n / 10).max(10)
    }
}

/// `SPROCKET_BENCH_IN_FLIGHT`: `worker.max_in_flight` of the no-op workers
/// (64): items of one partition that run, and commit, together.
pub fn in_flight() -> usize {
    env_usize("SPROCKET_BENCH_IN_FLIGHT", 64).unwrap_or(64)
}

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("{name}={v}: expected a positive integer")),
        Err(_) => Ok(default),
    }
}
