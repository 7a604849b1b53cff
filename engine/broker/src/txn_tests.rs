//! The relay's decisions and the transaction buffer: what is held, what a
//! commit replays (in order, renumbered past aborts), what is dropped.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::intercept::{intercept, Action};
use crate::protocol;
use crate::response;
use crate::test_frames::{batch, end_txn_frame, frame, init_pid_frame, produce_frame, put_header};
use crate::txn::Transactions;

/// A fixed point in time, `ms` milliseconds after the tests' start.
pub(crate) fn t(ms: u64) -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now) + Duration::from_millis(ms)
}

/// Holds a transactional Produce request of `count` records arrived `now`.
pub(crate) fn held_produce(
    txns: &Mutex<Transactions>,
    id: &str,
    producer: (i64, i16),
    partition: i32,
    seq: i32,
    count: i32,
    now: Instant,
) {
    let f = produce_frame(
        10,
        seq + 1,
        Some(id),
        -1,
        &[(
            "events",
            vec![(partition, Some(batch(producer, seq, count)))],
        )],
    );
    match intercept(&f, txns, now) {
        Action::Answer(Some(r)) => {
            let acks = response::produce_acks(10, &r[4..]).unwrap();
            assert_eq!(acks[0].error_code, 0);
        }
        other => panic!("held produce answered with {other:?}"),
    }
}

fn replayed_sequences(action: Action) -> Vec<(i32, i32)> {
    let Action::Commit { replays, .. } = action else {
        panic!("no replays: {action:?}");
    };
    replays
        .iter()
        .flat_map(|payload| {
            let p = protocol::produce(payload).unwrap();
            let mut out = Vec::new();
            for t in &p.topics {
                for (index, records) in &t.partitions {
                    for b in protocol::batches(&payload[records.clone().unwrap()]).unwrap() {
                        out.push((*index, b.base_sequence));
                    }
                }
            }
            out
        })
        .collect()
}

#[test]
fn commit_replays_in_arrival_order_and_renumbers_past_aborts() {
    let txns = Mutex::new(Transactions::default());
    let me = (1000, 0);
    // Transaction 1: aborted after 3 records on p0 and 2 on p1.
    held_produce(&txns, "t", me, 0, 0, 3, t(0));
    held_produce(&txns, "t", me, 1, 0, 2, t(0));
    let abort = end_txn_frame(1, 50, "t", me, false);
    assert!(matches!(
        intercept(&abort, &txns, t(0)),
        Action::Forward(Some(50))
    ));
    assert_eq!(txns.lock().unwrap().held("t"), 0);
    // Transaction 2 continues the numbering: p0 from 3, p1 from 2.
    held_produce(&txns, "t", me, 1, 2, 1, t(0));
    held_produce(&txns, "t", me, 0, 3, 1, t(0));
    held_produce(&txns, "t", me, 0, 4, 2, t(0));
    // A resend of a held request is answered but not held twice.
    held_produce(&txns, "t", me, 0, 4, 2, t(0));
    let commit = end_txn_frame(1, 60, "t", me, true);
    assert_eq!(
        replayed_sequences(intercept(&commit, &txns, t(0))),
        vec![(1, 0), (0, 0), (0, 1)]
    );
    // Nothing is left to replay.
    assert!(matches!(
        intercept(&commit, &txns, t(0)),
        Action::Forward(Some(60))
    ));
}

#[test]
fn init_producer_id_drops_an_abandoned_transaction() {
    let txns = Mutex::new(Transactions::default());
    held_produce(&txns, "t", (1000, 0), 0, 0, 2, t(0));
    held_produce(&txns, "other", (2000, 0), 0, 0, 1, t(0));
    assert!(matches!(
        intercept(&init_pid_frame(4, Some("t"), 60_000), &txns, t(0)),
        Action::Forward(Some(5))
    ));
    assert_eq!(txns.lock().unwrap().held("t"), 0);
    assert_eq!(txns.lock().unwrap().held("other"), 1);
    // The restarted producer numbers from zero under its new id.
    held_produce(&txns, "t", (3000, 0), 0, 0, 1, t(0));
    let commit = end_txn_frame(1, 7, "t", (3000, 0), true);
    assert_eq!(
        replayed_sequences(intercept(&commit, &txns, t(0))),
        vec![(0, 0)]
    );
}

#[test]
fn commit_takes_only_the_committing_producers_requests() {
    let txns = Mutex::new(Transactions::default());
    held_produce(&txns, "t", (1000, 0), 0, 0, 1, t(0));
    held_produce(&txns, "t", (1000, 1), 0, 0, 1, t(0));
    let commit = end_txn_frame(1, 7, "t", (1000, 1), true);
    assert_eq!(
        replayed_sequences(intercept(&commit, &txns, t(0))),
        vec![(0, 0)]
    );
    assert_eq!(txns.lock().unwrap().held("t"), 1);
}

#[test]
fn other_traffic_is_forwarded() {
    let txns = Mutex::new(Transactions::default());
    let plain = produce_frame(
        10,
        3,
        None,
        -1,
        &[("e", vec![(0, Some(batch((-1, -1), -1, 1)))])],
    );
    assert!(matches!(
        intercept(&plain, &txns, t(0)),
        Action::Forward(Some(3))
    ));
    let fire_and_forget = produce_frame(
        10,
        4,
        None,
        0,
        &[("e", vec![(0, Some(batch((-1, -1), -1, 1)))])],
    );
    assert!(matches!(
        intercept(&fire_and_forget, &txns, t(0)),
        Action::Forward(None)
    ));
    let mut metadata = BytesMut::new();
    put_header(&mut metadata, 3, 12, 8);
    assert!(matches!(
        intercept(&frame(metadata), &txns, t(0)),
        Action::Forward(Some(8))
    ));
    // Unreadable transactional requests are the broker's to judge.
    let bad = produce_frame(
        10,
        9,
        Some("t"),
        -1,
        &[("e", vec![(0, Some(vec![1, 2, 3]))])],
    );
    assert!(matches!(
        intercept(&bad, &txns, t(0)),
        Action::Forward(Some(9))
    ));
    assert!(matches!(
        intercept(&[0, 0, 0, 1, 0], &txns, t(0)),
        Action::Forward(None)
    ));
}

#[test]
fn aborted_record_counts_wrap_like_sequence_numbers() {
    // Found by review before fuzzing: counts summed past i32::MAX overflowed.
    let txns = Mutex::new(Transactions::default());
    let me = (1000, 0);
    for seq in [0, i32::MAX] {
        // A batch claiming i32::MAX records (the relay does not count them).
        let mut b = batch(me, seq, 1);
        b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let f = produce_frame(10, 1, Some("t"), -1, &[("events", vec![(0, Some(b))])]);
        assert!(matches!(
            intercept(&f, &txns, t(0)),
            Action::Answer(Some(_))
        ));
        let abort = end_txn_frame(1, 2, "t", me, false);
        assert!(matches!(
            intercept(&abort, &txns, t(0)),
            Action::Forward(Some(2))
        ));
    }
    // 2 × i32::MAX records aborted: sequences moved on by 2^31 - 2 (mod 2^31),
    // so the next batch, at 5, is replayed at 7.
    held_produce(&txns, "t", me, 0, 5, 1, t(0));
    let commit = end_txn_frame(1, 3, "t", me, true);
    assert_eq!(
        replayed_sequences(intercept(&commit, &txns, t(0))),
        vec![(0, 7)]
    );
}
