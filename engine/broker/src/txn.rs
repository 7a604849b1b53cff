//! The transaction buffer: transactional Produce requests held until their
//! transaction commits.
//!
//! Pure state, no I/O: the relay ([`crate::relay`]) holds requests here, takes
//! them back, ready to replay, on EndTxn(commit), and drops them on
//! EndTxn(abort) or when the transactional id is initialised again.
//!
//! Sequence numbers. An idempotent producer numbers each partition's records
//! without gaps, and an abort does not reset the numbering: the next
//! transaction's batches continue where the aborted ones stopped. The mock
//! cluster never saw the aborted batches and would refuse the gap
//! (OUT_OF_ORDER_SEQUENCE_NUMBER), so replayed batches are renumbered: their base
//! sequence is lowered by the records that producer (id and epoch) aborted on
//! that partition, and their CRC recomputed. InitProducerId restarts numbering
//! (new producer id or epoch), so it clears that count with the buffer.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use crate::protocol::{self, Produce};
use crate::wire::WireError;

/// A producer id and epoch.
pub(crate) type Producer = (i64, i16);

/// One held Produce request.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    /// The request's payload (no size prefix), copied out of the read buffer.
    payload: Bytes,
    producer: Producer,
    batches: Vec<HeldBatch>,
}

#[derive(Debug, Clone)]
struct HeldBatch {
    topic: String,
    partition: i32,
    /// Where the batch lies in the payload.
    offset: usize,
    len: usize,
    base_sequence: i32,
    record_count: i32,
}

impl Held {
    /// A parsed transactional Produce request; refused (and then forwarded as
    /// is) unless every partition carries record batches of one producer.
    pub(crate) fn new(payload: &[u8], produce: &Produce<'_>) -> Result<Held, WireError> {
        let mut batches = Vec::new();
        let mut producer = None;
        for t in &produce.topics {
            for (partition, records) in &t.partitions {
                let records = records
                    .clone()
                    .ok_or(WireError::Malformed("null records"))?;
                for b in protocol::batches(&payload[records.clone()])? {
                    let p = (b.producer_id, b.producer_epoch);
                    if *producer.get_or_insert(p) != p {
                        return Err(WireError::Malformed("several producers in a request"));
                    }
                    batches.push(HeldBatch {
                        topic: t.name.to_owned(),
                        partition: *partition,
                        offset: records.start + b.offset,
                        len: b.len,
                        base_sequence: b.base_sequence,
                        record_count: b.record_count,
                    });
                }
            }
        }
        let producer = producer.ok_or(WireError::Malformed("no record batch"))?;
        Ok(Held {
            payload: Bytes::copy_from_slice(payload),
            producer,
            batches,
        })
    }

    /// Whether `other` is a resend of this request (same first batch).
    fn same_as(&self, other: &Held) -> bool {
        let key = |h: &Held| {
            h.batches
                .first()
                .map(|b| (h.producer, b.topic.clone(), b.partition, b.base_sequence))
        };
        key(self) == key(other)
    }
}

/// Held requests and renumbering state of one transactional id.
#[derive(Debug, Default)]
struct Txn {
    held: Vec<Held>,
    /// Records aborted, per producer and partition.
    aborted: HashMap<(Producer, String, i32), i32>,
}

/// Every transactional id's buffer; one per broker, shared by all connections.
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    txns: HashMap<String, Txn>,
}

impl Transactions {
    /// Holds a request in arrival order; false when it is a resend of a held one.
    pub(crate) fn hold(&mut self, transactional_id: &str, held: Held) -> bool {
        let txn = self.txns.entry(transactional_id.to_owned()).or_default();
        if txn.held.iter().any(|h| h.same_as(&held)) {
            return false;
        }
        txn.held.push(held);
        true
    }

    /// Takes `producer`'s held requests, in arrival order, as payloads ready to
    /// replay (renumbered; correlation ids are the caller's to set).
    pub(crate) fn commit(&mut self, transactional_id: &str, producer: Producer) -> Vec<BytesMut> {
        let Some(txn) = self.txns.get_mut(transactional_id) else {
            return Vec::new();
        };
        let (mine, others): (Vec<Held>, Vec<Held>) = std::mem::take(&mut txn.held)
            .into_iter()
            .partition(|h| h.producer == producer);
        txn.held = others;
        mine.into_iter()
            .map(|h| {
                let mut payload = BytesMut::from(&h.payload[..]);
                for b in &h.batches {
                    let key = (h.producer, b.topic.clone(), b.partition);
                    let shift = txn.aborted.get(&key).copied().unwrap_or(0);
                    if shift != 0 {
                        let batch = &mut payload[b.offset..b.offset + b.len];
                        protocol::set_base_sequence(batch, b.base_sequence.wrapping_sub(shift));
                    }
                }
                payload
            })
            .collect()
    }

    /// Drops `producer`'s held requests, counting their records for renumbering.
    /// Returns how many requests were dropped.
    pub(crate) fn abort(&mut self, transactional_id: &str, producer: Producer) -> usize {
        let Some(txn) = self.txns.get_mut(transactional_id) else {
            return 0;
        };
        let before = txn.held.len();
        let aborted = &mut txn.aborted;
        txn.held.retain(|h| {
            if h.producer != producer {
                return true;
            }
            for b in &h.batches {
                let key = (h.producer, b.topic.clone(), b.partition);
                *aborted.entry(key).or_default() += b.record_count;
            }
            false
        });
        before - txn.held.len()
    }

    /// Forgets a transactional id (InitProducerId: a new producer id or epoch,
    /// numbering from zero). Returns how many held requests were dropped.
    pub(crate) fn reset(&mut self, transactional_id: &str) -> usize {
        self.txns
            .remove(transactional_id)
            .map(|t| t.held.len())
            .unwrap_or(0)
    }

    /// How many requests are held for `transactional_id`.
    #[cfg(test)]
    pub(crate) fn held(&self, transactional_id: &str) -> usize {
        self.txns.get(transactional_id).map_or(0, |t| t.held.len())
    }
}
