//! Mean absolute difference of each plane of frame pairs, as one custom op.

use super::{contiguous, lane_sum, lanes};
use crate::simd::multiversion;
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

/// For frames `a` and `b` of one shape `[pairs, planes, height, width]` and
/// one type (`u8` or `f32`): `f64` of shape `[pairs, planes]`, the mean of
/// `|b − a|` over each plane of each pair.
pub fn plane_abs_diff_means(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.device().is_cpu() {
        a.contiguous()?
            .apply_op2_no_bwd(&b.contiguous()?, &PlaneAbsDiffMeans)
    } else {
        with_tensor_ops(a, b)
    }
}

/// The CPU kernel of [`plane_abs_diff_means`].
struct PlaneAbsDiffMeans;

impl CustomOp2 for PlaneAbsDiffMeans {
    fn name(&self) -> &'static str {
        "plane-abs-diff-means"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            bail!(
                "{}: shapes differ, {:?} and {:?}",
                self.name(),
                l1.shape(),
                l2.shape()
            );
        }
        let (pairs, planes, height, width) = l1.shape().dims4()?;
        let plane = height * width;
        if plane == 0 {
            let zeros = vec![0.0; pairs * planes];
            return Ok((CpuStorage::F64(zeros), Shape::from((pairs, planes))));
        }
        let sums: Vec<f64> = match (s1, s2) {
            (CpuStorage::U8(a), CpuStorage::U8(b)) => {
                let (a, b) = (
                    contiguous(a, l1, self.name())?,
                    contiguous(b, l2, self.name())?,
                );
                per_plane(a, b, plane, sum_abs_diff_u8)
            }
            (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                let (a, b) = (
                    contiguous(a, l1, self.name())?,
                    contiguous(b, l2, self.name())?,
                );
                per_plane(a, b, plane, sum_abs_diff_f32)
            }
            _ => bail!(
                "{}: expected two u8 or two f32 tensors, got {:?} and {:?}",
                self.name(),
                s1.dtype(),
                s2.dtype()
            ),
        };
        let means = sums.into_iter().map(|s| s / plane as f64).collect();
        Ok((CpuStorage::F64(means), Shape::from((pairs, planes))))
    }
}

/// `sum(a, b)` of each plane of `plane` (at least 1) elements.
fn per_plane<T>(a: &[T], b: &[T], plane: usize, sum: fn(&[T], &[T]) -> f64) -> Vec<f64> {
    a.chunks_exact(plane)
        .zip(b.chunks_exact(plane))
        .map(|(a, b)| sum(a, b))
        .collect()
}

multiversion! {
    fn sum_abs_diff_u8(a: &[u8], b: &[u8]) -> f64 {
        // Blocks small enough that a u32 sum cannot overflow.
        const BLOCK: usize = 1 << 16;
        a.chunks(BLOCK)
            .zip(b.chunks(BLOCK))
            .map(|(a, b)| {
                let block: u32 = a.iter().zip(b).map(|(x, y)| u32::from(x.abs_diff(*y))).sum();
                f64::from(block)
            })
            .sum()
    }
}

multiversion! {
    fn sum_abs_diff_f32(a: &[f32], b: &[f32]) -> f64 {
        let ((a, a_rest), (b, b_rest)) = (lanes(a), lanes(b));
        let terms = a
            .iter()
            .zip(b)
            .map(|(a, b)| std::array::from_fn(|k| (b[k] - a[k]).abs()));
        lane_sum(terms, a_rest.iter().zip(b_rest).map(|(a, b)| (b - a).abs()))
    }
}

/// [`plane_abs_diff_means`] with plain tensor ops, for devices without the kernel.
fn with_tensor_ops(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (a, b) = (a.to_dtype(DType::F32)?, b.to_dtype(DType::F32)?);
    (b - a)?.abs()?.mean((2, 3))?.to_dtype(DType::F64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_data::{frames, max_diff};

    #[test]
    fn kernel_equals_tensor_ops_for_bytes_and_floats() {
        let (a, b) = (frames(4, 30, 50, 1), frames(4, 30, 50, 2));
        let kernel = plane_abs_diff_means(&a, &b).unwrap();
        assert_eq!(kernel.dims(), [4, 3]);
        assert!(max_diff(&kernel, &with_tensor_ops(&a, &b).unwrap()) < 1e-3);
        let (a, b) = (
            a.to_dtype(DType::F32).unwrap().affine(0.37, 0.0).unwrap(),
            b.to_dtype(DType::F32).unwrap().affine(0.61, 0.0).unwrap(),
        );
        let kernel = plane_abs_diff_means(&a, &b).unwrap();
        assert!(max_diff(&kernel, &with_tensor_ops(&a, &b).unwrap()) < 1e-3);
    }

    #[test]
    fn consecutive_frames_of_one_tensor() {
        let x = frames(6, 8, 8, 3);
        let (before, after) = (x.narrow(0, 0, 5).unwrap(), x.narrow(0, 1, 5).unwrap());
        let kernel = plane_abs_diff_means(&before, &after).unwrap();
        assert_eq!(kernel.dims(), [5, 3]);
        let ops = with_tensor_ops(&before, &after).unwrap();
        assert!(max_diff(&kernel, &ops) < 1e-3);
    }

    #[test]
    fn mismatched_inputs_are_errors() {
        let (a, b) = (frames(2, 4, 4, 1), frames(3, 4, 4, 1));
        assert!(plane_abs_diff_means(&a, &b).is_err());
        let f = a.to_dtype(DType::F32).unwrap();
        assert!(plane_abs_diff_means(&a, &f).is_err());
    }
}
