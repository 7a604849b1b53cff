//! Media work for Sprocket's phases. No Kafka, no object store: functions over
//! local files that the phase workers call.
//!
//! * [`probe`]: ffprobe a file and decide whether it is usable media.
//! * [`decode`]: stream frames out of ffmpeg in bounded batches.
//! * [`shots`]: the content-change shot detector, written with candle tensor ops.
//! * [`adaptive`]: the adaptive shot detector (the analyze default), with
//!   [`flash`] suppression.
//! * [`quality`]: per-shot brightness, sharpness and motion.
//! * [`tensors`]: the analysis device and frames as tensors.
//! * [`faces`]: MTCNN face detection on candle, with facenet-pytorch's weights.
//! * [`analyze`]: the analyze phase's pipeline, producing [`Analysis`].
//! * [`thumbnail`]: each shot's keyframe as a small JPEG.
//! * [`render`]: which outputs a recipe asks for; the highlight reel and the
//!   poster with ffmpeg, progress from ffmpeg itself.
//! * [`reframe`]: `vertical` and `square`, a crop that follows the subject.
//! * [`hls`]: the adaptive-bitrate ladder.
//! * [`sprite`]: scrub-preview sprite sheet and WebVTT.
//! * [`loudness`]: two-pass loudness normalisation of every output's audio.

pub mod adaptive;
pub mod analysis;
pub mod analyze;
mod batcher;
pub mod decode;
mod encode;
pub mod error;
pub mod faces;
pub mod flash;
pub mod hls;
mod isobmff;
pub mod kernels;
pub mod keyframes;
pub mod loudness;
pub mod probe;
pub mod quality;
pub mod reframe;
pub mod render;
pub mod sample;
pub mod shots;
pub mod simd;
mod source;
pub mod sprite;
pub mod tensors;
pub mod thumbnail;
mod tool;

pub use analysis::{Analysis, Shot};
pub use error::MediaError;
