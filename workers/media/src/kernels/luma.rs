//! BT.601 luma of frames, and each frame's brightness and sharpness from it,
//! as two custom ops.

use super::{contiguous, lane_sum, lanes};
use crate::simd::multiversion;
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

const R: f32 = 0.299;
const G: f32 = 0.587;
const B: f32 = 0.114;

/// Luma `Y = 0.299 R + 0.587 G + 0.114 B` of frames of planar RGB (`u8`,
/// `[frames, 3, height, width]`): `f32` of shape `[frames, height, width]`,
/// 0–255.
pub fn luma(frames: &Tensor) -> Result<Tensor> {
    if frames.device().is_cpu() {
        frames.contiguous()?.apply_op1_no_bwd(&Luma)
    } else {
        luma_with_tensor_ops(frames)
    }
}

/// For luma frames (`f32`, `[frames, height, width]`): `f64` of shape
/// `[frames, 2]`, each frame's mean luma and the mean absolute response of
/// the 4-neighbour Laplacian (`4·Y(x,y) − Y(x±1,y) − Y(x,y±1)`) over its
/// interior pixels (0 for frames too small to have any).
pub fn luma_stats(luma: &Tensor) -> Result<Tensor> {
    if luma.device().is_cpu() {
        luma.contiguous()?.apply_op1_no_bwd(&LumaStats)
    } else {
        stats_with_tensor_ops(luma)
    }
}

/// The CPU kernel of [`luma`].
struct Luma;

impl CustomOp1 for Luma {
    fn name(&self) -> &'static str {
        "luma"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::U8(data) = storage else {
            bail!("luma: expected u8 frames, got {:?}", storage.dtype())
        };
        let rgb = contiguous(data, layout, self.name())?;
        let (frames, channels, height, width) = layout.shape().dims4()?;
        if channels != 3 {
            bail!("luma: expected 3 planes per frame, got {channels}");
        }
        let plane = height * width;
        let mut y = vec![0.0f32; frames * plane];
        if plane > 0 {
            luma_frames(rgb, &mut y, plane);
        }
        Ok((CpuStorage::F32(y), Shape::from((frames, height, width))))
    }
}

multiversion! {
    /// Frames of `plane` pixels: `src` holds each frame's R, G and B planes,
    /// `dst` gets its luma.
    fn luma_frames(src: &[u8], dst: &mut [f32], plane: usize) {
        for (src, dst) in src.chunks_exact(3 * plane).zip(dst.chunks_exact_mut(plane)) {
            let (r, gb) = src.split_at(plane);
            let (g, b) = gb.split_at(plane);
            let (g, b) = (&g[..plane], &b[..plane]);
            for (i, out) in dst.iter_mut().enumerate() {
                // The order of the tensor ops: (R + G) + B.
                *out = (f32::from(r[i]) * R + f32::from(g[i]) * G) + f32::from(b[i]) * B;
            }
        }
    }
}

/// The CPU kernel of [`luma_stats`].
struct LumaStats;

impl CustomOp1 for LumaStats {
    fn name(&self) -> &'static str {
        "luma-stats"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            bail!("luma-stats: expected f32 luma, got {:?}", storage.dtype())
        };
        let y = contiguous(data, layout, self.name())?;
        let (frames, height, width) = layout.shape().dims3()?;
        let plane = height * width;
        let mut stats = Vec::with_capacity(2 * frames);
        for f in 0..frames {
            let frame = &y[f * plane..(f + 1) * plane];
            let brightness = if plane == 0 {
                0.0
            } else {
                sum(frame) / plane as f64
            };
            stats.push(brightness);
            stats.push(laplacian_magnitude(frame, height, width));
        }
        Ok((CpuStorage::F64(stats), Shape::from((frames, 2))))
    }
}

multiversion! {
    fn sum(values: &[f32]) -> f64 {
        let (chunks, rest) = lanes(values);
        lane_sum(chunks.iter().copied(), rest.iter().copied())
    }
}

multiversion! {
    /// Mean absolute 4-neighbour Laplacian over the interior of one frame.
    fn laplacian_magnitude(frame: &[f32], height: usize, width: usize) -> f64 {
        if height < 3 || width < 3 {
            return 0.0;
        }
        let inner = width - 2;
        let mut total = 0.0;
        for y in 1..height - 1 {
            let row = |dy: usize| &frame[(y + dy - 1) * width..(y + dy) * width];
            let (up, mid, down) = (row(0), row(1), row(2));
            let (up, down) = (&up[1..=inner], &down[1..=inner]);
            let (left, centre, right) = (&mid[..inner], &mid[1..=inner], &mid[2..]);
            // The order of the tensor ops: ((up + down) + left) + right.
            let laplacian = |u: f32, d: f32, l: f32, c: f32, r: f32| (c * 4.0 - (((u + d) + l) + r)).abs();
            let (u, d, l, c, r) = (lanes(up), lanes(down), lanes(left), lanes(centre), lanes(right));
            let terms = u.0.iter().zip(d.0).zip(l.0).zip(c.0).zip(r.0).map(|((((u, d), l), c), r)| {
                std::array::from_fn(|k| laplacian(u[k], d[k], l[k], c[k], r[k]))
            });
            let rest = (0..u.1.len()).map(|k| laplacian(u.1[k], d.1[k], l.1[k], c.1[k], r.1[k]));
            total += lane_sum(terms, rest);
        }
        total / ((height - 2) * inner) as f64
    }
}

/// [`luma`] with plain tensor ops, for devices without the kernel.
fn luma_with_tensor_ops(frames: &Tensor) -> Result<Tensor> {
    let x = frames.to_dtype(DType::F32)?;
    let plane = |i, weight| x.narrow(1, i, 1)?.squeeze(1)?.affine(weight, 0.0);
    (plane(0, f64::from(R))? + plane(1, f64::from(G))?)? + plane(2, f64::from(B))?
}

/// [`luma_stats`] with plain tensor ops, for devices without the kernel.
fn stats_with_tensor_ops(luma: &Tensor) -> Result<Tensor> {
    let (n, h, w) = luma.dims3()?;
    let brightness = luma.mean((1, 2))?;
    let sharpness = if h < 3 || w < 3 {
        Tensor::zeros(n, DType::F32, luma.device())?
    } else {
        let at = |dy: usize, dx: usize| luma.narrow(1, dy, h - 2)?.narrow(2, dx, w - 2);
        let neighbours = (((at(0, 1)? + at(2, 1)?)? + at(1, 0)?)? + at(1, 2)?)?;
        (at(1, 1)?.affine(4.0, 0.0)? - neighbours)?
            .abs()?
            .mean((1, 2))?
    };
    Tensor::stack(&[brightness, sharpness], 1)?.to_dtype(DType::F64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_data::{frames, max_diff};

    #[test]
    fn luma_kernel_equals_tensor_ops_exactly() {
        let x = frames(3, 17, 23, 5);
        let kernel = luma(&x).unwrap();
        assert_eq!(kernel.dims(), [3, 17, 23]);
        let ops = luma_with_tensor_ops(&x).unwrap();
        assert_eq!(
            kernel.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            ops.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
    }

    #[test]
    fn stats_kernel_equals_tensor_ops() {
        for (h, w) in [(31, 45), (3, 3), (2, 9), (9, 1)] {
            let y = luma(&frames(4, h, w, 7)).unwrap();
            let kernel = luma_stats(&y).unwrap();
            assert_eq!(kernel.dims(), [4, 2]);
            let ops = stats_with_tensor_ops(&y).unwrap();
            assert!(max_diff(&kernel, &ops) < 1e-3, "{h}x{w}");
        }
    }
}
