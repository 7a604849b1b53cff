//! Replaying a committed transaction's held Produce requests: one at a time,
//! on a connection of the relay's own, each tried again until the mock
//! cluster appends it.
//!
//! Kafka's coordinator completes a commit once it has accepted the EndTxn; a
//! partition leader that moves meanwhile delays the markers, it does not undo
//! half of the transaction. The mock has no such step: told to fail Produce
//! requests (the faults harness) or taken down, it would append some of a
//! transaction's requests and refuse the rest, and the client, told that its
//! commit failed, would abort and produce them all again, so the appended ones
//! twice. So a replay that fails for a reason that passes (a leader moving, a
//! timeout, the broker down for a while) is sent again, with the same
//! sequence numbers: an attempt that was appended after all is answered
//! DUPLICATE_SEQUENCE_NUMBER, which counts as appended. Only a request still
//! refused after [`BUDGET`], or refused for good, fails the commit.

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::frames::{FrameError, Frames, MAX_RESPONSE_BYTES};
use crate::{protocol, response};

/// How long one commit's replays are tried before the commit fails.
pub(crate) const BUDGET: Duration = Duration::from_secs(20);

/// The first wait between two tries of one request; it doubles up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(50);
const MAX_WAIT: Duration = Duration::from_secs(1);

/// What the EndTxn's response says when a replay could not reach the broker.
const NETWORK_EXCEPTION: i16 = 13;
/// The broker already holds this producer's batch: appended before.
const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;

/// Whether a Produce error code may pass if the request is sent again.
pub(crate) fn passes(code: i16) -> bool {
    matches!(
        code,
        3       // UNKNOWN_TOPIC_OR_PARTITION
        | 5     // LEADER_NOT_AVAILABLE
        | 6     // NOT_LEADER_OR_FOLLOWER
        | 7     // REQUEST_TIMED_OUT
        | 8     // BROKER_NOT_AVAILABLE
        | 13    // NETWORK_EXCEPTION
        | 19    // NOT_ENOUGH_REPLICAS
        | 20    // NOT_ENOUGH_REPLICAS_AFTER_APPEND
        | 56    // KAFKA_STORAGE_ERROR
        | 74    // FENCED_LEADER_EPOCH
        | 75 // UNKNOWN_LEADER_EPOCH
    )
}

/// The relay's own connection to the mock cluster, for one client connection's
/// replays; opened when first needed and again after it fails.
pub(crate) struct Replayer {
    target: String,
    conn: Option<(Frames<OwnedReadHalf>, OwnedWriteHalf)>,
    /// Correlation ids of the relay's own requests: negative, never a client's.
    private_id: i32,
}

impl Replayer {
    pub(crate) fn new(target: String) -> Replayer {
        Replayer {
            target,
            conn: None,
            private_id: 0,
        }
    }

    /// Replays `requests` in order, each until it is appended; returns the
    /// error code the commit fails with, or 0 when every request was appended.
    /// A failure leaves the requests before it appended.
    pub(crate) async fn replay(&mut self, requests: Vec<BytesMut>) -> i16 {
        let deadline = Instant::now() + BUDGET;
        for mut payload in requests {
            let mut wait = FIRST_WAIT;
            loop {
                let code = match self.once(&mut payload).await {
                    Ok(0) => break,
                    Ok(code) => code,
                    Err(e) => {
                        tracing::debug!(error = %e, "embedded broker relay: replay connection failed");
                        self.conn = None;
                        NETWORK_EXCEPTION
                    }
                };
                if !passes(code) || Instant::now() + wait > deadline {
                    tracing::warn!(
                        code,
                        "embedded broker relay: replaying a committed transaction's records failed"
                    );
                    return code;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_WAIT);
            }
        }
        0
    }

    /// Sends one request and reads its response's first error code (0: none).
    async fn once(&mut self, payload: &mut BytesMut) -> Result<i16, FrameError> {
        self.private_id = if self.private_id <= i32::MIN + 1 {
            -1
        } else {
            self.private_id - 1
        };
        protocol::set_correlation_id(payload, self.private_id);
        let version = protocol::head(payload).map_or(0, |h| h.version);
        if self.conn.is_none() {
            let stream = TcpStream::connect(&self.target).await?;
            let _ = stream.set_nodelay(true);
            let (read, write) = stream.into_split();
            self.conn = Some((Frames::new(read, MAX_RESPONSE_BYTES), write));
        }
        let Some((frames, write)) = self.conn.as_mut() else {
            return Ok(NETWORK_EXCEPTION);
        };
        let mut out = BytesMut::with_capacity(payload.len() + 4);
        out.put_i32(payload.len() as i32);
        out.put_slice(payload);
        write.write_all(&out).await?;
        let frame = frames.next().await?.ok_or(FrameError::Truncated)?;
        let body = &frame[4..];
        if response::response_correlation_id(body).ok() != Some(self.private_id) {
            // Not the answer to this request: start over on a new connection.
            self.conn = None;
            return Ok(NETWORK_EXCEPTION);
        }
        Ok(match response::produce_acks(version, body) {
            Ok(acks) => acks
                .iter()
                .map(|a| a.error_code)
                .find(|c| *c != 0 && *c != DUPLICATE_SEQUENCE_NUMBER)
                .unwrap_or(0),
            Err(_) => response::UNKNOWN_SERVER_ERROR,
        })
    }
}
