//! Lag as Kafka's own tool reports it (`kafka-consumer-groups --describe`)
//! against Sprocket's views of it: `GET /v1/phases`, `sprocket lag` and
//! `sprocket scale-plan`, all read between two readings of the tool that
//! agree (so nothing moved meanwhile).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use sprocket_core::{Phase, Topics};
use sprocket_server::scale::{self, PartitionOffsets, ScaledObject, TopicReading};
use sprocket_tests::kafka::GroupRow;

use crate::stack::{Stack, PHASES};

/// Each phase's group rows for its phase and retry topics, by phase.
pub type Rows = BTreeMap<&'static str, Vec<GroupRow>>;

fn tool_rows(stack: &Stack) -> Rows {
    let groups: Vec<String> = PHASES.iter().map(|p| format!("sprocket-{p}")).collect();
    let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    let mut all = stack.cluster().describe_groups(&refs);
    PHASES
        .iter()
        .map(|p| {
            let topics = [format!("sprocket.{p}"), format!("sprocket.{p}.retry")];
            let rows = all
                .remove(&format!("sprocket-{p}"))
                .unwrap_or_default()
                .into_iter()
                .filter(|r| topics.contains(&r.topic))
                .collect();
            (*p, rows)
        })
        .collect()
}

/// Reads the tool, then Sprocket's three views, then the tool again, until
/// both tool readings are the same; asserts the views agree with it and
/// returns its rows.
pub async fn assert_views_agree(stack: &mut Stack) -> Rows {
    let api = stack.api.clone();
    for _ in 0..10 {
        let before = tool_rows(stack);
        let phases = stack.get_ok("/v1/phases").await;
        let lag = stack.run_ok(&["lag", "--api", &api]).await;
        let plan = stack.run_ok(&["scale-plan", "--api", &api]).await;
        let after = tool_rows(stack);
        if before != after {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        for phase in PHASES {
            let view = phase_view(&phases, phase);
            agree(phase, &before[phase], view);
            lag_line_agrees(phase, &lag, view);
            plan_agrees(phase, &before[phase], view, &plan);
        }
        return before;
    }
    panic!("the group offsets kept moving: no quiet moment to compare the views");
}

fn phase_view<'a>(phases: &'a Value, phase: &str) -> &'a Value {
    phases["phases"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["phase"] == phase))
        .unwrap_or_else(|| panic!("no {phase} in {phases:#}"))
}

/// The API's partitions of a phase: its topic's and its retry topic's.
fn api_partitions(view: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for t in [view, &view["retry"]] {
        let topic = t["topic"].as_str().expect("topic").to_owned();
        for p in t["partitions"].as_array().expect("partitions") {
            out.push((topic.clone(), p));
        }
    }
    out
}

/// Every partition the API reports matches the tool's row for it: the
/// committed offset, the end offset and the lag; a partition the group never
/// committed on has no offsets in the tool either.
fn agree(phase: &str, rows: &[GroupRow], view: &Value) {
    let parts = api_partitions(view);
    for (topic, p) in &parts {
        let partition = p["partition"].as_i64().expect("partition") as i32;
        let row = rows
            .iter()
            .find(|r| &r.topic == topic && r.partition == partition);
        let committed = p["committed_offset"].as_i64();
        match (committed, row) {
            (Some(c), Some(r)) => assert_eq!(
                (r.current, r.end, r.lag),
                (Some(c), p["end_offset"].as_i64(), p["lag"].as_i64()),
                "{phase}: {topic}/{partition}: kafka-consumer-groups {r:?}, GET /v1/phases {p}"
            ),
            (Some(_), None) => {
                panic!("{phase}: {topic}/{partition} committed per the API, absent from the tool: {rows:?}")
            }
            (None, Some(r)) => assert_eq!(
                r.current, None,
                "{phase}: {topic}/{partition}: the tool has an offset the API lacks: {r:?}, {p}"
            ),
            (None, None) => {}
        }
    }
    for r in rows {
        assert!(
            parts
                .iter()
                .any(|(t, p)| *t == r.topic && p["partition"] == r.partition),
            "{phase}: the tool shows {r:?}, the API does not"
        );
    }
    let total: i64 = parts
        .iter()
        .map(|(_, p)| p["lag"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(view["lag"].as_i64(), Some(total), "{phase}: {view:#}");
}

/// `sprocket lag` prints the API's lag for the phase.
fn lag_line_agrees(phase: &str, out: &str, view: &Value) {
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(phase))
        .unwrap_or_else(|| panic!("sprocket lag has no {phase} line:\n{out}"));
    let lag: i64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|w| w.parse().ok())
        .expect("lag column");
    assert_eq!(Some(lag), view["lag"].as_i64(), "sprocket lag:\n{out}");
}

/// `sprocket scale-plan` asks for the replicas that KEDA's rules give on the
/// tool's own numbers (and the API's plan says the same).
fn plan_agrees(phase: &str, rows: &[GroupRow], view: &Value, out: &str) {
    let topics = Topics::default();
    let ph: Phase = phase.parse().expect("a phase");
    let reading = |topic: &str| -> Vec<PartitionOffsets> {
        let count = if topic == topics.phase(ph) {
            view["partitions"].as_array().map_or(0, Vec::len)
        } else {
            view["retry"]["partitions"].as_array().map_or(0, Vec::len)
        };
        (0..count as i32)
            .map(|p| {
                let row = rows.iter().find(|r| r.topic == topic && r.partition == p);
                PartitionOffsets {
                    end: row.and_then(|r| r.end).unwrap_or_else(|| {
                        let parts = if topic == topics.phase(ph) {
                            &view["partitions"]
                        } else {
                            &view["retry"]["partitions"]
                        };
                        parts[p as usize]["end_offset"].as_i64().unwrap_or(0)
                    }),
                    committed: row.and_then(|r| r.current),
                }
            })
            .collect()
    };
    let (main, retry) = (reading(&topics.phase(ph)), reading(&topics.retry(ph)));
    let so = ScaledObject::for_phase(&topics, ph, main.len() as i64);
    let current = view["members"].as_i64().unwrap_or(0);
    let expected = scale::plan(
        &so,
        &[
            TopicReading::new(&topics.phase(ph), &main),
            TopicReading::new(&topics.retry(ph), &retry),
        ],
        current,
    )
    .expect("Sprocket's ScaledObject");
    assert_eq!(
        view["scale"]["replicas"].as_i64(),
        Some(expected.replicas),
        "{phase}: GET /v1/phases plans {}, KEDA's rules on kafka-consumer-groups' numbers {expected:?}",
        view["scale"]
    );
    let printed: Vec<i64> = out
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(phase))
        .filter_map(|l| l.split_whitespace().last()?.parse().ok())
        .collect();
    assert!(
        !printed.is_empty() && printed.iter().all(|r| *r == expected.replicas),
        "sprocket scale-plan for {phase}: {printed:?}, expected {}:\n{out}",
        expected.replicas
    );
}

/// Waits until `kafka-consumer-groups` shows every partition of every phase
/// and retry topic at lag 0; returns those rows.
pub async fn drained(stack: &mut Stack, timeout: Duration) -> Rows {
    let start = Instant::now();
    loop {
        let rows = tool_rows(stack);
        let partitions = 2 * stack_partitions();
        let zero = PHASES
            .iter()
            .all(|p| rows[p].len() == partitions && rows[p].iter().all(|r| r.lag == Some(0)));
        if zero {
            return rows;
        }
        if start.elapsed() >= timeout {
            // Only what is wrong, one line each: a cut log still shows it.
            let wrong: Vec<String> = PHASES
                .iter()
                .flat_map(|p| {
                    let rows = &rows[p];
                    let short = (rows.len() != partitions)
                        .then(|| format!("{p}: {} partitions shown", rows.len()));
                    short.into_iter().chain(
                        rows.iter()
                            .filter(|r| r.lag != Some(0))
                            .map(move |r| format!("{p}: {r:?}")),
                    )
                })
                .collect();
            panic!(
                "not every phase and retry partition reached lag 0 within {timeout:?}:\n{}",
                wrong.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Partitions per topic in the process tests (Sprocket's default).
fn stack_partitions() -> usize {
    3
}
