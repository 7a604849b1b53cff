//! Request frames encoded for the relay's tests, as clients write them.

use bytes::{BufMut, BytesMut};

use crate::protocol::{self, END_TXN, INIT_PRODUCER_ID, PRODUCE};
use crate::wire::{crc32c, put_array_len, put_empty_tags, put_nullable_str, put_str, put_uvarint};

/// Every Produce version a transactional producer may use.
pub(crate) const VERSIONS: [i16; 8] = [3, 4, 5, 6, 7, 8, 9, 10];

/// A record batch (magic 2) of `count` records with a valid CRC.
pub(crate) fn batch(producer: (i64, i16), base_sequence: i32, count: i32) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i64(0); // base offset
    b.put_i32(0); // length, set below
    b.put_i32(-1); // partition leader epoch
    b.put_i8(2); // magic
    b.put_u32(0); // crc, set below
    b.put_i16(0x10); // attributes: transactional
    b.put_i32(count - 1);
    b.put_i64(1_700_000_000_000);
    b.put_i64(1_700_000_000_000);
    b.put_i64(producer.0);
    b.put_i16(producer.1);
    b.put_i32(base_sequence);
    b.put_i32(count);
    for i in 0..count {
        b.put_slice(&[8, 0, 0, (i * 2) as u8, 0, 2, b'x', 0]); // a tiny record
    }
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.to_vec()
}

pub(crate) fn put_header(b: &mut BytesMut, api_key: i16, version: i16, correlation_id: i32) {
    b.put_i32(0); // size, set by `frame`
    b.put_i16(api_key);
    b.put_i16(version);
    b.put_i32(correlation_id);
    put_nullable_str(b, false, Some("test-client"));
    if protocol::flexible(api_key, version) {
        // One unknown tagged field, to be skipped.
        put_uvarint(b, 1);
        put_uvarint(b, 7);
        put_uvarint(b, 1);
        b.put_u8(0xaa);
    }
}

pub(crate) fn frame(mut b: BytesMut) -> BytesMut {
    let size = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&size.to_be_bytes());
    b
}

/// Partition indexes with their records field.
pub(crate) type Partitions = Vec<(i32, Option<Vec<u8>>)>;

/// A Produce request frame of `version`, size prefix included.
pub(crate) fn produce_frame(
    version: i16,
    correlation_id: i32,
    transactional_id: Option<&str>,
    acks: i16,
    topics: &[(&str, Partitions)],
) -> BytesMut {
    let flex = protocol::flexible(PRODUCE, version);
    let mut b = BytesMut::new();
    put_header(&mut b, PRODUCE, version, correlation_id);
    put_nullable_str(&mut b, flex, transactional_id);
    b.put_i16(acks);
    b.put_i32(30_000);
    put_array_len(&mut b, flex, topics.len());
    for (name, partitions) in topics {
        put_str(&mut b, flex, name);
        put_array_len(&mut b, flex, partitions.len());
        for (index, records) in partitions {
            b.put_i32(*index);
            match (records, flex) {
                (None, true) => put_uvarint(&mut b, 0),
                (None, false) => b.put_i32(-1),
                (Some(r), true) => {
                    put_uvarint(&mut b, r.len() as u32 + 1);
                    b.put_slice(r);
                }
                (Some(r), false) => {
                    b.put_i32(r.len() as i32);
                    b.put_slice(r);
                }
            }
            if flex {
                put_empty_tags(&mut b);
            }
        }
        if flex {
            put_empty_tags(&mut b);
        }
    }
    if flex {
        put_empty_tags(&mut b);
    }
    frame(b)
}

pub(crate) fn end_txn_frame(
    version: i16,
    correlation_id: i32,
    id: &str,
    producer: (i64, i16),
    commit: bool,
) -> BytesMut {
    let mut b = BytesMut::new();
    put_header(&mut b, END_TXN, version, correlation_id);
    put_str(&mut b, protocol::flexible(END_TXN, version), id);
    b.put_i64(producer.0);
    b.put_i16(producer.1);
    b.put_u8(commit as u8);
    frame(b)
}

pub(crate) fn init_pid_frame(version: i16, id: Option<&str>, timeout_ms: i32) -> BytesMut {
    let flex = protocol::flexible(INIT_PRODUCER_ID, version);
    let mut b = BytesMut::new();
    put_header(&mut b, INIT_PRODUCER_ID, version, 5);
    put_nullable_str(&mut b, flex, id);
    b.put_i32(timeout_ms);
    if version >= 3 {
        b.put_i64(-1); // producer id
        b.put_i16(-1); // producer epoch
    }
    if flex {
        put_empty_tags(&mut b);
    }
    frame(b)
}
