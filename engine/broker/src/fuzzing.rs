//! Entry points for the fuzz targets in `fuzz/`, for the stable test that
//! replays their corpus, and for the tool that captures the corpus from
//! librdkafka. Not an API: hidden from the docs, and it changes with the
//! fuzz targets.
//!
//! The entry points check what the relay relies on besides not panicking: the
//! responses it writes read back, and the requests it replays parse.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::frames::frame_len;
use crate::intercept::{intercept, Action};
use crate::protocol::{self, END_TXN, PRODUCE};
use crate::response;
use crate::txn::{Held, Transactions};
use crate::wire::Reader;
use crate::{BrokerError, EmbeddedBroker};

pub use crate::capture::{Capture, Captured, Direction};
pub use crate::frames::MAX_REQUEST_BYTES;

/// How far apart in time [`intercept_stream`] takes its frames to arrive: long
/// enough that a transaction with a short timeout, as in the captured
/// `session-timed-out` (1 s), times out within one input, and short enough
/// that one with the default (60 s) does not.
const TICK: Duration = Duration::from_secs(1);

/// Starts a broker, as [`EmbeddedBroker::start`], that records every frame it
/// relays, in both directions.
pub async fn capturing_broker(addr: &str) -> Result<(EmbeddedBroker, Capture), BrokerError> {
    let capture = Capture::default();
    let broker = EmbeddedBroker::launch(addr, Some(capture.clone()))?;
    Ok((broker, capture))
}

/// What an input reached: how many frames the relay answered itself, how
/// many commits replayed held requests, how many EndTxn it refused (fenced).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reached {
    pub answered: usize,
    pub commits: usize,
    pub fenced: usize,
}

/// Everything the relay does to client frames. `data` is what clients sent, as
/// on the wire: size-prefixed frames, cut as the relay cuts them (the cap
/// included) and decided on one after another against one transaction state,
/// [`TICK`] apart. Then what the relay does with each decision is done too:
/// replays get their correlation ids, and the relay's own responses are read
/// back.
pub fn intercept_stream(data: &[u8]) -> Reached {
    let mut reached = Reached::default();
    let txns = Mutex::new(Transactions::default());
    let start = Instant::now();
    let mut rest = data;
    let mut now = start;
    while let Ok(Some(len)) = frame_len(rest, MAX_REQUEST_BYTES) {
        let Some((frame, tail)) = rest.split_at_checked(len) else {
            break;
        };
        rest = tail;
        now += TICK;
        let action = intercept(frame, &txns, now);
        let head = protocol::head(&frame[4..]).ok();
        check(action, head, &mut reached);
    }
    reached
}

/// Checks one decision as the relay would act on it.
fn check(action: Action, head: Option<protocol::Head>, reached: &mut Reached) {
    match action {
        Action::Forward(_) => {}
        Action::Answer(None) => reached.answered += 1,
        Action::Answer(Some(r)) => {
            reached.answered += 1;
            let head = head.expect("the relay answers only requests it read");
            assert_eq!(frame_len(&r, usize::MAX).ok(), Some(Some(r.len())));
            let payload = &r[4..];
            assert_eq!(
                response::response_correlation_id(payload).ok(),
                Some(head.correlation_id)
            );
            match head.api_key {
                PRODUCE => {
                    response::produce_acks(head.version, payload)
                        .expect("a relay-written Produce response reads back");
                }
                END_TXN => {
                    let mut copy = payload.to_vec();
                    let code = response::set_end_txn_error(head.version, &mut copy, 1);
                    assert_ne!(code, 1, "a relay-written EndTxn response carries its error");
                    reached.fenced += 1;
                }
                other => panic!("the relay answered api key {other}"),
            }
        }
        Action::Commit { replays, .. } => {
            reached.commits += 1;
            for mut payload in replays {
                protocol::set_correlation_id(&mut payload, -1);
                let p = protocol::produce(&payload).expect("a replayed request parses");
                assert_eq!(p.head.correlation_id, -1);
            }
        }
    }
}

/// The raw readers on one payload (the bytes after a size prefix): every
/// request and response reader the relay has, the record batches of a Produce
/// request (renumbered, as a commit does), and the primitive readers driven by
/// the payload's first bytes.
pub fn read_payload(data: &[u8]) {
    let _ = protocol::head(data);
    let _ = protocol::end_txn(data);
    let _ = protocol::init_producer_id(data);
    if let Ok(p) = protocol::produce(data) {
        for (_, records) in p.topics.iter().flat_map(|t| &t.partitions) {
            if let Some(records) = records {
                renumber(&data[records.clone()]);
            }
        }
        let _ = Held::new(data, &p);
        let r = response::produce_response(&p, 0);
        response::produce_acks(p.head.version, &r[4..])
            .expect("a relay-written Produce response reads back");
    }
    let _ = response::response_correlation_id(data);
    for version in 0..=11 {
        let _ = response::produce_acks(version, data);
    }
    for version in 0..=5 {
        let _ = response::set_end_txn_error(version, &mut data.to_vec(), 47);
    }
    primitives(data);
}

/// Renumbers every batch of a records field; the batches must read back.
fn renumber(records: &[u8]) {
    let Ok(batches) = protocol::batches(records) else {
        return;
    };
    let mut copy = records.to_vec();
    for b in &batches {
        let batch = &mut copy[b.offset..b.offset + b.len];
        protocol::set_base_sequence(batch, b.base_sequence.wrapping_add(1));
    }
    assert_eq!(
        protocol::batches(&copy).map(|b| b.len()),
        Ok(batches.len()),
        "renumbering keeps the batches readable"
    );
}

/// Reads `data` with the primitive reads its first 32 bytes name, until one
/// fails; no read may pass the end.
fn primitives(data: &[u8]) {
    let mut r = Reader::new(data);
    for op in data.iter().take(32) {
        let flexible = op & 0x10 != 0;
        let ok = match op % 9 {
            0 => r.i8().is_ok(),
            1 => r.i16().is_ok(),
            2 => r.i32().is_ok(),
            3 => r.i64().is_ok(),
            4 => r.uvarint().is_ok(),
            5 => r.nullable_str(flexible).is_ok(),
            6 => match r.nullable_bytes(flexible) {
                Ok(range) => range.is_none_or(|range| range.end <= data.len()),
                Err(_) => false,
            },
            7 => r.array_len(flexible).is_ok(),
            _ => r.skip_tags().is_ok(),
        };
        assert!(r.pos() <= data.len());
        if !ok {
            break;
        }
    }
}
