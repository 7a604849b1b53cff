//! The analyze phase's pipeline: decode frames in batches, find shots,
//! measure their quality and pick each shot's keyframe in one pass, look for
//! faces on the keyframes with MTCNN, and produce [`Analysis`].
//!
//! Shot detection is chosen by [`AnalyzeParams::detector`]:
//!
//! * `"adaptive"` (the default): [`AdaptiveDetector`] with PySceneDetect's
//!   adaptive defaults (ratio 3.0 over a window of 2 frames each side, score
//!   at least 15, shots of at least 15 frames) and flash suppression of up to
//!   3 frames.
//! * `"content"`: [`ContentDetector`], PySceneDetect's content rule
//!   (threshold 27, shots of at least 15 frames).
//!
//! Why adaptive is the default: on videos with known truth
//! (`tests/hard_cases.rs`, which prints this table; false / missed cuts, ±1
//! frame; "PySD" is PySceneDetect 0.6.7.1 with its defaults):
//!
//! | case | adaptive (default) | content | PySD content | PySD adaptive |
//! |---|---|---|---|---|
//! | flashes (3 flashes, 1 cut) | 0 / 0 | 3 / 0 | 3 / 0 | 3 / 0 |
//! | fast pan, hold, cut | 0 / 0 | 5 / 0 | 0 / 0 | 0 / 0 |
//! | fast pan straight into a cut | 0 / 0 | 6 / 1 | 0 / 1 | 0 / 0 |
//! | wide / 2× close-up of one scene (3 cuts) | 0 / 0 | 0 / 3 | 0 / 3 | 0 / 0 |
//!
//! On plain hard cuts both detectors find every cut and match PySceneDetect
//! frame for frame (`tests/scenedetect.rs`). The content rule cuts again every
//! `min_shot_len` frames through a fast pan of a detailed scene, since every
//! pan frame scores above any fixed threshold, and misses cuts between two
//! framings of one scene, whose colours barely change; the adaptive ratio
//! handles both. Flashes fool both PySceneDetect rules; the flash suppression
//! the default carries (adaptive without it: 3 / 0) does not.

mod params;
mod track;

pub use params::{AnalyzeParams, DetectorKind};

use crate::analysis::{Keyframe, Thumbnails};
use crate::decode::{DecodeOptions, FrameDecoder};
use crate::faces::Mtcnn;
use crate::keyframes::{face_queue, find_faces, ShotFaces, ShotKeyframes};
use crate::quality::{shot_quality, FrameQuality, QualityMeter};
use crate::tensors::{device, device_name, frames as frame_tensor};
use crate::thumbnail::{thumbnail_name, thumbnail_size};
use crate::{Analysis, MediaError, Shot};
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// Frames decoded and analysed per batch: few enough that a batch's frames,
/// their HSV and their luma (about 2 MB at the default 320x180) stay in the
/// CPU's caches while the kernels go over them one after another, which
/// makes the analysis about twice as fast as with 64-frame batches.
pub const BATCH_FRAMES: usize = 8;

/// Analyses `input`: shots in order (the first at frame 0, each `end_frame`
/// exclusive, the last ending at `frames`), each with its mean quality and
/// highlight score, and with `params.thumbnails_dir` the thumbnails of the
/// first `max_thumbnails` shots' keyframes written there (`shot-001.jpg`, …).
///
/// A thumbnail that cannot be made does not fail the analysis: the shot says
/// why in its `thumbnail_error`, and a warning is logged. One that cannot be
/// written out is an I/O error, like any other.
///
/// `on_progress` gets 0–100 as decoding advances (when the duration is known)
/// and 100 at the end. `cancel` is checked between frames and before each
/// batch is analysed; once set, ffmpeg is killed and `Cancelled` returned.
pub fn analyze(
    input: &Path,
    params: &AnalyzeParams,
    faces: &Mtcnn,
    on_progress: &mut dyn FnMut(f64),
    cancel: &CancellationToken,
) -> Result<Analysis, MediaError> {
    params.validate()?;
    let device = device();
    let options = DecodeOptions {
        width: params.analysis_width,
        batch_frames: BATCH_FRAMES,
        max_seconds: match (params.max_seconds, params.longest_s) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
        stream: params.stream,
    };
    let mut decoder = FrameDecoder::open(input, &options)?;
    let mut detector = params.shot_detector();
    let mut meter = QualityMeter::new();
    let mut cuts = Vec::new();
    let mut frames: Vec<FrameQuality> = Vec::new();
    let (jobs, queue) = face_queue();
    let (samples, sample_queue) = track::track_queue();
    // The face finder runs MTCNN on each shot's keyframe, and makes the
    // thumbnails, on a thread of its own, beside the decoding and the
    // analysis; the face tracker does the same for the frames sampled for
    // the face track. What they found is joined at the end. Leaving the scope
    // early (an error, a cancel) drops the queues' senders, which ends them.
    let (found, track, total, (width, height)) =
        std::thread::scope(|scope| -> Result<_, MediaError> {
            let finder = std::thread::Builder::new()
                .name("faces".into())
                .spawn_scoped(scope, || {
                    find_faces(queue, faces, params.thumbnails(), cancel)
                })
                .map_err(|e| MediaError::io(input, e))?;
            let tracker = std::thread::Builder::new()
                .name("face-track".into())
                .spawn_scoped(scope, || track::find_track(sample_queue, faces, cancel))
                .map_err(|e| MediaError::io(input, e))?;
            let mut sampler =
                track::Sampler::new(params.face_sample_stride(decoder.fps()), samples);
            let mut keys = ShotKeyframes::new(params.min_shot_len, jobs);
            while let Some(batch) = decoder.next_batch(on_progress, cancel)? {
                if cancel.is_cancelled() {
                    return Err(MediaError::Cancelled);
                }
                if keys.finder_gone() || !sampler.offer(&batch) {
                    break;
                }
                let candidates = keys.candidates(&batch);
                let (first, width, height) = (batch.first_frame, batch.width, batch.height);
                let batch = frame_tensor(batch, device)?;
                let found = detector.push(&batch)?;
                let quality = meter.measure(&batch)?;
                keys.offer(candidates, first, &quality);
                for &c in &found {
                    keys.cut(c, width, height);
                }
                cuts.extend(found);
                frames.extend(quality);
            }
            let total = decoder.frames();
            let (width, height) = decoder.size();
            for c in detector.finish() {
                if c < total {
                    keys.cut(c, width, height);
                    cuts.push(c);
                }
            }
            keys.finish(width, height);
            drop(sampler);
            let found = finder.join().unwrap_or_else(|_| {
                Err(candle_core::Error::Msg("the face finder panicked".into()).into())
            })?;
            let track = tracker.join().unwrap_or_else(|_| {
                Err(candle_core::Error::Msg("the face tracker panicked".into()).into())
            })?;
            Ok((found, track, total, (width, height)))
        })?;

    let fps = decoder.fps();
    let rate = decoder.frame_rate();
    let mut shots = build_shots(&cuts, &frames, fps, &found);
    track::assign(&mut shots, &track, fps);
    let thumbnails = write_thumbnails(&mut shots, found, params, (width, height))?;
    on_progress(100.0);
    tracing::debug!(
        frames = total,
        shots = shots.len(),
        "analysed {}",
        input.display()
    );
    Ok(Analysis {
        fps,
        frames: total,
        width,
        height,
        duration_s: total as f64 / fps,
        detector: serde_json::json!({
            "name": detector.name(),
            "params": detector.params(),
            "decode": {
                "width": width,
                "height": height,
                "frame_rate": format!("{}/{}", rate.num, rate.den),
                "max_seconds": params.max_seconds,
                "pix_fmt": "rgb24",
            },
            "device": device_name(device),
            "face_samples_per_s": params.face_samples_per_s,
        }),
        models: vec![faces.info().clone()],
        thumbnails,
        shots,
    })
}

/// Writes the thumbnails the face finder made to `params.thumbnails_dir`,
/// each under its shot's name, and marks on each shot its thumbnail or why
/// it has none. `None` when no thumbnails were asked for.
fn write_thumbnails(
    shots: &mut [Shot],
    mut found: ShotFaces,
    params: &AnalyzeParams,
    (width, height): (u32, u32),
) -> Result<Option<Thumbnails>, MediaError> {
    let (Some(dir), max @ 1..) = (params.thumbnails_dir.as_deref(), params.thumbnails()) else {
        return Ok(None);
    };
    std::fs::create_dir_all(dir).map_err(|e| MediaError::io(dir, e))?;
    for shot in shots.iter_mut().take(max as usize) {
        let made = found
            .get_mut(&shot.start_frame)
            .and_then(|key| key.thumbnail.take());
        match made {
            Some(Ok(t)) => {
                let name = thumbnail_name(shot.index);
                let path = dir.join(&name);
                std::fs::write(&path, &t.jpeg).map_err(|e| MediaError::io(&path, e))?;
                shot.thumbnail = Some(name);
            }
            Some(Err(why)) => {
                tracing::warn!(shot = shot.index, error = %why, "no thumbnail for this shot");
                shot.thumbnail_error = Some(why);
            }
            None => {
                shot.thumbnail_error =
                    Some("no keyframe: the shot is shorter than min_shot_len frames".into());
            }
        }
    }
    let (width, height) = thumbnail_size(width, height);
    Ok(Some(Thumbnails {
        width,
        height,
        content_type: "image/jpeg".into(),
        max,
    }))
}

/// A shot's highlight score: [`quality::score`](crate::quality::score) times
/// `0.8 + 0.2·people`, where `people` is 1 when the keyframe shows a face: shots
/// of people make better highlights, other things being equal.
fn score_with_faces(base: f64, faces: u32) -> f64 {
    base * (0.8 + 0.2 * f64::from(u8::from(faces > 0)))
}

/// Shots between consecutive cuts (`cuts` ascending, inside `1..frames.len()`),
/// with the mean quality of their frames and their score.
fn build_shots(cuts: &[u64], frames: &[FrameQuality], fps: f64, keys: &ShotFaces) -> Vec<Shot> {
    let total = frames.len() as u64;
    let mut bounds = vec![0];
    bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < total));
    bounds.dedup();
    bounds.push(total);
    bounds
        .windows(2)
        .enumerate()
        .map(|(index, w)| {
            let (start, end) = (w[0], w[1]);
            let q = shot_quality(&frames[start as usize..end as usize]);
            let (start_s, end_s) = (start as f64 / fps, end as f64 / fps);
            let (keyframe, faces, largest_face) = match keys.get(&start) {
                Some(key) => {
                    let k = Keyframe {
                        time_s: key.keyframe.frame as f64 / fps,
                        ..key.keyframe.clone()
                    };
                    (Some(k), key.faces, key.largest_face.clone())
                }
                None => (None, 0, None),
            };
            let base = crate::quality::score(q.brightness, q.sharpness, q.motion, end_s - start_s);
            Shot {
                index: index as u32,
                start_frame: start,
                end_frame: end,
                start_s,
                end_s,
                brightness: q.brightness,
                sharpness: q.sharpness,
                motion: q.motion,
                keyframe,
                faces,
                largest_face,
                score: score_with_faces(base, faces),
                thumbnail: None,
                thumbnail_error: None,
                face_track: Vec::new(),
            }
        })
        .collect()
}
