//! The codec against the embedded registry: every event type round-trips, the wire
//! format is Confluent's, bare JSON is read, bad payloads are refused with a reason, and
//! a real registry client (schema_registry_converter) works with the embedded registry.

mod support;

use schema_registry_converter::async_impl::schema_registry::{
    get_all_subjects, get_all_versions, get_schema_by_subject_and_version, is_compatible_schema,
    SrSettings,
};
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
use serde_json::{json, Value};
use sprocket_core::event::{EventBody, EventKind};
use sprocket_core::{JobId, RecipeRef, Source};
use sprocket_platform::codec::{catalog, Codec, CodecError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::{envelopes, fill, no_fill, registry, registry_at};

#[test]
fn samples_cover_every_event_type() {
    let kinds: Vec<&str> = envelopes().iter().map(|e| e.kind().0).collect();
    assert_eq!(kinds, EventKind::ALL.to_vec());
    let embedded: Vec<&str> = catalog::SCHEMAS.iter().map(|(k, _)| *k).collect();
    assert_eq!(embedded, EventKind::ALL.to_vec());
}

/// The other contracts in `schemas/`: the registry's subjects, the recipe a
/// `PUT /v1/recipes/{name}` takes, and a stored recipe's record on
/// `sprocket.recipes` (bare JSON, not an event).
const NOT_EVENTS: [&str; 3] = ["subjects.json", "recipe.json", "RecipeStored.json"];

#[test]
fn schemas_dir_holds_exactly_the_embedded_schemas() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json") && !NOT_EVENTS.contains(&n.as_str()))
        .collect();
    files.sort();
    for other in NOT_EVENTS {
        let text = std::fs::read_to_string(dir.join(other)).unwrap();
        serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{other}: {e}"));
    }
    let mut want: Vec<String> = EventKind::ALL.iter().map(|k| format!("{k}.json")).collect();
    want.sort();
    assert_eq!(files, want);
    for (kind, text) in catalog::SCHEMAS {
        let on_disk = std::fs::read_to_string(dir.join(format!("{kind}.json"))).unwrap();
        assert_eq!(on_disk, text);
        let schema: Value = serde_json::from_str(text).unwrap();
        assert_eq!(schema["title"], format!("sprocket.{kind}"));
        assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
        assert_eq!(schema["properties"]["type"]["const"], kind);
        assert_eq!(schema["additionalProperties"], false, "{kind}");
        assert_eq!(
            schema["properties"]["data"]["additionalProperties"], false,
            "{kind}"
        );
    }
}

#[test]
fn every_schema_accepts_what_core_writes_and_rejects_extra_fields() {
    for env in envelopes() {
        let kind = env.kind().0;
        let v = &catalog::validators()[kind];
        let value = serde_json::to_value(&env).unwrap();
        catalog::check(v, kind, &value).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let mut extra = value.clone();
        extra["surprise"] = json!(1);
        assert!(
            !v.is_valid(&extra),
            "{kind} accepted an extra envelope field"
        );
        let mut extra = value.clone();
        extra["data"]["surprise"] = json!(1);
        assert!(!v.is_valid(&extra), "{kind} accepted an extra data field");
        let mut bad_id = value.clone();
        bad_id["job_id"] = json!("a/b");
        assert!(!v.is_valid(&bad_id), "{kind} accepted a bad job id");
        let mut zero = value;
        zero["attempt"] = json!(0);
        assert!(!v.is_valid(&zero), "{kind} accepted attempt 0");
    }
}

#[test]
fn submission_sources_are_exactly_one_of_four() {
    let v = &catalog::validators()["JobSubmitted"];
    let sub = |source: Value, recipe: Value| json!({"job_id": "j", "type": "JobSubmitted", "data": {"source": source, "recipe": recipe}});
    for key in ["upload", "path", "object", "url"] {
        assert!(
            v.is_valid(&sub(json!({key: "x"}), json!("highlight"))),
            "{key}"
        );
    }
    for bad in [
        json!({"ftp": "x"}),
        json!({"upload": "a", "path": "/b"}),
        json!({}),
        json!("u1"),
    ] {
        assert!(!v.is_valid(&sub(bad.clone(), json!("highlight"))), "{bad}");
    }
    assert!(v.is_valid(&sub(
        json!({"upload": "u"}),
        json!({"name": "x", "steps": [{"phase": "ingest"}]})
    )));
    assert!(!v.is_valid(&sub(
        json!({"upload": "u"}),
        json!({"name": "x", "steps": [{"phase": "mix"}]})
    )));
    assert!(!v.is_valid(&sub(json!({"upload": "u"}), json!(7))));
}

#[tokio::test]
async fn every_event_type_round_trips_in_the_wire_format() {
    let r = registry().await;
    let codec = Codec::connect(&r.url, "sprocket.").await.unwrap();
    for env in envelopes() {
        let kind = env.kind().0;
        let bytes = codec
            .encode(&env)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let id = codec.schema_id(kind).unwrap();
        assert_eq!(bytes[0], 0, "{kind}");
        assert_eq!(bytes[1..5], id.to_be_bytes(), "{kind}");
        let back = codec
            .decode(&bytes, no_fill)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(back, env, "{kind}");
        // The same JSON without the header is read too.
        let bare = codec.decode(&bytes[5..], no_fill).await.unwrap();
        assert_eq!(bare, env, "{kind}");
    }
}

#[tokio::test]
async fn connecting_again_is_idempotent_and_registers_the_intake_subject() {
    let r = registry().await;
    let a = Codec::connect(&r.url, "sprocket.").await.unwrap();
    let b = Codec::connect(&r.url, "sprocket.").await.unwrap();
    let c = Codec::connect(&r.url, "test-").await.unwrap();
    for kind in EventKind::ALL {
        assert_eq!(a.schema_id(kind), b.schema_id(kind));
        assert_eq!(a.schema_id(kind), c.schema_id(kind));
    }
    let sr = SrSettings::new(r.url.clone());
    let subjects = get_all_subjects(&sr).await.unwrap();
    assert_eq!(subjects.len(), EventKind::ALL.len() + 2, "{subjects:?}");
    for kind in EventKind::ALL {
        assert!(subjects.contains(&format!("sprocket.{kind}")), "{kind}");
    }
    let intake = get_schema_by_subject_and_version(&sr, "sprocket.ingest-value", None)
        .await
        .unwrap();
    assert_eq!(Some(intake.id), a.schema_id("JobSubmitted"));
    assert!(subjects.contains(&"test-ingest-value".to_owned()));
    assert_eq!(
        get_all_versions(&sr, "sprocket.JobSubmitted".into())
            .await
            .unwrap(),
        vec![1]
    );
}

#[tokio::test]
async fn a_real_client_checks_compatibility_against_the_embedded_registry() {
    let r = registry().await;
    Codec::connect(&r.url, "sprocket.").await.unwrap();
    let sr = SrSettings::new(r.url.clone());
    let latest = get_schema_by_subject_and_version(&sr, "sprocket.JobRedriven", None)
        .await
        .unwrap();
    assert_eq!(latest.schema, catalog::schema_of("JobRedriven").unwrap());
    let mut schema: Value = serde_json::from_str(&latest.schema).unwrap();
    let compatible = |s: &Value| SuppliedSchema::new(None, SchemaType::Json, s.to_string());
    schema["properties"]["data"]["properties"]["note"] = json!({"type": "string"});
    assert!(
        is_compatible_schema(&sr, "sprocket.JobRedriven".into(), compatible(&schema))
            .await
            .unwrap()
    );
    schema["properties"]["data"]["required"] = json!(["phase", "note"]);
    assert!(
        !is_compatible_schema(&sr, "sprocket.JobRedriven".into(), compatible(&schema))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_outside_submission_is_filled_in() {
    let r = registry().await;
    let codec = Codec::connect(&r.url, "sprocket.").await.unwrap();
    let json = br#"  {"job_id": "outside-1", "type": "JobSubmitted", "data": {"source": {"url": "https://example.com/v.mp4"}, "recipe": "minimal", "labels": {"a": "b"}}}"#;
    let env = codec.decode(json, fill).await.unwrap();
    assert_eq!(env.event_id, "filled-id");
    assert_eq!(env.producer, "filled-producer");
    assert_eq!(env.attempt, 1);
    assert_eq!(env.job_id.as_str(), "outside-1");
    let EventBody::JobSubmitted(s) = env.body else {
        panic!("{env:?}")
    };
    assert_eq!(s.source, Source::Url("https://example.com/v.mp4".into()));
    assert_eq!(s.recipe, RecipeRef::Name("minimal".into()));
}

#[tokio::test]
async fn bad_payloads_are_refused_with_a_permanent_reason() {
    let r = registry().await;
    let codec = Codec::connect(&r.url, "sprocket.").await.unwrap();
    let env = &envelopes()[1];
    let good = codec.encode(env).await.unwrap();
    let wrong_id = |id: u32, json: &[u8]| [&[0u8][..], &id.to_be_bytes(), json].concat();
    let submitted_id = codec.schema_id("JobSubmitted").unwrap();
    let mut extra = serde_json::to_value(env).unwrap();
    extra["data"]["extra"] = json!(true);
    let extra = serde_json::to_vec(&extra).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "unknown schema id",
            wrong_id(4242, &good[5..]),
            "schema id 4242 is not known",
        ),
        (
            "schema of another type",
            wrong_id(submitted_id, &good[5..]),
            "is the schema of JobSubmitted but the value's type is PhaseStarted",
        ),
        (
            "extra field, wire",
            [&good[..5], &extra].concat(),
            "Additional properties are not allowed ('extra' was unexpected)",
        ),
        (
            "extra field, bare",
            extra.clone(),
            "/data: Additional properties",
        ),
        (
            "invalid JSON, wire",
            [&good[..5], b"{not json"].concat(),
            "not valid JSON",
        ),
        (
            "invalid JSON, bare",
            b"{not json".to_vec(),
            "not valid JSON",
        ),
        (
            "unknown type",
            br#"{"job_id":"j","type":"Nope","data":{}}"#.to_vec(),
            "unknown event type \"Nope\"",
        ),
        (
            "no type",
            br#"{"job_id":"j","data":{}}"#.to_vec(),
            "no string field \"type\"",
        ),
        (
            "incomplete non-submission",
            br#"{"job_id":"j","type":"JobSucceeded","data":{}}"#.to_vec(),
            "\"event_id\" is a required property",
        ),
        ("neither format", b"hello".to_vec(), "first byte is 0x68"),
        ("empty", vec![], "empty"),
        ("short header", vec![0, 0, 1], "too short"),
    ];
    for (case, payload, want) in cases {
        let e = codec.decode(&payload, fill).await.expect_err(case);
        assert!(!e.retryable(), "{case}: {e}");
        assert!(e.to_string().contains(want), "{case}: {e}");
    }
    // Encoding validates too: NaN serializes as null, which the schema refuses.
    let nan = sprocket_core::Envelope::new(
        JobId::parse("j1").unwrap(),
        "t",
        1,
        EventBody::PhaseProgress(sprocket_core::event::PhaseProgress {
            phase: sprocket_core::Phase::Render,
            percent: f64::NAN,
            detail: None,
        }),
    );
    let e = codec.encode(&nan).await.unwrap_err();
    assert!(!e.retryable());
    assert!(
        e.to_string()
            .contains("PhaseProgress does not match its schema: /data/percent"),
        "{e}"
    );
}

#[tokio::test]
async fn an_unreachable_registry_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let e = Codec::connect(&url, "sprocket.").await.unwrap_err();
    assert!(e.retryable(), "{e}");
    assert!(matches!(e, CodecError::RegistryUnavailable { .. }), "{e}");
}

#[tokio::test]
async fn decoding_after_the_registry_went_away_is_retryable_for_new_ids() {
    let r = registry().await;
    let codec = Codec::connect(&r.url, "sprocket.").await.unwrap();
    let env = &envelopes()[2];
    let bytes = codec.encode(env).await.unwrap();
    assert_eq!(&codec.decode(&bytes, no_fill).await.unwrap(), env);
    drop(r);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // The schema is cached: decoding still works.
    assert_eq!(&codec.decode(&bytes, no_fill).await.unwrap(), env);
    let unseen = [&[0u8][..], &777u32.to_be_bytes(), &bytes[5..]].concat();
    let e = codec.decode(&unseen, no_fill).await.unwrap_err();
    assert!(e.retryable(), "{e}");
}

#[tokio::test]
async fn patient_decoding_waits_out_a_registry_outage() {
    let first = registry().await;
    let writer = Codec::connect(&first.url, "sprocket.").await.unwrap();
    let env = envelopes()[2].clone();
    let bytes = writer.encode(&env).await.unwrap();
    // A reader that has not looked this schema id up yet, as a worker started
    // just before the registry went down.
    let reader = Codec::connect(&first.url, "sprocket.").await.unwrap();
    let addr = first.addr;
    drop(first);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let waits = Arc::new(AtomicUsize::new(0));
    let counted = waits.clone();
    let decoding = tokio::spawn(async move {
        let waiting = |e: &CodecError, _delay| {
            assert!(e.retryable(), "{e}");
            counted.fetch_add(1, Ordering::Relaxed);
        };
        reader.decode_patiently(&bytes, no_fill, waiting).await
    });
    // It keeps waiting, retry after retry, while the registry is down.
    let asked = std::time::Instant::now();
    while waits.load(Ordering::Relaxed) < 3 {
        assert!(
            !decoding.is_finished(),
            "patient decoding gave up while the registry was down"
        );
        assert!(
            asked.elapsed() < Duration::from_secs(30),
            "patient decoding did not retry"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !decoding.is_finished(),
        "patient decoding gave up while the registry was down"
    );
    // The registry comes back (empty); registering the same schemas in the
    // same order gives them the same ids, as restarting a real deployment's
    // registry from its _schemas topic would.
    let second = registry_at(addr).await;
    Codec::connect(&second.url, "sprocket.").await.unwrap();
    let decoded = tokio::time::timeout(Duration::from_secs(10), decoding)
        .await
        .expect("decoded within 10 s of the registry's return")
        .expect("no panic")
        .expect("the message decodes");
    assert_eq!(decoded, env);
    assert!(waits.load(Ordering::Relaxed) >= 3, "waited with backoff");
}

#[tokio::test]
async fn patient_decoding_returns_errors_that_cannot_pass_at_once() {
    let r = registry().await;
    let codec = Codec::connect(&r.url, "sprocket.").await.unwrap();
    let bytes = codec.encode(&envelopes()[2]).await.unwrap();
    let unknown = [&[0u8][..], &777u32.to_be_bytes(), &bytes[5..]].concat();
    let never = |e: &CodecError, _| panic!("waited on {e}");
    let e = codec
        .decode_patiently(&unknown, no_fill, never)
        .await
        .unwrap_err();
    assert!(matches!(e, CodecError::UnknownSchemaId(777)), "{e}");
    let e = codec
        .decode_patiently(b"not json", no_fill, never)
        .await
        .unwrap_err();
    assert!(!e.retryable(), "{e}");
}

#[test]
fn the_codec_is_shareable() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Codec>();
}
