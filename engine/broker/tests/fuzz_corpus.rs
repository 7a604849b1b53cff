//! The fuzz corpus on stable Rust: every file of `fuzz/corpus/<target>/`, every
//! truncation of it and every single-bit flip goes through the target's entry
//! point, so `cargo test` exercises the decoder on what librdkafka sends (and
//! on the inputs that once broke it) without nightly or cargo-fuzz. Past
//! [`ALL_UP_TO`] bytes, truncations and flips are sampled.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use sprocket_broker::fuzzing::{intercept_stream, read_payload, Reached};

/// Files up to this long get every truncation and every bit flipped; longer
/// ones that many evenly spread positions.
const ALL_UP_TO: usize = 512;

/// Positions in `0..len`: all of them, or [`ALL_UP_TO`] spread evenly.
fn positions(len: usize) -> Vec<usize> {
    if len <= ALL_UP_TO {
        (0..len).collect()
    } else {
        (0..ALL_UP_TO).map(|i| i * len / ALL_UP_TO).collect()
    }
}

/// Runs `entry` on `data`; on a panic, says which file and mutation.
fn run(entry: fn(&[u8]), data: &[u8], what: &dyn Fn() -> String) {
    if catch_unwind(AssertUnwindSafe(|| entry(data))).is_err() {
        panic!("panicked on {}", what());
    }
}

fn replay(target: &str, entry: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    let mut runs = 0;
    for path in &files {
        let data = std::fs::read(path).unwrap();
        let name = path.display();
        run(entry, &data, &|| format!("{name}"));
        for len in positions(data.len()) {
            run(entry, &data[..len], &|| {
                format!("{name} cut to {len} bytes")
            });
        }
        for at in positions(data.len()) {
            for bit in 0..8 {
                let mut flipped = data.clone();
                flipped[at] ^= 1 << bit;
                run(entry, &flipped, &|| {
                    format!("{name}, bit {bit} of byte {at} flipped")
                });
            }
        }
        runs += 1 + 9 * positions(data.len()).len();
    }
    runs
}

#[test]
fn the_intercept_corpus_and_its_mutations_do_not_panic() {
    assert!(
        replay("intercept", |data| {
            intercept_stream(data);
        }) > 0
    );
}

#[test]
fn the_captured_sessions_reach_commit_replays_and_timeouts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/intercept");
    let mut total = Reached::default();
    for entry in std::fs::read_dir(dir).unwrap() {
        let r = intercept_stream(&std::fs::read(entry.unwrap().path()).unwrap());
        total.answered += r.answered;
        total.commits += r.commits;
        total.fenced += r.fenced;
    }
    assert!(
        total.answered > 0 && total.commits > 0 && total.fenced > 0,
        "{total:?}"
    );
}

#[test]
fn the_protocol_corpus_and_its_mutations_do_not_panic() {
    assert!(replay("protocol", read_payload) > 0);
}
