//! The capture tool that seeds the fuzz corpus (`fuzz/corpus/`) with what
//! librdkafka really sends: real producers (plain, fire-and-forget,
//! idempotent, transactional with commit and abort) and consumers (assigned
//! and in a group) run through a capturing [`EmbeddedBroker`], and the frames
//! it relayed are written out, deduplicated and few.
//!
//! Ignored: it rewrites the committed corpus. Run it after a change to what
//! clients send (a librdkafka upgrade) with
//! `cargo test -p sprocket-broker --test capture_corpus -- --ignored`.
//! Files named `regression-*` (inputs that once broke the decoder) are kept.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sha2::{Digest, Sha256};
use sprocket_broker::fuzzing::{capturing_broker, Capture, Captured, Direction};
use sprocket_broker::EmbeddedBroker;
use tokio::task::block_in_place;

const T: Duration = Duration::from_secs(10);
const TOPIC: &str = "corpus";
/// Distinct frames kept per direction, API and version: of the requests the
/// relay reads closely, that many per scenario; of the others, that many in all.
const KEEP: usize = 2;
/// The requests the relay reads closely: Produce, InitProducerId, EndTxn.
const READ: [i16; 3] = [0, 22, 26];

fn config(broker: &EmbeddedBroker, settings: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker.bootstrap_servers())
        .set("linger.ms", "2");
    for (k, v) in settings {
        c.set(*k, *v);
    }
    c
}

async fn send(p: &FutureProducer, partition: i32, value: &str) {
    let rec = FutureRecord::to(TOPIC)
        .partition(partition)
        .key("key")
        .payload(value);
    p.send(rec, T).await.map_err(|(e, _)| e).unwrap();
}

/// Produces a few records with a non-transactional producer.
async fn plain(broker: &EmbeddedBroker, settings: &[(&str, &str)]) {
    let p: FutureProducer = config(broker, settings).create().unwrap();
    for i in 0..3 {
        send(&p, i % 2, &format!("plain-{i}")).await;
    }
    block_in_place(|| p.flush(T)).unwrap();
}

/// One transaction committed with consumed offsets, one aborted, then one
/// committed whose sequence numbers continue past the aborted records.
async fn transactional(broker: &EmbeddedBroker) {
    let settings = [("transactional.id", "corpus-txn")];
    let p: FutureProducer = config(broker, &settings).create().unwrap();
    let group: BaseConsumer = config(broker, &[("group.id", "corpus-txn-group")])
        .create()
        .unwrap();
    block_in_place(|| p.init_transactions(T)).unwrap();
    block_in_place(|| p.begin_transaction()).unwrap();
    send(&p, 0, "committed-1").await;
    send(&p, 1, "committed-2").await;
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(TOPIC, 0, Offset::Offset(1))
        .unwrap();
    let meta = group.group_metadata().unwrap();
    block_in_place(|| p.send_offsets_to_transaction(&offsets, &meta, T)).unwrap();
    block_in_place(|| p.commit_transaction(T)).unwrap();
    block_in_place(|| p.begin_transaction()).unwrap();
    send(&p, 0, "aborted").await;
    block_in_place(|| p.abort_transaction(T)).unwrap();
    block_in_place(|| p.begin_transaction()).unwrap();
    send(&p, 0, "after-abort").await;
    block_in_place(|| p.commit_transaction(T)).unwrap();
}

/// A transaction left open past its 1 s timeout: its commit is refused.
async fn timed_out(broker: &EmbeddedBroker) {
    let settings = [
        ("transactional.id", "corpus-timed-out"),
        ("transaction.timeout.ms", "1000"),
    ];
    let p: FutureProducer = config(broker, &settings).create().unwrap();
    block_in_place(|| p.init_transactions(T)).unwrap();
    block_in_place(|| p.begin_transaction()).unwrap();
    send(&p, 0, "timed-out-1").await;
    send(&p, 1, "timed-out-2").await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    block_in_place(|| p.commit_transaction(T)).unwrap_err();
}

/// Reads until `want` records arrived: assigned `read_committed`, or in a
/// group with offsets committed.
fn consume(broker: &EmbeddedBroker, group: Option<&str>, want: usize) {
    let mut settings = vec![
        ("isolation.level", "read_committed"),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
    ];
    settings.push(("group.id", group.unwrap_or("corpus-assigned")));
    let c: BaseConsumer = config(broker, &settings).create().unwrap();
    if group.is_some() {
        c.subscribe(&[TOPIC]).unwrap();
    } else {
        let mut tpl = TopicPartitionList::new();
        for partition in 0..2 {
            tpl.add_partition_offset(TOPIC, partition, Offset::Beginning)
                .unwrap();
        }
        c.assign(&tpl).unwrap();
    }
    let (mut read, deadline) = (0, Instant::now() + Duration::from_secs(30));
    while read < want {
        assert!(Instant::now() < deadline, "read {read} of {want}");
        if let Some(m) = block_in_place(|| c.poll(Duration::from_millis(200))) {
            m.unwrap();
            read += 1;
        }
    }
    if group.is_some() {
        c.commit_consumer_state(CommitMode::Sync).unwrap();
        c.unsubscribe();
    }
}

fn api_name(key: i16) -> String {
    let known = [
        (0, "produce"),
        (1, "fetch"),
        (2, "list-offsets"),
        (3, "metadata"),
        (8, "offset-commit"),
        (9, "offset-fetch"),
        (10, "find-coordinator"),
        (11, "join-group"),
        (12, "heartbeat"),
        (13, "leave-group"),
        (14, "sync-group"),
        (18, "api-versions"),
        (22, "init-producer-id"),
        (24, "add-partitions-to-txn"),
        (25, "add-offsets-to-txn"),
        (26, "end-txn"),
        (28, "txn-offset-commit"),
    ];
    known
        .iter()
        .find(|(k, _)| *k == key)
        .map_or_else(|| format!("api{key}"), |(_, n)| n.to_string())
}

/// Api key, version and correlation id of a request frame.
fn request_head(frame: &[u8]) -> (i16, i16, i32) {
    let at = |i: usize| [frame[i], frame[i + 1]];
    let correlation = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
    (
        i16::from_be_bytes(at(4)),
        i16::from_be_bytes(at(6)),
        correlation,
    )
}

/// The corpus being written: file name to content, deduplicated.
#[derive(Default)]
struct Corpus {
    files: HashMap<(&'static str, String), Vec<u8>>,
    seen: HashSet<Vec<u8>>,
    kept: HashMap<(String, Direction, i16, i16), usize>,
}

impl Corpus {
    fn add(&mut self, target: &'static str, name: &str, data: Vec<u8>) {
        if self.seen.insert(data.clone()) {
            let hash = hex::encode(&Sha256::digest(&data)[..4]);
            self.files.insert((target, format!("{name}-{hash}")), data);
        }
    }

    /// Adds a scenario's frames: each kept request frame to `intercept`, each
    /// kept frame's payload to `protocol`, and the transactional requests of
    /// the whole scenario, in arrival order, as one `intercept` session.
    fn scenario(&mut self, name: &str, frames: Vec<Captured>) {
        let mut requests: HashMap<(u64, i32), (i16, i16)> = HashMap::new();
        let mut session = Vec::new();
        for f in frames {
            let (key, version) = match f.direction {
                Direction::Request => {
                    let (key, version, correlation) = request_head(&f.frame);
                    requests.insert((f.connection, correlation), (key, version));
                    if READ.contains(&key) {
                        session.extend_from_slice(&f.frame);
                    }
                    (key, version)
                }
                Direction::Response => {
                    let c = i32::from_be_bytes([f.frame[4], f.frame[5], f.frame[6], f.frame[7]]);
                    match requests.get(&(f.connection, c)) {
                        Some(kv) => *kv,
                        None => continue,
                    }
                }
            };
            let scenario = if READ.contains(&key) { name } else { "" };
            let kind = (scenario.to_owned(), f.direction, key, version);
            if self.kept.get(&kind).copied().unwrap_or(0) >= KEEP {
                continue;
            }
            let before = self.seen.len();
            let label = format!("{}-v{version}", api_name(key));
            if f.direction == Direction::Request {
                self.add("intercept", &label, f.frame.to_vec());
            }
            let suffix = match f.direction {
                Direction::Request => "request",
                Direction::Response => "response",
            };
            self.add(
                "protocol",
                &format!("{label}-{suffix}"),
                f.frame[4..].to_vec(),
            );
            *self.kept.entry(kind).or_default() += usize::from(self.seen.len() > before);
        }
        if !session.is_empty() {
            self.add("intercept", &format!("session-{name}"), session);
        }
    }

    fn write(&self, root: &Path) {
        for target in ["intercept", "protocol"] {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if !name.starts_with("regression-") {
                    std::fs::remove_file(&path).unwrap();
                }
            }
        }
        for ((target, name), data) in &self.files {
            std::fs::write(root.join(target).join(name), data).unwrap();
        }
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "rewrites the committed fuzz corpus"]
async fn capture_fuzz_corpus() {
    let (broker, capture) = capturing_broker("127.0.0.1:0").await.unwrap();
    broker.create_topic(TOPIC, 2).unwrap();
    let mut corpus = Corpus::default();
    let run = |name: &str, capture: &Capture, corpus: &mut Corpus| {
        corpus.scenario(name, capture.take());
    };
    plain(&broker, &[("enable.idempotence", "false"), ("acks", "1")]).await;
    run("plain", &capture, &mut corpus);
    plain(&broker, &[("enable.idempotence", "false"), ("acks", "0")]).await;
    run("fire-and-forget", &capture, &mut corpus);
    for codec in ["gzip", "lz4", "snappy"] {
        plain(&broker, &[("compression.codec", codec)]).await;
        run(codec, &capture, &mut corpus);
    }
    plain(&broker, &[("enable.idempotence", "true")]).await;
    run("idempotent", &capture, &mut corpus);
    transactional(&broker).await;
    run("transactional", &capture, &mut corpus);
    timed_out(&broker).await;
    run("timed-out", &capture, &mut corpus);
    consume(&broker, None, 15);
    run("assigned", &capture, &mut corpus);
    consume(&broker, Some("corpus-group"), 15);
    run("group", &capture, &mut corpus);

    let (count, bytes) = (
        corpus.files.len(),
        corpus.files.values().map(Vec::len).sum::<usize>(),
    );
    assert!(
        count < 200 && bytes < 2 << 20,
        "{count} files, {bytes} bytes"
    );
    corpus.write(&corpus_dir());
    println!("wrote {count} files, {bytes} bytes");
}
