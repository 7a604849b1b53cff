//! `sprocket janitor` as its own process on the real-Kafka deployment,
//! SIGKILLed at random moments of its sweeps and then run once more: it
//! finds what is due from the projections, never touches a job that is
//! queued or running (nor the uploads those reference; a finished job's
//! upload goes with its working data), and a rerun after a kill finishes the
//! work with every rule recorded once, nothing deleted twice and nothing
//! live deleted.
//!
//! The janitor starts while the finished jobs' rules are still falling due
//! (working data after 4 s, archive tiered after 6 s, one job's archive
//! expired after 8 s), so the kills land before, among and after its
//! deletions, moves and records.
//!
//! It is killed again and again until the last rule has fallen due, at
//! least `SPROCKET_JANITOR_KILLS` (default 4) times, each kill a random
//! 0–100 ms (half of them) or 0–`SPROCKET_JANITOR_KILL_MAX_MS` (default
//! 800) ms after the janitor says it is sweeping.
//! `SPROCKET_JANITOR_KILL_SEED` (default: from the clock; printed) repeats a
//! run's kill delays (how many kills fit the window depends on the machine).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sprocket_tests::{sha256_hex, video};

use crate::stack::{Stack, StackOptions};
use crate::topic_log::{Record, TopicLog};

mod report;
mod support;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_janitor_killed_mid_sweep_finishes_on_rerun_and_spares_live_jobs() {
    let _one_at_a_time = crate::ONE_AT_A_TIME.lock().await;
    let min_kills = env_or("SPROCKET_JANITOR_KILLS", 4) as usize;
    let max_ms = env_or("SPROCKET_JANITOR_KILL_MAX_MS", 800);
    let seed = env_or(
        "SPROCKET_JANITOR_KILL_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    );
    eprintln!(
        "[janitor-kill] at least {min_kills} kills within {max_ms} ms, \
         SPROCKET_JANITOR_KILL_SEED={seed}"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let t0 = Instant::now();
    let cold = tempfile::tempdir().expect("cold store dir");
    let cold_dir = std::fs::canonicalize(cold.path()).expect("cold store path");
    let mut stack = Stack::start_with(StackOptions {
        config_toml: Some(config(&cold_dir)),
        ..StackOptions::default()
    })
    .await;
    let clip = stack.media_dir().join("clip.mp4");
    // 2.4 s at 25 fps, with sound, two shots.
    video::with_cuts(&clip, &[30, 30], 25, true);

    // Finished jobs: three kept by the deployment's rules (work expires,
    // archive tiers), one whose recipe expires its archive after 8 s.
    let mut uploads = BTreeMap::new();
    for id in TIERED {
        uploads.insert(id, submit(&stack, &clip, id, json!("minimal")).await);
    }
    let expiring = json!({"name": "minimal-expiring", "steps": [
        {"phase": "ingest"},
        {"phase": "analyze", "params": {"max_seconds": 1.0}},
        {"phase": "render", "params": {"outputs": ["poster"]}},
        {"phase": "archive", "params": {"retention": {"archive": "8s"}}}
    ]});
    uploads.insert(EXPIRED, submit(&stack, &clip, EXPIRED, expiring).await);
    let finished: Vec<&str> = TIERED.iter().copied().chain([EXPIRED]).collect();
    for id in &finished {
        let job = stack.wait_terminal(id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "succeeded", "{job:#}");
    }
    let all_finished = Instant::now();
    eprintln!(
        "[janitor-kill] {} jobs finished at {:.1?}",
        finished.len(),
        t0.elapsed()
    );

    // Live jobs: one held in render (no render worker), one queued (no
    // ingest worker).
    stack.kill("worker-render");
    uploads.insert(
        RUNNING,
        submit(&stack, &clip, RUNNING, json!("minimal")).await,
    );
    let job = stack
        .wait_for(RUNNING, Duration::from_secs(60), |j| {
            j["phases"]["analyze"]["finished_at"].is_string()
        })
        .await;
    assert_eq!(job["status"], "running", "{job:#}");
    stack.kill("worker-ingest");
    uploads.insert(
        QUEUED,
        submit(&stack, &clip, QUEUED, json!("minimal")).await,
    );
    stack
        .wait_for(QUEUED, Duration::from_secs(30), |j| j["status"] == "queued")
        .await;

    // What is on disk before the janitor runs.
    let store = stack.store_dir();
    let archive = stack.archive_dir();
    let work_of = |id: &str| store.join("jobs").join(id);
    let upload_of = |id: &str| store.join("uploads").join(&uploads[id]);
    let mut work_bytes = BTreeMap::new();
    let mut work_files = BTreeMap::new();
    let mut archived = BTreeMap::new();
    let mut manifests = BTreeMap::new();
    for id in &finished {
        let work = snapshot(&work_of(id));
        assert!(!work.is_empty(), "{id} has no working objects");
        work_bytes.insert(*id, total_bytes(&work));
        work_files.insert(*id, work.len());
        let arch = snapshot(&archive.join("jobs").join(id));
        assert!(!arch.is_empty(), "{id} has no archive copies");
        archived.insert(*id, arch);
        let manifest: Value = serde_json::from_slice(
            &stack
                .bytes(&format!("/v1/jobs/{id}/artifacts/manifest.json"))
                .await,
        )
        .expect("manifest JSON");
        manifests.insert(*id, manifest);
    }
    let live_work = snapshot(&work_of(RUNNING));
    assert!(!live_work.is_empty(), "{RUNNING} has no working objects");
    let live_uploads: BTreeMap<&str, _> = [RUNNING, QUEUED]
        .into_iter()
        .map(|id| (id, snapshot(&upload_of(id))))
        .collect();
    for (id, files) in &live_uploads {
        assert_eq!(files.len(), 1, "{id}'s upload {:?}", upload_of(id));
    }
    // The queued job has nothing in the working store yet besides its upload.
    let queued_work = snapshot(&work_of(QUEUED));

    let first_due = stack.get_ok(&format!("/v1/jobs/{}", finished[0])).await["phases"]["archive"]
        ["finished_at"]
        .clone();
    eprintln!(
        "[janitor-kill] live jobs held at {:.1?} ({:.1?} after the last job finished; the first \
         archived at {first_due})",
        t0.elapsed(),
        all_finished.elapsed()
    );

    // The janitor, killed at random moments of its sweeps until the last
    // rule (the expiring archive, 8 s after its job finished) has fallen due.
    let window = all_finished + Duration::from_secs(9);
    let db = stack.db.url.clone();
    let now_ms = || chrono::Utc::now().timestamp_millis();
    let mut killed_at_ms = Vec::new();
    let mut timeline: Vec<(i64, String)> = Vec::new();
    // What each kill left begun in the stores (working objects removed,
    // archive copies moved or removed), to be matched against what was
    // recorded before it once the topic can be read to its end (a killed
    // janitor's open transaction is aborted only by the next one's start).
    let mut begun: Vec<(i64, Vec<Effect>)> = Vec::new();
    let mut k = 0;
    while k < min_kills || Instant::now() < window {
        assert!(k < 100, "the kill loop does not end");
        let mut janitor = stack.spawn_on(&db, "janitor", &["janitor"]);
        janitor.wait_for_line("sprocket janitor: sweeping", Duration::from_secs(30));
        timeline.push((now_ms(), format!("janitor {} sweeping", k + 1)));
        // Half the kills within the first sweep's work (each rule takes
        // milliseconds), the rest anywhere in or between sweeps.
        let after = if rng.random_bool(0.5) {
            rng.random_range(0..=max_ms.min(100))
        } else {
            rng.random_range(0..=max_ms)
        };
        tokio::time::sleep(Duration::from_millis(after)).await;
        janitor.assert_running();
        let at = now_ms();
        killed_at_ms.push(at);
        janitor.kill();
        timeline.push((now_ms(), format!("janitor {} SIGKILLed", k + 1)));
        let mut effects = Vec::new();
        for id in &finished {
            let left = snapshot(&work_of(id)).len();
            if left < work_files[id] {
                let what = format!("{left} of {} working objects left", work_files[id]);
                effects.push((id.to_string(), WORK, what));
            }
            let (a, c) = (
                snapshot(&archive.join("jobs").join(id)).len(),
                snapshot(&cold_dir.join("jobs").join(id)).len(),
            );
            let copies = archived[id].len();
            if c > 0 {
                let what = format!("{a} archive copies left, {c} in the cold store");
                effects.push((id.to_string(), TIER, what));
            }
            if a + c < copies {
                let what = format!("{} of {copies} archive copies left", a + c);
                effects.push((id.to_string(), EXPIRE, what));
            }
        }
        begun.push((at, effects));
        eprintln!(
            "[janitor-kill] SIGKILL {} {after} ms into its sweeping, at {:.1?}",
            k + 1,
            t0.elapsed()
        );
        k += 1;
    }
    let kills = k;

    // Once more, to the end: every finished job's rules recorded and its
    // upload removed.
    let mut janitor = stack.spawn_on_env(
        &db,
        "janitor",
        &["janitor"],
        &[("SPROCKET__METRICS__ADDR", "127.0.0.1:0")],
    );
    janitor.wait_for_line("sprocket janitor: sweeping", Duration::from_secs(30));
    timeline.push((now_ms(), "janitor rerun sweeping".into()));
    let metrics = await_metrics_url(&janitor).await;
    // What each finished job owes, once each (the expiring job's archive
    // may have been tiered before it expired).
    let owed = |id: &str| -> BTreeMap<String, usize> {
        let kinds: &[&str] = if id == EXPIRED {
            &["JobDataExpired", "JobArchiveExpired"]
        } else {
            &["JobDataExpired", "JobArchiveTiered"]
        };
        kinds.iter().map(|k| ((*k).to_owned(), 1)).collect()
    };
    let owes = |id: &str, got: &BTreeMap<String, usize>| -> bool {
        let mut got = got.clone();
        if id == EXPIRED && got.get("JobArchiveTiered") == Some(&1) {
            got.remove("JobArchiveTiered");
        }
        got == owed(id)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        janitor.assert_running();
        stack.assert_running();
        let mut missing = Vec::new();
        for id in &finished {
            let got = recorded(&stack, id).await;
            let done = owed(id).keys().all(|k| got.contains_key(k));
            if !done {
                missing.push(format!("{id}: {got:?}"));
            }
            // Its upload goes with its working data, no live job naming it.
            if !snapshot(&upload_of(id)).is_empty() {
                missing.push(format!("{id}'s upload {}", uploads[id]));
            }
        }
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the janitor's rerun did not record everything due within 60 s: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rerun_done = t0.elapsed();
    // Two more whole sweeps, which must find nothing left to do.
    let done_then = sweeps(&metrics).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sweeps(&metrics).await < done_then + 2 {
        janitor.assert_running();
        assert!(
            Instant::now() < deadline,
            "the janitor ran no two more sweeps within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    janitor.assert_running();
    janitor.kill();
    eprintln!("[janitor-kill] everything recorded at {rerun_done:.1?}");

    // The projections: each due rule once; the live jobs live and untouched.
    for id in &finished {
        let got = recorded(&stack, id).await;
        assert!(
            owes(id, &got),
            "{id}: {got:?}, owed once each: {:?}",
            owed(id)
        );
    }
    for (id, status) in [(RUNNING, "running"), (QUEUED, "queued")] {
        let job = stack.get_ok(&format!("/v1/jobs/{id}")).await;
        assert_eq!(job["status"], status, "{job:#}");
        assert_eq!(recorded(&stack, id).await, BTreeMap::new(), "{id}");
    }

    // The topic: every record of a rule carries its deterministic id, and
    // however many runs recorded one, together they freed no more than was
    // there (nothing deleted twice); nothing was recorded for a live job.
    let mut events = TopicLog::open(&stack.kafka, "sprocket.events");
    events.catch_up().await;
    let mut by_rule: BTreeMap<(String, String), Vec<&Record>> = BTreeMap::new();
    for r in &events.records {
        if let Some(key) = rule_of(r) {
            by_rule.entry(key).or_default().push(r);
        }
    }
    let mut ids = BTreeSet::new();
    for ((job, rule), records) in &by_rule {
        assert!(
            finished.contains(&job.as_str()),
            "{rule} recorded for live job {job}: {:?}",
            records.iter().map(|r| &r.value).collect::<Vec<_>>()
        );
        let event_ids: BTreeSet<&str> = records
            .iter()
            .map(|r| r.value["event_id"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(event_ids.len(), 1, "{job} {rule}: {event_ids:?}");
        assert!(ids.insert(event_ids.into_iter().next().unwrap_or_default().to_owned()));
        let freed: u64 = records
            .iter()
            .map(|r| r.value["data"]["bytes"].as_u64().unwrap_or(0))
            .sum();
        let there = match rule.as_str() {
            WORK => work_bytes[job.as_str()],
            TIER | EXPIRE => total_bytes(&archived[job.as_str()]),
            other => panic!("{job}: unexpected rule {other}"),
        };
        assert!(
            freed <= there,
            "{job} {rule}: {} records freed {freed} bytes of {there}",
            records.len()
        );
    }

    // The stores: working data gone, archives moved whole to the cold
    // store with the manifest's digests, the expired archive gone from both.
    for id in &finished {
        assert_eq!(
            snapshot(&work_of(id)),
            BTreeMap::new(),
            "{id}'s working data"
        );
        assert_eq!(snapshot(&upload_of(id)), BTreeMap::new(), "{id}'s upload");
        let arch = archive.join("jobs").join(id);
        assert_eq!(snapshot(&arch), BTreeMap::new(), "{id}'s archive copies");
        let in_cold = snapshot(&cold_dir.join("jobs").join(id));
        if *id == EXPIRED {
            assert_eq!(in_cold, BTreeMap::new(), "{id}'s cold copies");
            continue;
        }
        assert_eq!(
            in_cold, archived[id],
            "{id}: the cold store has not what the archive had"
        );
        let cold_sha: BTreeMap<&str, &str> = in_cold
            .iter()
            .map(|(rel, (_, sha))| (file_name(rel), sha.as_str()))
            .collect();
        let listed = manifests[id]["artifacts"]
            .as_array()
            .expect("manifest artifacts");
        assert!(!listed.is_empty(), "{id}: {:#}", manifests[id]);
        for a in listed {
            let name = a["name"].as_str().expect("artifact name");
            assert_eq!(
                cold_sha.get(name).copied(),
                a["sha256"].as_str(),
                "{id}: {name} in the cold store"
            );
        }
        let moved: BTreeSet<&str> = by_rule[&(id.to_string(), TIER.to_owned())]
            .iter()
            .flat_map(|r| r.value["data"]["moved"].as_array().into_iter().flatten())
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(moved, cold_sha.keys().copied().collect(), "{id}: moved");
    }

    // Through the API: tiered copies served from the cold store with their
    // digests, the rest 410; every artifact of the expired job 410.
    for id in &finished {
        let job = stack.get_ok(&format!("/v1/jobs/{id}")).await;
        for a in job["artifacts"].as_array().expect("artifacts") {
            let (name, url) = (a["name"].as_str().unwrap(), a["url"].as_str().unwrap());
            let state = a["retention"]["state"].as_str().unwrap_or_default();
            if state == "tiered" {
                assert_ne!(*id, EXPIRED, "{a}");
                let bytes = stack.bytes(url).await;
                assert_eq!(
                    Some(sha256_hex(&bytes).as_str()),
                    a["sha256"].as_str(),
                    "{id} {name}"
                );
            } else {
                assert_eq!(state, "expired", "{id}: {a}");
                let (status, body) = stack.get(url).await;
                assert_eq!(status, 410, "{id} {name}: {body}");
                assert_eq!(body["error"]["code"], "expired", "{id} {name}: {body}");
            }
        }
    }

    // The live jobs: their working objects and uploads exactly as they were.
    assert_eq!(
        snapshot(&work_of(RUNNING)),
        live_work,
        "{RUNNING}'s working objects"
    );
    assert_eq!(
        snapshot(&work_of(QUEUED)),
        queued_work,
        "{QUEUED}'s working objects"
    );
    for (id, files) in &live_uploads {
        assert_eq!(&snapshot(&upload_of(id)), files, "{id}'s upload");
    }

    report::kills(&by_rule, &killed_at_ms, &begun, timeline, kills, seed);

    // And the live jobs, their workers back, finish with what was kept.
    stack.restart("worker-ingest");
    stack.restart("worker-render");
    for id in [RUNNING, QUEUED] {
        let job = stack.wait_terminal(id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "succeeded", "{job:#}");
    }
    stack.assert_running();
    eprintln!("[janitor-kill] done in {:.1?}", t0.elapsed());
}
