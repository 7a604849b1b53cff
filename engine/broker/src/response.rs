//! The few Kafka responses the relay reads or writes: Produce responses (to
//! held requests, and from replays) and EndTxn responses (carrying a replay's
//! error, or fencing a producer whose transaction timed out).
//!
//! Frames here are payloads (after the size prefix) when read, and whole frames
//! (size prefix included) when built. See Kafka's
//! `clients/src/main/resources/common/message/*Response.json`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::{flexible, Head, Produce, END_TXN, PRODUCE};
use crate::wire::{put_array_len, put_empty_tags, put_nullable_str, put_str, Reader, WireError};

/// Error codes the relay writes into responses.
pub(crate) const UNKNOWN_SERVER_ERROR: i16 = -1;
pub(crate) const INVALID_PRODUCER_EPOCH: i16 = 47;
pub(crate) const PRODUCER_FENCED: i16 = 90;

/// The error Kafka's coordinator answers an EndTxn of `version` with when the
/// producer's epoch is stale, as after it aborted the producer's transaction on
/// timeout (bumping the epoch): PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH for
/// clients older than EndTxn v2, which do not know that code.
pub(crate) fn end_txn_fenced_error(version: i16) -> i16 {
    if version >= 2 {
        PRODUCER_FENCED
    } else {
        INVALID_PRODUCER_EPOCH
    }
}

/// The correlation id of a response (the first field of every response header).
pub(crate) fn response_correlation_id(payload: &[u8]) -> Result<i32, WireError> {
    Reader::new(payload).i32()
}

/// A Produce response frame (size prefix included) of the request's version
/// with `error_code` for every partition of `request`. The base offset is -1
/// (unknown): held records get theirs when their transaction commits.
pub(crate) fn produce_response(request: &Produce<'_>, error_code: i16) -> Bytes {
    let v = request.head.version;
    let flex = flexible(PRODUCE, v);
    let mut b = BytesMut::with_capacity(64);
    b.put_i32(0); // size, set below
    b.put_i32(request.head.correlation_id);
    if flex {
        put_empty_tags(&mut b);
    }
    put_array_len(&mut b, flex, request.topics.len());
    for t in &request.topics {
        put_str(&mut b, flex, t.name);
        put_array_len(&mut b, flex, t.partitions.len());
        for (index, _) in &t.partitions {
            b.put_i32(*index);
            b.put_i16(error_code);
            b.put_i64(-1); // base offset
            if v >= 2 {
                b.put_i64(-1); // log append time
            }
            if v >= 5 {
                b.put_i64(-1); // log start offset
            }
            if v >= 8 {
                put_array_len(&mut b, flex, 0); // record errors
                put_nullable_str(&mut b, flex, None); // error message
            }
            if flex {
                put_empty_tags(&mut b);
            }
        }
        if flex {
            put_empty_tags(&mut b);
        }
    }
    if v >= 1 {
        b.put_i32(0); // throttle time
    }
    if flex {
        put_empty_tags(&mut b);
    }
    finish(b)
}

/// Sets the size prefix of a frame built from it.
fn finish(mut b: BytesMut) -> Bytes {
    let size = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&size.to_be_bytes());
    b.freeze()
}

/// One partition's outcome in a Produce response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ack {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub base_offset: i64,
}

/// Reads a Produce response of `version` (payload, header included).
pub(crate) fn produce_acks(version: i16, payload: &[u8]) -> Result<Vec<Ack>, WireError> {
    let flex = flexible(PRODUCE, version);
    let mut r = Reader::new(payload);
    r.i32()?;
    if flex {
        r.skip_tags()?;
    }
    let mut acks = Vec::new();
    for _ in 0..r.array_len(flex)? {
        let topic = r.str(flex)?.to_owned();
        for _ in 0..r.array_len(flex)? {
            let partition = r.i32()?;
            let error_code = r.i16()?;
            let base_offset = r.i64()?;
            if version >= 2 {
                r.i64()?;
            }
            if version >= 5 {
                r.i64()?;
            }
            if version >= 8 {
                for _ in 0..r.array_len(flex)? {
                    r.i32()?;
                    r.nullable_str(flex)?;
                    if flex {
                        r.skip_tags()?;
                    }
                }
                r.nullable_str(flex)?;
            }
            if flex {
                r.skip_tags()?;
            }
            acks.push(Ack {
                topic: topic.clone(),
                partition,
                error_code,
                base_offset,
            });
        }
        if flex {
            r.skip_tags()?;
        }
    }
    if version >= 1 {
        r.i32()?;
    }
    if flex {
        r.skip_tags()?;
    }
    Ok(acks)
}

/// Sets the error code of an EndTxn response of `version` unless it carries one
/// already; returns the code the response ends up with.
pub(crate) fn set_end_txn_error(version: i16, payload: &mut [u8], code: i16) -> i16 {
    let mut r = Reader::new(payload);
    let at = (|| {
        r.i32()?;
        if flexible(END_TXN, version) {
            r.skip_tags()?;
        }
        r.i32()?; // throttle time
        let at = r.pos();
        r.i16().map(|existing| (at, existing))
    })();
    match at {
        Ok((_, existing)) if existing != 0 => existing,
        Ok((at, _)) => {
            payload[at..at + 2].copy_from_slice(&code.to_be_bytes());
            code
        }
        Err(_) => code,
    }
}

/// An EndTxn response frame (size prefix included) answering `request` with
/// `error_code`.
pub(crate) fn end_txn_response(request: Head, error_code: i16) -> Bytes {
    let v = request.version;
    let flex = flexible(END_TXN, v);
    let mut b = BytesMut::with_capacity(32);
    b.put_i32(0); // size, set below
    b.put_i32(request.correlation_id);
    if flex {
        put_empty_tags(&mut b);
    }
    b.put_i32(0); // throttle time
    b.put_i16(error_code);
    if v >= 5 {
        b.put_i64(-1); // producer id
        b.put_i16(-1); // producer epoch
    }
    if flex {
        put_empty_tags(&mut b);
    }
    finish(b)
}
