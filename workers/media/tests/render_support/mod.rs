//! Small media sources made with ffmpeg for the probe and render tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs ffmpeg with `args` (after the shared quiet options) and panics on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A 320x240, 25 fps test pattern of `seconds`, H.264, with a 440 Hz AAC tone
/// when `audio`.
pub fn source(dir: &Path, name: &str, seconds: u32, audio: bool) -> PathBuf {
    source_sized(dir, name, (320, 240), 25, seconds, audio)
}

/// A `w`x`h` test pattern of `seconds` at `fps`, H.264, with a 440 Hz AAC
/// tone when `audio`.
pub fn source_sized(
    dir: &Path,
    name: &str,
    (w, h): (u32, u32),
    fps: u32,
    seconds: u32,
    audio: bool,
) -> PathBuf {
    let path = dir.join(name);
    let video = format!("testsrc2=size={w}x{h}:rate={fps}:duration={seconds}");
    let tone = format!("sine=frequency=440:sample_rate=44100:duration={seconds}");
    let mut args = vec!["-f", "lavfi", "-i", &video];
    if audio {
        args.extend(["-f", "lavfi", "-i", &tone, "-c:a", "aac"]);
    }
    args.extend([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
    ]);
    args.push(path.to_str().unwrap());
    ffmpeg(&args);
    path
}

/// ffprobe's `-show_format -show_streams` JSON for `path`.
pub fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {path:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The codec names of `path`'s streams of `kind` ("video", "audio").
pub fn codecs(probe: &serde_json::Value, kind: &str) -> Vec<String> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_type"] == kind)
        .map(|s| s["codec_name"].as_str().unwrap().to_owned())
        .collect()
}

/// The container duration ffprobe reports for `path`.
pub fn duration(probe: &serde_json::Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Processes whose command line mentions `needle` (running ones; reaped
/// processes have no /proc entry).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && cmdline.contains("ffmpeg") {
            found.push(format!("{:?}: {cmdline}", entry.file_name()));
        }
    }
    found
}
