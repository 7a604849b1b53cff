//! Where the analysis tensors live, and how decoded frames get there.

use crate::decode::FrameBatch;
use crate::MediaError;
use candle_core::{DType, Device, Tensor};
use std::sync::OnceLock;

/// The device for analysis, resolved once per process: the first CUDA GPU
/// when the crate is built with the `cuda` feature and one is present, else
/// the CPU.
pub fn device() -> &'static Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE.get_or_init(|| {
        #[cfg(feature = "cuda")]
        {
            match Device::cuda_if_available(0) {
                Ok(device) => return device,
                Err(e) => tracing::warn!(error = %e, "CUDA unavailable, analysing on the CPU"),
            }
        }
        Device::Cpu
    })
}

/// A short name of `device` for the analysis record.
pub fn device_name(device: &Device) -> &'static str {
    if device.is_cuda() {
        "cuda"
    } else if device.is_metal() {
        "metal"
    } else {
        "cpu"
    }
}

/// A batch as planar RGB: `f32` of shape `[3, frames, height, width]`, values
/// 0–255. `planes.get(0)` is red for every frame of the batch, and so on.
pub fn rgb_planes(batch: &FrameBatch, device: &Device) -> Result<Tensor, MediaError> {
    Ok(batch
        .to_tensor(device)?
        .permute((1, 0, 2, 3))?
        .contiguous()?
        .to_dtype(DType::F32)?)
}

/// Per-frame means of `x` (`[frames, height, width]`) as `f64`s.
pub fn frame_means(x: &Tensor) -> Result<Vec<f64>, MediaError> {
    Ok(x.mean((1, 2))?.to_dtype(DType::F64)?.to_vec1::<f64>()?)
}
