//! Long renders against rollouts, scale-in and scale-out, on a real cluster:
//!
//! * a render worker stopped (SIGTERM) mid-render with a grace shorter than
//!   the render abandons it uncommitted and exits; another worker redoes it,
//!   exactly once;
//! * stopped with a grace longer than the render, it finishes, commits and
//!   exits: nothing is redone;
//! * a worker joining the group while renders run: with the cooperative-sticky
//!   assignor only the partition that moves is revoked, so renders on the
//!   other partitions carry on. Their durations are measured against a batch
//!   of the same renders with no join (not asserted: a shared 2-core machine);
//!   what must hold is that a render in flight on a partition that stayed
//!   was not restarted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use sprocket_tests::video;

use crate::render_workers::RenderWorkers;
use crate::stack::Stack;
use crate::topic_log::{Record, TopicLog};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_renders_against_rollouts_and_joins() {
    let _one_at_a_time = crate::ONE_AT_A_TIME.lock().await;
    let t0 = Instant::now();
    let step = |what: &str| eprintln!("[rollout] {what} at {:.1?}", t0.elapsed());
    let mut stack = Stack::start().await;
    stack.kill("worker-render");
    let mut render = RenderWorkers::beside(&stack);
    let long = stack.media_dir().join("long.mp4");
    // 20 s at 640x360: a render of several seconds on this machine.
    video::with_cuts_sized(&long, &[125, 125, 125, 125], 25, true, (640, 360))
        .expect("making the long clip");
    let mut events = TopicLog::open(&stack.kafka, "sprocket.events");
    step("deployment up, its render worker gone");

    // 1. SIGTERM with a 1 s grace mid-render: abandoned, redone once elsewhere.
    render.start_env(
        "short-a",
        &[],
        &[("SPROCKET__WORKER__SHUTDOWN_GRACE_S", "1")],
    );
    render.start_env(
        "short-b",
        &[],
        &[("SPROCKET__WORKER__SHUTDOWN_GRACE_S", "1")],
    );
    wait_for_assignments(&mut render, &["short-a", "short-b"]).await;
    let (host, took) =
        stop_mid_render(&mut stack, &mut render, &mut events, &long, "abandoned").await;
    assert!(
        took < Duration::from_secs(10),
        "{host} took {took:?} to stop with a 1 s grace"
    );
    stack
        .wait_terminal("abandoned", Duration::from_secs(120))
        .await;
    events.catch_up().await;
    let starts = producers(&events.of("abandoned", "PhaseStarted", "render"));
    let done = producers(&events.of("abandoned", "MediaRendered", ""));
    assert_eq!(done.len(), 1, "rendered once: {done:?}");
    assert!(
        starts.len() == 2 && !done[0].ends_with(&host),
        "abandoned by {host}, redone once elsewhere: started by {starts:?}, done by {done:?}"
    );
    step(&format!(
        "{host} stopped in {took:.1?} with a 1 s grace; render redone once elsewhere"
    ));
    render.kill_all();

    // 2. SIGTERM with a 60 s grace mid-render: finished and committed first.
    render.start_env(
        "long-a",
        &[],
        &[("SPROCKET__WORKER__SHUTDOWN_GRACE_S", "60")],
    );
    render.start_env(
        "long-b",
        &[],
        &[("SPROCKET__WORKER__SHUTDOWN_GRACE_S", "60")],
    );
    // Both in the group before the job: a join during the render would move
    // partitions, and a render on a moved partition is redone by design.
    wait_for_assignments(&mut render, &["long-a", "long-b"]).await;
    let (host, took) =
        stop_mid_render(&mut stack, &mut render, &mut events, &long, "finished").await;
    stack
        .wait_terminal("finished", Duration::from_secs(120))
        .await;
    events.catch_up().await;
    let starts = producers(&events.of("finished", "PhaseStarted", "render"));
    let done = producers(&events.of("finished", "MediaRendered", ""));
    assert_eq!(starts.len(), 1, "not redone: {starts:?}");
    assert!(
        done.len() == 1 && done[0].ends_with(&host),
        "finished by the stopping worker {host}: {done:?}"
    );
    step(&format!(
        "{host} finished its render within the grace and exited after {took:.1?}"
    ));
    render.kill_all();

    // 3. A worker joins while a render runs on a partition the join's
    // rebalance leaves where it is: that of the worker with one render
    // partition (of three, the other has two and gives one up).
    let one = [("SPROCKET__WORKER__MAX_IN_FLIGHT", "1")];
    render.start_env("join-a", &[], &one);
    render.start_env("join-b", &[], &one);
    wait_for_assignments(&mut render, &["join-a", "join-b"]).await;
    let (status, body) = render
        .healthz("join-a")
        .await
        .expect("join-a serves /healthz");
    assert_eq!(status, 200, "a polling worker is alive: {body}");
    assert!(body.to_string().contains("sprocket-render"), "{body}");
    let ids = |name: &str| (0..3).map(|i| format!("{name}-{i}")).collect::<Vec<_>>();
    let baseline = batch(&mut stack, &mut events, &long, ids("nojoin"), None).await;
    // Two of the jobs on partitions of different workers, so that two of
    // their renders run at once.
    let (across, stays) = across_workers(&mut render, &["join-a", "join-b"]).await;
    let joined = batch(
        &mut stack,
        &mut events,
        &long,
        across,
        Some((&mut render, stays)),
    )
    .await;
    eprintln!("[rollout] renders without a join: {baseline:?}");
    eprintln!("[rollout] renders with a worker joining: {joined:?}");
    let restarted: Vec<&String> = joined
        .iter()
        .filter(|(_, r)| r.starts > 1)
        .map(|(j, _)| j)
        .collect();
    let carried_on: Vec<(&String, &Render)> = joined
        .iter()
        .filter(|(_, r)| r.starts == 1 && r.in_flight_at_join)
        .collect();
    assert!(
        !carried_on.is_empty(),
        "no render in flight when the worker joined carried on: {joined:?}"
    );
    let mean = |rs: &mut dyn Iterator<Item = &Render>| {
        let v: Vec<f64> = rs.map(|r| r.took.as_secs_f64()).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    step(&format!(
        "join: renders in flight on partitions that stayed carried on ({} of {}; restarted: {restarted:?}); \
         mean render {:.2} s with the join vs {:.2} s without",
        carried_on.len(),
        joined.len(),
        mean(&mut carried_on.iter().map(|(_, r)| *r)),
        mean(&mut baseline.values()),
    ));
    render.assert_running();
    stack.assert_running();
}

fn producers(records: &[&Record]) -> Vec<String> {
    records.iter().map(|r| r.producer().to_owned()).collect()
}

/// Submits a long job, waits until its render starts, and sends SIGTERM to
/// the worker rendering it; returns that worker and how long it took to exit
/// (it must exit 0).
async fn stop_mid_render(
    stack: &mut Stack,
    render: &mut RenderWorkers,
    events: &mut TopicLog,
    clip: &Path,
    id: &str,
) -> (String, Duration) {
    stack.submit(clip, id, "highlight").await;
    let (_, host) = RenderWorkers::render_started(events, id).await;
    // A moment into the render, as a rollout's SIGTERM would land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut worker = render.take(&host);
    let stopped = Instant::now();
    worker.terminate();
    let status = tokio::task::block_in_place(|| worker.wait_exit(Duration::from_secs(90)))
        .unwrap_or_else(|| {
            panic!(
                "{host} still runs 90 s after SIGTERM\n{}",
                worker.stderr_tail(40)
            )
        });
    assert!(
        status.success(),
        "{host} exited {status}\n{}",
        worker.stderr_tail(40)
    );
    (host, stopped.elapsed())
}

/// One job's render, as the events tell it.
#[derive(Debug)]
struct Render {
    starts: usize,
    took: Duration,
    in_flight_at_join: bool,
}

/// Long jobs at once; with `join`, a third worker joins once the render of
/// one of the jobs named with it runs. Returns each job's render.
async fn batch(
    stack: &mut Stack,
    events: &mut TopicLog,
    clip: &Path,
    ids: Vec<String>,
    join: Option<(&mut RenderWorkers, Vec<String>)>,
) -> BTreeMap<String, Render> {
    let name = ids[0].split('-').next().unwrap_or_default().to_owned();
    for id in &ids {
        stack.submit(clip, id, "highlight").await;
    }
    let rendering = |r: &[Record]| {
        ids.iter()
            .filter(|id| {
                r.iter().any(|e| {
                    e.job() == id.as_str() && e.kind() == "PhaseStarted" && e.phase() == "render"
                }) && !r
                    .iter()
                    .any(|e| e.job() == id.as_str() && e.kind() == "MediaRendered")
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let mut in_flight = Vec::new();
    if let Some((render, stays)) = join {
        events
            .read_until(
                &format!("{name}: a render running on a partition that stays"),
                Duration::from_secs(120),
                |r| rendering(r).iter().any(|id| stays.contains(id)),
            )
            .await;
        in_flight = rendering(&events.records);
        render.start_env("join-c", &[], &[("SPROCKET__WORKER__MAX_IN_FLIGHT", "1")]);
        wait_for_assignments(render, &["join-c"]).await;
    }
    for id in &ids {
        let job = stack.wait_terminal(id, Duration::from_secs(180)).await;
        assert_eq!(job["status"], "succeeded", "{job:#}");
    }
    events.catch_up().await;
    ids.iter()
        .map(|id| {
            let started = events.of(id, "PhaseStarted", "render");
            let rendered = events.of(id, "MediaRendered", "");
            assert_eq!(rendered.len(), 1, "{id} rendered once: {rendered:#?}");
            let last_start = started
                .iter()
                .map(|e| e.at_ms())
                .max()
                .expect("render started");
            let render = Render {
                starts: started.len(),
                took: Duration::from_millis((rendered[0].at_ms() - last_start).max(0) as u64),
                in_flight_at_join: in_flight.contains(id),
            };
            (id.clone(), render)
        })
        .collect()
}

/// Three job ids: the first on a render partition of `hosts[0]`, the second
/// on one of `hosts[1]`, the third on `hosts[0]` again; and those of them on
/// the host with fewer render partitions, whose partition stays with it when
/// a third worker joins. A work item's partition is the producer's default
/// for its key, the job id: CRC-32 of the key modulo the partition count
/// (librdkafka's `consistent_random`).
async fn across_workers(
    render: &mut RenderWorkers,
    hosts: &[&str; 2],
) -> (Vec<String>, Vec<String>) {
    let mut owned = Vec::new();
    for h in hosts {
        let parts = render
            .assigned(h, "sprocket.render")
            .await
            .unwrap_or_default();
        assert!(!parts.is_empty(), "{h} owns no render partition");
        owned.push(parts);
    }
    let partitions = owned[0].union(&owned[1]).count() as u32;
    let only =
        |a: usize| -> BTreeSet<i32> { owned[a].difference(&owned[1 - a]).copied().collect() };
    let mut ids = Vec::new();
    for want in [only(0), only(1), only(0)] {
        assert!(
            !want.is_empty(),
            "two workers own the same partitions: {owned:?}"
        );
        let id = (0..)
            .map(|n| format!("join-{n}"))
            .find(|id| {
                let partition = (crc32(id.as_bytes()) % partitions) as i32;
                !ids.contains(id) && want.contains(&partition)
            })
            .expect("an id for each partition");
        ids.push(id);
    }
    let few = usize::from(owned[1].len() < owned[0].len());
    let stays = ids
        .iter()
        .filter(|id| only(few).contains(&((crc32(id.as_bytes()) % partitions) as i32)))
        .cloned()
        .collect();
    (ids, stays)
}

#[test]
fn crc32_is_zlibs() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

/// CRC-32 (IEEE, as zlib and librdkafka compute it).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Waits until each of `hosts` owns a partition of the render topic. Each
/// worker consumes the render topic with a consumer of its own, so once the
/// last of them owns one, the cooperative rebalances of their joins have
/// moved what they were going to move.
async fn wait_for_assignments(render: &mut RenderWorkers, hosts: &[&str]) {
    let start = Instant::now();
    loop {
        let mut owned = 0;
        for h in hosts {
            let any = render
                .assigned(h, "sprocket.render")
                .await
                .is_some_and(|s| !s.is_empty());
            owned += usize::from(any);
        }
        if owned == hosts.len() {
            return;
        }
        render.assert_running();
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "render workers {hosts:?} own no partition after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
