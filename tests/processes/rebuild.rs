//! `sprocket projector --rebuild`: dropping the projections and replaying the
//! topics gives back what readers saw before.

use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use serde_json::Value;
use sprocket_projections::Projections;

use crate::stack::Stack;

/// What readers see of the projections (status and body of each read), and
/// the tables behind them.
#[derive(Debug, PartialEq)]
struct Seen {
    job: (u16, Value),
    events: (u16, Value),
    jobs: (u16, Value),
    tables: Value,
}

async fn seen(stack: &Stack, db: &Projections, id: &str) -> Seen {
    Seen {
        job: stack.get(&format!("/v1/jobs/{id}")).await,
        events: stack.get(&format!("/v1/jobs/{id}/events")).await,
        jobs: stack.get("/v1/jobs").await,
        tables: db.snapshot().expect("projection snapshot"),
    }
}

fn event_count(s: &Seen) -> usize {
    s.events.1["events"].as_array().map_or(0, Vec::len)
}

/// Stops the projector, damages the projection so that only a real replay can
/// restore it, runs `projector --rebuild`, and compares once it has read as far
/// as its predecessor.
pub async fn rebuild_gives_identical_projections(stack: &mut Stack, id: &str) {
    let db = Projections::connect(&stack.db.url).expect("projection database");
    let before = seen(stack, &db, id).await;
    let offsets = db.offsets().expect("projector offsets");
    for (what, (status, body)) in [
        ("job", &before.job),
        ("events", &before.events),
        ("jobs", &before.jobs),
    ] {
        assert_eq!(*status, 200, "{what} before the rebuild: {body}");
    }
    assert!(event_count(&before) > 0, "{:#}", before.events.1);
    assert!(!offsets.is_empty(), "the projector stores its offsets");

    stack.kill("projector");
    // With the offsets kept, a projector that merely resumed would never
    // bring these rows back.
    let deleted = diesel::sql_query("DELETE FROM events WHERE job_id = $1")
        .bind::<diesel::sql_types::Text, _>(id)
        .execute(&mut stack.db.connect())
        .expect("deleting projected events");
    assert!(deleted > 0, "no projected events of {id} in the table");
    stack.start_projector(true);

    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        stack.assert_running();
        let caught_up = db.offsets().expect("projector offsets") == offsets;
        let now = seen(stack, &db, id).await;
        if (caught_up && event_count(&now) == event_count(&before) && now == before)
            || Instant::now() > deadline
        {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        db.offsets().expect("projector offsets"),
        offsets,
        "the rebuilt projector read the topics as far as before"
    );
    let reads = [
        (format!("GET /v1/jobs/{id}"), &after.job, &before.job),
        (
            format!("GET /v1/jobs/{id}/events"),
            &after.events,
            &before.events,
        ),
        ("GET /v1/jobs".to_owned(), &after.jobs, &before.jobs),
    ];
    for (what, (status_after, now), (status_before, then)) in reads {
        assert_eq!(
            status_after, status_before,
            "{what} after the rebuild: {now}"
        );
        if let Some(diff) = first_difference("", now, then) {
            panic!("{what} differs after the rebuild: {diff}");
        }
    }
    // Every column, the Kafka position of each event row included: a submission
    // read from the intake first takes its sprocket.events position once that
    // copy is projected, whatever order a replay reads the topics in.
    if let Some(diff) = first_difference("", &after.tables, &before.tables) {
        panic!("the projection tables differ after the rebuild: {diff}");
    }
}

/// Where two JSON values first differ, as `path: now vs before`.
pub(crate) fn first_difference(path: &str, now: &Value, then: &Value) -> Option<String> {
    let short = |v: &Value| {
        let s = v.to_string();
        if s.len() > 300 {
            format!("{}…", &s[..s.floor_char_boundary(300)])
        } else {
            s
        }
    };
    match (now, then) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| {
                first_difference(
                    &format!("{path}.{k}"),
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(&format!("{path}[{i}]"), x, y)),
        (Value::Array(a), Value::Array(b)) => Some(format!(
            "{path}: {} items now, {} before; now {} vs before {}",
            a.len(),
            b.len(),
            short(now),
            short(then)
        )),
        _ if now == then => None,
        _ => Some(format!(
            "{path}: now {} vs before {}",
            short(now),
            short(then)
        )),
    }
}
