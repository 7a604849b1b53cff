//! KEDA's refusals, its reading of trigger metadata, and Sprocket's own
//! ScaledObjects.

use std::collections::BTreeMap;

use super::*;

#[test]
fn keda_refuses_what_it_refuses() {
    let refused = |t: Trigger| plan(&one(t), &[], 0).unwrap_err();
    assert!(matches!(
        refused(trig(0)),
        ScaleError::LagThreshold { value: 0, .. }
    ));
    assert!(matches!(
        refused(trig(-3)),
        ScaleError::LagThreshold { value: -3, .. }
    ));
    let e = refused(with(1, |t| t.activation_lag_threshold = -1));
    assert!(matches!(
        e,
        ScaleError::ActivationLagThreshold { value: -1, .. }
    ));
    assert!(
        e.to_string()
            .contains("activationLagThreshold must be a non-negative number"),
        "{e}"
    );
    let e = refused(with(1, |t| {
        t.allow_idle_consumers = true;
        t.limit_to_partitions_with_lag = true;
    }));
    assert!(matches!(e, ScaleError::IdleAndLimit { .. }));
    assert_eq!(
        trig(0).validate().unwrap_err().to_string(),
        "trigger on \"sprocket.render\": lagThreshold must be a positive number, not 0"
    );
    for (min, max) in [(3, 2), (-1, 2), (0, 0)] {
        let e = plan(&bounds(min, max, vec![trig(1)]), &[], 0).unwrap_err();
        assert_eq!(e, ScaleError::ReplicaBounds { min, max });
    }
    assert!(matches!(
        refused(Trigger {
            consumer_group: String::new(),
            ..trig(1)
        }),
        ScaleError::Missing {
            key: "consumerGroup"
        }
    ));
}

#[test]
fn metadata_reads_as_keda_reads_it() {
    let meta = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let minimal = meta(&[("topic", T), ("consumerGroup", "sprocket-render")]);
    assert_eq!(
        Trigger::from_metadata(&minimal).unwrap(),
        trig(10),
        "KEDA's defaults"
    );
    let full = with(3, |t| {
        t.activation_lag_threshold = 2;
        t.offset_reset_policy = OffsetResetPolicy::Earliest;
        t.limit_to_partitions_with_lag = true;
        t.scale_to_zero_on_invalid_offset = true;
        t.exclude_persistent_lag = true;
    });
    let written: BTreeMap<String, String> = full
        .metadata()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(
        Trigger::from_metadata(&written).unwrap(),
        full,
        "round trip"
    );
    let mut m = minimal.clone();
    m.insert("excludePersistentLag".into(), "True".into());
    m.insert(
        "bootstrapServersFromEnv".into(),
        "SPROCKET__KAFKA__BROKERS".into(),
    );
    assert!(Trigger::from_metadata(&m).unwrap().exclude_persistent_lag);
    for (key, bad) in [
        ("lagThreshold", "0"),
        ("lagThreshold", "1.5"),
        ("activationLagThreshold", "-1"),
        ("offsetResetPolicy", "newest"),
        ("allowIdleConsumers", "yes"),
    ] {
        let mut m = minimal.clone();
        m.insert(key.into(), bad.into());
        let e = Trigger::from_metadata(&m).unwrap_err().to_string();
        assert!(e.contains(key), "{key}={bad}: {e}");
    }
    let mut m = minimal;
    m.remove("topic");
    assert_eq!(
        Trigger::from_metadata(&m),
        Err(ScaleError::Missing { key: "topic" })
    );
}

#[test]
fn sprocket_scaled_objects() {
    let topics = Topics::new("staging.sprocket.");
    let mut thresholds = BTreeMap::new();
    for phase in Phase::ALL {
        for partitions in [0, 1, 6, 24] {
            let so = ScaledObject::for_phase(&topics, phase, partitions);
            so.validate()
                .expect("KEDA accepts Sprocket's own ScaledObjects");
            assert_eq!(
                (so.min_replica_count, so.max_replica_count),
                (0, partitions.max(1))
            );
        }
        let so = ScaledObject::for_phase(&topics, phase, 6);
        let topics_of: Vec<&str> = so.triggers.iter().map(|t| t.topic.as_str()).collect();
        assert_eq!(topics_of, [topics.phase(phase), topics.retry(phase)]);
        for t in &so.triggers {
            assert_eq!(t.consumer_group, topics.group(phase));
            assert_eq!(
                t.activation_lag_threshold, 0,
                "any waiting item wakes a phase"
            );
            assert!(
                !t.exclude_persistent_lag,
                "in-flight work holds its offset still"
            );
            assert_eq!(t.lag_threshold, so.triggers[0].lag_threshold);
        }
        thresholds.insert(phase, so.triggers[0].lag_threshold);
    }
    assert_eq!(
        thresholds[&Phase::Render],
        1,
        "one waiting render is worth a replica"
    );
    assert!(thresholds[&Phase::Analyze] <= 2);
    for cheap in [Phase::Ingest, Phase::Archive] {
        assert!(
            thresholds[&cheap] > thresholds[&Phase::Analyze],
            "{cheap} items are cheap"
        );
    }
}
