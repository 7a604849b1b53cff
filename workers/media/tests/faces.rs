//! MTCNN parity with facenet-pytorch: Sprocket's detector on the fixture
//! photographs against `reference/mtcnn_golden.json`, written by facenet-pytorch's
//! own `MTCNN.detect` (see `reference/mtcnn_golden.py`).
//!
//! Needs `bash models/fetch.sh` (weights and photographs); without them these
//! tests fail with the setup command, they do not skip.

use candle_core::Device;
use serde::Deserialize;
use sprocket_media::faces::{default_model_dir, Face, Mtcnn, MTCNN_SUBDIR};
use sprocket_media::MediaError;
use std::collections::BTreeMap;

mod photos;
use photos::{decode_rgb, fixture};
use std::path::Path;

/// Least IoU between a Sprocket box and its facenet-pytorch match.
const MIN_IOU: f32 = 0.9;
/// Most difference in face probability.
const MAX_PROB_DIFF: f32 = 0.02;
/// Most distance of a landmark from facenet-pytorch's, in pixels.
const MAX_LANDMARK_DIST: f32 = 3.0;

#[derive(Deserialize)]
struct Golden {
    versions: BTreeMap<String, String>,
    photos: BTreeMap<String, GoldenPhoto>,
}

#[derive(Deserialize)]
struct GoldenPhoto {
    width: usize,
    height: usize,
    faces: Vec<Face>,
}

fn golden() -> Golden {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/mtcnn_golden.json");
    let text = std::fs::read_to_string(&path).expect("the golden file is in the repository");
    serde_json::from_str(&text).expect("the golden file parses")
}

fn model() -> Mtcnn {
    let dir = default_model_dir().join(MTCNN_SUBDIR);
    Mtcnn::load(&dir, &Device::Cpu).unwrap_or_else(|e| panic!("{e}"))
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}

/// How far one photo's detections are from the golden ones.
#[derive(Debug, Default)]
struct Deviation {
    iou_deficit: f32,
    prob_diff: f32,
    landmark_dist: f32,
}

/// Matches each golden face to the Sprocket face of highest IoU (each used
/// once) and measures the worst deviations; panics on a count mismatch.
fn compare(name: &str, got: &[Face], want: &[Face]) -> Deviation {
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: Sprocket found {} face(s), facenet-pytorch {}\n got: {got:?}\nwant: {want:?}",
        got.len(),
        want.len()
    );
    let mut used = vec![false; got.len()];
    let mut dev = Deviation::default();
    for w in want {
        let (k, best) = got
            .iter()
            .enumerate()
            .filter(|(k, _)| !used[*k])
            .map(|(k, g)| (k, iou(&g.bbox, &w.bbox)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("a face left to match");
        used[k] = true;
        let g = &got[k];
        dev.iou_deficit = dev.iou_deficit.max(1.0 - best);
        dev.prob_diff = dev.prob_diff.max((g.prob - w.prob).abs());
        for (p, q) in g.landmarks.iter().zip(&w.landmarks) {
            let d = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt();
            dev.landmark_dist = dev.landmark_dist.max(d);
        }
    }
    dev
}

#[test]
fn mtcnn_matches_facenet_pytorch_on_the_fixture_photos() {
    let golden = golden();
    let mtcnn = model();
    assert!(
        golden.photos.len() >= 3,
        "the golden file has too few photos"
    );
    assert!(
        golden.photos.values().any(|p| p.faces.is_empty()),
        "a photo without faces"
    );
    assert!(
        golden.photos.values().any(|p| p.faces.len() >= 2),
        "a photo with several faces"
    );
    eprintln!("golden from {:?}", golden.versions);
    let mut failures = Vec::new();
    for (name, want) in &golden.photos {
        let (rgb, width, height) = decode_rgb(&fixture(name));
        assert_eq!((width, height), (want.width, want.height), "{name}: size");
        let got = mtcnn.detect(&rgb, width, height).expect("detect");
        let dev = compare(name, &got, &want.faces);
        eprintln!(
            "{name}: {} face(s), max IoU deficit {:.2e}, max prob diff {:.2e}, max landmark dist {:.2e} px",
            got.len(),
            dev.iou_deficit,
            dev.prob_diff,
            dev.landmark_dist
        );
        if dev.iou_deficit > 1.0 - MIN_IOU
            || dev.prob_diff > MAX_PROB_DIFF
            || dev.landmark_dist > MAX_LANDMARK_DIST
        {
            failures.push(format!("{name}: {dev:?}"));
        }
    }
    assert!(failures.is_empty(), "outside tolerance: {failures:#?}");
}

#[test]
fn detections_are_ordered_largest_first_and_inside_sane_bounds() {
    let mtcnn = model();
    let (rgb, width, height) = decode_rgb(&fixture("astronaut_pair.png"));
    let faces = mtcnn.detect(&rgb, width, height).expect("detect");
    assert_eq!(faces.len(), 2);
    let area = |f: &Face| (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]);
    assert!(area(&faces[0]) >= area(&faces[1]));
    // One face in each half of the mirrored pair.
    let mut centres: Vec<f32> = faces
        .iter()
        .map(|f| (f.bbox[0] + f.bbox[2]) / 2.0)
        .collect();
    centres.sort_by(f32::total_cmp);
    assert!(
        centres[0] < width as f32 / 2.0 && centres[1] > width as f32 / 2.0,
        "{centres:?}"
    );
    for f in &faces {
        assert!(f.prob > 0.99, "{f:?}");
        // Landmarks sit inside their box.
        for [x, y] in f.landmarks {
            assert!(
                x > f.bbox[0] && x < f.bbox[2] && y > f.bbox[1] && y < f.bbox[3],
                "{f:?}"
            );
        }
    }
}

#[test]
fn model_info_names_the_source_and_hashes() {
    let mtcnn = model();
    let info = mtcnn.info();
    assert_eq!(info.name, "mtcnn");
    assert!(
        info.version.starts_with("facenet-pytorch=="),
        "{}",
        info.version
    );
    let names: Vec<&str> = info.weights.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["pnet.safetensors", "rnet.safetensors", "onet.safetensors"]
    );
    assert!(info.weights.iter().all(|(_, h)| h.len() == 64));
    let json = serde_json::to_value(info).expect("serialises");
    assert_eq!(json["name"], "mtcnn");
}

#[test]
fn missing_weights_name_the_file_and_the_setup_command() {
    let empty = tempfile::tempdir().expect("tempdir");
    let err = Mtcnn::load(empty.path(), &Device::Cpu).expect_err("no weights there");
    assert!(matches!(err, MediaError::Model(_)), "{err:?}");
    assert!(!err.retryable());
    let message = err.to_string();
    assert!(message.contains("pnet.safetensors"), "{message}");
    assert!(message.contains("bash models/fetch.sh"), "{message}");
}

#[test]
fn weights_that_differ_from_model_json_are_refused() {
    let source = default_model_dir().join(MTCNN_SUBDIR);
    let copy = tempfile::tempdir().expect("tempdir");
    for name in ["pnet.safetensors", "rnet.safetensors", "onet.safetensors"] {
        std::fs::copy(source.join(name), copy.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}: run `bash models/fetch.sh`"));
    }
    let manifest = std::fs::read_to_string(source.join("MODEL.json")).expect("MODEL.json");
    let mut manifest: serde_json::Value = serde_json::from_str(&manifest).expect("json");
    manifest["sha256"]["rnet.safetensors"] = "00".repeat(32).into();
    std::fs::write(copy.path().join("MODEL.json"), manifest.to_string()).expect("write");
    let err = Mtcnn::load(copy.path(), &Device::Cpu).expect_err("rnet does not match");
    let message = err.to_string();
    assert!(matches!(err, MediaError::Model(_)), "{err:?}");
    assert!(message.contains("rnet.safetensors"), "{message}");
}

#[test]
fn a_wrong_buffer_size_is_refused() {
    let mtcnn = model();
    let err = mtcnn
        .detect(&[0; 10], 4, 4)
        .expect_err("16 pixels need 48 bytes");
    assert!(matches!(err, MediaError::InvalidParams(_)), "{err:?}");
}

#[test]
fn a_blank_image_has_no_faces() {
    let mtcnn = model();
    let (w, h) = (160, 120);
    let faces = mtcnn.detect(&vec![128; w * h * 3], w, h).expect("detect");
    assert!(faces.is_empty(), "{faces:?}");
}
