//! Sprocket on a Kafka whose only client listener is SASL_SSL (`kafka.sh
//! start --sasl --tls`: SCRAM-SHA-512 over TLS, the brokers' certificate
//! signed by the cluster's own CA): every process, the registry and the CLI
//! included, is given `security.protocol=SASL_SSL` and `ssl.ca.location`
//! through `[kafka.properties]` beside its role's SASL credentials, and a job
//! goes through all four phases. A client with the right credentials that
//! cannot verify the brokers (another CA) gets no metadata, and neither does
//! one that speaks SASL_PLAINTEXT to the TLS port.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;
use sprocket_tests::video;

use crate::stack::{Stack, StackOptions, PHASES};
use crate::topic_log::TopicLog;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_over_tls_carries_a_job_and_refuses_what_cannot_verify_the_broker() {
    let _one_at_a_time = crate::ONE_AT_A_TIME.lock().await;
    let t0 = Instant::now();
    let step = |what: &str| eprintln!("[kafka-tls] {what} at {:.1?}", t0.elapsed());
    let mut stack = Stack::start_with(StackOptions {
        sasl: true,
        tls: true,
        ..StackOptions::default()
    })
    .await;
    let ca = stack.cluster().ca().expect("a --tls cluster has a CA");
    step("deployment up over SASL_SSL, each role as its own principal");

    let clip = stack.media_dir().join("clip.mp4");
    video::with_cuts(&clip, &[25, 25], 25, true);
    stack.submit(&clip, "tls-1", "minimal").await;
    let job = stack.wait_terminal("tls-1", Duration::from_secs(120)).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    // Every phase started it, as read back from sprocket.events over TLS by
    // the super user.
    let mut events = TopicLog::open_with(stack.cluster().admin_client_config(), "sprocket.events");
    events
        .read_until(
            "tls-1 started in every phase and succeeded",
            Duration::from_secs(30),
            |records| {
                let of_job = || records.iter().filter(|r| r.job() == "tls-1");
                PHASES.iter().all(|phase| {
                    of_job().any(|r| r.kind() == "PhaseStarted" && r.phase() == *phase)
                }) && of_job().any(|r| r.kind() == "JobSucceeded")
            },
        )
        .await;
    step("the job went through all four phases over SASL_SSL");

    // The right credentials, the brokers' certificate unverifiable: another
    // CA is all this client trusts.
    let other = stack.media_dir().join("other-ca");
    std::fs::create_dir_all(&other).expect("the other CA's folder");
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=some other CA", "-keyout"])
        .arg(other.join("ca.key"))
        .arg("-out")
        .arg(other.join("ca.pem"))
        .output()
        .expect("running openssl");
    assert!(
        made.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let mut config = stack.principals().client_config(&stack.kafka, "ops");
    config.set(
        "ssl.ca.location",
        other.join("ca.pem").display().to_string(),
    );
    let said = no_metadata(config, "a client trusting another CA");
    assert!(
        said.iter().any(|e| e.contains("certificate verify failed")),
        "the client trusting another CA failed otherwise: {said:#?}"
    );
    step("a client that cannot verify the brokers got no metadata");

    // The right credentials over SASL_PLAINTEXT, to the TLS port.
    let mut config = stack.principals().client_config(&stack.kafka, "ops");
    config
        .set("security.protocol", "SASL_PLAINTEXT")
        .remove("ssl.ca.location");
    let said = no_metadata(config, "a SASL_PLAINTEXT client");
    // The broker hangs up on what is not a TLS handshake: the client
    // reports its connection down (the "Disconnected …" line before it is
    // logged only sometimes), and its metadata request fails as a transport
    // failure (checked in no_metadata).
    assert!(
        said.iter()
            .any(|e| e.contains("Disconnected") || e.contains("AllBrokersDown")),
        "the SASL_PLAINTEXT client failed otherwise: {said:#?}"
    );
    step("a SASL_PLAINTEXT client got no metadata from the TLS port");

    // The same credentials with the cluster's CA (the principals' own
    // client config) do get it.
    let config = stack.principals().client_config(&stack.kafka, "ops");
    assert_eq!(
        config.get("ssl.ca.location"),
        Some(ca.display().to_string().as_str())
    );
    let consumer: BaseConsumer = config.create().expect("a client trusting the CA");
    tokio::task::block_in_place(|| consumer.fetch_metadata(None, Duration::from_secs(10)))
        .expect("metadata over SASL_SSL with the cluster's CA");
    stack.assert_running();
    step("done");
}

/// What a client reported: librdkafka's errors and its log (a broker
/// connection's failure is logged as it happens; the error callback waits
/// for a poll).
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<String>>>);

impl ClientContext for Errors {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{level:?} {fac}: {log_message}"));
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.lock().unwrap().push(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for Errors {}

/// Asks for the cluster's metadata as `config`'s client, which must fail
/// within a few seconds; returns the errors the client reported.
fn no_metadata(config: ClientConfig, who: &str) -> Vec<String> {
    let errors = Errors::default();
    let consumer: BaseConsumer<Errors> = config
        .create_with_context(errors.clone())
        .unwrap_or_else(|e| panic!("{who}: {e}"));
    let started = Instant::now();
    let got = tokio::task::block_in_place(|| consumer.fetch_metadata(None, Duration::from_secs(5)));
    // Serves the error callbacks waiting on the client's queue.
    tokio::task::block_in_place(|| consumer.poll(Duration::from_millis(200)));
    let said = errors.0.lock().unwrap().clone();
    match &got {
        Err(KafkaError::MetadataFetch(
            RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown,
        )) => {}
        Err(e) => panic!("{who} failed otherwise: {e}; reported {said:#?}"),
        Ok(_) => panic!("{who} got the cluster's metadata"),
    }
    eprintln!(
        "[kafka-tls] {who}: {} after {:.1?}; {} reports, the last: {:?}",
        got.err().map(|e| e.to_string()).unwrap_or_default(),
        started.elapsed(),
        said.len(),
        said.last()
    );
    said
}
