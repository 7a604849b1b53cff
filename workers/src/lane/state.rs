//! A lane's state, shared by the poll loop, the lane's task and the
//! rebalance callback: its pending count, pause flag, committed offset, and
//! the gate that keeps a revoked lane from committing.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};
use std::time::Duration;

use sprocket_platform::bus::BusError;
use tokio_util::sync::CancellationToken;

/// What the poll loop, the lane's task and the rebalance callback share about
/// one lane: the only place a lane's state is kept.
pub(crate) struct LaneState {
    /// Messages handed to the lane and not yet committed.
    pending: AtomicUsize,
    /// Whether the lane paused its partition (backlog).
    pub(crate) paused: AtomicBool,
    /// Held while a transaction is written, so revoking waits for it.
    gate: Mutex<()>,
    /// Set, under the gate, once the partition is revoked. Read without the
    /// gate: the poll loop must never wait for a transaction.
    revoked: AtomicBool,
    /// Cancelled when the partition is revoked or the lane ends: stops the
    /// lane's running work (each message's token is a child of it).
    pub(super) stop: CancellationToken,
    /// The next offset the lane committed (-1: none yet).
    committed: AtomicI64,
}

/// Why a lane did not commit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Revoked;

impl LaneState {
    pub(crate) fn new() -> LaneState {
        LaneState {
            pending: AtomicUsize::new(0),
            paused: AtomicBool::new(false),
            gate: Mutex::new(()),
            revoked: AtomicBool::new(false),
            stop: CancellationToken::new(),
            committed: AtomicI64::new(-1),
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Counts a message handed to the lane; returns how many it now holds.
    pub(crate) fn add(&self) -> usize {
        self.pending.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Counts messages done with; returns how many are left.
    pub(super) fn done(&self, n: usize) -> usize {
        self.pending.fetch_sub(n, Ordering::SeqCst) - n
    }

    pub(crate) fn committed(&self) -> i64 {
        self.committed.load(Ordering::SeqCst)
    }

    /// Records that everything before `next` is committed (by this lane, or
    /// earlier in this process as a stand-in broker's floor says).
    pub(crate) fn raise_committed(&self, next: i64) {
        self.committed.fetch_max(next, Ordering::SeqCst);
    }

    pub(crate) fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::SeqCst)
    }

    /// Closes the gate (after the transaction under way, if one is, for at
    /// most `wait`) and stops the running work. Called by the rebalance
    /// callback, on the thread that polls the consumer.
    pub(crate) fn revoke(&self, wait: Duration) {
        let deadline = std::time::Instant::now() + wait;
        let mut waiting = false;
        let gate = loop {
            match self.gate.try_lock() {
                Ok(gate) => break Some(gate),
                Err(TryLockError::Poisoned(e)) => break Some(e.into_inner()),
                Err(TryLockError::WouldBlock) if std::time::Instant::now() >= deadline => {
                    tracing::warn!(
                        ?wait,
                        "revoking with the lane's transaction still under way: \
                         the partition's next producer fences it"
                    );
                    break None;
                }
                Err(TryLockError::WouldBlock) => {
                    if !waiting {
                        waiting = true;
                        tracing::info!(
                            ?wait,
                            "revoking: waiting for the lane's transaction under way"
                        );
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        self.revoked.store(true, Ordering::SeqCst);
        self.stop.cancel();
        drop(gate);
    }

    /// Runs `write` (a blocking transaction) unless the partition is revoked;
    /// a revocation waits until it is done (up to its bound). A write that
    /// failed once the partition was revoked counts as revoked: the lane must
    /// not rewind a partition it no longer owns.
    pub(crate) fn committing(
        &self,
        write: impl FnOnce() -> Result<(), BusError>,
    ) -> Result<Result<(), BusError>, Revoked> {
        let gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_revoked() {
            return Err(Revoked);
        }
        let out = tokio::task::block_in_place(write);
        drop(gate);
        match out {
            Err(_) if self.is_revoked() => Err(Revoked),
            out => Ok(out),
        }
    }
}

/// How long revoking a partition waits for its lane's transaction under way.
pub(crate) const REVOKE_WAIT: Duration = Duration::from_secs(5);
