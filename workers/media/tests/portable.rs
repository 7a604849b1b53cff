//! The portable copies of the hand-vectorised loops (what a CPU without AVX2,
//! or an arm64 one, runs) against the fast ones, on this machine: the kernels
//! on frames whose sizes leave remainders, the decoder's planar split, and
//! whole analyses with both detectors must come out identical, bit for bit,
//! with `sprocket_media::simd::set_fast_paths(false)` (what `SPROCKET_SIMD=off`
//! does). Its own test binary, so that no other test flips the switch while
//! this one runs.

use candle_core::{Device, Tensor};
use sprocket_media::analyze::{analyze, AnalyzeParams, DetectorKind};
use sprocket_media::decode::{DecodeOptions, FrameDecoder};
use sprocket_media::faces::Mtcnn;
use sprocket_media::{kernels, simd, Analysis};
use std::path::{Path, PathBuf};
use std::process::Command;
use tokio_util::sync::CancellationToken;

/// A 320x180 H.264 video of lavfi sources with hard cuts between them, faces
/// (a photograph) and motion, 25 fps.
fn make_video(dir: &Path) -> PathBuf {
    let path = dir.join("cuts.mp4");
    let segments = [
        "testsrc2=s=320x180:r=25",
        "mandelbrot=s=320x180:r=25",
        "smptebars=s=320x180:r=25",
        "life=s=320x180:r=25:mold=10:ratio=0.4",
    ];
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-nostdin", "-y"]);
    let mut graph = String::new();
    for (i, source) in segments.iter().enumerate() {
        command.args(["-f", "lavfi", "-i", source]);
        graph += &format!("[{i}:v]trim=end_frame=30,setpts=PTS-STARTPTS,format=yuv420p[s{i}];");
    }
    for i in 0..segments.len() {
        graph += &format!("[s{i}]");
    }
    graph += &format!("concat=n={}:v=1:a=0[out]", segments.len());
    command.args(["-filter_complex", &graph, "-map", "[out]"]);
    command.args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "18"]);
    let status = command.arg(&path).status().expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg could not make the video");
    path
}

/// `len` pseudo-random bytes, the same on every run.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005) | 1;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

/// Every kernel's output on frames of `h` x `w` (odd, so that every loop
/// has a remainder past its full lanes), as bytes or float bits.
fn kernel_outputs(h: usize, w: usize) -> Vec<Vec<u64>> {
    let frames = |seed| Tensor::from_vec(bytes(4 * 3 * h * w, seed), (4, 3, h, w), &Device::Cpu);
    let (a, b) = (frames(1).unwrap(), frames(2).unwrap());
    let u8s = |t: Tensor| -> Vec<u64> {
        let v = t.flatten_all().unwrap().to_vec1::<u8>().unwrap();
        v.into_iter().map(u64::from).collect()
    };
    let f32s = |t: Tensor| -> Vec<u64> {
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        v.into_iter().map(|x| u64::from(x.to_bits())).collect()
    };
    let f64s = |t: Tensor| -> Vec<u64> {
        let v = t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        v.into_iter().map(f64::to_bits).collect()
    };
    let hsv = kernels::rgb_to_hsv(&a).unwrap();
    let luma = kernels::luma(&a).unwrap();
    let luma_b = kernels::luma(&b).unwrap();
    vec![
        u8s(hsv.clone()),
        f64s(kernels::plane_abs_diff_means(&hsv, &kernels::rgb_to_hsv(&b).unwrap()).unwrap()),
        f64s(kernels::plane_abs_diff_means(&a, &b).unwrap()),
        f32s(luma.clone()),
        f64s(
            kernels::plane_abs_diff_means(
                &luma.unsqueeze(1).unwrap(),
                &luma_b.unsqueeze(1).unwrap(),
            )
            .unwrap(),
        ),
        f64s(kernels::luma_stats(&luma).unwrap()),
    ]
}

/// The decoder's planar batches of `video` at a width whose planes are not
/// a multiple of any vector width.
fn decoded(video: &Path) -> Vec<u8> {
    let options = DecodeOptions {
        width: 154,
        batch_frames: 16,
        max_seconds: None,
        stream: None,
    };
    let mut decoder = FrameDecoder::open(video, &options).unwrap();
    let cancel = CancellationToken::new();
    let mut all = Vec::new();
    while let Some(batch) = decoder.next_batch(&mut |_| {}, &cancel).unwrap() {
        all.extend_from_slice(&batch.data);
    }
    all
}

fn analyses(video: &Path) -> Vec<Analysis> {
    let mtcnn = Mtcnn::shared_default().expect("MTCNN weights");
    [DetectorKind::Adaptive, DetectorKind::Content]
        .into_iter()
        .map(|detector| {
            let params = AnalyzeParams {
                detector,
                analysis_width: 154,
                ..AnalyzeParams::default()
            };
            analyze(
                video,
                &params,
                mtcnn,
                &mut |_| {},
                &CancellationToken::new(),
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn portable_copies_equal_the_fast_ones() {
    let dir = tempfile::tempdir().unwrap();
    let video = make_video(dir.path());
    let run = || {
        (
            kernel_outputs(37, 53),
            kernel_outputs(3, 7),
            decoded(&video),
            analyses(&video),
        )
    };

    let fast = simd::set_fast_paths(true);
    let with_fast = run();
    assert!(!simd::set_fast_paths(false));
    assert!(!simd::fast_paths());
    let portable = run();
    simd::set_fast_paths(true);

    if !fast {
        eprintln!("this CPU has no fast paths (AVX2): both runs took the portable copies");
    }
    assert_eq!(with_fast.0, portable.0, "kernels, 37x53");
    assert_eq!(with_fast.1, portable.1, "kernels, 3x7");
    assert!(with_fast.2 == portable.2, "decoded planes differ");
    for (f, p) in with_fast.3.iter().zip(&portable.3) {
        assert!(f.shots.len() > 1, "{:?} found no cuts", f.detector);
        assert_eq!(
            serde_json::to_value(f).unwrap(),
            serde_json::to_value(p).unwrap()
        );
    }
}

/// On x86-64 with AVX2 the fast copies are what runs unless turned off; the
/// portable ones are what every other CPU runs.
#[test]
fn fast_paths_follow_the_cpu() {
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        simd::cpu_has_fast_paths(),
        std::arch::is_x86_feature_detected!("avx2")
    );
    #[cfg(not(target_arch = "x86_64"))]
    assert!(!simd::cpu_has_fast_paths());
}
