//! Round trips of the Kafka messages the relay reads and writes.

use bytes::{BufMut, BytesMut};

use crate::protocol::{self, PRODUCE};
use crate::response;
use crate::test_frames::{batch, end_txn_frame, init_pid_frame, produce_frame, VERSIONS};
use crate::wire::{crc32c, put_empty_tags};

#[test]
fn produce_requests_of_every_version_parse_back() {
    let p0 = batch((1000, 0), 0, 3);
    let p2 = batch((1000, 0), 7, 1);
    for v in VERSIONS {
        let f = produce_frame(
            v,
            42,
            Some("txn-a"),
            -1,
            &[
                ("events", vec![(0, Some(p0.clone())), (2, Some(p2.clone()))]),
                ("other", vec![(1, None)]),
            ],
        );
        let payload = &f[4..];
        let p = protocol::produce(payload).unwrap();
        assert_eq!(
            (p.head.api_key, p.head.version, p.head.correlation_id),
            (PRODUCE, v, 42)
        );
        assert_eq!(p.transactional_id, Some("txn-a"));
        assert_eq!(p.acks, -1);
        assert_eq!(p.topics.len(), 2);
        assert_eq!(p.topics[0].name, "events");
        assert_eq!(p.topics[1].partitions, vec![(1, None)]);
        let (index, records) = &p.topics[0].partitions[1];
        assert_eq!(*index, 2);
        let records = &payload[records.clone().unwrap()];
        assert_eq!(records, &p2[..], "v{v}");
        let b = protocol::batches(records).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(
            (
                b[0].producer_id,
                b[0].producer_epoch,
                b[0].base_sequence,
                b[0].record_count
            ),
            (1000, 0, 7, 1)
        );
    }
}

#[test]
fn non_transactional_produce_has_no_transactional_id() {
    for v in VERSIONS {
        let f = produce_frame(
            v,
            1,
            None,
            1,
            &[("t", vec![(0, Some(batch((-1, -1), -1, 1)))])],
        );
        assert_eq!(protocol::produce(&f[4..]).unwrap().transactional_id, None);
    }
}

#[test]
fn synthesized_produce_responses_decode() {
    for v in VERSIONS {
        let f = produce_frame(
            v,
            77,
            Some("txn-a"),
            -1,
            &[(
                "events",
                vec![
                    (0, Some(batch((1, 0), 0, 1))),
                    (3, Some(batch((1, 0), 0, 1))),
                ],
            )],
        );
        let p = protocol::produce(&f[4..]).unwrap();
        let r = response::produce_response(&p, 0);
        let size = i32::from_be_bytes([r[0], r[1], r[2], r[3]]) as usize;
        assert_eq!(size, r.len() - 4);
        assert_eq!(response::response_correlation_id(&r[4..]).unwrap(), 77);
        let acks = response::produce_acks(v, &r[4..]).unwrap();
        let got: Vec<(String, i32, i16, i64)> = acks
            .into_iter()
            .map(|a| (a.topic, a.partition, a.error_code, a.base_offset))
            .collect();
        assert_eq!(
            got,
            vec![("events".into(), 0, 0, -1), ("events".into(), 3, 0, -1)],
            "v{v}"
        );
    }
}

#[test]
fn produce_response_decoder_reads_every_byte() {
    // A truncated synthesized response is an error, not a silent success.
    let f = produce_frame(
        10,
        1,
        Some("t"),
        -1,
        &[("e", vec![(0, Some(batch((1, 0), 0, 1)))])],
    );
    let r = response::produce_response(&protocol::produce(&f[4..]).unwrap(), 0);
    assert!(response::produce_acks(10, &r[4..r.len() - 1]).is_err());
}

#[test]
fn end_txn_and_init_producer_id_parse() {
    for v in [0, 1, 3] {
        let f = end_txn_frame(v, 9, "txn-a", (1000, 2), true);
        let e = protocol::end_txn(&f[4..]).unwrap();
        assert_eq!(
            (
                e.transactional_id,
                e.producer_id,
                e.producer_epoch,
                e.committed
            ),
            ("txn-a", 1000, 2, true)
        );
    }
    for v in [0, 1, 2, 4] {
        let f = init_pid_frame(v, Some("txn-a"), 60_000);
        let init = protocol::init_producer_id(&f[4..]).unwrap();
        assert_eq!(init.transactional_id, Some("txn-a"));
        assert_eq!(init.transaction_timeout_ms, 60_000);
        let f = init_pid_frame(v, None, 1_000);
        let init = protocol::init_producer_id(&f[4..]).unwrap();
        assert_eq!(init.transactional_id, None);
        assert_eq!(init.transaction_timeout_ms, 1_000);
    }
}

#[test]
fn end_txn_error_is_set_only_over_success() {
    for (v, flex) in [(1, false), (3, true)] {
        let mut r = BytesMut::new();
        r.put_i32(9);
        if flex {
            put_empty_tags(&mut r);
        }
        r.put_i32(0);
        r.put_i16(0);
        assert_eq!(response::set_end_txn_error(v, &mut r, 45), 45);
        assert_eq!(&r[r.len() - 2..], &45i16.to_be_bytes());
        assert_eq!(response::set_end_txn_error(v, &mut r, 10), 45);
    }
}

#[test]
fn renumbered_batches_keep_a_valid_crc() {
    let mut b = batch((5, 0), 10, 2);
    protocol::set_base_sequence(&mut b, 4);
    assert_eq!(protocol::batches(&b).unwrap()[0].base_sequence, 4);
    let crc = u32::from_be_bytes([b[17], b[18], b[19], b[20]]);
    assert_eq!(crc, crc32c(&b[21..]));
    assert_eq!(b, batch((5, 0), 4, 2));
}

#[test]
fn end_txn_responses_of_every_version_read_back() {
    for v in 0..=5 {
        let head = protocol::Head {
            api_key: protocol::END_TXN,
            version: v,
            correlation_id: 31,
        };
        let r = response::end_txn_response(head, 90);
        let size = i32::from_be_bytes([r[0], r[1], r[2], r[3]]) as usize;
        assert_eq!(size, r.len() - 4);
        assert_eq!(response::response_correlation_id(&r[4..]).unwrap(), 31);
        assert_eq!(response::set_end_txn_error(v, &mut r[4..].to_vec(), 0), 90);
    }
}
