//! The fuzz targets of `fuzz/` (the envelope as consumed, a submission's
//! recipe) run for a bounded time each, with cargo-fuzz on nightly (both from
//! `.ci/setup`); any crash fails. New inputs go to a scratch corpus, so the
//! committed seeds stay as they are. `SPROCKET_FUZZ_SECONDS` sets the time
//! per target (60 s by default).

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGETS: [&str; 2] = ["envelope", "recipe"];

fn cargo_fuzz() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
    let bin = cache.join("sprocket/bin");
    assert!(
        bin.join("cargo-fuzz").exists(),
        "cargo-fuzz is missing from {}: run `bash .ci/setup`",
        bin.display()
    );
    bin
}

#[test]
fn fuzz_targets_find_no_crash() {
    let bin = cargo_fuzz();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let seconds: u32 = std::env::var("SPROCKET_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let scratch = tempfile::tempdir().expect("tempdir");
    for target in TARGETS {
        let corpus = scratch.path().join(target);
        std::fs::create_dir_all(&corpus).unwrap();
        let out = Command::new("cargo")
            .current_dir(&fuzz)
            .env("PATH", &path)
            // The workspace's test profile must not leak into the fuzz build.
            .env_remove("CARGO_TARGET_DIR")
            .args(["+nightly", "fuzz", "run", target])
            .arg(&corpus)
            .arg(fuzz.join("corpus").join(target))
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-rss_limit_mb=2048",
                "-print_final_stats=1",
            ])
            .output()
            .expect("cargo +nightly fuzz runs");
        let err = String::from_utf8_lossy(&out.stderr);
        let done: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("Done ") || l.starts_with("stat::number_of_executed_units"))
            .collect();
        println!("fuzz {target}: {}", done.join("; "));
        assert!(
            out.status.success(),
            "fuzz target {target} failed (a crash lands in fuzz/artifacts/{target}/):\n{}",
            err.lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
