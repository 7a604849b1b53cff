//! Per-frame and per-shot picture quality, measured with candle ops (the
//! fused ops of [`crate::kernels`]: luma once per frame, then its mean,
//! Laplacian and change) on the same batches the shot detector sees, and the
//! highlight score.
//!
//! All measures work on luma, `Y = 0.299 R + 0.587 G + 0.114 B` (BT.601, as
//! OpenCV's grey conversion), on the 0–255 scale:
//!
//! * **brightness**: mean luma.
//! * **sharpness**: mean absolute response of the 4-neighbour Laplacian
//!   (`4·Y(x,y) − Y(x±1,y) − Y(x,y±1)`) over the interior pixels — the mean
//!   magnitude, not the variance, so it grows linearly with edge contrast and
//!   is not dominated by a few strong edges.
//! * **motion**: mean absolute luma difference against the previous frame.
//!
//! The measures depend on the decode size; they are comparable between shots
//! of the same analysis.

use crate::kernels;
use crate::MediaError;
use candle_core::Tensor;

/// Quality measures of one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameQuality {
    pub brightness: f64,
    pub sharpness: f64,
    /// Change from the previous frame; `None` for the stream's first frame.
    pub motion: Option<f64>,
}

/// Measures frames batch by batch, keeping the previous frame's luma.
#[derive(Debug, Clone, Default)]
pub struct QualityMeter {
    previous_luma: Option<Tensor>,
}

impl QualityMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Measures a batch of frames of planar RGB (`u8`, `[frames, 3, height,
    /// width]`, see [`crate::tensors::frames`]).
    pub fn measure(&mut self, frames: &Tensor) -> Result<Vec<FrameQuality>, MediaError> {
        let n = frames.dim(0)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let (_, _, h, w) = frames.dims4()?;
        let luma = luma(frames)?;
        let stats = kernels::luma_stats(&luma)?.to_vec2::<f64>()?;
        // Motion: mean |Δ| of luma against the previous frame, as one-plane
        // frames.
        let planes = luma.reshape((n, 1, h, w))?;
        let mut motion = Vec::with_capacity(n);
        match self.previous_luma.take() {
            Some(previous) => {
                let first = planes.narrow(0, 0, 1)?;
                motion.push(Some(mean_abs_diffs(&previous, &first)?[0]));
            }
            None => motion.push(None),
        }
        if n > 1 {
            let (before, after) = (planes.narrow(0, 0, n - 1)?, planes.narrow(0, 1, n - 1)?);
            motion.extend(mean_abs_diffs(&before, &after)?.into_iter().map(Some));
        }
        self.previous_luma = Some(planes.narrow(0, n - 1, 1)?);
        Ok(stats
            .iter()
            .zip(motion)
            .map(|(s, motion)| FrameQuality {
                brightness: s[0],
                sharpness: s[1],
                motion,
            })
            .collect())
    }
}

/// Mean `|b − a|` of each pair of one-plane frames (`[pairs, 1, h, w]`).
fn mean_abs_diffs(a: &Tensor, b: &Tensor) -> Result<Vec<f64>, MediaError> {
    Ok(kernels::plane_abs_diff_means(a, b)?
        .flatten_all()?
        .to_vec1::<f64>()?)
}

/// BT.601 luma of frames of planar RGB: `u8` `[n, 3, h, w]` → `f32` `[n, h, w]`.
pub fn luma(frames: &Tensor) -> Result<Tensor, MediaError> {
    Ok(kernels::luma(frames)?)
}

/// Mean absolute 4-neighbour Laplacian of each frame of `luma` (`f32`, `[n,
/// h, w]`); 0 for frames too small to have interior pixels.
pub fn laplacian_magnitude(luma: &Tensor) -> Result<Vec<f64>, MediaError> {
    let stats = kernels::luma_stats(luma)?.to_vec2::<f64>()?;
    Ok(stats.iter().map(|s| s[1]).collect())
}

/// Mean quality over the frames of one shot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShotQuality {
    pub brightness: f64,
    pub sharpness: f64,
    pub motion: f64,
}

/// Averages the frames of a shot. Motion leaves out the shot's first frame,
/// whose difference spans the cut into the shot; a one-frame shot has motion 0.
pub fn shot_quality(frames: &[FrameQuality]) -> ShotQuality {
    let mean = |values: &mut dyn Iterator<Item = f64>| {
        let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
        if count == 0 {
            0.0
        } else {
            sum / count as f64
        }
    };
    ShotQuality {
        brightness: mean(&mut frames.iter().map(|f| f.brightness)),
        sharpness: mean(&mut frames.iter().map(|f| f.sharpness)),
        motion: mean(&mut frames.iter().skip(1).filter_map(|f| f.motion)),
    }
}

/// Mean absolute Laplacian at which sharpness earns 63% of its credit.
const SHARPNESS_SCALE: f64 = 6.0;
/// Mean absolute luma change per frame that earns full motion credit.
const MOTION_SWEET_SPOT: f64 = 6.0;
/// Seconds at which the duration credit is 63% of the way from ½ to 1.
const DURATION_SCALE_S: f64 = 1.5;

/// Highlight score of a shot, in 0–1.
///
/// `score = exposure × (0.6·sharp + 0.4·motion) × length`, where each factor
/// is in 0–1:
///
/// * `exposure` (from mean luma `brightness`, 0–255): 1 for 70–180, falling
///   linearly to 0 at 16 (black) and at 240 (blown out). It multiplies, so a
///   black or white shot scores 0 however sharp or lively it is.
/// * `sharp = 1 − e^(−sharpness/6)`: saturating credit for detail (mean
///   absolute Laplacian of luma); a flat or blurred picture gets little.
/// * `motion = (m/6)·e^(1 − m/6)` for mean luma change `m` per frame: 0 for a
///   frozen picture, 1 at a lively `m = 6`, decaying again for chaotic change
///   (whip pans, strobing).
/// * `length = ½ + ½·(1 − e^(−duration_s/1.5))`: very short shots make poor
///   highlights, but length alone never more than halves a score.
///
/// Non-finite or negative inputs count as 0.
pub fn score(brightness: f64, sharpness: f64, motion: f64, duration_s: f64) -> f64 {
    let clean = |x: f64| if x.is_finite() && x > 0.0 { x } else { 0.0 };
    let (brightness, sharpness, motion, duration_s) = (
        clean(brightness),
        clean(sharpness),
        clean(motion),
        clean(duration_s),
    );
    let exposure = if brightness < 70.0 {
        (brightness - 16.0) / (70.0 - 16.0)
    } else if brightness > 180.0 {
        (240.0 - brightness) / (240.0 - 180.0)
    } else {
        1.0
    }
    .clamp(0.0, 1.0);
    let sharp = 1.0 - (-sharpness / SHARPNESS_SCALE).exp();
    let m = motion / MOTION_SWEET_SPOT;
    let lively = m * (1.0 - m).exp();
    let length = 0.5 + 0.5 * (1.0 - (-duration_s / DURATION_SCALE_S).exp());
    (exposure * (0.6 * sharp + 0.4 * lively) * length).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Frames `[n, 3, h, w]` of planar RGB from grey frames given as rows of
    /// levels.
    fn grey_frames(frames: &[Vec<Vec<u8>>]) -> Tensor {
        let mut data: Vec<u8> = Vec::new();
        for frame in frames {
            for _ in 0..3 {
                data.extend(frame.iter().flatten());
            }
        }
        let (h, w) = (frames[0].len(), frames[0][0].len());
        Tensor::from_vec(data, (frames.len(), 3, h, w), &Device::Cpu).unwrap()
    }

    fn flat(value: u8) -> Vec<Vec<u8>> {
        vec![vec![value; 5]; 4]
    }

    #[test]
    fn luma_uses_bt601_weights() {
        let frames = Tensor::from_vec(vec![255u8, 0, 0], (1, 3, 1, 1), &Device::Cpu).unwrap();
        let y = luma(&frames)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!((y[0] - 0.299 * 255.0).abs() < 1e-3);
    }

    #[test]
    fn measures_brightness_sharpness_and_motion() {
        let mut spot = flat(10);
        spot[1][2] = 110;
        let mut meter = QualityMeter::new();
        let first = meter
            .measure(&grey_frames(&[flat(10), spot.clone()]))
            .unwrap();
        assert_eq!(first[0].motion, None);
        assert!((first[0].brightness - 10.0).abs() < 1e-4);
        assert!(first[0].sharpness.abs() < 1e-6);
        // One pixel 100 brighter: mean luma +5; Laplacian 400 at the spot and
        // 100 at each of its 3 neighbours inside the 2x3 interior (mean
        // 700/6); motion 5.
        assert!((first[1].brightness - 15.0).abs() < 1e-4);
        assert!((first[1].sharpness - 700.0 / 6.0).abs() < 1e-3, "{first:?}");
        assert!((first[1].motion.unwrap() - 5.0).abs() < 1e-4);
        // The next batch is compared with the last frame of this one.
        let second = meter.measure(&grey_frames(&[spot])).unwrap();
        assert!(second[0].motion.unwrap().abs() < 1e-6);
    }

    #[test]
    fn shot_motion_skips_the_cut_frame() {
        let frame = |motion| FrameQuality {
            brightness: 100.0,
            sharpness: 2.0,
            motion,
        };
        let q = shot_quality(&[frame(Some(90.0)), frame(Some(2.0)), frame(Some(4.0))]);
        assert_eq!((q.brightness, q.sharpness, q.motion), (100.0, 2.0, 3.0));
        assert_eq!(shot_quality(&[frame(None)]).motion, 0.0);
    }

    #[test]
    fn score_prefers_exposed_sharp_lively_shots() {
        let good = score(120.0, 12.0, 6.0, 4.0);
        assert!(good > 0.8 && good <= 1.0, "{good}");
        assert!(score(5.0, 12.0, 6.0, 4.0) < 0.01, "black");
        assert!(score(250.0, 12.0, 6.0, 4.0) < 0.01, "blown out");
        assert!(score(120.0, 0.5, 6.0, 4.0) < good - 0.3, "blurred");
        assert!(score(120.0, 12.0, 0.0, 4.0) < good, "frozen");
        assert!(score(120.0, 12.0, 60.0, 4.0) < good, "chaotic");
        assert!(score(120.0, 12.0, 6.0, 0.2) < good, "a flash");
        assert_eq!(score(f64::NAN, 12.0, 6.0, 4.0), 0.0);
        for b in [0.0, 16.0, 50.0, 128.0, 200.0, 255.0] {
            for s in [0.0, 3.0, 100.0] {
                let x = score(b, s, 3.0, 1.0);
                assert!((0.0..=1.0).contains(&x));
            }
        }
    }
}
