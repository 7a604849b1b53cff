//! The render-speed bench's measuring: running and timing commands, the
//! first loudness pass and the crop path's commands written by hand, and the
//! hand-made analysis the reframed outputs follow.

use sprocket_media::analysis::{FaceBox, FaceSample};
use sprocket_media::reframe::Framing;
use sprocket_media::{Analysis, Shot};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

pub fn run(args: &[String]) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-nostats", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The MD5 of `video`'s decoded frames.
pub fn frames_md5(video: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(video)
        .args(["-map", "0:v", "-f", "md5", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The first loudness pass by hand: loudnorm's measurement of `graph`'s
/// `[a]`, turned into the one linear gain that brings it to -16 LUFS (what
/// a person writes for the second pass, and what Sprocket applies). The
/// bench's tone never needs the limiter: its peaks stay far under -1 dBTP.
pub fn measure_by_hand(src: &Path, graph: &str) -> String {
    let log = run(&[
        "-v".into(),
        "info".into(),
        "-vn".into(),
        "-i".into(),
        src.display().to_string(),
        "-filter_complex".into(),
        format!("{graph};[a]loudnorm=I=-16:TP=-1:LRA=11:print_format=json[m]"),
        "-map".into(),
        "[m]".into(),
        "-f".into(),
        "null".into(),
        "-".into(),
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&log[log.rfind('{').unwrap()..=log.rfind('}').unwrap()]).unwrap();
    let f = |k: &str| json[k].as_str().unwrap().parse::<f64>().unwrap();
    let gain = -16.0 - f("input_i");
    assert!(
        f("input_tp") + gain <= -1.0,
        "the bench's source needs no limiter"
    );
    format!("volume={gain:.2}dB")
}

pub fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The 1-minute load average, from `/proc/loadavg`.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// CPU seconds (user + system) spent so far by this process and its
/// waited-for children (every ffmpeg and ffprobe, whoever started it): the
/// work done, which the machine's load stretches far less than wall time.
pub fn cpu_s() -> f64 {
    [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN]
        .into_iter()
        .map(|who| {
            // SAFETY: getrusage only writes the struct it is given.
            let mut u: libc::rusage = unsafe { std::mem::zeroed() };
            assert_eq!(unsafe { libc::getrusage(who, &mut u) }, 0);
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            secs(u.ru_utime) + secs(u.ru_stime)
        })
        .sum()
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `ours` and `direct` alternately, `rounds` each, and prints a table
/// row: wall-time medians in seconds, their ratio, the ratio of the fastest
/// runs, the ratio of median CPU time, and the load average before and after.
/// `RENDER_SPEED_ONLY=poster,hls` runs only the outputs named.
pub fn compare(name: &str, rounds: usize, mut ours: impl FnMut(), mut direct: impl FnMut()) {
    if let Ok(only) = std::env::var("RENDER_SPEED_ONLY") {
        if !only.split(',').any(|o| name.starts_with(o.trim())) {
            return;
        }
    }
    let before = load();
    let time = |f: &mut dyn FnMut(), wall: &mut Vec<f64>, cpu: &mut Vec<f64>| {
        let (t, c) = (Instant::now(), cpu_s());
        f();
        wall.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_s() - c);
    };
    let (mut a, mut b, mut ca, mut cb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Which goes first alternates, so neither always runs on the other's
    // warm caches or in its wake.
    for round in 0..rounds {
        if round % 2 == 0 {
            time(&mut direct, &mut b, &mut cb);
            time(&mut ours, &mut a, &mut ca);
        } else {
            time(&mut ours, &mut a, &mut ca);
            time(&mut direct, &mut b, &mut cb);
        }
    }
    // Each round's two runs side by side: the machine's drift cancels.
    let quartiles = |v: Vec<f64>| {
        let mut v = v;
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (at(0.25), at(0.5), at(0.75))
    };
    let paired = |x: &[f64], y: &[f64]| quartiles(x.iter().zip(y).map(|(x, y)| x / y).collect());
    let (wq1, wmed, wq3) = paired(&a, &b);
    let (cq1, cmed, cq3) = paired(&ca, &cb);
    let (ma, mb) = (median(a), median(b));
    let (mca, mcb) = (median(ca), median(cb));
    eprintln!(
        "| {name} | {rounds} | {ma:.3} s | {mb:.3} s | {wmed:.3} ({wq1:.3}–{wq3:.3}) | {:+.1}% | \
         {mca:.3} s / {mcb:.3} s | {cmed:.3} ({cq1:.3}–{cq3:.3}) | {before}–{} |",
        (wmed - 1.0) * 100.0,
        load()
    );
}

/// `RENDER_SPEED_ROUNDS` (or `RENDER_SPEED_SHORT_ROUNDS` for the sub-second
/// outputs), else `default`.
pub fn rounds(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// A hand-made analysis of the bench source (30 s, 25 fps, 1280x720): two
/// shots cut at 15 s, a face sampled every 6 frames, crossing the frame left
/// to right in the first and swaying in the second, so both crops move.
pub fn moving_face_analysis() -> Analysis {
    let (fps, frames) = (25.0, 750u64);
    let shot = |index: u32, start: u64, end: u64, x: &dyn Fn(f64) -> f64| Shot {
        index,
        start_frame: start,
        end_frame: end,
        start_s: start as f64 / fps,
        end_s: end as f64 / fps,
        brightness: 100.0,
        sharpness: 1.0,
        motion: 1.0,
        keyframe: None,
        faces: 1,
        largest_face: None,
        score: 0.5,
        thumbnail: None,
        thumbnail_error: None,
        face_track: (start..end)
            .step_by(6)
            .map(|frame| {
                let t = (frame - start) as f64 / fps;
                FaceSample {
                    frame,
                    time_s: frame as f64 / fps,
                    face: Some(FaceBox {
                        x: x(t) - 0.06,
                        y: 0.3,
                        w: 0.12,
                        h: 0.2,
                        prob: 0.99,
                    }),
                }
            })
            .collect(),
    };
    Analysis {
        fps,
        frames,
        width: 1280,
        height: 720,
        duration_s: 30.0,
        detector: serde_json::json!({}),
        models: Vec::new(),
        thumbnails: None,
        shots: vec![
            shot(0, 0, 375, &|t| {
                0.15 + 0.7 * ((t - 1.0) / 9.0).clamp(0.0, 1.0)
            }),
            shot(1, 375, 750, &|t| {
                0.5 + 0.3 * (2.0 * std::f64::consts::PI * t / 6.0).sin()
            }),
        ],
    }
}

/// The sendcmd file a person would write for crops `crop@r<i>` following
/// `framings`: on each frame where a corner moves, its new value, half a
/// frame early so the frame itself gets it.
pub fn sendcmd_by_hand(framings: &[Framing], fps: f64) -> String {
    let mut out = String::new();
    for k in 1..framings[0].xs.len() {
        let mut moves = Vec::new();
        for (i, f) in framings.iter().enumerate() {
            for (axis, v) in [("x", &f.xs), ("y", &f.ys)] {
                if v[k] != v[k - 1] {
                    moves.push(format!("crop@r{i} {axis} {}", v[k]));
                }
            }
        }
        if !moves.is_empty() {
            let _ = writeln!(out, "{:.6} {};", (k as f64 - 0.5) / fps, moves.join(", "));
        }
    }
    out
}
