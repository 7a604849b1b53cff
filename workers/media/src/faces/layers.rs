//! The layers MTCNN needs, on candle, for the channel-major layout
//! (`[c, n, h, w]`) the networks keep their activations in: each convolution
//! over a whole batch of crops is then one im2col and one matrix product
//! rather than one small product per crop.

use candle_core::{Module, Result, Tensor};
use candle_nn::{conv2d, Conv2dConfig, VarBuilder};

/// `nn.Conv2d(in, out, kernel)` (stride 1, no padding) on `[c, n, h, w]`, as
/// im2col and one matrix product: with MTCNN's few channels this is several
/// times faster on the CPU than candle's general `conv2d`.
#[derive(Debug, Clone)]
pub struct Conv {
    /// `[out, kernel · kernel · in]`, taps ordered (row, column, channel).
    weight: Tensor,
    /// `[out, 1]`.
    bias: Tensor,
    kernel: usize,
}

impl Conv {
    pub fn new(in_c: usize, out_c: usize, kernel: usize, vb: VarBuilder) -> Result<Self> {
        let conv = conv2d(in_c, out_c, kernel, Conv2dConfig::default(), vb)?;
        let Some(bias) = conv.bias() else {
            candle_core::bail!("MTCNN convolutions have a bias");
        };
        Ok(Self {
            weight: conv
                .weight()
                .permute((0, 2, 3, 1))?
                .contiguous()?
                .reshape((out_c, kernel * kernel * in_c))?,
            bias: bias.reshape((out_c, 1))?,
            kernel,
        })
    }
}

impl Module for Conv {
    /// `[c, n, h, w]` to `[out, n, h - k + 1, w - k + 1]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (c, n, h, w) = x.dims4()?;
        let k = self.kernel;
        if h < k || w < k {
            candle_core::bail!("conv{k}x{k} on a {h}×{w} input");
        }
        let (oh, ow) = (h + 1 - k, w + 1 - k);
        let cols = if k == 1 {
            x.reshape((c, n * h * w))?
        } else {
            let taps = (0..k * k)
                .map(|i| x.narrow(2, i / k, oh)?.narrow(3, i % k, ow))
                .collect::<Result<Vec<_>>>()?;
            Tensor::stack(&taps, 0)?.reshape((k * k * c, n * oh * ow))?
        };
        let out_c = self.weight.dim(0)?;
        self.weight
            .matmul(&cols)?
            .broadcast_add(&self.bias)?
            .reshape((out_c, n, oh, ow))
    }
}

pub(crate) fn conv(in_c: usize, out_c: usize, kernel: usize, vb: VarBuilder) -> Result<Conv> {
    Conv::new(in_c, out_c, kernel, vb)
}

/// `nn.PReLU(channels)` with the channel on dimension `dim`: `x` where
/// positive, `weight · x` elsewhere.
#[derive(Debug, Clone)]
pub struct PRelu {
    weight: Tensor,
    /// Whether every slope is at most 1 (true of MTCNN's), which allows the
    /// cheaper form.
    at_most_one: bool,
}

impl PRelu {
    /// `channel_dim`/`rank`: where the channels are in the inputs it will see.
    pub fn new(channels: usize, channel_dim: usize, rank: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get(channels, "weight")?;
        let at_most_one = weight.max_all()?.to_scalar::<f32>()? <= 1.0;
        let mut shape = vec![1; rank];
        shape[channel_dim] = channels;
        Ok(Self {
            weight: weight.reshape(shape)?,
            at_most_one,
        })
    }
}

impl Module for PRelu {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.at_most_one {
            // With every slope <= 1, max(x, a·x) is x where x > 0 and a·x
            // elsewhere: two passes instead of four.
            x.maximum(&x.broadcast_mul(&self.weight)?)
        } else {
            x.relu()? + x.minimum(0f32)?.broadcast_mul(&self.weight)?
        }
    }
}

/// A PReLU after a convolution (`[c, n, h, w]`).
pub(crate) fn prelu_conv(channels: usize, vb: VarBuilder) -> Result<PRelu> {
    PRelu::new(channels, 0, 4, vb)
}

/// A PReLU after a dense layer (`[n, features]`).
pub(crate) fn prelu_dense(features: usize, vb: VarBuilder) -> Result<PRelu> {
    PRelu::new(features, 1, 2, vb)
}

/// NCHW to the channel-major layout the convolutions use.
pub(crate) fn to_cnhw(x: &Tensor) -> Result<Tensor> {
    x.permute((1, 0, 2, 3))?.contiguous()
}

/// `nn.MaxPool2d(kernel, 2, ceil_mode=True)` over the last two dimensions
/// (of `[c, n, h, w]` as of NCHW), for MTCNN's kernels 2 and 3: the last
/// window may run past the edge, where it takes the maximum of what is inside.
/// Done separably, columns then rows, as maxima of strided views, which is
/// much faster on the CPU than candle's `max_pool2d`.
pub(crate) fn max_pool_ceil(x: &Tensor, kernel: usize) -> Result<Tensor> {
    if !(2..=3).contains(&kernel) {
        candle_core::bail!("max_pool_ceil: kernel {kernel} with stride 2");
    }
    let pooled = max_pool_axis(x, 3, kernel)?;
    max_pool_axis(&pooled, 2, kernel)
}

/// Output length of a stride-2 ceil-mode pool: PyTorch drops a last window
/// that would start outside the input.
fn pooled_len(size: usize, kernel: usize) -> usize {
    let out = size.saturating_sub(kernel).div_ceil(2) + 1;
    if (out - 1) * 2 >= size {
        out - 1
    } else {
        out
    }
}

/// One axis of [`max_pool_ceil`]: `out[j] = max(x[2j .. 2j + kernel])`,
/// reading `x` as pairs `[.., j, 2]` padded with −∞.
fn max_pool_axis(x: &Tensor, dim: usize, kernel: usize) -> Result<Tensor> {
    let size = x.dim(dim)?;
    let out = pooled_len(size, kernel);
    let pairs = out + (kernel - 1) / 2;
    let mut x = x.clone();
    if 2 * pairs > size {
        let mut pad_shape = x.dims().to_vec();
        pad_shape[dim] = 2 * pairs - size;
        let pad = Tensor::full(f32::NEG_INFINITY, pad_shape, x.device())?;
        x = Tensor::cat(&[&x, &pad], dim)?;
    }
    let mut pair_shape = x.dims().to_vec();
    pair_shape[dim] = pairs;
    pair_shape.insert(dim + 1, 2);
    let x = x.reshape(pair_shape)?;
    let tap = |t: usize| x.narrow(dim, t / 2, out)?.narrow(dim + 1, t % 2, 1);
    let mut acc = tap(0)?.maximum(&tap(1)?)?;
    for t in 2..kernel {
        acc = acc.maximum(&tap(t)?)?;
    }
    acc.squeeze(dim + 1)
}

/// A fully connected head's input from `[c, n, h, w]`: PyTorch's
/// `x.permute(0, 3, 2, 1)` of NCHW, flattened, i.e. per crop the features
/// ordered width, height, channel.
pub(crate) fn flatten_whc(x: &Tensor) -> Result<Tensor> {
    x.permute((1, 3, 2, 0))?.contiguous()?.flatten_from(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn ceil_mode_pooling_keeps_the_partial_last_window() -> Result<()> {
        // 5 wide, kernel 2, stride 2: PyTorch's ceil mode gives 3 outputs, the
        // last over the single column 4.
        let x = Tensor::arange(0f32, 5., &Device::Cpu)?.reshape((1, 1, 1, 5))?;
        let x = Tensor::cat(&[&x, &x], 2)?;
        let y = max_pool_ceil(&x, 2)?;
        assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![1., 3., 4.]);
        // 24 with kernel 3, stride 2: ceil((24 - 3) / 2) + 1 = 12.
        let x = Tensor::zeros((1, 1, 24, 24), candle_core::DType::F32, &Device::Cpu)?;
        assert_eq!(max_pool_ceil(&x, 3)?.dims4()?, (1, 1, 12, 12));
        Ok(())
    }

    #[test]
    fn pooling_matches_candles_max_pool_where_no_edge_is_involved() -> Result<()> {
        // Where the windows fit exactly both must agree; odd sizes check the
        // ceil-mode edge against a padded candle pool.
        let dev = Device::Cpu;
        for (h, w, k) in [
            (22, 22, 3),
            (10, 14, 2),
            (9, 11, 3),
            (11, 7, 2),
            (46, 46, 3),
        ] {
            let x = Tensor::randn(0f32, 1., (2, 3, h, w), &dev)?;
            let (oh, ow) = (pooled_len(h, k), pooled_len(w, k));
            let (ph, pw) = ((oh - 1) * 2 + k - h, (ow - 1) * 2 + k - w);
            let padded = x.pad_with_same(3, 0, pw)?.pad_with_same(2, 0, ph)?;
            let want = padded.max_pool2d_with_stride(k, 2)?;
            let got = max_pool_ceil(&x, k)?;
            assert_eq!(got.dims4()?, (2, 3, oh, ow));
            let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert_eq!(diff, 0.0, "{h}×{w} k{k}");
        }
        Ok(())
    }

    #[test]
    fn prelu_forms_agree() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1., (4, 2, 5, 5), &dev)?;
        for slopes in [[0.25f32, -0.5, 1.0, 0.0], [2.0, 0.1, -3.0, 0.5]] {
            let w = Tensor::new(&slopes, &dev)?;
            let vb = VarBuilder::from_tensors(
                [("weight".to_string(), w.clone())].into(),
                candle_core::DType::F32,
                &dev,
            );
            let got = PRelu::new(4, 0, 4, vb)?.forward(&x)?;
            let w = w.reshape((4, 1, 1, 1))?;
            let want = (x.relu()? + x.minimum(0f32)?.broadcast_mul(&w)?)?;
            let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert_eq!(diff, 0.0, "{slopes:?}");
        }
        Ok(())
    }

    #[test]
    fn im2col_convolution_matches_candles_conv2d() -> Result<()> {
        let dev = Device::Cpu;
        for (c, o, k) in [(3, 10, 3), (16, 32, 3), (48, 64, 2), (32, 4, 1)] {
            let x = Tensor::randn(0f32, 1., (2, c, 9, 11), &dev)?;
            let w = Tensor::randn(0f32, 1., (o, c, k, k), &dev)?;
            let b = Tensor::randn(0f32, 1., o, &dev)?;
            let want = x
                .conv2d(&w, 0, 1, 1, 1)?
                .broadcast_add(&b.reshape((1, o, 1, 1))?)?;
            let vb = VarBuilder::from_tensors(
                [("weight".to_string(), w), ("bias".to_string(), b)].into(),
                candle_core::DType::F32,
                &dev,
            );
            let got = to_cnhw(&Conv::new(c, o, k, vb)?.forward(&to_cnhw(&x)?)?)?;
            let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-4, "conv {c}->{o} k{k}: {diff}");
        }
        Ok(())
    }
}
