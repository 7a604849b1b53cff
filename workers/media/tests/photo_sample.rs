//! The demo's sample video, made from real photographs by
//! `sample::from_photos`: one shot per photo with hard cuts, each zoomed and
//! panned, so the analyze phase finds the cuts and the faces in them.

use tokio_util::sync::CancellationToken;

use sprocket_media::analyze::{analyze, AnalyzeParams};
use sprocket_media::faces::Mtcnn;
use sprocket_media::sample;

mod photos;
use photos::fixture;

#[test]
fn a_shot_per_photo_with_the_faces_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("photos.mp4");
    let (astronaut, coffee, pair) = (
        fixture("astronaut.png"),
        fixture("coffee.png"),
        fixture("astronaut_pair.png"),
    );
    sample::from_photos(&video, &[&astronaut, &coffee, &pair], 50, 25, (640, 360)).unwrap();
    let a = analyze(
        &video,
        &AnalyzeParams::default(),
        Mtcnn::shared_default().expect("MTCNN weights"),
        &mut |_| {},
        &CancellationToken::new(),
    )
    .unwrap();
    assert!((a.duration_s - 6.0).abs() < 0.1, "{}", a.duration_s);
    let starts: Vec<u64> = a.shots.iter().map(|s| s.start_frame).collect();
    assert_eq!(starts, vec![0, 50, 100], "{a:#?}");
    let faces: Vec<u32> = a.shots.iter().map(|s| s.faces).collect();
    assert_eq!(
        faces,
        vec![1, 0, 2],
        "the astronaut, no one, the pair: {a:#?}"
    );
}

#[test]
fn no_photos_is_an_error_not_an_empty_video() {
    let dir = tempfile::tempdir().unwrap();
    let err = sample::from_photos(&dir.path().join("x.mp4"), &[], 50, 25, (640, 360)).unwrap_err();
    assert!(err.contains("no photos"), "{err}");
}
