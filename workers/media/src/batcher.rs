//! The decoder's reader thread: gathers the frames ffmpeg writes into planar
//! batches and hands them over a bounded channel, with ffmpeg's last error
//! lines once the output ends.

use ffmpeg_sidecar::event::{FfmpegEvent, LogLevel};
use ffmpeg_sidecar::iter::FfmpegIterator;
use std::sync::mpsc::SyncSender;

/// Most ffmpeg error lines kept for an error message.
const KEPT_ERRORS: usize = 8;

/// What the reader thread hands over.
pub(crate) enum Delivery {
    /// `len` frames, planar (see [`crate::decode::FrameBatch`]).
    Frames { data: Vec<u8>, len: usize },
    /// ffmpeg's output ended; its last error lines.
    Ended { errors: Vec<String> },
    /// Output that cannot be frames of the expected size.
    Broken(String),
}

/// The reader thread: gathers frames from ffmpeg's events into batches of
/// `batch_frames` and sends them, then the end. Returns early once the
/// decoder is gone.
pub(crate) fn read_batches(
    events: FfmpegIterator,
    frame_bytes: usize,
    batch_frames: usize,
    sender: SyncSender<Delivery>,
) {
    let mut errors: Vec<String> = Vec::new();
    let mut data = Vec::with_capacity(frame_bytes * batch_frames);
    let mut len = 0;
    for event in events {
        match event {
            FfmpegEvent::OutputFrame(frame) => {
                if frame.data.len() != frame_bytes {
                    let message = format!(
                        "frame of {} bytes, expected {frame_bytes}",
                        frame.data.len()
                    );
                    let _ = sender.send(Delivery::Broken(message));
                    return;
                }
                push_planar(&mut data, &frame.data);
                len += 1;
                if len == batch_frames {
                    let full = std::mem::replace(
                        &mut data,
                        Vec::with_capacity(frame_bytes * batch_frames),
                    );
                    if sender.send(Delivery::Frames { data: full, len }).is_err() {
                        return;
                    }
                    len = 0;
                }
            }
            FfmpegEvent::Error(message)
            | FfmpegEvent::Log(LogLevel::Error | LogLevel::Fatal, message) => {
                if errors.len() == KEPT_ERRORS {
                    errors.remove(0);
                }
                errors.push(message.trim().to_string());
            }
            _ => {}
        }
    }
    if len > 0 && sender.send(Delivery::Frames { data, len }).is_err() {
        return;
    }
    let _ = sender.send(Delivery::Ended { errors });
}

/// Appends one packed rgb24 frame to `data` as three planes: all red values,
/// then green, then blue.
fn push_planar(data: &mut Vec<u8>, rgb: &[u8]) {
    let pixels = rgb.len() / 3;
    let start = data.len();
    data.resize(start + 3 * pixels, 0);
    let (red, rest) = data[start..].split_at_mut(pixels);
    let (green, blue) = rest.split_at_mut(pixels);
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        red[i] = px[0];
        green[i] = px[1];
        blue[i] = px[2];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_into_planes() {
        let mut data = vec![9];
        push_planar(&mut data, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(data, [9, 1, 4, 2, 5, 3, 6]);
    }
}
