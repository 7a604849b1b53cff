//! Flash suppression: telling a frame or two of sudden light (a camera
//! flash, a lightning strike, a muzzle flash) from a cut.
//!
//! A flash gives two large content scores, one into the bright frames and one
//! out of them, and both PySceneDetect detectors take the first for a cut
//! (the adaptive one too: the flash's own two scores make the neighbour mean a
//! quarter of the spike, a ratio of about 4). What a flash does not do is
//! change the shot: the frames after it look like the frames before it.
//!
//! So a boundary at frame `t` (between `t − 1` and `t`) is a flash boundary
//! when some frame `a` before it and some frame `b` at or after it, at most
//! `flash_frames + 1` apart and not the adjacent pair `(t − 1, t)` itself,
//! have a content score below the match threshold: the picture came back
//! within `flash_frames` frames. For a flash over frames `f..f+L` (`L ≤
//! flash_frames`) the pair `(f − 1, f + L)` matches, and it straddles both
//! the entry boundary `f` and the exit boundary `f + L`, so neither is taken.
//! A real cut never matches, since every pair straddling it compares two
//! different shots. All pairs of a boundary are scored in one batch of tensor
//! operations (`index_select` of the frames, then the content score).
//!
//! When the camera moves, the frames around a flash do not match as they
//! are: a pan of a few pixels a frame over a detailed picture moves it far
//! enough in the flash's frames to score as a new picture. So a pair that
//! does not match as it is gets a second chance with the camera's motion
//! taken out ([`compensated_score`], shifts up to `max_shift` pixels for
//! each frame between the two).

use crate::shots::motion::compensated_score;
use crate::shots::{pair_scores, ContentWeights};
use crate::MediaError;
use candle_core::Tensor;

/// Frame pairs `(a, b)` that straddle the boundary at `t` (`a < t ≤ b`), at
/// most `flash_frames + 1` apart, other than `(t − 1, t)`, restricted to
/// frames in `first..end`.
pub fn straddling_pairs(t: u64, flash_frames: u64, first: u64, end: u64) -> Vec<(u64, u64)> {
    let span = flash_frames + 1;
    let mut pairs = Vec::new();
    for a in t.saturating_sub(span).max(first)..t {
        for b in t..(a + span + 1).min(end) {
            if b - a >= 2 {
                pairs.push((a, b));
            }
        }
    }
    pairs
}

/// How a flash's frames are matched: the content score two frames must
/// stay below to be the same picture, and the camera motion taken out first
/// (`max_shift` pixels a frame; 0: none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlashMatch {
    pub weights: ContentWeights,
    pub match_below: f64,
    pub max_shift: u32,
}

/// The farthest shift searched between two frames around a flash, in
/// pixels, however far apart they are.
const MAX_PAIR_SHIFT: u32 = 64;

/// Whether the boundary at frame `t` is a flash: `hsv` holds HSV frames
/// `first..first + hsv.dim(0)` (`u8`, `[frames, 3, height, width]`, see
/// [`crate::shots::rgb_to_hsv`]); the pairs looked at are those of
/// [`straddling_pairs`] within those frames, and the boundary is a flash
/// when one of them scores below `how.match_below`, as it is or with the
/// camera's motion taken out.
pub fn is_flash(
    hsv: &Tensor,
    first: u64,
    t: u64,
    flash_frames: u64,
    how: FlashMatch,
) -> Result<bool, MediaError> {
    let end = first + hsv.dim(0)? as u64;
    let pairs = straddling_pairs(t, flash_frames, first, end);
    if pairs.is_empty() {
        return Ok(false);
    }
    let index = |pick: fn(&(u64, u64)) -> u64| -> Result<Tensor, MediaError> {
        let idx: Vec<u32> = pairs.iter().map(|p| (pick(p) - first) as u32).collect();
        let idx = Tensor::from_vec(idx, pairs.len(), hsv.device())?;
        Ok(hsv.index_select(&idx, 0)?)
    };
    let before = index(|p| p.0)?;
    let after = index(|p| p.1)?;
    let scores = pair_scores(how.weights, &before, &after)?;
    if scores.iter().any(|s| *s < how.match_below) || how.max_shift == 0 {
        return Ok(scores.iter().any(|s| *s < how.match_below));
    }
    // Closest pairs first: they need the smallest search.
    let mut pairs = pairs;
    pairs.sort_by_key(|(a, b)| b - a);
    for (a, b) in pairs {
        let radius = (how.max_shift * (b - a) as u32).min(MAX_PAIR_SHIFT);
        let (fa, fb) = (
            hsv.get((a - first) as usize)?,
            hsv.get((b - first) as usize)?,
        );
        if compensated_score(how.weights, &fa, &fb, radius)? < how.match_below {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shots::rgb_to_hsv;
    use candle_core::Device;

    fn hsv_frames(colours: &[[u8; 3]]) -> Tensor {
        let data = colours
            .iter()
            .flat_map(|colour| colour.iter().flat_map(|&c| std::iter::repeat_n(c, 4 * 6)))
            .collect::<Vec<u8>>();
        let rgb = Tensor::from_vec(data, (colours.len(), 3, 4, 6), &Device::Cpu).unwrap();
        rgb_to_hsv(&rgb).unwrap()
    }

    #[test]
    fn pairs_straddle_the_boundary_and_skip_the_adjacent_one() {
        assert_eq!(
            straddling_pairs(10, 1, 0, 100),
            vec![(8, 10), (9, 11)],
            "one-frame flashes"
        );
        let two = straddling_pairs(10, 2, 0, 100);
        assert_eq!(two, vec![(7, 10), (8, 10), (8, 11), (9, 11), (9, 12)]);
        // Clipped to the frames at hand.
        assert_eq!(straddling_pairs(10, 2, 9, 12), vec![(9, 11)]);
        assert!(straddling_pairs(1, 2, 0, 2).is_empty());
    }

    #[test]
    fn a_return_to_the_same_picture_is_a_flash_and_a_new_picture_is_not() {
        let (grey, white, blue) = ([90, 90, 90], [255, 255, 255], [30, 30, 200]);
        let w = FlashMatch {
            weights: ContentWeights::default(),
            match_below: 15.0,
            max_shift: 0,
        };
        // Frames 0..=2 grey, 3 white, 4..=6 grey: boundaries 3 and 4 are the flash.
        let flash = hsv_frames(&[grey, grey, grey, white, grey, grey, grey]);
        assert!(is_flash(&flash, 0, 3, 2, w).unwrap());
        assert!(is_flash(&flash, 0, 4, 2, w).unwrap());
        // Two white frames, and the same with the frames numbered from 100.
        let long = hsv_frames(&[grey, grey, white, white, grey, grey]);
        assert!(is_flash(&long, 100, 102, 2, w).unwrap());
        assert!(is_flash(&long, 100, 104, 2, w).unwrap());
        // ...but not when only one-frame flashes are looked for.
        assert!(!is_flash(&long, 100, 102, 1, w).unwrap());
        // A cut to another picture, even one with a white frame in between.
        let cut = hsv_frames(&[grey, grey, grey, blue, blue, blue]);
        assert!(!is_flash(&cut, 0, 3, 2, w).unwrap());
        let via_white = hsv_frames(&[grey, grey, white, blue, blue, blue]);
        assert!(!is_flash(&via_white, 0, 2, 2, w).unwrap());
        assert!(!is_flash(&via_white, 0, 3, 2, w).unwrap());
    }
}
