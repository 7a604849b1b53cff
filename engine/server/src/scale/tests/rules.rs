//! The rules table.

use super::*;

struct Case {
    name: &'static str,
    object: ScaledObject,
    /// (topic, partitions, previous reading)
    readings: Vec<(&'static str, Vec<PartitionOffsets>, Vec<PartitionOffsets>)>,
    current: i64,
    /// Per read trigger: (total lag counted, metric).
    lags: Vec<(i64, i64)>,
    active: bool,
    replicas: i64,
}

fn case(
    name: &'static str,
    object: ScaledObject,
    parts: Vec<PartitionOffsets>,
    current: i64,
    (total, metric, active, replicas): (i64, i64, bool, i64),
) -> Case {
    Case {
        name,
        object,
        readings: vec![(T, parts, vec![])],
        current,
        lags: vec![(total, metric)],
        active,
        replicas,
    }
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        // The Kafka scaler's metric.
        case(
            "idle group scales to zero",
            one(trig(10)),
            vec![p(5, Some(5)), p(3, Some(3))],
            0,
            (0, 0, false, 0),
        ),
        case(
            "ceil of lag over threshold",
            one(trig(10)),
            vec![p(15, Some(0)), p(0, Some(0))],
            0,
            (15, 15, true, 2),
        ),
        // 25 / 10 = 2 is not above 2 partitions, so the metric stays 25 and
        // the HPA asks for 3: maxReplicaCount (the partition count in
        // Sprocket's ScaledObjects) is what holds it.
        case(
            "integer-division cap lets ceil pass the partition count",
            one(trig(10)),
            vec![p(25, Some(0)), p(0, Some(0))],
            0,
            (25, 25, true, 3),
        ),
        case(
            "capped at partition count",
            one(trig(10)),
            lagging(2, 100),
            0,
            (200, 20, true, 2),
        ),
        case(
            "idle consumers allowed: no cap",
            one(idle_ok(10)),
            lagging(2, 100),
            0,
            (200, 200, true, 20),
        ),
        case(
            "limit to partitions with lag",
            one(with(10, |t| t.limit_to_partitions_with_lag = true)),
            vec![p(50, Some(0)), p(7, Some(7)), p(9, Some(9))],
            0,
            (50, 10, true, 1),
        ),
        case(
            "one partition caps at one threshold",
            one(trig(10)),
            vec![p(29, Some(0))],
            0,
            (29, 10, true, 1),
        ),
        case(
            "never committed, latest: lag 1",
            one(trig(10)),
            vec![p(500, None), p(0, None)],
            0,
            (2, 2, true, 1),
        ),
        case(
            "never committed, earliest: whole partition",
            one(with(10, |t| {
                t.offset_reset_policy = OffsetResetPolicy::Earliest;
                t.allow_idle_consumers = true;
            })),
            vec![p(35, None)],
            0,
            (35, 35, true, 4),
        ),
        case(
            "never committed, scale to zero on invalid offset",
            one(with(10, |t| t.scale_to_zero_on_invalid_offset = true)),
            vec![p(35, None)],
            0,
            (0, 0, false, 0),
        ),
        // Activation.
        case(
            "below activation stays at zero",
            one(with(1, |t| t.activation_lag_threshold = 3)),
            vec![p(3, Some(0))],
            0,
            (3, 1, false, 0),
        ),
        case(
            "above activation scales",
            one(with(1, |t| t.activation_lag_threshold = 3)),
            vec![p(4, Some(0))],
            0,
            (4, 1, true, 1),
        ),
        case(
            "minReplicaCount 0: below activation goes to zero with replicas running",
            one(with(10, |t| {
                t.allow_idle_consumers = true;
                t.activation_lag_threshold = 100;
            })),
            lagging(1, 50),
            3,
            (50, 50, false, 0),
        ),
        case(
            "minReplicaCount 1: activation does not matter, the HPA scales",
            bounds(
                1,
                100,
                vec![with(10, |t| {
                    t.allow_idle_consumers = true;
                    t.activation_lag_threshold = 100;
                })],
            ),
            lagging(1, 50),
            1,
            (50, 50, false, 5),
        ),
        case(
            "minReplicaCount holds when idle",
            bounds(2, 100, vec![trig(1)]),
            vec![p(0, Some(0))],
            0,
            (0, 0, false, 2),
        ),
        case(
            "maxReplicaCount caps",
            bounds(0, 3, vec![trig(1)]),
            lagging(8, 50),
            0,
            (400, 8, true, 3),
        ),
        // The HPA's tolerance around the current count.
        case(
            "ratio 1.05 keeps 2 replicas",
            one(idle_ok(10)),
            lagging(1, 21),
            2,
            (21, 21, true, 2),
        ),
        case(
            "ratio exactly 1.1 keeps 2 replicas",
            one(idle_ok(10)),
            lagging(1, 22),
            2,
            (22, 22, true, 2),
        ),
        case(
            "ratio 1.15 scales to ceil(metric / target)",
            one(idle_ok(10)),
            lagging(1, 23),
            2,
            (23, 23, true, 3),
        ),
        case(
            "ratio 0.9 keeps 10 replicas",
            one(idle_ok(1)),
            lagging(1, 9),
            10,
            (9, 9, true, 10),
        ),
        case(
            "ratio 0.25 scales down",
            one(idle_ok(10)),
            lagging(1, 10),
            4,
            (10, 10, true, 1),
        ),
        case(
            "from zero, KEDA's one replica is within tolerance",
            one(idle_ok(10)),
            lagging(1, 10),
            0,
            (10, 10, true, 1),
        ),
        case(
            "from zero with minReplicaCount 2, the HPA keeps 2 within tolerance",
            bounds(2, 100, vec![idle_ok(10)]),
            lagging(1, 21),
            0,
            (21, 21, true, 2),
        ),
        case(
            "one waiting render is one replica",
            ScaledObject::for_phase(&Topics::default(), Phase::Render, 3),
            vec![p(1, Some(0)), p(0, Some(0)), p(0, None)],
            0,
            (1, 1, true, 1),
        ),
    ];
    // excludePersistentLag: partition 0 has not moved since the previous
    // reading (lag 5), partition 1 has (lag 8).
    let now = vec![p(10, Some(5)), p(10, Some(2))];
    let before = vec![p(9, Some(5)), p(8, Some(0))];
    let persistent = |name, t: Trigger, previous: Vec<PartitionOffsets>, expect| Case {
        readings: vec![(T, now.clone(), previous)],
        ..case(name, one(t), vec![], 1, expect)
    };
    cases.extend([
        persistent(
            "persistent lag is left out",
            with(1, |t| {
                t.exclude_persistent_lag = true;
                t.allow_idle_consumers = true;
            }),
            before.clone(),
            (8, 8, true, 8),
        ),
        persistent(
            "without excludePersistentLag it counts",
            idle_ok(1),
            before.clone(),
            (13, 13, true, 13),
        ),
        persistent(
            "the first reading counts in full",
            with(1, |t| {
                t.exclude_persistent_lag = true;
                t.allow_idle_consumers = true;
            }),
            vec![],
            (13, 13, true, 13),
        ),
        persistent(
            "partitions with lag exclude the persistent one",
            with(4, |t| {
                t.exclude_persistent_lag = true;
                t.limit_to_partitions_with_lag = true;
            }),
            before.clone(),
            (8, 4, true, 1),
        ),
        Case {
            name: "persistent lag still activates from zero",
            readings: vec![(T, vec![p(10, Some(5))], vec![p(9, Some(5))])],
            ..case(
                "",
                one(with(1, |t| t.exclude_persistent_lag = true)),
                vec![],
                0,
                (0, 0, true, 1),
            )
        },
        Case {
            name: "a never-committed partition is never persistent",
            readings: vec![(T, vec![p(6, None)], vec![p(6, None)])],
            ..case(
                "",
                one(with(1, |t| {
                    t.exclude_persistent_lag = true;
                    t.offset_reset_policy = OffsetResetPolicy::Earliest;
                    t.allow_idle_consumers = true;
                })),
                vec![],
                0,
                (6, 6, true, 6),
            )
        },
    ]);
    // Several triggers: the HPA takes the largest proposal.
    let two = |th| -> Vec<Trigger> {
        let retry = Trigger {
            topic: RETRY.into(),
            ..trig(th)
        };
        one(trig(th)).triggers.into_iter().chain([retry]).collect()
    };
    cases.extend([
        Case {
            name: "the largest proposal of phase and retry triggers wins",
            object: bounds(0, 100, two(1)),
            readings: vec![(T, lagging(2, 1), vec![]), (RETRY, lagging(3, 1), vec![])],
            current: 1,
            lags: vec![(2, 2), (3, 3)],
            active: true,
            replicas: 3,
        },
        Case {
            name: "retry lag alone wakes a phase at zero",
            object: bounds(0, 100, two(1)),
            readings: vec![(T, lagging(4, 0), vec![]), (RETRY, lagging(2, 1), vec![])],
            current: 0,
            lags: vec![(0, 0), (2, 2)],
            active: true,
            replicas: 2,
        },
        Case {
            name: "each trigger's tolerance is its own",
            object: bounds(0, 100, two(10)),
            readings: vec![
                (T, vec![p(21, Some(0)), p(0, Some(0))], vec![]),
                (RETRY, vec![p(5, Some(0)), p(0, Some(0))], vec![]),
            ],
            current: 2,
            lags: vec![(21, 21), (5, 5)],
            active: true,
            replicas: 2,
        },
    ]);
    cases
}

#[test]
fn keda_rules_table() {
    let mut wrong = Vec::new();
    for c in cases() {
        let readings: Vec<TopicReading> = c
            .readings
            .iter()
            .map(|(topic, parts, previous)| TopicReading {
                topic,
                partitions: parts,
                previous,
            })
            .collect();
        let got =
            plan(&c.object, &readings, c.current).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let lags: Vec<(i64, i64)> = got
            .triggers
            .iter()
            .map(|t| (t.total_lag, t.metric))
            .collect();
        let (got, want) = (
            (lags, got.active, got.replicas),
            (c.lags, c.active, c.replicas),
        );
        if got != want {
            wrong.push(format!(
                "{}: got (lags, active, replicas) {got:?}, want {want:?}",
                c.name
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn a_trigger_without_a_reading_is_listed_and_left_out() {
    let so = ScaledObject::for_phase(&Topics::default(), Phase::Render, 3);
    let parts = lagging(3, 1);
    let got = plan(&so, &[TopicReading::new(T, &parts)], 3).unwrap();
    assert_eq!(got.unread, vec![RETRY.to_string()]);
    assert_eq!((got.triggers.len(), got.replicas), (1, 3));
    let none = plan(&so, &[], 2).unwrap();
    assert_eq!((none.active, none.replicas), (false, 0));
}
