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

/// The environment variables candle's CPU thread pools are sized by: its
/// element-wise ops (`CANDLE_NUM_THREADS`, else the next) and its matrix
/// products and convolutions (`RAYON_NUM_THREADS`).
pub const CPU_THREADS_VARS: [&str; 2] = ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"];

/// Runs candle's CPU operations (MTCNN's) on one thread, unless
/// [`CPU_THREADS_VARS`] say otherwise. Call it first thing in `main`, before
/// any other thread exists: it sets environment variables.
///
/// Why one: in the analyze phase MTCNN runs on a thread of its own beside
/// ffmpeg, whose decoding takes the other cores, and a worker analyses one
/// video per partition it owns; candle's pools, sized to every core, then
/// wait for each other's threads by spinning. In the analyze benchmark on a
/// 2-core machine one thread took Sprocket's own CPU time from 0.79–0.98 to
/// 0.54 ms per 720p frame and analyze from 266 to 282 frames/s
/// (`benches/REPORT.md`).
pub fn one_cpu_thread_unless_set() {
    if CPU_THREADS_VARS
        .iter()
        .all(|v| std::env::var_os(v).is_none())
    {
        for var in CPU_THREADS_VARS {
            std::env::set_var(var, "1");
        }
    }
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
