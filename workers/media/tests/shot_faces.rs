//! Per-shot keyframes and faces in the analyze phase, on a video made from
//! real photographs (scikit-image's samples, fetched by `models/fetch.sh`): a
//! shot of an astronaut's portrait, a hard cut, a shot of a cup of coffee.

use std::path::Path;
use std::process::Command;
use tokio_util::sync::CancellationToken;

use sprocket_media::analyze::{analyze, AnalyzeParams};
use sprocket_media::faces::Mtcnn;

mod photos;
use photos::fixture;

/// 2 s of each photograph at 25 fps, 640x360, letterboxed.
fn portrait_then_coffee(out: &Path) {
    let fit = "scale=640:360:force_original_aspect_ratio=decrease,\
               pad=640:360:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=25,format=yuv420p";
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-loop", "1", "-t", "2", "-i"])
        .arg(fixture("astronaut.png"))
        .args(["-loop", "1", "-t", "2", "-i"])
        .arg(fixture("coffee.png"))
        .arg("-filter_complex")
        .arg(format!("[0]{fit}[a];[1]{fit}[b];[a][b]concat=n=2:v=1[v]"))
        .args(["-map", "[v]", "-c:v", "libx264", "-crf", "18"])
        .arg(out)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "making the test video");
}

#[test]
fn each_shot_has_a_keyframe_and_the_faces_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("portrait-coffee.mp4");
    portrait_then_coffee(&video);
    let faces = Mtcnn::shared_default().expect("MTCNN weights");
    let a = analyze(
        &video,
        &AnalyzeParams::default(),
        faces,
        &mut |_| {},
        &CancellationToken::new(),
    )
    .unwrap();

    let starts: Vec<u64> = a.shots.iter().map(|s| s.start_frame).collect();
    assert_eq!(starts, vec![0, 50], "{a:#?}");
    for s in &a.shots {
        let k = s.keyframe.as_ref().expect("every shot has a keyframe");
        assert!(
            (s.start_frame..s.end_frame).contains(&k.frame),
            "keyframe {k:?} outside shot {}",
            s.index
        );
        assert!((k.time_s - k.frame as f64 / a.fps).abs() < 1e-9);
    }
    let (portrait, coffee) = (&a.shots[0], &a.shots[1]);
    assert_eq!(portrait.faces, 1, "{portrait:#?}");
    let face = portrait.largest_face.as_ref().expect("the largest face");
    // The portrait is letterboxed into the middle 360x360 of the frame and the
    // face is in its upper middle.
    let cx = face.x + face.w / 2.0;
    assert!((0.3..0.7).contains(&cx), "face centre x {cx}: {face:?}");
    assert!(face.y < 0.5 && face.w > 0.03 && face.prob > 0.9, "{face:?}");
    assert_eq!(coffee.faces, 0, "{coffee:#?}");
    assert!(coffee.largest_face.is_none());

    assert_eq!(a.models.len(), 1);
    let m = &a.models[0];
    assert_eq!(m.name, "mtcnn");
    assert!(m.version.contains("facenet-pytorch"), "{m:?}");
    assert_eq!(m.weights.len(), 3);
    for (file, sha) in &m.weights {
        assert!(
            sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
            "{file}: {sha}"
        );
    }
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["shots"][0]["faces"], 1);
    assert_eq!(json["models"][0]["name"], "mtcnn");
}
