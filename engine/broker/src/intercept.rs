//! What the relay does with each client request: the decision only, as data;
//! [`crate::relay`] executes it.

use std::sync::Mutex;

use bytes::{Bytes, BytesMut};

use crate::protocol::{self, END_TXN, INIT_PRODUCER_ID, PRODUCE};
use crate::txn::{Held, Transactions};

/// The relay's answer to one request frame.
#[derive(Debug)]
pub(crate) enum Action {
    /// Pass the frame on; the client awaits the response with this correlation
    /// id (none for acks=0 Produce requests, or a frame too short to have one).
    Forward(Option<i32>),
    /// The frame was held; answer with this response (none for acks=0).
    Answer(Option<Bytes>),
    /// EndTxn(commit) of a transaction with held requests: send `replays` (request
    /// payloads, correlation ids to be set), then forward the EndTxn frame.
    Commit {
        replays: Vec<BytesMut>,
        correlation_id: i32,
        version: i16,
    },
}

/// Decides what becomes of `frame` (size prefix included).
pub(crate) fn intercept(frame: &[u8], txns: &Mutex<Transactions>) -> Action {
    let payload = frame.get(4..).unwrap_or_default();
    let Ok(head) = protocol::head(payload) else {
        return Action::Forward(None);
    };
    let forward = Action::Forward(Some(head.correlation_id));
    match head.api_key {
        PRODUCE => produce(payload, txns).unwrap_or(forward),
        END_TXN => end_txn(payload, txns).unwrap_or(forward),
        INIT_PRODUCER_ID => {
            if let Ok(Some(id)) = protocol::init_producer_id(payload) {
                let dropped = lock(txns).reset(id);
                if dropped > 0 {
                    tracing::debug!(
                        txn_id = id,
                        dropped,
                        "embedded broker: transactional id initialised; held records dropped"
                    );
                }
            }
            forward
        }
        _ => forward,
    }
}

/// Holds a transactional Produce request; `None` to forward it as it is.
fn produce(payload: &[u8], txns: &Mutex<Transactions>) -> Option<Action> {
    let p = match protocol::produce(payload) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(error = %e, "embedded broker: unreadable Produce request forwarded");
            return None;
        }
    };
    let Some(id) = p.transactional_id.filter(|id| !id.is_empty()) else {
        return (p.acks == 0).then_some(Action::Forward(None));
    };
    let held = match Held::new(payload, &p) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(txn_id = id, error = %e, "embedded broker: transactional Produce request not held");
            return None;
        }
    };
    if !lock(txns).hold(id, held) {
        tracing::debug!(
            txn_id = id,
            "embedded broker: resent Produce request already held"
        );
    }
    Some(Action::Answer(
        (p.acks != 0).then(|| protocol::produce_response(&p)),
    ))
}

/// Takes the held requests on EndTxn(commit), drops them on EndTxn(abort);
/// `None` to forward the EndTxn as it is.
fn end_txn(payload: &[u8], txns: &Mutex<Transactions>) -> Option<Action> {
    let e = protocol::end_txn(payload).ok()?;
    let producer = (e.producer_id, e.producer_epoch);
    let id = e.transactional_id;
    if !e.committed {
        let dropped = lock(txns).abort(id, producer);
        tracing::debug!(txn_id = id, dropped, "embedded broker: transaction aborted");
        return None;
    }
    let replays = lock(txns).commit(id, producer);
    tracing::debug!(
        txn_id = id,
        requests = replays.len(),
        "embedded broker: transaction committed"
    );
    if replays.is_empty() {
        return None;
    }
    Some(Action::Commit {
        replays,
        correlation_id: e.head.correlation_id,
        version: e.head.version,
    })
}

fn lock(txns: &Mutex<Transactions>) -> std::sync::MutexGuard<'_, Transactions> {
    // The state stays consistent at every step; a panic elsewhere cannot break it.
    txns.lock().unwrap_or_else(|e| e.into_inner())
}
