//! Sprocket on a Kafka that authenticates every client (SASL_PLAINTEXT,
//! SCRAM-SHA-512) and authorizes every request (the StandardAuthorizer, no
//! ACL: denied): `scripts/kafka-acls.sh` makes a principal per role with
//! least-privilege ACLs, every process runs as its own role's, and a job
//! still goes through all four phases, submitted through the API or straight
//! onto the intake as the `submitter` principal; the API, `topics create`
//! and `dlq list` work within their rights. Principals without write access
//! to `sprocket.events` (the projector's, the submitter's) cannot forge an
//! event there (TOPIC_AUTHORIZATION_FAILED, through rdkafka and through
//! `kafka-console-producer`), a phase's principal cannot forge a submission
//! on the intake, and nothing any of them tried is in the topics afterwards.
//! The webhook sender, as its own principal, delivers the jobs' outcomes to
//! a receiver that checks their signatures, and the janitor, as its own,
//! records the expiry of the jobs' working data in its transactions.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::json;
use sprocket_tests::kafka::KafkaCluster;
use sprocket_tests::video;
use sprocket_tests::webhooks::Receiver;

use crate::stack::{Stack, StackOptions, PHASES};

/// Whatever a forger writes carries this, so it can be looked for.
const FORGED: &str = "forged-by-";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_is_its_own_principal_and_none_can_forge_events() {
    let _one_at_a_time = crate::ONE_AT_A_TIME.lock().await;
    let t0 = Instant::now();
    let step = |what: &str| eprintln!("[kafka-sasl] {what} at {:.1?}", t0.elapsed());
    let mut stack = Stack::start_with(StackOptions {
        sasl: true,
        // The receiver listens on loopback.
        // Working data kept 2 s once a job finished: the janitor, started
        // last, then has something to record.
        config_toml: Some(
            "[webhooks]\nallow_private = [\"127.0.0.1/32\"]\n\
             [retention]\nwork = \"2s\"\ninterval = \"1s\"\n"
                .into(),
        ),
        ..StackOptions::default()
    })
    .await;
    stack.start_webhooks();
    let receiver = Receiver::start().await;
    let (status, hook) = stack
        .post_json(
            "/v1/webhooks",
            &json!({"url": format!("{}/ok", receiver.url), "events": ["JobSucceeded"]}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    receiver.set_secrets(&std::collections::BTreeMap::from([(
        "/ok",
        hook["secret"].as_str().unwrap(),
    )]));
    step("deployment up, each role as its own principal");

    let clip = stack.media_dir().join("clip.mp4");
    video::with_cuts(&clip, &[25, 25], 25, true);
    stack.submit(&clip, "sasl-1", "minimal").await;
    // An outside producer's submission, bare JSON on the intake.
    let upload = stack.upload(&clip).await;
    let submitter = producer(&stack, "submitter", true);
    let submission = json!({"job_id": "sasl-2", "type": "JobSubmitted",
        "data": {"source": {"upload": upload}, "recipe": "minimal", "labels": {}}});
    let sent = produce(&submitter, "sprocket.ingest", &submission).await;
    assert_eq!(sent, None, "the submitter could not submit");
    for id in ["sasl-1", "sasl-2"] {
        let job = stack.wait_terminal(id, Duration::from_secs(180)).await;
        assert_eq!(job["status"], "succeeded", "{job:#}");
    }
    step("jobs from the API and from the submitter went through every phase");
    let got = receiver
        .wait("/ok", "both jobs' JobSucceeded delivered", |got| {
            ["sasl-1", "sasl-2"]
                .iter()
                .all(|id| got.iter().any(|r| r["body"]["job_id"] == *id))
        })
        .await;
    assert!(
        got.iter()
            .all(|r| r["verified"] == true && r["event_type"] == "JobSucceeded"),
        "{got:#?}"
    );
    step("the webhook sender delivered both outcomes, signed");

    // The API's lag probe reads the phase groups' offsets and peeks at the
    // phase and retry topics; ops re-checks the topics and reads the DLQs.
    let phases = stack.get_ok("/v1/phases").await;
    for phase in PHASES {
        let view = phases["phases"]
            .as_array()
            .and_then(|v| v.iter().find(|p| p["phase"] == phase))
            .unwrap_or_else(|| panic!("no {phase} in /v1/phases: {phases:#}"));
        // The group's members (DescribeGroups) and committed offsets
        // (OffsetFetch) were readable.
        assert!(view["members"].as_i64() >= Some(1), "{view:#}");
        assert!(
            view["partitions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["committed_offset"].is_i64()),
            "{view:#}"
        );
    }
    let topics = stack.run_ok(&["topics", "create"]).await;
    // Described, configs included (DescribeConfigs), and left alone.
    assert!(
        topics.contains("17 already as configured, 0 differing") && !topics.contains("not checked"),
        "{topics}"
    );
    stack.run_ok(&["dlq", "list"]).await;
    step("GET /v1/phases, topics create and dlq list within their rights");

    // A forged success, as the projector's principal (it reads the events;
    // it writes nothing). Not idempotent, so the broker asks the topic's ACLs
    // (an idempotent producer is refused earlier, for having no Write at all).
    let forged =
        |by: &str| json!({"job_id": format!("{FORGED}{by}"), "type": "JobSucceeded", "data": {}});
    let projector = producer(&stack, "projector", false);
    refused(&projector, "sprocket.events", &forged("projector")).await;
    console_producer_refused(&stack, "projector", &forged("projector-console"));
    // The submitter may write the intake, not the events.
    refused(&submitter, "sprocket.events", &forged("submitter")).await;
    // A phase's principal forging a submission on the intake, with the
    // idempotent producer Sprocket itself uses.
    let render = producer(&stack, "render", true);
    let submission = json!({"job_id": format!("{FORGED}render"), "type": "JobSubmitted",
        "data": {"source": {"path": "/etc/passwd"}, "recipe": "minimal", "labels": {}}});
    refused(&render, "sprocket.ingest", &submission).await;
    step("forgeries refused: TOPIC_AUTHORIZATION_FAILED");

    // Read uncommitted, as the super user: nothing forged got in, and the
    // job's own history did.
    let events = read_all(stack.cluster(), "sprocket.events");
    let intake = read_all(stack.cluster(), "sprocket.ingest");
    let found: Vec<&String> = events
        .iter()
        .chain(&intake)
        .filter(|v| v.contains(FORGED))
        .collect();
    assert!(found.is_empty(), "forged records in the topics: {found:?}");
    assert!(
        events
            .iter()
            .any(|v| v.contains("\"sasl-1\"") && v.contains("JobSucceeded")),
        "the job's JobSucceeded is not on sprocket.events ({} records)",
        events.len()
    );
    let (status, forged_job) = stack.get(&format!("/v1/jobs/{FORGED}projector")).await;
    assert_eq!(status, 404, "{forged_job}");
    step("nothing forged in sprocket.events or sprocket.ingest");

    // The janitor writes as its own principal, in transactions of its id.
    stack.start_janitor();
    let deadline = Instant::now() + Duration::from_secs(90);
    for id in ["sasl-1", "sasl-2"] {
        loop {
            let events = stack.get_ok(&format!("/v1/jobs/{id}/events")).await;
            let expired = events["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["type"] == "JobDataExpired"));
            if expired {
                break;
            }
            stack.assert_running();
            assert!(
                Instant::now() < deadline,
                "{id}: no JobDataExpired from the janitor within 90 s"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    step("the janitor recorded both jobs' working data expired, as its own principal");
    stack.assert_running();
}

/// A producer as `principal`, idempotent as Sprocket's own or not.
fn producer(stack: &Stack, principal: &str, idempotent: bool) -> FutureProducer {
    stack
        .principals()
        .client_config(&stack.cluster().bootstrap, principal)
        .set("enable.idempotence", idempotent.to_string())
        .set("message.timeout.ms", "10000")
        .create()
        .unwrap_or_else(|e| panic!("a producer as {principal}: {e}"))
}

/// Produces `value` keyed by its job id; the error code it fails with, if
/// it does.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    value: &serde_json::Value,
) -> Option<RDKafkaErrorCode> {
    let key = value["job_id"].as_str().unwrap_or_default();
    let payload = value.to_string();
    let sent = producer
        .send(
            FutureRecord::to(topic).key(key).payload(&payload),
            Duration::from_secs(15),
        )
        .await;
    match sent {
        Ok(_) => None,
        Err((KafkaError::MessageProduction(code), _)) => Some(code),
        Err((e, _)) => panic!("producing to {topic} failed otherwise: {e}"),
    }
}

/// `value` on `topic` is refused with TOPIC_AUTHORIZATION_FAILED.
async fn refused(producer: &FutureProducer, topic: &str, value: &serde_json::Value) {
    assert_eq!(
        produce(producer, topic, value).await,
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{value} was not refused on {topic}"
    );
}

/// Kafka's own console producer, as `principal` (not idempotent), is
/// refused `value` on sprocket.events.
fn console_producer_refused(stack: &Stack, principal: &str, value: &serde_json::Value) {
    let props = stack.media_dir().join(format!("{principal}.properties"));
    let config = stack.principals().java_properties(principal) + "enable.idempotence=false\n";
    std::fs::write(&props, config).expect("the producer's properties");
    let line = format!("{}|{value}\n", value["job_id"].as_str().unwrap_or_default());
    let out = sprocket_tests::kafka::tool(
        "kafka-console-producer",
        &[
            "--bootstrap-server",
            &stack.cluster().bootstrap,
            "--topic",
            "sprocket.events",
            "--producer.config",
            &props.display().to_string(),
            "--reader-property",
            "parse.key=true",
            "--reader-property",
            "key.separator=|",
        ],
        Some(line.as_bytes()),
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("TopicAuthorizationException") && said.contains("sprocket.events"),
        "kafka-console-producer as {principal} was not refused sprocket.events:\n{said}"
    );
}

/// Every record's value on `topic`, transactions' aborted and open ones
/// included, read as the super user.
fn read_all(cluster: &KafkaCluster, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cluster.bootstrap)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", "admin")
        .set("sasl.password", cluster.admin_password())
        .set("group.id", format!("sasl-reader-{}", uuid::Uuid::now_v7()))
        .set("isolation.level", "read_uncommitted")
        .set("enable.auto.commit", "false")
        .create()
        .expect("the super user's consumer");
    let timeout = Duration::from_secs(10);
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
    let partitions = md.topics().first().map_or(0, |t| t.partitions().len()) as i32;
    assert!(partitions > 0, "{topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in 0..partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, timeout)
            .unwrap_or_else(|e| panic!("{topic}/{p}: {e}"));
        ends.push(high);
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assigning");
    let mut next = vec![0i64; partitions as usize];
    let mut values = Vec::new();
    let mut last = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            Some(m) => {
                let m = m.unwrap_or_else(|e| panic!("reading {topic}: {e}"));
                next[m.partition() as usize] = m.offset() + 1;
                values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
                last = Instant::now();
            }
            None => {
                // A partition's last offset may be a transaction marker,
                // which is never delivered.
                let near_ends = next.iter().zip(&ends).all(|(n, e)| *n >= e - 1);
                if near_ends && last.elapsed() > Duration::from_secs(2) {
                    break;
                }
                assert!(Instant::now() < deadline, "reading {topic} timed out");
            }
        }
    }
    values
}
