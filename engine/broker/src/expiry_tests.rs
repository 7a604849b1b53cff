//! Transaction timeouts, at explicit times: a transaction open longer than its
//! producer's `transaction.timeout.ms` is aborted, its producer fenced until
//! its transactional id is initialised again.

use std::sync::Mutex;

use crate::intercept::{intercept, Action};
use crate::protocol;
use crate::response::{self, INVALID_PRODUCER_EPOCH, PRODUCER_FENCED};
use crate::test_frames::{batch, end_txn_frame, init_pid_frame, produce_frame};
use crate::txn::{Expired, Held, Transactions, TxnError};
use crate::txn_tests::{held_produce, t};

const ME: (i64, i16) = (1000, 0);

fn held(producer: (i64, i16), seq: i32, count: i32) -> Held {
    let f = produce_frame(
        10,
        1,
        Some("t"),
        -1,
        &[("events", vec![(0, Some(batch(producer, seq, count)))])],
    );
    Held::new(&f[4..], &protocol::produce(&f[4..]).unwrap()).unwrap()
}

/// The error code of an EndTxn response the relay wrote.
fn end_txn_error(version: i16, action: Action) -> i16 {
    let Action::Answer(Some(r)) = action else {
        panic!("EndTxn not answered by the relay: {action:?}");
    };
    assert_eq!(response::response_correlation_id(&r[4..]).unwrap(), 60);
    // Returns the code already there (it is not zero).
    response::set_end_txn_error(version, &mut r[4..].to_vec(), 0)
}

#[test]
fn a_transaction_expires_only_once_older_than_its_timeout() {
    let mut txns = Transactions::default();
    txns.init("t", 1_000);
    txns.init("other", 5_000);
    assert_eq!(txns.hold("t", held(ME, 0, 2), t(100)), Ok(true));
    assert_eq!(txns.hold("t", held(ME, 2, 1), t(900)), Ok(true));
    assert_eq!(txns.hold("other", held((2000, 0), 0, 1), t(100)), Ok(true));
    assert_eq!(txns.expire(t(1_100)), vec![]);
    assert_eq!(txns.held("t"), 2);
    assert_eq!(
        txns.expire(t(1_101)),
        vec![Expired {
            transactional_id: "t".into(),
            producer: ME,
            dropped: 2
        }]
    );
    assert_eq!(txns.held("t"), 0);
    assert_eq!(txns.held("other"), 1);
    let fenced = TxnError::Fenced {
        transactional_id: "t".into(),
        producer: ME,
    };
    assert_eq!(txns.commit("t", ME), Err(fenced.clone()));
    assert_eq!(txns.abort("t", ME), Err(fenced.clone()));
    assert_eq!(txns.hold("t", held(ME, 3, 1), t(1_200)), Err(fenced));
}

#[test]
fn a_new_producer_starts_afresh_after_an_expiry() {
    let mut txns = Transactions::default();
    txns.init("t", 1_000);
    txns.hold("t", held(ME, 0, 1), t(0)).unwrap();
    assert_eq!(txns.expire(t(5_000)).len(), 1);
    // The application creates a new producer: InitProducerId, a new id.
    txns.init("t", 1_000);
    let next = (1001, 0);
    assert_eq!(txns.hold("t", held(next, 0, 1), t(5_100)), Ok(true));
    assert_eq!(txns.commit("t", next).unwrap().len(), 1);
}

#[test]
fn without_a_positive_timeout_the_default_applies() {
    let mut txns = Transactions::default();
    for timeout_ms in [0, -5] {
        txns.init("t", timeout_ms);
        txns.hold("t", held(ME, 0, 1), t(0)).unwrap();
        assert_eq!(txns.expire(t(59_000)), vec![]);
        assert_eq!(txns.expire(t(60_001)).len(), 1);
    }
    // No InitProducerId seen at all.
    let mut txns = Transactions::default();
    txns.hold("u", held(ME, 0, 1), t(0)).unwrap();
    assert_eq!(txns.expire(t(60_001)).len(), 1);
}

#[test]
fn a_timed_out_commit_is_answered_fenced_and_replays_nothing() {
    for (version, code) in [
        (0, INVALID_PRODUCER_EPOCH),
        (1, INVALID_PRODUCER_EPOCH),
        (3, PRODUCER_FENCED),
    ] {
        let txns = Mutex::new(Transactions::default());
        intercept(&init_pid_frame(4, Some("t"), 1_000), &txns, t(0));
        held_produce(&txns, "t", ME, 0, 0, 2, t(10));
        held_produce(&txns, "t", ME, 1, 0, 1, t(500));
        let commit = end_txn_frame(version, 60, "t", ME, true);
        assert_eq!(
            end_txn_error(version, intercept(&commit, &txns, t(1_011))),
            code
        );
        assert_eq!(txns.lock().unwrap().held("t"), 0);
        // An abort is refused alike; Kafka fenced the producer.
        let abort = end_txn_frame(version, 60, "t", ME, false);
        assert_eq!(
            end_txn_error(version, intercept(&abort, &txns, t(1_012))),
            code
        );
    }
}

#[test]
fn a_fenced_producers_produce_is_refused_not_held() {
    let txns = Mutex::new(Transactions::default());
    intercept(&init_pid_frame(4, Some("t"), 1_000), &txns, t(0));
    held_produce(&txns, "t", ME, 0, 0, 1, t(0));
    let late = produce_frame(
        9,
        77,
        Some("t"),
        -1,
        &[("events", vec![(0, Some(batch(ME, 1, 1)))])],
    );
    let Action::Answer(Some(r)) = intercept(&late, &txns, t(2_000)) else {
        panic!("not answered");
    };
    let acks = response::produce_acks(9, &r[4..]).unwrap();
    assert_eq!(acks[0].error_code, INVALID_PRODUCER_EPOCH);
    assert_eq!(txns.lock().unwrap().held("t"), 0);
}

#[test]
fn a_transaction_within_its_timeout_commits() {
    let txns = Mutex::new(Transactions::default());
    intercept(&init_pid_frame(4, Some("t"), 1_000), &txns, t(0));
    held_produce(&txns, "t", ME, 0, 0, 1, t(0));
    held_produce(&txns, "t", ME, 0, 1, 1, t(999));
    let commit = end_txn_frame(1, 60, "t", ME, true);
    let Action::Commit { replays, .. } = intercept(&commit, &txns, t(1_000)) else {
        panic!("no replays");
    };
    assert_eq!(replays.len(), 2);
    // The next transaction's clock starts with its own first request.
    held_produce(&txns, "t", ME, 0, 2, 1, t(1_500));
    assert!(matches!(
        intercept(&commit, &txns, t(2_400)),
        Action::Commit { .. }
    ));
}
