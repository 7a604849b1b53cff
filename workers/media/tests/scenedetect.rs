//! Parity with PySceneDetect: on videos with hard cuts at known frames,
//! Sprocket's content and adaptive detectors give the same cut lists (±1
//! frame) as PySceneDetect's, run from the project's virtualenv with the same
//! parameters (content: threshold 27, min-scene-len 15; adaptive: its
//! defaults, and Sprocket's flash suppression off).
//!
//! PySceneDetect's content detector is run with `filter_mode=suppress`: the
//! rule Sprocket's content detector follows (a cut closer than the minimum
//! length to the previous one is dropped). Its default, `merge`, gives the
//! same cuts whenever cuts are at least the minimum length apart.
//!
//! Needs `.venv` (made by `bash .ci/setup`); fails without it unless
//! `SPROCKET_SKIP_REFERENCE=1`.

mod reference;

use reference::{lavfi, make_video, pyscenedetect, reference_python, same_cuts, sprocket};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Hard cuts between `segments` (lavfi source, frames), 320x180.
fn cut_video(dir: &Path, name: &str, segments: &[(&str, u32)]) -> PathBuf {
    let inputs: Vec<String> = segments.iter().map(|(s, _)| lavfi(s, "320x180")).collect();
    let mut graph = String::new();
    for (i, (_, frames)) in segments.iter().enumerate() {
        graph +=
            &format!("[{i}:v]trim=end_frame={frames},setpts=PTS-STARTPTS,format=yuv420p[s{i}];");
    }
    for i in 0..segments.len() {
        graph += &format!("[s{i}]");
    }
    graph += &format!("concat=n={}:v=1:a=0[out]", segments.len());
    make_video(dir, name, &inputs, &graph)
}

/// Boundaries between segments: the frames where each segment after the
/// first starts.
fn boundaries(segments: &[(&str, u32)]) -> Vec<u64> {
    let mut at = 0;
    let mut cuts = Vec::new();
    for (_, frames) in segments {
        if at > 0 {
            cuts.push(at);
        }
        at += u64::from(*frames);
    }
    cuts
}

fn check(name: &str, segments: &[(&str, u32)], expected: &[u64]) {
    let Some(python) = reference_python(name) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let video = cut_video(dir.path(), &format!("{name}.mp4"), segments);

    let reference = pyscenedetect(&python, &video, &["content", "--filter-mode", "suppress"]);
    let ours = sprocket(
        &video,
        json!({"detector": "content", "threshold": 27.0, "min_shot_len": 15}),
    );
    println!("{name} content: PySceneDetect {reference:?}, Sprocket {ours:?}");
    assert!(
        same_cuts(&ours, &reference, 1),
        "{name} content: Sprocket {ours:?}, PySceneDetect {reference:?}"
    );
    assert!(
        same_cuts(&ours, expected, 1),
        "{name} content: {ours:?}, cuts made at {expected:?}"
    );

    let reference = pyscenedetect(&python, &video, &["adaptive"]);
    let ours = sprocket(&video, json!({"detector": "adaptive", "flash_frames": 0}));
    println!("{name} adaptive: PySceneDetect {reference:?}, Sprocket {ours:?}");
    assert!(
        same_cuts(&ours, &reference, 1),
        "{name} adaptive: Sprocket {ours:?}, PySceneDetect {reference:?}"
    );
    assert!(
        same_cuts(&ours, expected, 1),
        "{name} adaptive: {ours:?}, cuts made at {expected:?}"
    );
}

#[test]
fn hard_cuts_match_pyscenedetect() {
    let segments = [
        ("testsrc2", 40),
        ("smptebars", 55),
        ("mandelbrot", 55),
        ("color=c=red", 50),
    ];
    check("four", &segments, &boundaries(&segments));
}

#[test]
fn varied_sources_match_pyscenedetect() {
    let segments = [
        ("mandelbrot", 30),
        ("testsrc2", 20),
        ("smptehdbars", 16),
        ("testsrc", 40),
        ("rgbtestsrc", 30),
        ("yuvtestsrc", 35),
        ("color=c=navy", 25),
    ];
    check("varied", &segments, &boundaries(&segments));
}

#[test]
fn close_cuts_match_pyscenedetect() {
    // The cut at 38 is 8 frames after the one at 30: dropped by both rules.
    let segments = [("testsrc2", 30), ("smptebars", 8), ("color=c=blue", 30)];
    check("close", &segments, &[30]);
}
