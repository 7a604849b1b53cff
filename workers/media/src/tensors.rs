//! Where the analysis tensors live, and how decoded frames get there.

use crate::decode::FrameBatch;
use crate::MediaError;
use candle_core::{Device, Tensor};
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

/// A batch as a tensor without copying its frames on the CPU: planar RGB,
/// `u8` of shape `[frames, 3, height, width]` (see [`FrameBatch`]).
/// `frames.get(i)` is frame `i` of the batch, its red plane first.
pub fn frames(batch: FrameBatch, device: &Device) -> Result<Tensor, MediaError> {
    let shape = (batch.len, 3, batch.height as usize, batch.width as usize);
    Ok(Tensor::from_vec(batch.data, shape, device)?)
}
