//! The fixture photographs that `models/fetch.sh` fetches (scikit-image's
//! samples): their paths and their pixels. Shared by the face tests and the
//! MTCNN benchmark (`#[path]`), each using what it needs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fixture's path; a missing one fails with the setup command.
pub fn fixture(name: &str) -> PathBuf {
    let path = sprocket_media::faces::default_model_dir()
        .join("fixtures")
        .join(name);
    assert!(
        path.exists(),
        "fixture {} is missing: run `bash models/fetch.sh` (or `bash .ci/setup`)",
        path.display()
    );
    path
}

/// The image decoded to RGB24 by ffmpeg, with its width and height.
pub fn decode_rgb(path: &Path) -> (Vec<u8>, usize, usize) {
    let (width, height) = probe_size(path);
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg failed on {}", path.display());
    assert_eq!(out.stdout.len(), width * height * 3, "{}", path.display());
    (out.stdout, width, height)
}

/// The image's width and height, from ffprobe.
fn probe_size(path: &Path) -> (usize, usize) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe failed on {}", path.display());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (w, h) = text.trim().split_once(',').expect("width,height");
    (w.parse().expect("width"), h.parse().expect("height"))
}
