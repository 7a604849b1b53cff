//! The lane on fakes: concurrency inside a partition, commits in offset
//! order, batching, revocation and fencing. Multi-threaded runtimes, because
//! a commit blocks its thread (`block_in_place`); the assertions are on
//! order and counts, never on timing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sprocket_core::Phase;
use sprocket_platform::config::Config;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::lane::{lane_loop, Batching, LaneShared, LaneState};
use crate::ports::fakes::{message, MemTransactions};

struct Lane {
    tx: Arc<MemTransactions>,
    send: mpsc::UnboundedSender<rdkafka::message::OwnedMessage>,
    state: Arc<LaneState>,
    stopping: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

const TOPIC: &str = "sprocket.render";

fn lane(work: Scripted, max_in_flight: usize) -> Lane {
    lane_with(work, max_in_flight, Config::default())
}

fn lane_with(work: Scripted, max_in_flight: usize, cfg: Config) -> Lane {
    let batching = Batching {
        max_in_flight,
        max_items: 500,
        interval: Duration::from_millis(20),
    };
    lane_batched(work, batching, cfg)
}

fn lane_batched(work: Scripted, batching: Batching, cfg: Config) -> Lane {
    let max_in_flight = batching.max_in_flight;
    let (stepper, _) = stepper(work, cfg);
    let tx = Arc::new(MemTransactions::default());
    let (resume, _) = mpsc::unbounded_channel();
    let stopping = CancellationToken::new();
    let shared = LaneShared {
        stepper,
        tx: tx.clone(),
        stopping: stopping.clone(),
        resume,
        in_flight: Arc::new(Semaphore::new(max_in_flight)),
        batching,
    };
    let (send, rx) = mpsc::unbounded_channel();
    let state = Arc::new(LaneState::new());
    let task = tokio::spawn(lane_loop(shared, (TOPIC.into(), 0), rx, state.clone()));
    Lane {
        tx,
        send,
        state,
        stopping,
        task,
    }
}

impl Lane {
    fn push(&self, n: usize) {
        for i in 0..n {
            self.state.add();
            let env = item(i, Phase::Render, 1);
            // A lane that has ended (fenced) no longer receives; what it
            // did not take is redelivered from the rewound position.
            let _ = self.send.send(message(TOPIC, 0, i as i64, &env));
        }
    }

    async fn until_committed(&self, next: i64) {
        let lane = (TOPIC.to_owned(), 0);
        for _ in 0..500 {
            if self.tx.offset(&lane) == Some(next) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("offset {next} never committed: {:?}", self.tx.offset(&lane));
    }

    /// The job numbers of the committed next items, in commit order, and
    /// each transaction's range of offsets.
    fn committed(&self) -> (Vec<String>, Vec<i64>) {
        let c = self.tx.committed.lock().unwrap();
        let keys = c
            .iter()
            .flat_map(|t| t.records.iter())
            .filter(|r| r.topic == "sprocket.archive")
            .map(|r| r.key.clone())
            .collect();
        (keys, c.iter().map(|t| t.next).collect())
    }
}

/// Work that takes longer the lower the job number: later messages finish first.
fn reversed(peak: Arc<AtomicUsize>, now: Arc<AtomicUsize>) -> Scripted {
    Scripted {
        phase: Phase::Render,
        run: Box::new(move |item| {
            let n: u64 = item.job_id.as_str()[4..].parse().unwrap();
            let (peak, now) = (peak.clone(), now.clone());
            Box::pin(async move {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30 * (8 - n.min(8)))).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(rendered())
            })
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_run_together_and_commit_in_offset_order_in_few_transactions() {
    let (peak, now) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let l = lane(reversed(peak.clone(), now), 4);
    l.push(8);
    l.until_committed(8).await;
    let (keys, nexts) = l.committed();
    let expected: Vec<String> = (0..8).map(|i| format!("job-{i}")).collect();
    assert_eq!(keys, expected, "every item once, in offset order");
    assert!(nexts.windows(2).all(|w| w[0] < w[1]), "{nexts:?}");
    assert!(nexts.len() < 8, "batched: {nexts:?}");
    let peak = peak.load(Ordering::SeqCst);
    assert!((2..=4).contains(&peak), "ran {peak} at once");
    l.stopping.cancel();
    l.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_commits_past_an_unfinished_item() {
    let release = Arc::new(Notify::new());
    let finished = Arc::new(AtomicUsize::new(0));
    let (r, f) = (release.clone(), finished.clone());
    let work = Scripted {
        phase: Phase::Render,
        run: Box::new(move |item| {
            let (r, f) = (r.clone(), f.clone());
            let first = item.job_id.as_str() == "job-0";
            Box::pin(async move {
                if first {
                    r.notified().await;
                }
                f.fetch_add(1, Ordering::SeqCst);
                Ok(rendered())
            })
        }),
    };
    let l = lane(work, 8);
    l.push(6);
    while finished.load(Ordering::SeqCst) < 5 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        l.tx.committed.lock().unwrap().is_empty(),
        "item 0 still runs"
    );
    release.notify_one();
    l.until_committed(6).await;
    assert_eq!(l.committed().1, vec![6], "one transaction for all six");
    l.stopping.cancel();
    l.task.await.unwrap();
}

/// Work that holds item 0 until `release`, and finishes every other at once.
fn first_held(release: Arc<Notify>) -> Scripted {
    Scripted {
        phase: Phase::Render,
        run: Box::new(move |item| {
            let r = release.clone();
            let first = item.job_id.as_str() == "job-0";
            Box::pin(async move {
                if first {
                    r.notified().await;
                }
                Ok(rendered())
            })
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_quick_items_commits_in_one_transaction() {
    // No commit interval to speak of: only "nothing runs and nothing is
    // ready", or a full transaction, may commit.
    let release = Arc::new(Notify::new());
    let batching = Batching {
        max_in_flight: 2,
        max_items: 500,
        interval: Duration::from_secs(3600),
    };
    let l = lane_batched(first_held(release.clone()), batching, Config::default());
    // Item 0 runs and holds; the rest wait in the lane, most not yet taken up.
    l.push(100);
    release.notify_one();
    l.until_committed(100).await;
    let (keys, nexts) = l.committed();
    assert_eq!(keys.len(), 100, "every item once");
    assert_eq!(
        nexts,
        vec![100],
        "the backlog went in one transaction, not an item or two at a time"
    );
    // Capped by commit_max_items.
    let release = Arc::new(Notify::new());
    let batching = Batching {
        max_items: 30,
        ..batching
    };
    let capped = lane_batched(first_held(release.clone()), batching, Config::default());
    capped.push(100);
    release.notify_one();
    capped.until_committed(100).await;
    let (_, nexts) = capped.committed();
    let sizes: Vec<i64> = nexts
        .iter()
        .scan(0, |from, &next| {
            let size = next - *from;
            *from = next;
            Some(size)
        })
        .collect();
    // Two items may finish together as the 30th arrives.
    let (last, full) = sizes.split_last().unwrap();
    assert!(
        full.iter().all(|n| (30..=31).contains(n)) && (1..=31).contains(last),
        "{nexts:?}"
    );
    for l in [l, capped] {
        l.stopping.cancel();
        l.task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_lane_stops_its_work_and_commits_nothing() {
    let started = Arc::new(Notify::new());
    let s = started.clone();
    let work = Scripted {
        phase: Phase::Render,
        run: Box::new(move |_| {
            let s = s.clone();
            Box::pin(async move {
                s.notify_one();
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(rendered())
            })
        }),
    };
    let l = lane(work, 2);
    l.push(2);
    started.notified().await;
    l.state.revoke(Duration::from_secs(5));
    tokio::time::timeout(Duration::from_secs(10), l.task)
        .await
        .expect("the lane ends")
        .unwrap();
    assert!(l.tx.committed.lock().unwrap().is_empty());
}

/// A transaction that does not return (librdkafka waiting on a lost group
/// coordinator) holds a revocation up for a bounded time only; when it
/// fails afterwards, the revoked lane leaves the partition alone: no rewind
/// of a partition that may already be read by its next owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_transaction_holds_a_revocation_for_a_bounded_time() {
    let quick = Scripted {
        phase: Phase::Render,
        run: Box::new(|_| Box::pin(async { Ok(rendered()) })),
    };
    let l = lane(quick, 2);
    l.tx.hang.store(true, Ordering::SeqCst);
    l.tx.fenced.store(true, Ordering::SeqCst);
    l.push(1);
    while l.tx.entered.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let state = l.state.clone();
    let revoking = tokio::task::spawn_blocking(move || state.revoke(Duration::from_millis(100)));
    tokio::time::timeout(Duration::from_secs(30), revoking)
        .await
        .expect("the revocation returns while the transaction is stuck")
        .unwrap();
    assert!(l.state.is_revoked());
    assert!(
        !l.task.is_finished(),
        "the lane still waits on its transaction"
    );
    l.tx.hang.store(false, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(30), l.task)
        .await
        .expect("the lane ends once its transaction fails")
        .unwrap();
    assert!(l.tx.committed.lock().unwrap().is_empty());
    assert!(
        l.tx.rewound.lock().unwrap().is_empty(),
        "a revoked lane does not rewind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_fencing_rewinds() {
    let quick = || Scripted {
        phase: Phase::Render,
        run: Box::new(|_| Box::pin(async { Ok(rendered()) })),
    };
    let l = lane(quick(), 2);
    l.tx.fail.store(2, Ordering::SeqCst);
    l.push(3);
    l.until_committed(3).await;
    assert_eq!(l.committed().0.len(), 3, "each item committed once");
    l.stopping.cancel();
    l.task.await.unwrap();

    let l = lane(quick(), 2);
    l.tx.fenced.store(true, Ordering::SeqCst);
    l.push(3);
    tokio::time::timeout(Duration::from_secs(10), l.task)
        .await
        .expect("a fenced lane ends")
        .unwrap();
    assert!(l.tx.committed.lock().unwrap().is_empty());
    assert_eq!(l.tx.rewound.lock().unwrap()[0], ((TOPIC.into(), 0), 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_messages_of_one_job_never_run_at_once() {
    let (peak, now) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (p, n) = (peak.clone(), now.clone());
    let work = Scripted {
        phase: Phase::Render,
        run: Box::new(move |item| {
            let (p, n) = (p.clone(), n.clone());
            let same = item.job_id.as_str() == "job-1";
            Box::pin(async move {
                if same {
                    let running = n.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(running, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                if same {
                    n.fetch_sub(1, Ordering::SeqCst);
                }
                Ok(rendered())
            })
        }),
    };
    let l = lane(work, 8);
    // job-1 three times (a redelivered or resubmitted item), job-2 between.
    for (offset, job) in [(0, 1), (1, 2), (2, 1), (3, 1)] {
        l.state.add();
        let env = item(job, Phase::Render, 1);
        l.send.send(message(TOPIC, 0, offset, &env)).unwrap();
    }
    l.until_committed(4).await;
    assert_eq!(
        peak.load(Ordering::SeqCst),
        1,
        "job-1's items ran one at a time"
    );
    let (keys, _) = l.committed();
    assert_eq!(
        keys,
        ["job-1", "job-2", "job-1", "job-1"],
        "in offset order"
    );
    l.stopping.cancel();
    l.task.await.unwrap();
}

/// A `retry-at` header years away (forged, or a clock gone wrong) waits no
/// longer than `limits.max_retry_delay_ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_due_far_away_waits_no_longer_than_the_longest_delay() {
    use rdkafka::message::{Header, Message, OwnedHeaders};
    let quick = Scripted {
        phase: Phase::Render,
        run: Box::new(|_| Box::pin(async { Ok(rendered()) })),
    };
    let mut cfg = Config::default();
    cfg.limits.max_retry_delay_ms = 200;
    let l = lane_with(quick, 2, cfg);
    let years = chrono::Utc::now().timestamp_millis() + 10 * 365 * 24 * 3_600_000;
    let due = years.to_string();
    let msg = message(TOPIC, 0, 0, &item(1, Phase::Render, 2));
    let msg = rdkafka::message::OwnedMessage::new(
        msg.payload().map(<[u8]>::to_vec),
        msg.key().map(<[u8]>::to_vec),
        TOPIC.into(),
        msg.timestamp(),
        0,
        0,
        Some(OwnedHeaders::new().insert(Header {
            key: sprocket_platform::bus::HEADER_RETRY_AT,
            value: Some(&due),
        })),
    );
    l.state.add();
    l.send.send(msg).unwrap();
    l.until_committed(1).await;
    l.stopping.cancel();
    l.task.await.unwrap();
}

/// An outcome with a record larger than Kafka takes fails the job for good
/// and dead-letters its item, instead of failing every commit for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_too_large_for_kafka_fails_the_job_for_good() {
    let huge = Scripted {
        phase: Phase::Render,
        run: Box::new(|_| {
            Box::pin(async {
                let mut done = rendered();
                if let sprocket_core::EventBody::MediaRendered(r) = &mut done.event {
                    let a = r.artifacts[0].clone();
                    r.artifacts = vec![a; 200];
                }
                Ok(done)
            })
        }),
    };
    let mut cfg = Config::default();
    cfg.limits.max_record_bytes = 4096;
    let l = lane_with(huge, 2, cfg);
    l.push(1);
    l.until_committed(1).await;
    let records = l.tx.records();
    let topics: Vec<&str> = records.iter().map(|r| r.topic.as_str()).collect();
    assert!(topics.contains(&"sprocket.render.dlq"), "{topics:?}");
    assert!(!topics.contains(&"sprocket.archive"), "{topics:?}");
    assert!(records.iter().all(|r| r.size() <= 4096));
    let failed = records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .find(|p| p.contains("JobFailed"))
        .expect("JobFailed recorded");
    assert!(failed.contains("record_too_large"), "{failed}");
    l.stopping.cancel();
    l.task.await.unwrap();
}
