//! Area resampling as PyTorch's `interpolate(mode="area")`, i.e. adaptive
//! average pooling: output cell `i` of `m` averages the input window
//! `[floor(i·n/m), ceil((i+1)·n/m))`, and the 2-D window's sum is divided by
//! its height, then by its width. On integer pixel values the sums are exact
//! (while a window's sum stays below 2^24, i.e. windows up to ~256×256
//! pixels), so the result is bit for bit PyTorch's.

use candle_core::{DType, Result, Tensor};
use std::ops::Range;

/// One axis's windows, their longest length and each length as `f32`.
struct Axis {
    windows: Vec<(usize, usize)>,
    taps: usize,
    len: Vec<f32>,
}

fn axis(input: usize, output: usize) -> Axis {
    let windows: Vec<(usize, usize)> = (0..output)
        .map(|i| (i * input / output, ((i + 1) * input).div_ceil(output)))
        .collect();
    let taps = windows.iter().map(|(s, e)| e - s).max().unwrap_or(1);
    let len = windows.iter().map(|(s, e)| (e - s) as f32).collect();
    Axis { windows, taps, len }
}

/// Window sums along `dim` (1 or 2 of `[lead, h, w]`) as a sum of `taps`
/// row or column gathers; a window shorter than `taps` gathers zeros
/// (candle's `u32::MAX` index: its CPU backend and its CUDA kernels,
/// `candle-kernels/src/indexing.cu`, both write 0 for it). Rows are whole-row copies (`index_select`),
/// columns element gathers (`gather`, much cheaper per element than an
/// `index_select` of single elements).
fn gather_sums(x: &Tensor, dim: usize, axis: &Axis) -> Result<Tensor> {
    let (lead, h, _) = x.dims3()?;
    let mut acc: Option<Tensor> = None;
    for t in 0..axis.taps {
        let index: Vec<u32> = axis
            .windows
            .iter()
            .map(|&(s, e)| if s + t < e { (s + t) as u32 } else { u32::MAX })
            .collect();
        let len = index.len();
        let part = if dim == 2 {
            let index = index.repeat(lead * h);
            x.gather(&Tensor::from_vec(index, (lead, h, len), x.device())?, 2)?
        } else {
            x.index_select(&Tensor::from_vec(index, len, x.device())?, dim)?
        };
        acc = Some(match acc {
            None => part,
            Some(acc) => (acc + part)?,
        });
    }
    acc.ok_or_else(|| candle_core::Error::Msg("area_resize: empty axis".into()))
}

/// The 0/1 matrix `[output, input]` that sums each window.
fn window_matrix(axis: &Axis, input: usize, x: &Tensor) -> Result<Tensor> {
    let mut m = vec![0f32; axis.windows.len() * input];
    for (i, &(s, e)) in axis.windows.iter().enumerate() {
        m[i * input + s..i * input + e].fill(1.0);
    }
    Tensor::from_vec(m, (axis.windows.len(), input), x.device())
}

/// Window sums of both axes as two matrix products, for `[lead, h, w]`.
fn matmul_sums(x: &Tensor, rows: &Axis, cols: &Axis) -> Result<Tensor> {
    let (lead, h, w) = x.dims3()?;
    let ow = cols.windows.len();
    let by_cols = window_matrix(cols, w, x)?.t()?;
    let y = x
        .reshape((lead * h, w))?
        .matmul(&by_cols)?
        .reshape((lead, h, ow))?;
    window_matrix(rows, h, x)?.broadcast_matmul(&y)
}

/// Resamples the last two dimensions (height, width) of an `f32` tensor of
/// rank 3 or 4 to `height × width` by area averaging.
///
/// The window sums come from gathers (cheap for mild reductions) or from two
/// products with 0/1 matrices (cheap for strong ones and small inputs),
/// whichever a rough cost estimate favours; both are exact on integers.
pub(crate) fn area_resize(x: &Tensor, height: usize, width: usize) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let rank = dims.len();
    if !(3..=4).contains(&rank) || x.dtype() != DType::F32 {
        candle_core::bail!("area_resize wants f32 [.., c, h, w], got {:?}", x.shape());
    }
    let (in_h, in_w) = (dims[rank - 2], dims[rank - 1]);
    if in_h == 0 || in_w == 0 || height == 0 || width == 0 {
        candle_core::bail!("area_resize from {in_h}×{in_w} to {height}×{width}");
    }
    let lead: usize = dims[..rank - 2].iter().product();
    let x = x.contiguous()?.reshape((lead, in_h, in_w))?;
    let rows = axis(in_h, height);
    let cols = axis(in_w, width);
    // Seconds, roughly: ~1 ns per gathered element and ~5 µs per op, against
    // ~30 GFLOP/s for the products.
    let ops = 5e-6;
    let gather = (lead * (rows.taps * height * in_w + cols.taps * height * width)) as f64 * 1e-9
        + (2 * (rows.taps + cols.taps)) as f64 * ops;
    let matmul =
        (2 * lead * (in_h * in_w * width + height * in_h * width)) as f64 / 30e9 + 4.0 * ops;
    let sums = if gather <= matmul {
        let by_rows = gather_sums(&x, 1, &rows)?;
        gather_sums(&by_rows, 2, &cols)?
    } else {
        matmul_sums(&x, &rows, &cols)?
    };
    let device = x.device();
    let row_len = Tensor::from_vec(rows.len, (1, height, 1), device)?;
    let col_len = Tensor::from_vec(cols.len, (1, 1, width), device)?;
    let mut out_dims = dims;
    out_dims[rank - 2] = height;
    out_dims[rank - 1] = width;
    sums.broadcast_div(&row_len)?
        .broadcast_div(&col_len)?
        .reshape(out_dims)
}

/// Most gathered elements per [`crop_resize`] batch (16 MB of `f32`).
const CROP_BUDGET: usize = 4 << 20;

/// Crops of a `[1, c, h, w]` image, each `(rows, cols)` window area-resampled
/// to `size × size`, as `[n, c, size, size]`: the same result as
/// [`area_resize`] on each crop, in one gather and one sum per batch. The
/// crops are batched by window size so that little padding is gathered.
pub(crate) fn crop_resize(
    image: &Tensor,
    windows: &[(Range<usize>, Range<usize>)],
    size: usize,
) -> Result<Tensor> {
    let (n, c, h, w) = image.dims4()?;
    if n != 1 || windows.is_empty() || size == 0 {
        candle_core::bail!("crop_resize wants one image and some windows");
    }
    let plans: Vec<(Axis, Axis)> = windows
        .iter()
        .map(|(rows, cols)| (axis(rows.len(), size), axis(cols.len(), size)))
        .collect();
    let mut order: Vec<usize> = (0..windows.len()).collect();
    order.sort_by_key(|&b| plans[b].0.taps * plans[b].1.taps);
    let flat = image.contiguous()?.flatten_all()?;
    let device = image.device();
    let cells = c * size * size;
    let mut batches = Vec::new();
    let mut start = 0;
    while start < order.len() {
        // Sorted by taps, so the batch's last box has the most.
        let mut end = start + 1;
        while end < order.len() {
            let (rows, cols) = &plans[order[end]];
            if (end + 1 - start) * cells * rows.taps * cols.taps > CROP_BUDGET {
                break;
            }
            end += 1;
        }
        let batch = &order[start..end];
        let taps = batch
            .iter()
            .map(|&b| plans[b].0.taps * plans[b].1.taps)
            .max()
            .unwrap_or(1);
        let mut index = Vec::with_capacity(batch.len() * cells * taps);
        let mut row_len = Vec::with_capacity(batch.len() * size);
        let mut col_len = Vec::with_capacity(batch.len() * size);
        for &b in batch {
            let (rows, cols) = &plans[b];
            let (y0, x0) = (windows[b].0.start, windows[b].1.start);
            for ch in 0..c {
                for &(ys, ye) in &rows.windows {
                    for &(xs, xe) in &cols.windows {
                        let before = index.len();
                        for y in ys..ye {
                            let base = ch * h * w + (y0 + y) * w + x0;
                            index.extend((xs..xe).map(|x| (base + x) as u32));
                        }
                        index.resize(before + taps, u32::MAX);
                    }
                }
            }
            row_len.extend_from_slice(&rows.len);
            col_len.extend_from_slice(&cols.len);
        }
        let nb = batch.len();
        let len = index.len();
        let gathered = flat.gather(&Tensor::from_vec(index, len, device)?, 0)?;
        let sums = gathered.reshape((nb, c, size, size, taps))?.sum(4)?;
        let row_len = Tensor::from_vec(row_len, (nb, 1, size, 1), device)?;
        let col_len = Tensor::from_vec(col_len, (nb, 1, 1, size), device)?;
        batches.push(sums.broadcast_div(&row_len)?.broadcast_div(&col_len)?);
        start = end;
    }
    let sorted = Tensor::cat(&batches, 0)?;
    // Back to the windows' order.
    let mut inverse = vec![0u32; order.len()];
    for (pos, &b) in order.iter().enumerate() {
        inverse[b] = pos as u32;
    }
    let len = inverse.len();
    sorted.index_select(&Tensor::from_vec(inverse, len, device)?, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The definition, cell by cell, in f64.
    fn reference(x: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
        let mut out = Vec::new();
        for i in 0..oh {
            let (y0, y1) = (i * h / oh, ((i + 1) * h).div_ceil(oh));
            for j in 0..ow {
                let (x0, x1) = (j * w / ow, ((j + 1) * w).div_ceil(ow));
                let mut sum = 0.0f64;
                for y in y0..y1 {
                    for xx in x0..x1 {
                        sum += f64::from(x[y * w + xx]);
                    }
                }
                out.push((sum as f32) / ((y1 - y0) as f32) / ((x1 - x0) as f32));
            }
        }
        out
    }

    #[test]
    fn matches_adaptive_average_pooling_down_and_up() -> Result<()> {
        let (h, w) = (17, 23);
        let pixels: Vec<f32> = (0..h * w).map(|i| ((i * 37 + 11) % 256) as f32).collect();
        let x = Tensor::from_slice(&pixels, (1, 1, h, w), &Device::Cpu)?;
        for (oh, ow) in [(12, 12), (5, 9), (17, 23), (24, 24), (40, 31), (1, 1)] {
            let got = area_resize(&x, oh, ow)?.flatten_all()?.to_vec1::<f32>()?;
            assert_eq!(got, reference(&pixels, h, w, oh, ow), "{oh}×{ow}");
        }
        Ok(())
    }

    #[test]
    fn gathers_and_products_give_the_same_sums() -> Result<()> {
        let (h, w) = (31, 45);
        let pixels: Vec<f32> = (0..3 * h * w)
            .map(|i| ((i * 53 + 7) % 256) as f32)
            .collect();
        let x = Tensor::from_slice(&pixels, (3, h, w), &Device::Cpu)?;
        for (oh, ow) in [(12, 12), (24, 24), (7, 40), (31, 45)] {
            let (rows, cols) = (axis(h, oh), axis(w, ow));
            let gathered = gather_sums(&gather_sums(&x, 1, &rows)?, 2, &cols)?;
            let product = matmul_sums(&x, &rows, &cols)?;
            let diff = (gathered - product)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert_eq!(diff, 0.0, "{oh}×{ow}");
        }
        Ok(())
    }

    #[test]
    fn crops_resize_like_area_resize_on_each_crop() -> Result<()> {
        let (h, w) = (60, 80);
        let pixels: Vec<f32> = (0..3 * h * w)
            .map(|i| ((i * 29 + 3) % 256) as f32)
            .collect();
        let image = Tensor::from_slice(&pixels, (1, 3, h, w), &Device::Cpu)?;
        let windows = [
            (0..60, 0..80),
            (5..9, 7..10),
            (10..40, 20..31),
            (0..1, 79..80),
        ];
        for size in [24, 48] {
            let got = crop_resize(&image, &windows, size)?;
            assert_eq!(got.dims4()?, (windows.len(), 3, size, size));
            for (b, (rows, cols)) in windows.iter().enumerate() {
                let crop =
                    image
                        .narrow(2, rows.start, rows.len())?
                        .narrow(3, cols.start, cols.len())?;
                let want = area_resize(&crop, size, size)?.squeeze(0)?;
                let diff = (got.get(b)? - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert_eq!(diff, 0.0, "window {b} at {size}");
            }
        }
        Ok(())
    }

    #[test]
    fn keeps_channels_apart() -> Result<()> {
        let x = Tensor::cat(
            &[
                &Tensor::full(10f32, (1, 1, 6, 6), &Device::Cpu)?,
                &Tensor::full(200f32, (1, 1, 6, 6), &Device::Cpu)?,
            ],
            1,
        )?;
        let y = area_resize(&x, 4, 4)?;
        assert_eq!(y.dims4()?, (1, 2, 4, 4));
        let v = y.flatten_all()?.to_vec1::<f32>()?;
        assert!(v[..16].iter().all(|&p| p == 10.0) && v[16..].iter().all(|&p| p == 200.0));
        Ok(())
    }
}
