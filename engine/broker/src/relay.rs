//! The relay between clients and the mock cluster, with its transaction buffer.
//!
//! librdkafka's mock cluster has no transaction markers and no last stable
//! offset: Fetch answers LastStableOffset = high watermark with no aborted
//! transactions, and EndTxn writes nothing. Records of a transaction that is
//! aborted, or whose producer dies before committing, would be visible to
//! `read_committed` consumers. So the relay keeps transactional records from
//! the mock until their transaction commits:
//!
//! * a Produce request with a transactional id is held ([`crate::txn`]) and
//!   answered at once with a success of its own making (base offset -1);
//! * EndTxn(commit) first replays that producer's held requests, in arrival
//!   order, on the EndTxn's connection, under relay-private (negative)
//!   correlation ids whose responses are swallowed; then the EndTxn goes on. If a
//!   replay fails, the EndTxn's response carries the replay's error code, so the
//!   client sees a failed commit (requests replayed before it stay appended);
//! * EndTxn(abort) drops them; InitProducerId for the transactional id (a
//!   restarted producer, or an epoch bump) drops whatever was left;
//! * a closed connection changes nothing: the producer may reconnect and commit.
//!
//! Everything else passes through unchanged. Clients expect responses in request
//! order per connection, so each connection keeps a queue of what it owes the
//! client: a response the broker will send (matched by correlation id), a replay
//! response to swallow, or one the relay wrote.
//!
//! Unlike Kafka: held records get their offsets at commit, after records
//! produced meanwhile, and an open transaction holds back no one (there is no
//! last stable offset); `read_uncommitted` consumers do not see them either;
//! delivery reports of transactional records carry offset -1. The relay does
//! not fence (nor does the mock: every InitProducerId gets a new producer id)
//! and enforces no transaction timeout: an abandoned transaction's records stay
//! held until its transactional id is initialised again. TxnOffsetCommit is
//! passed through, and the mock still does not store it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::intercept::{intercept, Action};
use crate::protocol;
use crate::txn::Transactions;

/// Forwards every connection on the broker's address to the mock cluster, on a
/// thread and runtime of its own: the broker stays reachable however busy the
/// application's runtime is (its threads may block on Kafka calls whose answers
/// pass through here).
pub(crate) struct Relay {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    pub(crate) fn start(listener: std::net::TcpListener, target: String) -> std::io::Result<Relay> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sprocket-broker-relay")
            .enable_all()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sprocket-broker-relay".into())
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = stopped => {}
                        _ = accept(listener, target) => {}
                    }
                });
                rt.shutdown_background();
            })?;
        Ok(Relay {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub(crate) fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept(listener: TcpListener, target: String) {
    let txns = Arc::new(Mutex::new(Transactions::default()));
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        let target = target.clone();
        let txns = txns.clone();
        tokio::spawn(async move {
            match TcpStream::connect(&target).await {
                Ok(outbound) => connection(inbound, outbound, txns).await,
                Err(e) => {
                    tracing::warn!(%target, error = %e, "embedded broker relay: connect failed")
                }
            }
        });
    }
}

/// What the relay owes the client, in request order.
#[derive(Debug)]
enum Owed {
    /// The broker's response with this correlation id.
    Forwarded(i32),
    /// The response to a replayed Produce request: checked, not passed on.
    Replayed { correlation_id: i32, version: i16 },
    /// The broker's response to an EndTxn that followed replays.
    EndTxn { correlation_id: i32, version: i16 },
    /// A response the relay wrote.
    Ready(Bytes),
}

/// What a connection owes its client, shared by its two directions.
#[derive(Debug, Default)]
struct Ledger {
    owed: Mutex<VecDeque<Owed>>,
    /// Wakes the response side for what no broker response announces: a
    /// response the relay wrote, or the client's end.
    wake: Notify,
    closed: AtomicBool,
}

impl Ledger {
    fn owe(&self, o: Owed) {
        let wake = matches!(o, Owed::Ready(_));
        self.lock().push_back(o);
        if wake {
            self.wake.notify_one();
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    fn is_done(&self) -> bool {
        self.closed.load(Ordering::SeqCst) && self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Owed>> {
        self.owed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The relay's own responses at the front of the queue, taken off it.
    fn take_ready(&self) -> Vec<Bytes> {
        let mut owed = self.lock();
        let mut ready = Vec::new();
        while let Some(Owed::Ready(_)) = owed.front() {
            if let Some(Owed::Ready(r)) = owed.pop_front() {
                ready.push(r);
            }
        }
        ready
    }
}

async fn connection(inbound: TcpStream, outbound: TcpStream, txns: Arc<Mutex<Transactions>>) {
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (client_read, client_write) = inbound.into_split();
    let (broker_read, broker_write) = outbound.into_split();
    let ledger = Arc::new(Ledger::default());
    let requests = tokio::spawn({
        let ledger = ledger.clone();
        async move {
            let r = requests(Frames::new(client_read), broker_write, &ledger, &txns).await;
            ledger.close();
            r
        }
    });
    if let Err(e) = responses(Frames::new(broker_read), client_write, &ledger).await {
        tracing::debug!(error = %e, "embedded broker relay: connection closed");
    }
    requests.abort();
}

/// Client to broker: each request is forwarded, held and answered, or (EndTxn
/// commit) preceded by its transaction's replays.
async fn requests(
    mut client: Frames<OwnedReadHalf>,
    mut broker: OwnedWriteHalf,
    ledger: &Ledger,
    txns: &Mutex<Transactions>,
) -> std::io::Result<()> {
    let mut private_id: i32 = 0;
    while let Some(frame) = client.next().await? {
        match intercept(&frame, txns) {
            Action::Forward(response) => {
                // Owed before it is asked: the response cannot come first.
                if let Some(id) = response {
                    ledger.owe(Owed::Forwarded(id));
                }
                broker.write_all(&frame).await?;
            }
            Action::Answer(response) => {
                if let Some(r) = response {
                    ledger.owe(Owed::Ready(r));
                }
            }
            Action::Commit {
                replays,
                correlation_id,
                version,
            } => {
                let mut out = BytesMut::new();
                for mut payload in replays {
                    private_id = if private_id <= i32::MIN + 1 {
                        -1
                    } else {
                        private_id - 1
                    };
                    protocol::set_correlation_id(&mut payload, private_id);
                    ledger.owe(Owed::Replayed {
                        correlation_id: private_id,
                        version: protocol::head(&payload).map_or(0, |h| h.version),
                    });
                    out.put_i32(payload.len() as i32);
                    out.put_slice(&payload);
                }
                ledger.owe(Owed::EndTxn {
                    correlation_id,
                    version,
                });
                out.put_slice(&frame);
                broker.write_all(&out).await?;
            }
        }
    }
    broker.shutdown().await
}

/// Broker to client: responses in request order, the relay's own in between.
async fn responses(
    mut broker: Frames<OwnedReadHalf>,
    mut client: OwnedWriteHalf,
    ledger: &Ledger,
) -> std::io::Result<()> {
    // The first error of the replays before the next EndTxn.
    let mut replay_error: i16 = 0;
    loop {
        for r in ledger.take_ready() {
            client.write_all(&r).await?;
        }
        if ledger.is_done() {
            break;
        }
        tokio::select! {
            _ = ledger.wake.notified() => {}
            frame = broker.next() => {
                let Some(frame) = frame? else { break };
                for r in ledger.take_ready() {
                    client.write_all(&r).await?;
                }
                let out = deliver(frame, &mut ledger.lock(), &mut replay_error);
                if let Some(out) = out {
                    client.write_all(&out).await?;
                }
            }
        }
    }
    client.shutdown().await
}

/// Matches a broker response with the front of the queue; returns what goes to
/// the client, if anything.
fn deliver(frame: Bytes, queue: &mut VecDeque<Owed>, replay_error: &mut i16) -> Option<Bytes> {
    let id = protocol::response_correlation_id(&frame[4..]).ok();
    let expected = match queue.front() {
        Some(Owed::Forwarded(c)) => Some(*c),
        Some(Owed::Replayed { correlation_id, .. } | Owed::EndTxn { correlation_id, .. }) => {
            Some(*correlation_id)
        }
        Some(Owed::Ready(_)) | None => None,
    };
    if id.is_none() || id != expected {
        tracing::warn!(
            ?id,
            ?expected,
            "embedded broker relay: unexpected response passed on"
        );
        return Some(frame);
    }
    match queue.pop_front() {
        Some(Owed::Replayed { version, .. }) => {
            let code = match protocol::produce_acks(version, &frame[4..]) {
                Ok(acks) => acks.iter().map(|a| a.error_code).find(|c| *c != 0),
                Err(_) => Some(UNKNOWN_SERVER_ERROR),
            };
            if let Some(code) = code {
                tracing::warn!(
                    code,
                    "embedded broker relay: replaying a committed transaction's records failed"
                );
                if *replay_error == 0 {
                    *replay_error = code;
                }
            }
            None
        }
        Some(Owed::EndTxn { version, .. }) => {
            let code = std::mem::take(replay_error);
            if code == 0 {
                return Some(frame);
            }
            let mut out = BytesMut::from(&frame[..]);
            protocol::set_end_txn_error(version, &mut out[4..], code);
            Some(out.freeze())
        }
        _ => Some(frame),
    }
}

const UNKNOWN_SERVER_ERROR: i16 = -1;

/// Reads whole Kafka frames (size prefix included) off a stream.
struct Frames<R> {
    io: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> Frames<R> {
    fn new(io: R) -> Frames<R> {
        Frames {
            io,
            buf: BytesMut::with_capacity(64 * 1024),
        }
    }

    /// The next frame; `None` at the end of the stream. Cancel-safe: a partly
    /// read frame stays buffered.
    async fn next(&mut self) -> std::io::Result<Option<Bytes>> {
        loop {
            if self.buf.len() >= 4 {
                let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                let Ok(size) = usize::try_from(size) else {
                    return Err(std::io::ErrorKind::InvalidData.into());
                };
                if self.buf.len() >= 4 + size {
                    return Ok(Some(self.buf.split_to(4 + size).freeze()));
                }
                self.buf.reserve(4 + size - self.buf.len());
            } else if self.buf.capacity() - self.buf.len() < 4 {
                self.buf.reserve(64 * 1024);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(std::io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }
}
