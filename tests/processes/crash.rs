//! The crash harness: the deployment as separate processes on PostgreSQL, jobs
//! submitted while workers of every phase and the projector are SIGKILLed at
//! random moments and started again; then the proofs of `proofs.rs`.
//!
//! In CI it runs at a modest size. `scripts/crash-harness.sh` runs it long:
//! `SPROCKET_CRASH_JOBS` (default 6), `SPROCKET_CRASH_KILLS` (default 10) and
//! `SPROCKET_CRASH_SEED` (default: from the clock; printed, so a failing run
//! can be repeated). The report goes to stderr and, when
//! `SPROCKET_CRASH_REPORT` names a file, into it as JSON.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sprocket_tests::video;

use crate::proofs;
use crate::stack::{Stack, StackOptions, PHASES};

/// Group sessions short enough that a SIGKILLed worker's partitions move on
/// within seconds, as a deployment tuned for fast failover would set them.
pub const FAST_FAILOVER: &str = r#"
[kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
"#;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{name}={v:?}: {e}")))
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_harness() {
    let _one_at_a_time = crate::ONE_AT_A_TIME.lock().await;
    let jobs = env_or("SPROCKET_CRASH_JOBS", 6) as usize;
    let kills = env_or("SPROCKET_CRASH_KILLS", 10) as usize;
    let seed = env_or(
        "SPROCKET_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    );
    eprintln!("[crash] {jobs} jobs, {kills} kills, SPROCKET_CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let t0 = Instant::now();
    let mut stack = Stack::start_with(StackOptions {
        config_toml: Some(FAST_FAILOVER.into()),
        ..StackOptions::default()
    })
    .await;
    let clip = stack.media_dir().join("clip.mp4");
    // 6 s at 25 fps, 320x180 with sound, three shots: every phase does real work.
    video::with_cuts(&clip, &[50, 50, 50], 25, true);

    let roles: Vec<String> = PHASES
        .iter()
        .map(|p| format!("worker-{p}"))
        .chain(["projector".to_owned()])
        .collect();
    let mut order: Vec<usize> = (0..roles.len()).collect();
    order.shuffle(&mut rng);
    let mut killed: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids = Vec::new();
    for step in 0..jobs.max(kills) {
        if step < jobs {
            let id = format!("crash-{seed}-{step}");
            stack.submit(&clip, &id, "highlight").await;
            ids.push(id);
        }
        if step < kills {
            // A random moment: some way into whatever is running now.
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..2500))).await;
            // Every role once (in a random order), then any.
            let role = match order.get(step) {
                Some(&i) => roles[i].clone(),
                None => roles[rng.random_range(0..roles.len())].clone(),
            };
            stack.kill(&role);
            *killed.entry(role.clone()).or_default() += 1;
            eprintln!("[crash] SIGKILL {role} at {:.1?}", t0.elapsed());
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..1500))).await;
            stack.restart(&role);
        }
    }
    let chaos_over = t0.elapsed();
    eprintln!("[crash] chaos over at {chaos_over:.1?}; waiting for every job");
    let counted = proofs::prove(&mut stack, &ids, Duration::from_secs(60 + 30 * jobs as u64)).await;
    let report = counted.report(json!({
        "seed": seed,
        "kills": killed.values().sum::<usize>(),
        "kills_by_role": killed,
        "chaos_s": chaos_over.as_secs_f64(),
        "total_s": t0.elapsed().as_secs_f64(),
    }));
    proofs::publish("crash", "SPROCKET_CRASH_REPORT", &report);
    stack.assert_running();
}
