//! Shared by the reference tests: videos made with ffmpeg, PySceneDetect run
//! from the project's virtualenv, Sprocket's detectors, and scoring against
//! known cuts.
#![allow(dead_code)] // each test crate uses its own part

use sprocket_media::analyze::{analyze, AnalyzeParams};
use std::path::{Path, PathBuf};
use std::process::Command;
use tokio_util::sync::CancellationToken;

pub const FPS: u32 = 25;

/// Encodes the filter graph `graph` (whose output is labelled `[out]`) over
/// the lavfi sources `inputs` into `dir/name`: H.264, yuv420p, 25 fps.
pub fn make_video(dir: &Path, name: &str, inputs: &[String], graph: &str) -> PathBuf {
    let path = dir.join(name);
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-nostdin", "-y"]);
    for input in inputs {
        command.args(["-f", "lavfi", "-i", input]);
    }
    command.args(["-filter_complex", graph, "-map", "[out]", "-r", "25"]);
    command.args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "18"]);
    command.args(["-pix_fmt", "yuv420p"]);
    let output = command.arg(&path).output().expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "ffmpeg could not make {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    path
}

/// A lavfi source at 25 fps: `source` with `size` (`WxH`) appended.
pub fn lavfi(source: &str, size: &str) -> String {
    let sep = if source.contains('=') { ':' } else { '=' };
    format!("{source}{sep}s={size}:r={FPS}")
}

/// The virtualenv's Python, with PySceneDetect. When it is missing the test
/// fails, naming the setup command, unless `SPROCKET_SKIP_REFERENCE=1`, when
/// it says so and returns `None`.
pub fn reference_python(test: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import scenedetect, cv2"])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Some(python);
    }
    if std::env::var("SPROCKET_SKIP_REFERENCE").as_deref() == Ok("1") {
        eprintln!("{test}: skipped the PySceneDetect reference (SPROCKET_SKIP_REFERENCE=1)");
        return None;
    }
    panic!(
        "{test}: PySceneDetect is not installed in {}: run `bash .ci/setup` \
         (or set SPROCKET_SKIP_REFERENCE=1 to skip the reference comparison)",
        python.display()
    );
}

/// PySceneDetect's cuts (frames that start a scene) for `video`, from
/// `reference/scenedetect_cuts.py` with `args` (detector first).
pub fn pyscenedetect(python: &Path, video: &Path, args: &[&str]) -> Vec<u64> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/scenedetect_cuts.py");
    let output = Command::new(python)
        .arg(script)
        .arg(args[0])
        .arg(video)
        .args(&args[1..])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "scenedetect_cuts.py {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    json["cuts"]
        .as_array()
        .expect("cuts")
        .iter()
        .map(|c| c.as_u64().expect("a frame number"))
        .collect()
}

/// The analyze phase's face model (weights from `models/fetch.sh`).
fn mtcnn() -> &'static sprocket_media::faces::Mtcnn {
    sprocket_media::faces::Mtcnn::shared_default().expect("MTCNN weights")
}

/// Sprocket's cuts for `video` with the analyze phase's `params` (given as
/// recipe JSON, so they go through the same parsing as in production).
pub fn sprocket(video: &Path, params: serde_json::Value) -> Vec<u64> {
    let params = AnalyzeParams::from_params(params.as_object().expect("an object")).unwrap();
    let analysis = analyze(
        video,
        &params,
        mtcnn(),
        &mut |_| {},
        &CancellationToken::new(),
    )
    .unwrap();
    analysis
        .shots
        .iter()
        .skip(1)
        .map(|s| s.start_frame)
        .collect()
}

/// False and missed cuts of `found` against `truth`, a found cut matching a
/// true one at most `tolerance` frames away (each matched at most once).
pub fn errors(found: &[u64], truth: &[u64], tolerance: u64) -> (usize, usize) {
    let mut unmatched: Vec<u64> = truth.to_vec();
    let mut false_cuts = 0;
    for f in found {
        match unmatched.iter().position(|t| t.abs_diff(*f) <= tolerance) {
            Some(i) => {
                unmatched.remove(i);
            }
            None => false_cuts += 1,
        }
    }
    (false_cuts, unmatched.len())
}

/// Whether `a` and `b` are the same cut list within `tolerance` frames.
pub fn same_cuts(a: &[u64], b: &[u64], tolerance: u64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.abs_diff(*y) <= tolerance)
}
