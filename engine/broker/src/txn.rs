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
//!
//! Timeouts. Kafka's coordinator aborts a transaction left open longer than
//! the `transaction.timeout.ms` its producer sent in InitProducerId, and bumps
//! the producer's epoch, which fences the producer: its next Produce and EndTxn
//! fail. Without that, an abandoned transaction's records would stay held until
//! its transactional id is initialised again, which may be never. So each
//! transactional id keeps its timeout, and once a producer's oldest held
//! request is older than that, [`Transactions::expire`] drops the producer's
//! held requests and fences it until the id is initialised again. The clock is
//! the caller's: whatever depends on time takes `now`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

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
        fn key(h: &Held) -> Option<(Producer, &str, i32, i32)> {
            h.batches
                .first()
                .map(|b| (h.producer, b.topic.as_str(), b.partition, b.base_sequence))
        }
        key(self) == key(other)
    }
}

/// How long a transaction may stay open when its producer did not say (no
/// InitProducerId seen, or a timeout that is not positive): the default
/// `transaction.timeout.ms` of librdkafka and of the Java client.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a producer's request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TxnError {
    #[error("producer {}/{} of {transactional_id} is fenced: its transaction timed out", producer.0, producer.1)]
    Fenced {
        transactional_id: String,
        producer: Producer,
    },
}

/// A transaction aborted on timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expired {
    pub transactional_id: String,
    pub producer: Producer,
    /// How many held requests were dropped.
    pub dropped: usize,
}

/// Held requests, renumbering and timeout state of one transactional id.
#[derive(Debug)]
struct Txn {
    /// Held requests with their arrival time, in arrival order.
    held: Vec<(Instant, Held)>,
    /// Records aborted, per producer and partition.
    aborted: HashMap<(Producer, String, i32), i32>,
    timeout: Duration,
    /// Producers whose transaction timed out.
    fenced: Vec<Producer>,
}

impl Default for Txn {
    fn default() -> Txn {
        Txn {
            held: Vec::new(),
            aborted: HashMap::new(),
            timeout: DEFAULT_TIMEOUT,
            fenced: Vec::new(),
        }
    }
}

impl Txn {
    fn check(&self, transactional_id: &str, producer: Producer) -> Result<(), TxnError> {
        if self.fenced.contains(&producer) {
            return Err(TxnError::Fenced {
                transactional_id: transactional_id.to_owned(),
                producer,
            });
        }
        Ok(())
    }
}

/// Every transactional id's buffer; one per broker, shared by all connections.
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    txns: HashMap<String, Txn>,
    /// No transaction can time out before this.
    next_expiry: Option<Instant>,
}

impl Transactions {
    /// Holds a request that arrived `now`, in arrival order; false when it is a
    /// resend of a held one.
    pub(crate) fn hold(
        &mut self,
        transactional_id: &str,
        held: Held,
        now: Instant,
    ) -> Result<bool, TxnError> {
        let txn = self.txns.entry(transactional_id.to_owned()).or_default();
        txn.check(transactional_id, held.producer)?;
        if txn.held.iter().any(|(_, h)| h.same_as(&held)) {
            return Ok(false);
        }
        if let Some(deadline) = now.checked_add(txn.timeout) {
            self.next_expiry = Some(self.next_expiry.map_or(deadline, |d| d.min(deadline)));
        }
        txn.held.push((now, held));
        Ok(true)
    }

    /// Takes `producer`'s held requests, in arrival order, as payloads ready to
    /// replay (renumbered; correlation ids are the caller's to set).
    pub(crate) fn commit(
        &mut self,
        transactional_id: &str,
        producer: Producer,
    ) -> Result<Vec<BytesMut>, TxnError> {
        let Some(txn) = self.txns.get_mut(transactional_id) else {
            return Ok(Vec::new());
        };
        txn.check(transactional_id, producer)?;
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut txn.held)
            .into_iter()
            .partition(|(_, h)| h.producer == producer);
        txn.held = others;
        Ok(mine
            .into_iter()
            .map(|(_, h)| {
                let mut payload = BytesMut::from(&h.payload[..]);
                for b in &h.batches {
                    let key = (h.producer, b.topic.clone(), b.partition);
                    let shift = txn.aborted.get(&key).copied().unwrap_or(0);
                    if shift != 0 {
                        let batch = &mut payload[b.offset..b.offset + b.len];
                        protocol::set_base_sequence(batch, sequence_add(b.base_sequence, -shift));
                    }
                }
                payload
            })
            .collect())
    }

    /// Drops `producer`'s held requests, counting their records for renumbering.
    /// Returns how many requests were dropped.
    pub(crate) fn abort(
        &mut self,
        transactional_id: &str,
        producer: Producer,
    ) -> Result<usize, TxnError> {
        let Some(txn) = self.txns.get_mut(transactional_id) else {
            return Ok(0);
        };
        txn.check(transactional_id, producer)?;
        let before = txn.held.len();
        let aborted = &mut txn.aborted;
        txn.held.retain(|(_, h)| {
            if h.producer != producer {
                return true;
            }
            for b in &h.batches {
                let count = aborted
                    .entry((h.producer, b.topic.clone(), b.partition))
                    .or_default();
                *count = sequence_add(*count, b.record_count);
            }
            false
        });
        Ok(before - txn.held.len())
    }

    /// Starts a transactional id afresh (InitProducerId: a new producer id or
    /// epoch, numbering from zero, nothing fenced) with the transaction timeout
    /// its producer asked for. Returns how many held requests were dropped.
    pub(crate) fn init(&mut self, transactional_id: &str, timeout_ms: i32) -> usize {
        let timeout = u64::try_from(timeout_ms)
            .ok()
            .filter(|ms| *ms > 0)
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
        let fresh = Txn {
            timeout,
            ..Txn::default()
        };
        self.txns
            .insert(transactional_id.to_owned(), fresh)
            .map_or(0, |t| t.held.len())
    }

    /// Aborts every transaction open for longer than its timeout at `now`: its
    /// held requests are dropped and its producer fenced.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<Expired> {
        if self.next_expiry.is_none_or(|d| now <= d) {
            return Vec::new();
        }
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        for (id, txn) in &mut self.txns {
            // Each producer's transaction opened with its first held request.
            let mut opened: Vec<(Producer, Instant)> = Vec::new();
            for (at, h) in &txn.held {
                if !opened.iter().any(|(p, _)| *p == h.producer) {
                    opened.push((h.producer, *at));
                }
            }
            for (producer, at) in opened {
                if now.saturating_duration_since(at) <= txn.timeout {
                    if let Some(deadline) = at.checked_add(txn.timeout) {
                        next = Some(next.map_or(deadline, |d| d.min(deadline)));
                    }
                    continue;
                }
                let before = txn.held.len();
                txn.held.retain(|(_, h)| h.producer != producer);
                txn.fenced.push(producer);
                expired.push(Expired {
                    transactional_id: id.clone(),
                    producer,
                    dropped: before - txn.held.len(),
                });
            }
        }
        self.next_expiry = next;
        expired
    }

    /// How many requests are held for `transactional_id`.
    #[cfg(test)]
    pub(crate) fn held(&self, transactional_id: &str) -> usize {
        self.txns.get(transactional_id).map_or(0, |t| t.held.len())
    }
}

/// `a + b` in sequence-number arithmetic: sequences run from 0 to `i32::MAX`
/// and wrap to 0 (Kafka's `DefaultRecordBatch.incrementSequence`).
fn sequence_add(a: i32, b: i32) -> i32 {
    (i64::from(a) + i64::from(b)).rem_euclid(1 << 31) as i32
}
