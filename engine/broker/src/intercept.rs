//! What the relay does with each client request: the decision only, as data;
//! [`crate::relay`] executes it.

use std::sync::Mutex;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::protocol::{self, END_TXN, INIT_PRODUCER_ID, PRODUCE};
use crate::response::{self, INVALID_PRODUCER_EPOCH};
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

/// Decides what becomes of `frame` (size prefix included), arrived `now`.
/// Every frame first aborts the transactions that timed out by then.
pub(crate) fn intercept(frame: &[u8], txns: &Mutex<Transactions>, now: Instant) -> Action {
    for e in lock(txns).expire(now) {
        tracing::info!(
            txn_id = e.transactional_id,
            producer_id = e.producer.0,
            producer_epoch = e.producer.1,
            dropped = e.dropped,
            "embedded broker: transaction timed out; aborted and its producer fenced"
        );
    }
    let payload = frame.get(4..).unwrap_or_default();
    let Ok(head) = protocol::head(payload) else {
        return Action::Forward(None);
    };
    let forward = Action::Forward(Some(head.correlation_id));
    match head.api_key {
        PRODUCE => produce(payload, txns, now).unwrap_or(forward),
        END_TXN => end_txn(payload, txns).unwrap_or(forward),
        INIT_PRODUCER_ID => {
            if let Ok(init) = protocol::init_producer_id(payload) {
                if let Some(id) = init.transactional_id {
                    let dropped = lock(txns).init(id, init.transaction_timeout_ms);
                    if dropped > 0 {
                        tracing::debug!(
                            txn_id = id,
                            dropped,
                            "embedded broker: transactional id initialised; held records dropped"
                        );
                    }
                }
            }
            forward
        }
        _ => forward,
    }
}

/// Holds a transactional Produce request (or refuses it: its producer is
/// fenced); `None` to forward it as it is.
fn produce(payload: &[u8], txns: &Mutex<Transactions>, now: Instant) -> Option<Action> {
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
    // A partition leader answers a fenced producer's Produce so, and
    // librdkafka takes it as fatal (the producer was fenced).
    let code = match lock(txns).hold(id, held, now) {
        Ok(true) => 0,
        Ok(false) => {
            tracing::debug!(
                txn_id = id,
                "embedded broker: resent Produce request already held"
            );
            0
        }
        Err(e) => {
            tracing::debug!(error = %e, "embedded broker: Produce request refused");
            INVALID_PRODUCER_EPOCH
        }
    };
    Some(Action::Answer(
        (p.acks != 0).then(|| response::produce_response(&p, code)),
    ))
}

/// Takes the held requests on EndTxn(commit), drops them on EndTxn(abort);
/// `None` to forward the EndTxn as it is.
///
/// A fenced producer's EndTxn, commit or abort, is answered here as Kafka's
/// coordinator answers it after aborting the transaction on timeout (see
/// [`response::end_txn_fenced_error`]). librdkafka takes either code as fatal:
/// `commit_transaction` fails with a fatal error (`_FENCED`), nothing of the
/// transaction is written, and the application must create a new producer,
/// whose InitProducerId starts the transactional id afresh. That is the clean
/// failure a real cluster gives; an abortable error instead would teach
/// applications a recovery they never get from Kafka.
fn end_txn(payload: &[u8], txns: &Mutex<Transactions>) -> Option<Action> {
    let e = protocol::end_txn(payload).ok()?;
    let producer = (e.producer_id, e.producer_epoch);
    let id = e.transactional_id;
    let outcome = if e.committed {
        lock(txns).commit(id, producer).map(|replays| {
            tracing::debug!(
                txn_id = id,
                requests = replays.len(),
                "embedded broker: transaction committed"
            );
            (!replays.is_empty()).then_some(Action::Commit {
                replays,
                correlation_id: e.head.correlation_id,
                version: e.head.version,
            })
        })
    } else {
        lock(txns).abort(id, producer).map(|dropped| {
            tracing::debug!(txn_id = id, dropped, "embedded broker: transaction aborted");
            None
        })
    };
    outcome.unwrap_or_else(|err| {
        tracing::info!(error = %err, "embedded broker: EndTxn refused");
        let code = response::end_txn_fenced_error(e.head.version);
        Some(Action::Answer(Some(response::end_txn_response(
            e.head, code,
        ))))
    })
}

fn lock(txns: &Mutex<Transactions>) -> std::sync::MutexGuard<'_, Transactions> {
    // The state stays consistent at every step; a panic elsewhere cannot break it.
    txns.lock().unwrap_or_else(|e| e.into_inner())
}
