//! RGB to HSV with OpenCV's 8-bit convention, as one custom op.

use super::contiguous;
use crate::simd::multiversion;
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

/// Converts frames of planar RGB (`u8`, `[frames, 3, height, width]`) to
/// planar HSV of the same shape and type with OpenCV's 8-bit convention:
/// `V = max`, `S = 255·(max−min)/max`, `H` = hue in degrees halved (0..180),
/// each rounded as OpenCV does (`floor(x + 0.5)`); grey pixels have
/// `H = S = 0`, and ties between maxima go to red, then green.
pub fn rgb_to_hsv(frames: &Tensor) -> Result<Tensor> {
    if frames.device().is_cpu() {
        frames.contiguous()?.apply_op1_no_bwd(&RgbToHsv)
    } else {
        with_tensor_ops(frames)
    }
}

/// The CPU kernel of [`rgb_to_hsv`].
struct RgbToHsv;

impl CustomOp1 for RgbToHsv {
    fn name(&self) -> &'static str {
        "rgb-to-hsv"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::U8(data) = storage else {
            bail!("rgb-to-hsv: expected u8 frames, got {:?}", storage.dtype())
        };
        let rgb = contiguous(data, layout, self.name())?;
        let (_, channels, height, width) = layout.shape().dims4()?;
        if channels != 3 {
            bail!("rgb-to-hsv: expected 3 planes per frame, got {channels}");
        }
        let plane = height * width;
        let mut hsv = vec![0u8; rgb.len()];
        if plane > 0 {
            convert_frames(rgb, &mut hsv, plane);
        }
        Ok((CpuStorage::U8(hsv), layout.shape().clone()))
    }
}

multiversion! {
    /// Frames of `plane` pixels: `src` holds each frame's R, G and B planes,
    /// `dst` gets its H, S and V planes.
    fn convert_frames(src: &[u8], dst: &mut [u8], plane: usize) {
        for (src, dst) in src.chunks_exact(3 * plane).zip(dst.chunks_exact_mut(3 * plane)) {
            let (r, gb) = src.split_at(plane);
            let (g, b) = gb.split_at(plane);
            let (h, sv) = dst.split_at_mut(plane);
            let (s, v) = sv.split_at_mut(plane);
            let (g, b) = (&g[..plane], &b[..plane]);
            let (h, s, v) = (&mut h[..plane], &mut s[..plane], &mut v[..plane]);
            for i in 0..plane {
                (h[i], s[i], v[i]) = pixel(r[i], g[i], b[i]);
            }
        }
    }
}

/// One pixel, with the arithmetic of [`with_tensor_ops`]: the divisions are
/// the same f32 divisions, so the results are the same bit for bit. The
/// rounding `floor(x + 0.5)` is taken as a truncation of a positive number:
/// for hue, of `x + 180.5`, which also wraps negative hues (a quotient of
/// integers with a divisor below 256 is either a half-integer, exact in f32,
/// or further than 1/510 from one, so the shift moves no result across an
/// integer).
#[inline(always)]
fn pixel(r: u8, g: u8, b: u8) -> (u8, u8, u8) {
    let max = r.max(g).max(b);
    let chroma = max - r.min(g).min(b);
    let (r, g, b, c) = (i32::from(r), i32::from(g), i32::from(b), i32::from(chroma));
    let m = i32::from(max);
    let s = (c * 255) as f32 / m.max(1) as f32 + 0.5;
    let sector = if m == r {
        g - b
    } else if m == g {
        b - r + 2 * c
    } else {
        r - g + 4 * c
    };
    let h = (sector * 30) as f32 / c.max(1) as f32 + 180.5;
    // SAFETY: both are finite and in range for i32: `s` in 0.5..=255.5 (as
    // `c ≤ m`) and `h` in 150.5..=330.5 (as `−c ≤ sector ≤ 5c`). Unchecked,
    // the conversions vectorise; checked, they are scalar.
    let (s, h) = unsafe { (s.to_int_unchecked::<i32>(), h.to_int_unchecked::<i32>()) };
    let h = if h >= 180 { h - 180 } else { h };
    (h as u8, s as u8, max)
}

/// [`rgb_to_hsv`] with plain tensor ops in f32, for devices without the kernel.
fn with_tensor_ops(frames: &Tensor) -> Result<Tensor> {
    let x = frames.to_dtype(DType::F32)?;
    let plane = |i| x.narrow(1, i, 1);
    let (r, g, b) = (plane(0)?, plane(1)?, plane(2)?);
    let v = r.maximum(&g)?.maximum(&b)?;
    let min = r.minimum(&g)?.minimum(&b)?;
    let chroma = (&v - &min)?;
    let s = (chroma.affine(255.0, 0.0)? / v.maximum(1.0)?)?
        .affine(1.0, 0.5)?
        .floor()?;
    // The hue sector, in units of `chroma`, from whichever channel is the
    // maximum (red first, then green, as OpenCV breaks ties).
    let from_r = (&g - &b)?;
    let from_g = ((&b - &r)? + chroma.affine(2.0, 0.0)?)?;
    let from_b = ((&r - &g)? + chroma.affine(4.0, 0.0)?)?;
    let sector = v
        .eq(&r)?
        .where_cond(&from_r, &v.eq(&g)?.where_cond(&from_g, &from_b)?)?;
    // 60° per sector unit, halved: 30 per unit of `chroma`.
    let h = (sector.affine(30.0, 0.0)? / chroma.maximum(1.0)?)?
        .affine(1.0, 0.5)?
        .floor()?;
    let h = h.lt(0.0)?.where_cond(&h.affine(1.0, 180.0)?, &h)?;
    Tensor::cat(&[h, s, v], 1)?.to_dtype(DType::U8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::test_data;
    use candle_core::Device;

    fn hsv_of(rgb: [u8; 3]) -> [u8; 3] {
        let frame = Tensor::from_vec(rgb.to_vec(), (1, 3, 1, 1), &Device::Cpu).unwrap();
        let hsv = rgb_to_hsv(&frame).unwrap().flatten_all().unwrap();
        hsv.to_vec1::<u8>().unwrap().try_into().unwrap()
    }

    #[test]
    fn follows_opencv_8bit_convention() {
        assert_eq!(hsv_of([255, 0, 0]), [0, 255, 255]);
        assert_eq!(hsv_of([0, 255, 0]), [60, 255, 255]);
        assert_eq!(hsv_of([0, 0, 255]), [120, 255, 255]);
        assert_eq!(hsv_of([0, 0, 0]), [0, 0, 0]);
        assert_eq!(hsv_of([128, 128, 128]), [0, 0, 128]);
        // 330° → 165; negative sector wraps.
        assert_eq!(hsv_of([255, 0, 128]), [165, 255, 255]);
        // 210° → 105, S = 255·20/30 = 170.
        assert_eq!(hsv_of([10, 20, 30]), [105, 170, 30]);
        // Ties go to red: yellow is 60° → 30.
        assert_eq!(hsv_of([255, 255, 0]), [30, 255, 255]);
    }

    /// Every red and green level, with blue in steps of 3 (and 255), through
    /// the kernel and through the tensor ops: equal everywhere.
    #[test]
    fn kernel_equals_tensor_ops_over_the_colour_cube() {
        let blues: Vec<u8> = (0..=255u8).step_by(3).chain([255]).collect();
        for chunk in blues.chunks(16) {
            let mut data = Vec::with_capacity(chunk.len() * 3 * 65536);
            for &b in chunk {
                data.extend((0..65536u32).map(|i| (i >> 8) as u8));
                data.extend((0..65536u32).map(|i| i as u8));
                data.extend(std::iter::repeat_n(b, 65536));
            }
            let frames = Tensor::from_vec(data, (chunk.len(), 3, 256, 256), &Device::Cpu).unwrap();
            let kernel = rgb_to_hsv(&frames).unwrap().flatten_all().unwrap();
            let ops = with_tensor_ops(&frames).unwrap().flatten_all().unwrap();
            assert_eq!(
                kernel.to_vec1::<u8>().unwrap(),
                ops.to_vec1::<u8>().unwrap(),
                "blue levels {chunk:?}"
            );
        }
    }

    #[test]
    fn views_and_odd_sizes_are_converted() {
        let frames = test_data::frames(5, 7, 9, 1);
        let view = frames.narrow(0, 1, 3).unwrap();
        let kernel = rgb_to_hsv(&view).unwrap();
        assert_eq!(kernel.dims(), [3, 3, 7, 9]);
        let ops = with_tensor_ops(&view).unwrap();
        assert_eq!(
            kernel.flatten_all().unwrap().to_vec1::<u8>().unwrap(),
            ops.flatten_all().unwrap().to_vec1::<u8>().unwrap()
        );
        let empty = frames.narrow(0, 0, 0).unwrap();
        assert_eq!(rgb_to_hsv(&empty).unwrap().dims(), [0, 3, 7, 9]);
    }
}
