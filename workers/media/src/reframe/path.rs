//! The crop window's path through the video, decided offline from the
//! analysis: pure functions, no ffmpeg.
//!
//! Per shot (a cut resets the window) and per axis, from the shot's face
//! track (the largest face on frames sampled through the shot):
//!
//! 1. **Target**: the face's centre on every frame, interpolated linearly
//!    between samples with a face and held before the first and after the
//!    last; the frame's centre when no sample of the shot has a face.
//! 2. **Dead zone**: the window stays where it is while the target stays
//!    within `dead_zone` of its centre, and is dragged along by the target
//!    only when it leaves, so a subject that stands still (or a detector's
//!    noise of a few pixels) leaves the window perfectly still. The zone is
//!    narrowed so the shot's largest face still fits beside it.
//! 3. **Smoothing**: a centred moving average over `smoothing_s` (zero
//!    phase: the whole shot is known, so nothing lags).
//! 4. **Speed**: steps of at most `max_speed` frame widths a second, as the
//!    mean of a forward and a backward speed-limited pass (each bounded, so
//!    their mean is too, and the backward pass leads where the forward one
//!    lags).
//! 5. The window is kept inside the frame, at even pixels (4:2:0 chroma).

use crate::analysis::{FaceBox, Shot};

/// How the window moves, in the units [`super::ReframeParams`] documents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Motion {
    /// Fraction of the window's size the target may stray from its centre
    /// before the window moves.
    pub dead_zone: f64,
    /// Length of the moving average, seconds.
    pub smoothing_s: f64,
    /// Top speed, frame widths (or heights, vertically) a second.
    pub max_speed: f64,
}

/// One axis of the frame: the frame's length along it and the window's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axis {
    pub frame: u32,
    pub window: u32,
}

/// The window's offset along one axis on each frame `[0, frames)`.
pub(crate) fn offsets(
    shots: &[Shot],
    frames: u64,
    fps: f64,
    axis: Axis,
    centre_of: impl Fn(&FaceBox) -> (f64, f64),
    motion: &Motion,
) -> Vec<u32> {
    let mut out = Vec::with_capacity(frames as usize);
    let travel = axis.frame.saturating_sub(axis.window);
    let mut bounds: Vec<(u64, u64, Option<&Shot>)> = shots
        .iter()
        .filter(|s| s.end_frame > s.start_frame && s.start_frame < frames)
        .map(|s| (s.start_frame, s.end_frame.min(frames), Some(s)))
        .collect();
    if bounds.is_empty() {
        bounds.push((0, frames, None));
    }
    for (start, end, shot) in bounds {
        // Frames the shots leave out (there should be none) keep the last offset.
        while (out.len() as u64) < start {
            out.push(out.last().copied().unwrap_or((travel / 2) & !1));
        }
        let n = (end - start) as usize;
        if travel == 0 {
            out.extend(std::iter::repeat_n(0, n));
            continue;
        }
        let track: Vec<(f64, f64, f64)> = shot
            .map(|s| {
                s.face_track
                    .iter()
                    .filter_map(|t| t.face.as_ref().map(|f| (t.frame, centre_of(f))))
                    .map(|(f, (c, size))| {
                        (
                            f as f64 - start as f64,
                            c * axis.frame as f64,
                            size * axis.frame as f64,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.extend(shot_offsets(n, fps, axis, &track, motion));
    }
    out.truncate(frames as usize);
    while (out.len() as u64) < frames {
        out.push(out.last().copied().unwrap_or((travel / 2) & !1));
    }
    out
}

/// One shot of `n` frames: `track` holds (frame within the shot, face centre,
/// face size) along the axis, in pixels.
fn shot_offsets(n: usize, fps: f64, axis: Axis, track: &[(f64, f64, f64)], m: &Motion) -> Vec<u32> {
    let (frame, window) = (axis.frame as f64, axis.window as f64);
    let travel = frame - window;
    if track.is_empty() {
        let centre = (travel / 2.0).round() as u32 & !1;
        return vec![centre; n];
    }
    let target = interpolate(n, track);
    // The zone, narrowed so the largest face fits beside it.
    let largest = track.iter().map(|t| t.2).fold(0.0, f64::max);
    let zone = (m.dead_zone * window).min(((window - largest) / 2.0 - 2.0).max(0.0));
    let mut held = Vec::with_capacity(n);
    let mut p = target[0];
    for &c in &target {
        if c - p > zone {
            p = c - zone;
        } else if p - c > zone {
            p = c + zone;
        }
        held.push(p);
    }
    let smooth = moving_average(&held, ((m.smoothing_s * fps).round() as usize) | 1);
    let step = m.max_speed * frame / fps.max(1e-3);
    let limited = speed_limited(&smooth, step);
    limited
        .iter()
        .map(|c| {
            let left = (c - window / 2.0).clamp(0.0, travel);
            // Even, and never past the frame's edge.
            ((left / 2.0).round() * 2.0).min(travel) as u32 & !1
        })
        .collect()
}

/// The target centre on each of `n` frames from samples (frame, centre, _).
fn interpolate(n: usize, track: &[(f64, f64, f64)]) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    let mut next = 0;
    for i in 0..n {
        let f = i as f64;
        while next < track.len() && track[next].0 <= f {
            next += 1;
        }
        let c = match (next.checked_sub(1).map(|p| track[p]), track.get(next)) {
            (Some(a), Some(b)) if b.0 > a.0 => a.1 + (b.1 - a.1) * (f - a.0) / (b.0 - a.0),
            (Some(a), _) => a.1,
            (None, Some(b)) => b.1,
            (None, None) => unreachable!("the track is not empty"),
        };
        out.push(c);
    }
    out
}

/// A centred moving average over `window` (odd) samples, the ends repeated.
fn moving_average(v: &[f64], window: usize) -> Vec<f64> {
    let half = (window / 2) as isize;
    if half == 0 || v.is_empty() {
        return v.to_vec();
    }
    let at = |i: isize| v[i.clamp(0, v.len() as isize - 1) as usize];
    let mut sum: f64 = (-half..=half).map(at).sum();
    let mut out = Vec::with_capacity(v.len());
    let k = (2 * half + 1) as f64;
    for i in 0..v.len() as isize {
        out.push(sum / k);
        sum += at(i + half + 1) - at(i - half);
    }
    out
}

/// The mean of a forward and a backward pass that each move at most `step`
/// per frame towards `v`.
fn speed_limited(v: &[f64], step: f64) -> Vec<f64> {
    let pass = |order: &mut dyn Iterator<Item = usize>| {
        let mut out = vec![0.0; v.len()];
        let mut p: Option<f64> = None;
        for i in order {
            let q = match p {
                None => v[i],
                Some(p) => p + (v[i] - p).clamp(-step, step),
            };
            out[i] = q;
            p = Some(q);
        }
        out
    };
    let fwd = pass(&mut (0..v.len()));
    let bwd = pass(&mut (0..v.len()).rev());
    fwd.iter().zip(&bwd).map(|(a, b)| (a + b) / 2.0).collect()
}

/// Mean absolute second difference of `xs` (pixels a frame²): how much a
/// path jitters. Pairs that straddle one of `cuts` (frame indices where a
/// new shot starts) are left out.
pub fn jitter(xs: &[f64], cuts: &[u64]) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for i in 2..xs.len() {
        let crosses = cuts.iter().any(|&c| c as usize > i - 2 && c as usize <= i);
        if !crosses {
            sum += (xs[i] - 2.0 * xs[i - 1] + xs[i - 2]).abs();
            n += 1;
        }
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::FaceSample;

    const MOTION: Motion = Motion {
        dead_zone: 0.1,
        smoothing_s: 0.5,
        max_speed: 0.6,
    };

    fn shot(start: u64, end: u64, faces: &[(u64, Option<f64>)]) -> Shot {
        Shot {
            index: 0,
            start_frame: start,
            end_frame: end,
            start_s: start as f64 / 25.0,
            end_s: end as f64 / 25.0,
            brightness: 100.0,
            sharpness: 1.0,
            motion: 1.0,
            keyframe: None,
            faces: 0,
            largest_face: None,
            score: 0.5,
            thumbnail: None,
            thumbnail_error: None,
            face_track: faces
                .iter()
                .map(|&(frame, x)| FaceSample {
                    frame,
                    time_s: frame as f64 / 25.0,
                    face: x.map(|x| FaceBox {
                        x: x - 0.05,
                        y: 0.3,
                        w: 0.1,
                        h: 0.2,
                        prob: 0.99,
                    }),
                })
                .collect(),
        }
    }

    fn xs(shots: &[Shot], frames: u64) -> Vec<u32> {
        let axis = Axis {
            frame: 1280,
            window: 404,
        };
        offsets(
            shots,
            frames,
            25.0,
            axis,
            |f| (f.x + f.w / 2.0, f.w),
            &MOTION,
        )
    }

    #[test]
    fn no_face_is_a_still_centred_window() {
        let x = xs(&[shot(0, 100, &[(0, None), (6, None)])], 100);
        assert!(x.iter().all(|&v| v == 438), "{x:?}");
        assert_eq!(xs(&[], 10), vec![438; 10]);
    }

    #[test]
    fn a_still_face_with_noise_holds_the_window_still() {
        let noisy: Vec<_> = (0..17)
            .map(|i| (i * 6, Some(0.3 + if i % 2 == 0 { 0.01 } else { -0.01 })))
            .collect();
        let x = xs(&[shot(0, 100, &noisy)], 100);
        assert!(x.iter().all(|&v| v == x[0]), "{x:?}");
        let centre = x[0] as f64 + 202.0;
        assert!((centre - 0.31 * 1280.0).abs() < 4.0, "{centre}");
    }

    #[test]
    fn a_moving_face_stays_inside_and_speed_is_bounded() {
        // From 0.2 to 0.8 of the width in 2 s, held, then a cut to a face at 0.9.
        let track: Vec<_> = (0..=25)
            .map(|i| (i * 6, Some((0.2 + 0.6 * (i * 6) as f64 / 50.0).min(0.8))))
            .collect();
        let shots = [
            shot(0, 150, &track),
            shot(150, 200, &[(150, Some(0.9)), (156, Some(0.9))]),
        ];
        let x = xs(&shots, 200);
        assert_eq!(x.len(), 200);
        let step = 0.6 * 1280.0 / 25.0 + 2.0;
        for i in 1..150 {
            assert!((x[i] as f64 - x[i - 1] as f64).abs() <= step, "{i}: {x:?}");
        }
        for (i, &v) in x.iter().enumerate().take(150) {
            let face = (0.2 + 0.6 * i as f64 / 50.0).min(0.8) * 1280.0;
            let (l, r) = (v as f64, v as f64 + 404.0);
            assert!(face - 64.0 >= l - 1.0 && face + 64.0 <= r + 1.0, "{i}: {v}");
        }
        assert!(x[140..150].iter().all(|&v| v == x[149]), "held at the end");
        assert_eq!(x[150], 1280 - 404, "the cut resets to the new face");
        assert!(x.iter().all(|v| v % 2 == 0));
    }

    #[test]
    fn jitter_skips_cuts() {
        assert_eq!(jitter(&[0.0, 1.0, 2.0, 3.0], &[]), 0.0);
        assert_eq!(jitter(&[0.0, 0.0, 10.0, 10.0], &[2]), 0.0);
        assert_eq!(jitter(&[0.0, 0.0, 10.0, 10.0], &[]), 10.0);
    }
}
