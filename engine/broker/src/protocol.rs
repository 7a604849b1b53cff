//! The few Kafka requests the relay reads: request headers, Produce requests
//! and their record batch headers, EndTxn and InitProducerId ([`crate::response`]
//! has the responses).
//!
//! Frames here are payloads: the bytes after the 4-byte size prefix. Only the
//! versions' differences that matter to these messages are modelled; see
//! Kafka's `clients/src/main/resources/common/message/*Request.json`.

use std::ops::Range;

use crate::wire::{Reader, WireError};

pub(crate) const PRODUCE: i16 = 0;
pub(crate) const INIT_PRODUCER_ID: i16 = 22;
pub(crate) const END_TXN: i16 = 26;

/// The start of every request: api key, api version, correlation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub api_key: i16,
    pub version: i16,
    pub correlation_id: i32,
}

pub(crate) fn head(payload: &[u8]) -> Result<Head, WireError> {
    let mut r = Reader::new(payload);
    Ok(Head {
        api_key: r.i16()?,
        version: r.i16()?,
        correlation_id: r.i32()?,
    })
}

/// Whether a message of the APIs read here uses the flexible encoding (request
/// header v2, response header v1, compact strings and arrays, tagged fields).
pub(crate) fn flexible(api_key: i16, version: i16) -> bool {
    match api_key {
        PRODUCE => version >= 9,
        INIT_PRODUCER_ID => version >= 2,
        END_TXN => version >= 3,
        _ => false,
    }
}

/// A reader positioned at a request's body, past the header's client id (a
/// classic nullable string in every header version) and tagged fields.
fn body(payload: &[u8], head: Head) -> Result<Reader<'_>, WireError> {
    let mut r = Reader::new(payload);
    r.i16()?;
    r.i16()?;
    r.i32()?;
    r.nullable_str(false)?;
    if flexible(head.api_key, head.version) {
        r.skip_tags()?;
    }
    Ok(r)
}

/// Sets a request's or relay-built frame's correlation id in place.
pub(crate) fn set_correlation_id(payload: &mut [u8], id: i32) {
    payload[4..8].copy_from_slice(&id.to_be_bytes());
}

/// A Produce request: where each partition's records lie in the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Produce<'a> {
    pub head: Head,
    pub transactional_id: Option<&'a str>,
    pub acks: i16,
    pub topics: Vec<ProduceTopic<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProduceTopic<'a> {
    pub name: &'a str,
    pub partitions: Vec<(i32, Option<Range<usize>>)>,
}

pub(crate) fn produce(payload: &[u8]) -> Result<Produce<'_>, WireError> {
    let head = head(payload)?;
    let flex = flexible(PRODUCE, head.version);
    let mut r = body(payload, head)?;
    let transactional_id = if head.version >= 3 {
        r.nullable_str(flex)?
    } else {
        None
    };
    let acks = r.i16()?;
    let _timeout_ms = r.i32()?;
    let mut topics = Vec::new();
    for _ in 0..r.array_len(flex)? {
        let name = r.str(flex)?;
        let mut partitions = Vec::new();
        for _ in 0..r.array_len(flex)? {
            let index = r.i32()?;
            let records = r.nullable_bytes(flex)?;
            if flex {
                r.skip_tags()?;
            }
            partitions.push((index, records));
        }
        if flex {
            r.skip_tags()?;
        }
        topics.push(ProduceTopic { name, partitions });
    }
    Ok(Produce {
        head,
        transactional_id,
        acks,
        topics,
    })
}

/// The producer fields of a record batch (magic 2) header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Batch {
    /// Where the batch lies, relative to the records field it was read from.
    pub offset: usize,
    pub len: usize,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

const BATCH_CRC: usize = 17;
const BATCH_ATTRIBUTES: usize = 21;
const BATCH_PRODUCER_ID: usize = 43;
const BATCH_BASE_SEQUENCE: usize = 53;
const BATCH_HEADER: usize = 61;

/// The record batches of a Produce request's records field.
pub(crate) fn batches(records: &[u8]) -> Result<Vec<Batch>, WireError> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < records.len() {
        let mut r = Reader::at(records, offset + 8);
        let len = 12 + r.i32()?.max(0) as usize;
        if len < BATCH_HEADER || offset + len > records.len() {
            return Err(WireError::Malformed("record batch length"));
        }
        r.i32()?; // partition leader epoch
        if r.i8()? != 2 {
            return Err(WireError::Malformed("record batch magic"));
        }
        let mut r = Reader::at(records, offset + BATCH_PRODUCER_ID);
        out.push(Batch {
            offset,
            len,
            producer_id: r.i64()?,
            producer_epoch: r.i16()?,
            base_sequence: r.i32()?,
            record_count: r.i32()?,
        });
        offset += len;
    }
    Ok(out)
}

/// Rewrites a record batch's base sequence and its CRC (which covers it).
pub(crate) fn set_base_sequence(batch: &mut [u8], sequence: i32) {
    batch[BATCH_BASE_SEQUENCE..BATCH_BASE_SEQUENCE + 4].copy_from_slice(&sequence.to_be_bytes());
    let crc = crate::wire::crc32c(&batch[BATCH_ATTRIBUTES..]);
    batch[BATCH_CRC..BATCH_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// An EndTxn request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndTxn<'a> {
    pub head: Head,
    pub transactional_id: &'a str,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub committed: bool,
}

pub(crate) fn end_txn(payload: &[u8]) -> Result<EndTxn<'_>, WireError> {
    let head = head(payload)?;
    let mut r = body(payload, head)?;
    Ok(EndTxn {
        head,
        transactional_id: r.str(flexible(END_TXN, head.version))?,
        producer_id: r.i64()?,
        producer_epoch: r.i16()?,
        committed: r.i8()? != 0,
    })
}

/// An InitProducerId request: the transactional id, if any, and how long the
/// coordinator is to let each of its transactions stay open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InitProducerId<'a> {
    pub transactional_id: Option<&'a str>,
    pub transaction_timeout_ms: i32,
}

pub(crate) fn init_producer_id(payload: &[u8]) -> Result<InitProducerId<'_>, WireError> {
    let head = head(payload)?;
    let mut r = body(payload, head)?;
    Ok(InitProducerId {
        transactional_id: r.nullable_str(flexible(INIT_PRODUCER_ID, head.version))?,
        transaction_timeout_ms: r.i32()?,
    })
}
