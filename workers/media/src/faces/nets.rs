//! The three MTCNN networks, layer for layer as facenet-pytorch's `PNet`,
//! `RNet` and `ONet`: pure model code, `VarBuilder` in, `forward` out. Inputs
//! are normalised RGB, NCHW (`(x - 127.5) / 128`); inside, activations are
//! channel-major (see [`super::layers`]).

use super::layers::{
    conv, flatten_whc, max_pool_ceil, prelu_conv, prelu_dense, to_cnhw, Conv, PRelu,
};
use candle_core::{Module, Result, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder};

/// The proposal network: fully convolutional, any input size of at least 12.
#[derive(Debug, Clone)]
pub struct PNet {
    conv1: Conv,
    prelu1: PRelu,
    conv2: Conv,
    prelu2: PRelu,
    conv3: Conv,
    prelu3: PRelu,
    conv4_1: Conv,
    conv4_2: Conv,
}

impl PNet {
    pub fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv1: conv(3, 10, 3, vb.pp("conv1"))?,
            prelu1: prelu_conv(10, vb.pp("prelu1"))?,
            conv2: conv(10, 16, 3, vb.pp("conv2"))?,
            prelu2: prelu_conv(16, vb.pp("prelu2"))?,
            conv3: conv(16, 32, 3, vb.pp("conv3"))?,
            prelu3: prelu_conv(32, vb.pp("prelu3"))?,
            conv4_1: conv(32, 2, 1, vb.pp("conv4_1"))?,
            conv4_2: conv(32, 4, 1, vb.pp("conv4_2"))?,
        })
    }

    /// `(regression [n, 4, h', w'], probabilities [n, 2, h', w'])`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let x = self.prelu1.forward(&self.conv1.forward(&to_cnhw(x)?)?)?;
        let x = max_pool_ceil(&x, 2)?;
        let x = self.prelu2.forward(&self.conv2.forward(&x)?)?;
        let x = self.prelu3.forward(&self.conv3.forward(&x)?)?;
        let probs = candle_nn::ops::softmax(&self.conv4_1.forward(&x)?, 0)?;
        let reg = self.conv4_2.forward(&x)?;
        Ok((to_cnhw(&reg)?, to_cnhw(&probs)?))
    }
}

/// The refinement network, on 24×24 crops.
#[derive(Debug, Clone)]
pub struct RNet {
    conv1: Conv,
    prelu1: PRelu,
    conv2: Conv,
    prelu2: PRelu,
    conv3: Conv,
    prelu3: PRelu,
    dense4: Linear,
    prelu4: PRelu,
    dense5_1: Linear,
    dense5_2: Linear,
}

impl RNet {
    pub fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv1: conv(3, 28, 3, vb.pp("conv1"))?,
            prelu1: prelu_conv(28, vb.pp("prelu1"))?,
            conv2: conv(28, 48, 3, vb.pp("conv2"))?,
            prelu2: prelu_conv(48, vb.pp("prelu2"))?,
            conv3: conv(48, 64, 2, vb.pp("conv3"))?,
            prelu3: prelu_conv(64, vb.pp("prelu3"))?,
            dense4: linear(576, 128, vb.pp("dense4"))?,
            prelu4: prelu_dense(128, vb.pp("prelu4"))?,
            dense5_1: linear(128, 2, vb.pp("dense5_1"))?,
            dense5_2: linear(128, 4, vb.pp("dense5_2"))?,
        })
    }

    /// `(regression [n, 4], probabilities [n, 2])`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let x = self.prelu1.forward(&self.conv1.forward(&to_cnhw(x)?)?)?;
        let x = max_pool_ceil(&x, 3)?;
        let x = self.prelu2.forward(&self.conv2.forward(&x)?)?;
        let x = max_pool_ceil(&x, 3)?;
        let x = self.prelu3.forward(&self.conv3.forward(&x)?)?;
        let x = self
            .prelu4
            .forward(&self.dense4.forward(&flatten_whc(&x)?)?)?;
        let probs = candle_nn::ops::softmax(&self.dense5_1.forward(&x)?, D::Minus1)?;
        let reg = self.dense5_2.forward(&x)?;
        Ok((reg, probs))
    }
}

/// The output network, on 48×48 crops, with the five landmarks.
#[derive(Debug, Clone)]
pub struct ONet {
    conv1: Conv,
    prelu1: PRelu,
    conv2: Conv,
    prelu2: PRelu,
    conv3: Conv,
    prelu3: PRelu,
    conv4: Conv,
    prelu4: PRelu,
    dense5: Linear,
    prelu5: PRelu,
    dense6_1: Linear,
    dense6_2: Linear,
    dense6_3: Linear,
}

impl ONet {
    pub fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv1: conv(3, 32, 3, vb.pp("conv1"))?,
            prelu1: prelu_conv(32, vb.pp("prelu1"))?,
            conv2: conv(32, 64, 3, vb.pp("conv2"))?,
            prelu2: prelu_conv(64, vb.pp("prelu2"))?,
            conv3: conv(64, 64, 3, vb.pp("conv3"))?,
            prelu3: prelu_conv(64, vb.pp("prelu3"))?,
            conv4: conv(64, 128, 2, vb.pp("conv4"))?,
            prelu4: prelu_conv(128, vb.pp("prelu4"))?,
            dense5: linear(1152, 256, vb.pp("dense5"))?,
            prelu5: prelu_dense(256, vb.pp("prelu5"))?,
            dense6_1: linear(256, 2, vb.pp("dense6_1"))?,
            dense6_2: linear(256, 4, vb.pp("dense6_2"))?,
            dense6_3: linear(256, 10, vb.pp("dense6_3"))?,
        })
    }

    /// `(regression [n, 4], landmarks [n, 10] (five x then five y),
    /// probabilities [n, 2])`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let x = self.prelu1.forward(&self.conv1.forward(&to_cnhw(x)?)?)?;
        let x = max_pool_ceil(&x, 3)?;
        let x = self.prelu2.forward(&self.conv2.forward(&x)?)?;
        let x = max_pool_ceil(&x, 3)?;
        let x = self.prelu3.forward(&self.conv3.forward(&x)?)?;
        let x = max_pool_ceil(&x, 2)?;
        let x = self.prelu4.forward(&self.conv4.forward(&x)?)?;
        let x = self
            .prelu5
            .forward(&self.dense5.forward(&flatten_whc(&x)?)?)?;
        let probs = candle_nn::ops::softmax(&self.dense6_1.forward(&x)?, D::Minus1)?;
        let reg = self.dense6_2.forward(&x)?;
        let landmarks = self.dense6_3.forward(&x)?;
        Ok((reg, landmarks, probs))
    }
}
