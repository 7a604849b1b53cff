//! What a relayed connection owes its client, in request order.
//!
//! Clients expect responses in request order per connection, but the relay
//! answers some requests itself (held Produce requests) and sends some of its
//! own (replays before an EndTxn). So each connection keeps a queue of what it
//! owes: a response the broker will send (matched by correlation id), a replay
//! response to swallow, or one the relay wrote.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::response::{self, UNKNOWN_SERVER_ERROR};

/// One response owed to the client.
#[derive(Debug)]
pub(crate) enum Owed {
    /// The broker's response with this correlation id.
    Forwarded(i32),
    /// The response to a replayed Produce request: checked, not passed on.
    Replayed { correlation_id: i32, version: i16 },
    /// The broker's response to an EndTxn that followed replays.
    EndTxn { correlation_id: i32, version: i16 },
    /// A response the relay wrote.
    Ready(Bytes),
}

/// What a connection owes its client, shared by its two directions.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    owed: Mutex<VecDeque<Owed>>,
    /// Wakes the response side for what no broker response announces: a
    /// response the relay wrote, or the client's end.
    pub(crate) wake: Notify,
    closed: AtomicBool,
}

impl Ledger {
    pub(crate) fn owe(&self, o: Owed) {
        let wake = matches!(o, Owed::Ready(_));
        self.lock().push_back(o);
        if wake {
            self.wake.notify_one();
        }
    }

    /// The client sent its last request: what is owed is still delivered.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// The client broke the protocol: nothing more is delivered, so the
    /// connection closes at once, as a Kafka broker closes it.
    pub(crate) fn abandon(&self) {
        self.lock().clear();
        self.close();
    }

    pub(crate) fn is_done(&self) -> bool {
        self.closed.load(Ordering::SeqCst) && self.lock().is_empty()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, VecDeque<Owed>> {
        self.owed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The relay's own responses at the front of the queue, taken off it.
    pub(crate) fn take_ready(&self) -> Vec<Bytes> {
        let mut owed = self.lock();
        let mut ready = Vec::new();
        while let Some(Owed::Ready(_)) = owed.front() {
            if let Some(Owed::Ready(r)) = owed.pop_front() {
                ready.push(r);
            }
        }
        ready
    }
}

/// Matches a broker response with the front of the queue; returns what goes to
/// the client, if anything. `replay_error` keeps the first error of the
/// replays before the next EndTxn, which then carries it.
pub(crate) fn deliver(
    frame: Bytes,
    queue: &mut VecDeque<Owed>,
    replay_error: &mut i16,
) -> Option<Bytes> {
    let id = response::response_correlation_id(&frame[4..]).ok();
    let expected = match queue.front() {
        Some(Owed::Forwarded(c)) => Some(*c),
        Some(Owed::Replayed { correlation_id, .. } | Owed::EndTxn { correlation_id, .. }) => {
            Some(*correlation_id)
        }
        Some(Owed::Ready(_)) | None => None,
    };
    if id.is_none() || id != expected {
        tracing::warn!(
            ?id,
            ?expected,
            "embedded broker relay: unexpected response passed on"
        );
        return Some(frame);
    }
    match queue.pop_front() {
        Some(Owed::Replayed { version, .. }) => {
            let code = match response::produce_acks(version, &frame[4..]) {
                Ok(acks) => acks.iter().map(|a| a.error_code).find(|c| *c != 0),
                Err(_) => Some(UNKNOWN_SERVER_ERROR),
            };
            if let Some(code) = code {
                tracing::warn!(
                    code,
                    "embedded broker relay: replaying a committed transaction's records failed"
                );
                if *replay_error == 0 {
                    *replay_error = code;
                }
            }
            None
        }
        Some(Owed::EndTxn { version, .. }) => {
            let code = std::mem::take(replay_error);
            if code == 0 {
                return Some(frame);
            }
            let mut out = BytesMut::from(&frame[..]);
            response::set_end_txn_error(version, &mut out[4..], code);
            Some(out.freeze())
        }
        _ => Some(frame),
    }
}
