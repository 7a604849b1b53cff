//! Analyze-phase throughput against its floor and against PySceneDetect,
//! and its peak memory.
//!
//! ```text
//! cargo bench -p sprocket-media --bench analyze              # speed
//! cargo bench -p sprocket-media --bench analyze -- --rss     # peak memory, 10-minute 1080p
//! cargo bench -p sprocket-media --bench analyze -- --compute # the analysis alone, to profile
//! ```
//!
//! Speed: for a 720p and a 1080p scene mix (30 s at 30 fps, H.264, made
//! once with ffmpeg and cached under `target/bench-media/`), after one
//! warm-up analyze per input, each round times every one of these once per
//! input, in an order that rotates from round to round:
//!
//! * **decode only, `-f null`**: ffmpeg with exactly the arguments analyze
//!   runs it with ([`sprocket_media::decode::ffmpeg_args`]: input options,
//!   scale filter, frame-rate grid, `rgb24` output), to the null muxer;
//! * **decode only, pipe**: the same command writing raw frames to a pipe
//!   (sized as analyze sizes it) that Rust reads and drops — the floor
//!   analyze is held to, since it pays for the pipe too;
//! * **decode only, FrameDecoder**: Sprocket's decoder (ffprobe, ffmpeg,
//!   reader thread, planar batches over a bounded channel), batches dropped;
//! * **analyze**: [`sprocket_media::analyze::analyze`] with the default
//!   parameters (adaptive detector with flash suppression, 320 px wide);
//! * **PySceneDetect**: `detect(path, AdaptiveDetector())` from the
//!   project's `.venv`, timed inside Python around the call
//!   (`tests/reference/scenedetect_speed.py`);
//! * **analysis alone**: the shot detector and quality meter (not the
//!   keyframes' faces) over batches decoded beforehand, to show what they
//!   cost by themselves.
//!
//! After the rounds, MTCNN's images per second on the fixture photographs,
//! Sprocket's and facenet-pytorch's (from `.venv-torch`, when
//! `scripts/torch-venv.sh` has made it), with one thread each: the threads
//! analyze runs MTCNN with (see `tensors::one_cpu_thread_unless_set`, which
//! this bench calls as the `sprocket` binary does).
//!
//! `ANALYZE_BENCH_ROUNDS` sets the rounds (default 5; the analysis alone is
//! timed once per input); the report gives the median and the best round.
//! Results go to `benches/REPORT.md` (section `speed`).
//!
//! Peak memory (`--rss`): analyze runs in a child process (this binary
//! again, `--analyze-child PATH`) on the 30-second 1080p mix and on a
//! 10-minute 1080p video; the child reports its peak RSS (`VmHWM`) and its
//! ffmpeg's (`getrusage(RUSAGE_CHILDREN)`). Section `rss` of the report.

#[path = "analyze/measure.rs"]
mod measure;
#[path = "mtcnn/timing.rs"]
mod mtcnn_timing;
#[path = "analyze/report.rs"]
mod report;
#[path = "analyze/videos.rs"]
mod videos;

use measure::{children_peak_rss_kib, Sample};
use report::{RssRow, VideoRun, METHODS};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    // As the `sprocket` binary does (see the function).
    sprocket_media::tensors::one_cpu_thread_unless_set();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--analyze-child") {
        return analyze_child(Path::new(&args[i + 1]));
    }
    if args.iter().any(|a| a == "--rss") {
        return rss_mode();
    }
    if args.iter().any(|a| a == "--compute") {
        return compute_mode();
    }
    speed_mode();
}

fn speed_mode() {
    let rounds: usize = std::env::var("ANALYZE_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let load_start = report::load_average();
    let started = Instant::now();
    let mut runs: Vec<VideoRun> = [("720p", 1280, 720), ("1080p", 1920, 1080)]
        .into_iter()
        .map(|(label, width, height)| VideoRun {
            label,
            path: videos::scene_mix(width, height),
            samples: vec![Vec::new(); METHODS.len()],
            found: None,
            pyscenedetect: None,
        })
        .collect();
    for run in &mut runs {
        // A warm-up (the file into the page cache, the frame count and size),
        // and the analysis alone, once.
        run.found = Some(measure::sprocket_analyze(&run.path).1);
        let alone = measure::analysis_alone(&run.path);
        run.samples[report::ALONE].push(alone);
    }
    for round in 1..=rounds {
        for run in &mut runs {
            let row = one_round(run, round);
            eprintln!(
                "round {round} {}: {}",
                run.label,
                row.iter()
                    .map(|(m, s)| format!("{} {:.0} fps", METHODS[*m], s.fps()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for (method, sample) in row {
                run.samples[method].push(sample);
            }
        }
    }
    let mtcnn = mtcnn_rates();
    let took = started.elapsed();
    let section = report::speed_section(&runs, rounds, &load_start, took, &mtcnn);
    println!("{section}");
    let path = report::write_section("speed", &section);
    eprintln!("wrote {}", path.display());
}

/// Every measurement once on one input, `(method, sample)`, starting with a
/// different one each round so that none always runs first or last.
fn one_round(run: &mut VideoRun, round: usize) -> Vec<(usize, Sample)> {
    let found = run.found.as_ref().expect("a warm-up run");
    let (frames, frame_bytes) = (
        found.frames,
        u64::from(found.size.0) * u64::from(found.size.1) * 3,
    );
    let mut row = Vec::new();
    for i in 0..5 {
        let method = [
            report::ANALYZE,
            report::NULL,
            report::PIPE,
            report::BATCHES,
            report::PYSCENEDETECT,
        ][(i + round) % 5];
        let sample = match method {
            report::ANALYZE => Some(measure::sprocket_analyze(&run.path).0),
            report::NULL => Some(measure::decode_null(&run.path, frames)),
            report::PIPE => Some(measure::decode_pipe(&run.path, frame_bytes)),
            report::BATCHES => Some(measure::decode_batches(&run.path)),
            _ => measure::pyscenedetect(&run.path).map(|(sample, json)| {
                run.pyscenedetect = Some(json);
                sample
            }),
        };
        if let Some(sample) = sample {
            assert_eq!(
                sample.frames, frames,
                "{} saw other frames",
                METHODS[method]
            );
            row.push((method, sample));
        }
    }
    row
}

/// Passes over the fixture photographs for the MTCNN rates.
const MTCNN_PASSES: usize = 10;

/// MTCNN's images per second on the fixture photographs, Sprocket's (with
/// the threads analyze runs it with) and facenet-pytorch's with as many.
fn mtcnn_rates() -> mtcnn_timing::Rates {
    let faces = sprocket_media::faces::Mtcnn::shared_default().expect("MTCNN weights");
    let rates = mtcnn_timing::measure(faces, MTCNN_PASSES);
    eprintln!(
        "MTCNN: {:.2} images/s, facenet-pytorch {:?}",
        rates.sprocket, rates.reference
    );
    rates
}

/// `--compute`: the analysis alone on the 720p mix, five times, for
/// profiling it (e.g. under `perf record`) with little else in the profile.
fn compute_mode() {
    let video = videos::scene_mix(1280, 720);
    for _ in 0..5 {
        let sample = measure::analysis_alone(&video);
        println!(
            "analysis alone: {:.0} fps, {:.3} CPU ms/frame",
            sample.fps(),
            sample.cpu_ms_per_frame()
        );
    }
}

/// `--analyze-child PATH` (in the child of `--rss`): analyzes PATH, then
/// prints frames, seconds and the peak RSS of this process and of its ffmpeg
/// as JSON.
fn analyze_child(video: &Path) {
    let (sample, _) = measure::sprocket_analyze(video);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let json = serde_json::json!({
        "frames": sample.frames,
        "seconds": sample.wall.as_secs_f64(),
        "analyze_peak_rss_kib": peak_kib,
        "ffmpeg_peak_rss_kib": children_peak_rss_kib(),
    });
    println!("{json}");
}

fn rss_mode() {
    let load_start = report::load_average();
    let inputs = [
        ("30 s 1080p scene mix", videos::scene_mix(1920, 1080)),
        ("10 min 1080p", videos::ten_minutes_1080p()),
    ];
    let me = std::env::current_exe().expect("own path");
    let mut rows = Vec::new();
    for (label, path) in inputs {
        let output = Command::new(&me)
            .arg("--analyze-child")
            .arg(&path)
            .stderr(Stdio::inherit())
            .output()
            .expect("the child runs");
        assert!(output.status.success(), "the child failed on {label}");
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        eprintln!("{label}: {json}");
        rows.push(RssRow { label, json });
    }
    let section = report::rss_section(&rows, &load_start);
    println!("{section}");
    let path = report::write_section("rss", &section);
    eprintln!("wrote {}", path.display());
}
