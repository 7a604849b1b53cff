//! What a relayed connection owes its client, in request order.
//!
//! Clients expect responses in request order per connection, but the relay
//! answers some requests itself (held Produce requests) and may have to make
//! an EndTxn's response carry the error of its replays. So each connection
//! keeps a queue of what it owes: a response the broker will send (matched by
//! correlation id), possibly with an error to set, or one the relay wrote.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::response;

/// One response owed to the client.
#[derive(Debug)]
pub(crate) enum Owed {
    /// The broker's response with this correlation id.
    Forwarded(i32),
    /// The broker's response to an EndTxn whose replays failed with
    /// `replay_error` ([`crate::replay`]): the response carries that error.
    EndTxn {
        correlation_id: i32,
        version: i16,
        replay_error: i16,
    },
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
/// the client.
pub(crate) fn deliver(frame: Bytes, queue: &mut VecDeque<Owed>) -> Bytes {
    let id = response::response_correlation_id(&frame[4..]).ok();
    let expected = match queue.front() {
        Some(Owed::Forwarded(c)) => Some(*c),
        Some(Owed::EndTxn { correlation_id, .. }) => Some(*correlation_id),
        Some(Owed::Ready(_)) | None => None,
    };
    if id.is_none() || id != expected {
        tracing::warn!(
            ?id,
            ?expected,
            "embedded broker relay: unexpected response passed on"
        );
        return frame;
    }
    match queue.pop_front() {
        Some(Owed::EndTxn {
            version,
            replay_error,
            ..
        }) if replay_error != 0 => {
            let mut out = BytesMut::from(&frame[..]);
            response::set_end_txn_error(version, &mut out[4..], replay_error);
            out.freeze()
        }
        _ => frame,
    }
}
