//! Shot thumbnails: a shot's keyframe, as analyze decoded it, scaled down by
//! area averaging and encoded as a baseline JPEG in memory.
//!
//! No second decode: the pixels are those of the keyframe the face finder
//! looked at, the whole analysed frame, so a face box (fractions of that
//! frame) falls on the thumbnail where it falls on the frame. The encoder is
//! pure Rust (`jpeg-encoder`) and deterministic: the same frame gives the
//! same bytes, so a redone analysis rewrites identical artifacts.

use crate::MediaError;

/// Width of a thumbnail, in pixels (narrower frames keep their own width).
pub const THUMBNAIL_WIDTH: u32 = 160;
/// JPEG quality (1–100); below 90 the chroma is subsampled 4:2:0.
pub const JPEG_QUALITY: u8 = 80;
/// Most shots given a thumbnail, whatever a recipe asks: each is an artifact
/// listed in `MediaAnalyzed` and in the work items after it (about 230 bytes
/// each), which must stay well under the 100 KB an event may use.
pub const MAX_THUMBNAILS: u32 = 200;

/// One encoded thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    pub jpeg: Vec<u8>,
}

/// The artifact name of shot `index`'s thumbnail (`index` from 0, the name's
/// number from 1): `shot-001.jpg`, `shot-002.jpg`, …; one path segment.
pub fn thumbnail_name(index: u32) -> String {
    format!("shot-{:03}.jpg", u64::from(index) + 1)
}

/// The size of the thumbnail of a `width × height` frame: [`THUMBNAIL_WIDTH`]
/// wide (or the frame's width, if narrower), the height keeping the frame's
/// aspect ratio, rounded to an even number of at least 2.
pub fn thumbnail_size(width: u32, height: u32) -> (u32, u32) {
    let w = width.clamp(1, THUMBNAIL_WIDTH);
    let exact = f64::from(height) * f64::from(w) / f64::from(width.max(1));
    let h = ((exact / 2.0).round() as u32 * 2).max(2);
    (w, h)
}

/// The thumbnail of one frame in the decoder's layout: planar RGB (the red
/// plane, then green, then blue), `width × height`. A buffer of any other
/// length is a broken frame, refused with `InvalidParams` rather than
/// encoded from garbage.
pub fn thumbnail(planar: &[u8], width: u32, height: u32) -> Result<Thumbnail, MediaError> {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 || planar.len() != w * h * 3 {
        return Err(MediaError::InvalidParams(format!(
            "thumbnail: a {width}x{height} frame needs {} bytes, got {}",
            w * h * 3,
            planar.len()
        )));
    }
    let (tw, th) = thumbnail_size(width, height);
    let cols = windows(w, tw as usize);
    let rows = windows(h, th as usize);
    let mut packed = vec![0u8; tw as usize * th as usize * 3];
    for (plane, channel) in planar.chunks_exact(w * h).enumerate() {
        for (y, ys) in rows.iter().enumerate() {
            for (x, xs) in cols.iter().enumerate() {
                let mut sum = 0u32;
                for row in ys.clone() {
                    sum += channel[row * w + xs.start..row * w + xs.end]
                        .iter()
                        .map(|&v| u32::from(v))
                        .sum::<u32>();
                }
                let n = (ys.len() * xs.len()) as u32;
                packed[(y * tw as usize + x) * 3 + plane] = ((sum + n / 2) / n) as u8;
            }
        }
    }
    let mut jpeg = Vec::with_capacity(8 * 1024);
    jpeg_encoder::Encoder::new(&mut jpeg, JPEG_QUALITY)
        .encode(&packed, tw as u16, th as u16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| MediaError::InvalidParams(format!("thumbnail: {e}")))?;
    Ok(Thumbnail {
        width: tw,
        height: th,
        jpeg,
    })
}

/// The input pixels each of `out` outputs averages along one axis of
/// `input`: `[⌊i·in/out⌋, ⌈(i+1)·in/out⌉)`, never empty (area averaging
/// when shrinking, the nearest pixels when growing).
fn windows(input: usize, out: usize) -> Vec<std::ops::Range<usize>> {
    (0..out)
        .map(|i| {
            let start = i * input / out;
            let end = ((i + 1) * input).div_ceil(out).clamp(start + 1, input);
            start..end
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Start of Frame (baseline) of a JPEG: its height and width.
    fn sof0_size(jpeg: &[u8]) -> Option<(u16, u16)> {
        let at = jpeg.windows(2).position(|m| m == [0xFF, 0xC0])?;
        let be = |i: usize| u16::from_be_bytes([jpeg[at + i], jpeg[at + i + 1]]);
        Some((be(5), be(7)))
    }

    #[test]
    fn sizes_keep_the_aspect_ratio_and_never_grow() {
        assert_eq!(thumbnail_size(320, 180), (160, 90));
        assert_eq!(thumbnail_size(1920, 1080), (160, 90));
        assert_eq!(thumbnail_size(180, 320), (160, 284));
        assert_eq!(thumbnail_size(64, 48), (64, 48));
        assert_eq!(thumbnail_size(3840, 16), (160, 2));
        assert_eq!(thumbnail_name(0), "shot-001.jpg");
        assert_eq!(thumbnail_name(199), "shot-200.jpg");
    }

    #[test]
    fn a_frame_becomes_a_jpeg_of_the_thumbnail_size() {
        // Left half red, right half blue, planar.
        let (w, h) = (320usize, 180usize);
        let mut planar = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let plane = if x < w / 2 { 0 } else { 2 };
                planar[plane * w * h + y * w + x] = 255;
            }
        }
        let t = thumbnail(&planar, w as u32, h as u32).unwrap();
        assert_eq!((t.width, t.height), (160, 90));
        assert_eq!(&t.jpeg[..2], &[0xFF, 0xD8]);
        assert_eq!(&t.jpeg[t.jpeg.len() - 2..], &[0xFF, 0xD9]);
        assert_eq!(sof0_size(&t.jpeg), Some((90, 160)));
        assert_eq!(thumbnail(&planar, w as u32, h as u32).unwrap(), t);
    }

    #[test]
    fn a_broken_frame_is_refused() {
        let err = thumbnail(&[0; 100], 320, 180).unwrap_err();
        assert!(matches!(err, MediaError::InvalidParams(_)), "{err:?}");
        assert!(thumbnail(&[], 0, 0).is_err());
    }

    #[test]
    fn windows_cover_the_input_in_order() {
        assert_eq!(windows(4, 2), [0..2, 2..4]);
        assert_eq!(windows(5, 2), [0..3, 2..5]);
        assert_eq!(windows(2, 4), [0..1, 0..1, 1..2, 1..2]);
    }
}
