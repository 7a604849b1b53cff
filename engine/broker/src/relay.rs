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
//!   order and one at a time, on a connection of the relay's own, each sent
//!   again while it fails for a passing reason ([`crate::replay`]); then the
//!   EndTxn goes on. If a replay fails for good, the EndTxn's response carries
//!   its error code, so the client sees a failed commit (requests replayed
//!   before it stay appended);
//! * EndTxn(abort) drops them; InitProducerId for the transactional id (a
//!   restarted producer, or an epoch bump) drops whatever was left;
//! * a closed connection changes nothing: the producer may reconnect and commit;
//! * a transaction open longer than the timeout its producer asked for (in
//!   InitProducerId) is aborted, as Kafka's coordinator aborts it: its held
//!   requests are dropped and the producer is fenced ([`crate::txn`] explains).
//!
//! Everything else passes through unchanged. Responses go back in request
//! order ([`crate::ledger`]). Frames over a size cap are refused, in both
//! directions, and close the connection ([`crate::frames`]).
//!
//! Unlike Kafka: held records get their offsets at commit, after records
//! produced meanwhile, and an open transaction holds back no one (there is no
//! last stable offset); `read_uncommitted` consumers do not see them either;
//! delivery reports of transactional records carry offset -1. The relay fences
//! only producers whose transaction timed out (the mock gives every
//! InitProducerId a new producer id, so a restarted producer is never fenced by
//! its successor), and only their Produce and EndTxn requests; their other
//! transactional requests reach the mock, which knows of no fence. A timeout is
//! noticed when the next frame arrives, from any client: there is no timer.
//! TxnOffsetCommit is passed through, and the mock still does not store it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use crate::capture::{Capture, Direction};
use crate::frames::{FrameError, Frames, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};
use crate::intercept::{intercept, Action};
use crate::ledger::{deliver, Ledger, Owed};
use crate::replay::Replayer;
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
    /// Relays `listener`'s connections to `target`, recording every frame in
    /// `capture` if there is one.
    pub(crate) fn start(
        listener: std::net::TcpListener,
        target: String,
        capture: Option<Capture>,
    ) -> std::io::Result<Relay> {
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
                        _ = accept(listener, target, capture) => {}
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

async fn accept(listener: TcpListener, target: String, capture: Option<Capture>) {
    let txns = Arc::new(Mutex::new(Transactions::default()));
    for id in 0u64.. {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        let target = target.clone();
        let txns = txns.clone();
        let capture = capture.clone().map(|c| (id, c));
        tokio::spawn(async move {
            match TcpStream::connect(&target).await {
                Ok(outbound) => connection(inbound, outbound, target, txns, capture).await,
                Err(e) => {
                    tracing::warn!(%target, error = %e, "embedded broker relay: connect failed")
                }
            }
        });
    }
}

async fn connection(
    inbound: TcpStream,
    outbound: TcpStream,
    target: String,
    txns: Arc<Mutex<Transactions>>,
    capture: Option<(u64, Capture)>,
) {
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let peer = inbound.peer_addr().ok();
    let (client_read, client_write) = inbound.into_split();
    let (broker_read, broker_write) = outbound.into_split();
    let ledger = Arc::new(Ledger::default());
    let requests = tokio::spawn({
        let ledger = ledger.clone();
        let capture = capture.clone();
        async move {
            let client = Frames::new(client_read, MAX_REQUEST_BYTES);
            let mut replayer = Replayer::new(target);
            match requests(
                client,
                broker_write,
                &ledger,
                &txns,
                &mut replayer,
                capture.as_ref(),
            )
            .await
            {
                Err(e) if e.is_violation() => {
                    tracing::warn!(?peer, error = %e, "embedded broker relay: bad request frame; connection closed");
                    ledger.abandon();
                }
                Err(e) => {
                    tracing::debug!(?peer, error = %e, "embedded broker relay: client side closed");
                    ledger.close();
                }
                Ok(()) => ledger.close(),
            }
        }
    });
    let broker = Frames::new(broker_read, MAX_RESPONSE_BYTES);
    match responses(broker, client_write, &ledger, capture.as_ref()).await {
        Err(e) if e.is_violation() => {
            tracing::warn!(?peer, error = %e, "embedded broker relay: bad response frame; connection closed")
        }
        Err(e) => tracing::debug!(?peer, error = %e, "embedded broker relay: connection closed"),
        Ok(()) => {}
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
    replayer: &mut Replayer,
    capture: Option<&(u64, Capture)>,
) -> Result<(), FrameError> {
    while let Some(frame) = client.next().await? {
        if let Some((id, c)) = capture {
            c.record(*id, Direction::Request, &frame);
        }
        match intercept(&frame, txns, Instant::now()) {
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
                // The client waits for this EndTxn: its later requests on this
                // connection wait behind the replays, in order.
                let replay_error = replayer.replay(replays).await;
                ledger.owe(Owed::EndTxn {
                    correlation_id,
                    version,
                    replay_error,
                });
                broker.write_all(&frame).await?;
            }
        }
    }
    Ok(broker.shutdown().await?)
}

/// Broker to client: responses in request order, the relay's own in between.
async fn responses(
    mut broker: Frames<OwnedReadHalf>,
    mut client: OwnedWriteHalf,
    ledger: &Ledger,
    capture: Option<&(u64, Capture)>,
) -> Result<(), FrameError> {
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
                if ledger.is_done() {
                    break; // abandoned: nothing is owed any more
                }
                if let Some((id, c)) = capture {
                    c.record(*id, Direction::Response, &frame);
                }
                for r in ledger.take_ready() {
                    client.write_all(&r).await?;
                }
                let out = deliver(frame, &mut ledger.lock());
                client.write_all(&out).await?;
            }
        }
    }
    Ok(client.shutdown().await?)
}
