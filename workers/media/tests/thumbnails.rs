//! Shot thumbnails from the analyze pipeline, on a video of three flat
//! colours with hard cuts: one JPEG per shot, of the stated size, showing
//! that shot, decoded back with ffmpeg.

use std::path::{Path, PathBuf};
use std::process::Command;

use sprocket_media::analyze::{analyze, AnalyzeParams};
use sprocket_media::faces::Mtcnn;
use sprocket_media::Analysis;
use tokio_util::sync::CancellationToken;

const COLOURS: [(&str, [u8; 3]); 3] = [
    ("red", [255, 0, 0]),
    ("lime", [0, 255, 0]),
    ("blue", [0, 0, 255]),
];

/// 40 frames of each colour, 640x360 at 25 fps, H.264.
fn three_colours(dir: &Path) -> PathBuf {
    let path = dir.join("colours.mp4");
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-nostdin", "-y"]);
    for (name, _) in COLOURS {
        command.args(["-f", "lavfi", "-i"]);
        command.arg(format!("color=c={name}:s=640x360:r=25:d=1.6"));
    }
    command.args([
        "-filter_complex",
        "[0:v][1:v][2:v]concat=n=3:v=1:a=0,format=yuv420p[v]",
        "-map",
        "[v]",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "18",
    ]);
    assert!(command.arg(&path).status().expect("ffmpeg").success());
    path
}

fn run(video: &Path, params: &AnalyzeParams) -> Analysis {
    let faces = Mtcnn::shared_default().expect("MTCNN weights (bash models/fetch.sh)");
    analyze(video, params, faces, &mut |_| {}, &CancellationToken::new()).expect("analysis")
}

/// Decodes a JPEG with ffmpeg: its size and its mean colour.
fn decode(jpeg: &Path) -> ((u32, u32), [f64; 3]) {
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
        ])
        .args(["-of", "csv=p=0"])
        .arg(jpeg)
        .output()
        .expect("ffprobe");
    assert!(probe.status.success(), "{}: not an image", jpeg.display());
    let text = String::from_utf8(probe.stdout).unwrap();
    let fields: Vec<&str> = text.trim().split(',').collect();
    assert_eq!(fields[0], "mjpeg", "{}: {text}", jpeg.display());
    let size = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let raw = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(jpeg)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg");
    assert!(raw.status.success(), "{}: does not decode", jpeg.display());
    let pixels = raw.stdout.len() / 3;
    assert_eq!(pixels as u32, size.0 * size.1);
    let mut mean = [0.0; 3];
    for px in raw.stdout.chunks_exact(3) {
        for c in 0..3 {
            mean[c] += f64::from(px[c]) / pixels as f64;
        }
    }
    (size, mean)
}

#[test]
fn each_shot_gets_a_jpeg_of_its_keyframe_at_the_stated_size() {
    let dir = tempfile::tempdir().unwrap();
    let video = three_colours(dir.path());
    let out = dir.path().join("thumbnails");
    let params = AnalyzeParams {
        thumbnails_dir: Some(out.clone()),
        ..AnalyzeParams::default()
    };
    let a = run(&video, &params);
    assert_eq!(a.shots.len(), 3, "{a:#?}");
    let t = a.thumbnails.as_ref().expect("thumbnails were asked for");
    // The analysed frame is 320x180; the thumbnail shows it whole.
    assert_eq!((a.width, a.height), (320, 180));
    assert_eq!((t.width, t.height, t.max), (160, 90, 100));
    assert_eq!(t.content_type, "image/jpeg");
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    assert_eq!(written, ["shot-001.jpg", "shot-002.jpg", "shot-003.jpg"]);
    for (shot, (name, rgb)) in a.shots.iter().zip(COLOURS) {
        let file = shot.thumbnail.as_deref().expect("a thumbnail");
        assert_eq!(file, format!("shot-{:03}.jpg", shot.index + 1));
        assert!(shot.thumbnail_error.is_none());
        let (size, mean) = decode(&out.join(file));
        assert_eq!(size, (t.width, t.height), "{file}");
        for c in 0..3 {
            assert!(
                (mean[c] - f64::from(rgb[c])).abs() < 24.0,
                "{file} should be {name}, its mean colour is {mean:?}"
            );
        }
    }
    // The listing in analysis.json.
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["shots"][2]["thumbnail"], "shot-003.jpg");
    assert_eq!(json["thumbnails"]["width"], 160);
    assert!(json["shots"][0].get("thumbnail_error").is_none());

    // The same frames give the same bytes: a redone analysis rewrites
    // identical artifacts.
    let again = dir.path().join("again");
    let b = run(
        &video,
        &AnalyzeParams {
            thumbnails_dir: Some(again.clone()),
            ..AnalyzeParams::default()
        },
    );
    assert_eq!(a, b);
    for name in written {
        assert_eq!(
            std::fs::read(out.join(&name)).unwrap(),
            std::fs::read(again.join(&name)).unwrap()
        );
    }
}

#[test]
fn only_the_first_shots_asked_for_get_one_and_none_without_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let video = three_colours(dir.path());
    let out = dir.path().join("thumbnails");
    let params = AnalyzeParams {
        thumbnails_dir: Some(out.clone()),
        max_thumbnails: 2,
        ..AnalyzeParams::default()
    };
    let a = run(&video, &params);
    let names: Vec<Option<&str>> = a.shots.iter().map(|s| s.thumbnail.as_deref()).collect();
    assert_eq!(names, [Some("shot-001.jpg"), Some("shot-002.jpg"), None]);
    assert!(a.shots.iter().all(|s| s.thumbnail_error.is_none()));
    assert_eq!(a.thumbnails.as_ref().map(|t| t.max), Some(2));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);

    let none = run(&video, &AnalyzeParams::default());
    assert!(none.thumbnails.is_none());
    assert!(none.shots.iter().all(|s| s.thumbnail.is_none()));
    let json = serde_json::to_value(&none).unwrap();
    assert!(json.get("thumbnails").is_none());
    assert!(json["shots"][0]["thumbnail"].is_null());
}

/// An `analysis.json` written before thumbnails still reads.
#[test]
fn an_analysis_without_thumbnails_still_reads() {
    let old = serde_json::json!({
        "fps": 25.0, "frames": 50, "width": 320, "height": 180, "duration_s": 2.0,
        "detector": {}, "models": [],
        "shots": [{
            "index": 0, "start_frame": 0, "end_frame": 50, "start_s": 0.0, "end_s": 2.0,
            "brightness": 1.0, "sharpness": 1.0, "motion": 0.0, "keyframe": null,
            "faces": 0, "largest_face": null, "score": 0.5
        }]
    });
    let a: Analysis = serde_json::from_value(old).unwrap();
    assert!(a.thumbnails.is_none() && a.shots[0].thumbnail.is_none());
}
