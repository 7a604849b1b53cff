//! The decoder's reader threads. One reads ffmpeg's raw `rgb24` frames
//! straight from its stdout, splits each into planes into the batch being
//! filled, and hands full batches over a bounded channel. The other drains
//! ffmpeg's log (its stderr, parsed by ffmpeg-sidecar), keeping the last
//! error lines, which the first sends along once the output ends.

use crate::simd::multiversion;
use ffmpeg_sidecar::event::{FfmpegEvent, LogLevel};
use ffmpeg_sidecar::iter::FfmpegIterator;
use std::io::{ErrorKind, Read};
use std::sync::mpsc::SyncSender;
use std::thread::JoinHandle;

/// Most ffmpeg error lines kept for an error message.
const KEPT_ERRORS: usize = 8;

/// What the reader thread hands over.
pub(crate) enum Delivery {
    /// `len` frames, planar (see [`crate::decode::FrameBatch`]).
    Frames { data: Vec<u8>, len: usize },
    /// ffmpeg's output ended; its last error lines.
    Ended { errors: Vec<String> },
    /// ffmpeg's output could not be read.
    Broken(String),
}

/// The log thread: reads ffmpeg's events to the end (so ffmpeg never blocks
/// on a full stderr pipe) and returns its last error lines.
pub(crate) fn drain_log(events: FfmpegIterator) -> Vec<String> {
    let mut errors: Vec<String> = Vec::new();
    for event in events {
        if let FfmpegEvent::Error(message)
        | FfmpegEvent::Log(LogLevel::Error | LogLevel::Fatal, message) = event
        {
            if errors.len() == KEPT_ERRORS {
                errors.remove(0);
            }
            errors.push(message.trim().to_string());
        }
    }
    errors
}

/// The frame reader thread: reads frames of `frame_bytes` from `output`
/// (ffmpeg's stdout) into batches of `batch_frames` and sends them, then the
/// end with the log thread's error lines. A partial frame at the end of the
/// output is dropped. Returns early once the decoder is gone.
pub(crate) fn read_batches(
    mut output: impl Read,
    log: JoinHandle<Vec<String>>,
    frame_bytes: usize,
    batch_frames: usize,
    sender: SyncSender<Delivery>,
) {
    let mut frame = vec![0u8; frame_bytes];
    let mut data = Vec::with_capacity(frame_bytes * batch_frames);
    let mut len = 0;
    loop {
        match output.read_exact(&mut frame) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => {
                let _ = sender.send(Delivery::Broken(format!("reading frames: {e}")));
                return;
            }
        }
        let start = data.len();
        data.resize(start + frame_bytes, 0);
        split_planes(&frame, &mut data[start..]);
        len += 1;
        if len == batch_frames {
            let full = std::mem::replace(&mut data, Vec::with_capacity(frame_bytes * batch_frames));
            if sender.send(Delivery::Frames { data: full, len }).is_err() {
                return;
            }
            len = 0;
        }
    }
    if len > 0 && sender.send(Delivery::Frames { data, len }).is_err() {
        return;
    }
    let errors = log.join().unwrap_or_default();
    let _ = sender.send(Delivery::Ended { errors });
}

multiversion! {
    /// Splits one packed rgb24 frame into `planes` (as long as `rgb`): all
    /// red values, then green, then blue.
    fn split_planes(rgb: &[u8], planes: &mut [u8]) {
        let pixels = rgb.len() / 3;
        let (red, rest) = planes.split_at_mut(pixels);
        let (green, blue) = rest.split_at_mut(pixels);
        let (green, blue) = (&mut green[..pixels], &mut blue[..pixels]);
        let channels = red.iter_mut().zip(green.iter_mut()).zip(blue.iter_mut());
        for (px, ((r, g), b)) in rgb.chunks_exact(3).zip(channels) {
            (*r, *g, *b) = (px[0], px[1], px[2]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    #[test]
    fn frames_are_split_into_planes() {
        let mut planes = [0; 6];
        split_planes(&[1, 2, 3, 4, 5, 6], &mut planes);
        assert_eq!(planes, [1, 4, 2, 5, 3, 6]);
    }

    #[test]
    fn frames_are_batched_and_a_partial_frame_is_dropped() {
        // Three frames of two pixels, then half a frame.
        let output: Vec<u8> = (0..3 * 6 + 3).collect();
        let (sender, batches) = sync_channel(8);
        let log = std::thread::spawn(|| vec!["an error".to_string()]);
        read_batches(&output[..], log, 6, 2, sender);
        let mut got = Vec::new();
        for delivery in batches {
            got.push(match delivery {
                Delivery::Frames { data, len } => format!("{len}: {data:?}"),
                Delivery::Ended { errors } => format!("end {errors:?}"),
                Delivery::Broken(m) => format!("broken {m}"),
            });
        }
        assert_eq!(
            got,
            [
                "2: [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]",
                "1: [12, 15, 13, 16, 14, 17]",
                "end [\"an error\"]",
            ]
        );
    }
}
