//! Fused candle ops for the analysis measures: custom ops ([`CustomOp1`],
//! [`CustomOp2`]) whose CPU kernels are written in Rust, one pass over the
//! frames each, instead of chains of element-wise tensor ops that allocate an
//! intermediate tensor per step.
//!
//! Frames come in as decoded: `u8` of shape `[frames, 3, height, width]`
//! (planar RGB per frame, see [`crate::decode::FrameBatch`]). The ops:
//!
//! * [`rgb_to_hsv`]: RGB to HSV with OpenCV's 8-bit convention, `u8` in and
//!   out (the values are integers anyway).
//! * [`plane_abs_diff_means`]: mean `|a − b|` of each plane of each frame
//!   pair, for content scores (HSV, `u8`) and motion (luma, `f32`).
//! * [`luma`] and [`luma_stats`]: BT.601 luma, then each frame's mean and
//!   mean absolute Laplacian.
//!
//! Each op also has a twin made of plain candle ops, which runs on devices
//! without a kernel here (CUDA, Metal) and which the tests hold the kernel to:
//! the same values, bit for bit where the arithmetic is the same (HSV, luma),
//! to rounding where only the order of a sum differs (means).
//!
//! [`CustomOp1`]: candle_core::CustomOp1
//! [`CustomOp2`]: candle_core::CustomOp2

mod diff;
mod hsv;
mod luma;

pub use diff::plane_abs_diff_means;
pub use hsv::rgb_to_hsv;
pub use luma::{luma, luma_stats};

use candle_core::{bail, Layout, Result};

/// The elements of a contiguous tensor's storage; an error naming `op` for a
/// strided one (callers make their inputs contiguous first).
fn contiguous<'a, T>(data: &'a [T], layout: &Layout, op: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: the input must be contiguous"),
    }
}

/// Width of the f32 accumulators of [`lane_sum`]: one AVX2 register.
const LANES: usize = 8;

/// `values` as runs of [`LANES`] values, and the rest.
#[inline(always)]
fn lanes(values: &[f32]) -> (&[[f32; LANES]], &[f32]) {
    values.as_chunks()
}

/// Sums `terms` (each `LANES` terms side by side, so the loops producing
/// them vectorise) and then `rest`, in f32 over `LANES` independent lanes
/// that are added up in f64 every few thousand terms.
#[inline(always)]
fn lane_sum(mut terms: impl Iterator<Item = [f32; LANES]>, rest: impl Iterator<Item = f32>) -> f64 {
    const FLUSH: usize = 512;
    let mut total = 0.0f64;
    loop {
        let mut acc = [0.0f32; LANES];
        let mut taken = 0;
        for t in terms.by_ref().take(FLUSH) {
            for k in 0..LANES {
                acc[k] += t[k];
            }
            taken += 1;
        }
        total += acc.iter().map(|&a| f64::from(a)).sum::<f64>();
        if taken < FLUSH {
            break;
        }
    }
    total + rest.map(f64::from).sum::<f64>()
}

#[cfg(test)]
mod test_data {
    use candle_core::{Device, Tensor};

    /// `len` pseudo-random bytes, the same on every run.
    pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect()
    }

    /// Frames `[n, 3, h, w]` of pseudo-random RGB.
    pub fn frames(n: usize, h: usize, w: usize, seed: u64) -> Tensor {
        Tensor::from_vec(bytes(n * 3 * h * w, seed), (n, 3, h, w), &Device::Cpu).unwrap()
    }

    /// Largest absolute difference between two f64 tensors of one shape.
    pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        let a = a.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }
}
