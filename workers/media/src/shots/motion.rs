//! Motion-compensated content scores: the content score of two frames after
//! the second is shifted by the translation that matches them best, so a
//! camera pan scores what the picture changed, not how far it moved.
//!
//! During a fast pan across a texture every frame's plain score is high, and
//! a cut to a similar texture scores barely higher: no ratio against the
//! neighbours can tell them apart. Once each frame is matched to the one
//! before it at the best shift, the pan's frames score next to nothing and
//! the cut keeps its score (no shift matches two different pictures).
//!
//! The shift is searched on the value (V) plane, coarse to fine: every shift
//! within `radius` pixels on planes reduced 4× by box means, then ±3 pixels
//! around the best one at full size on every other row and column, then ±1
//! pixel around that on every pixel (every other pixel alone cannot tell a
//! shift from its neighbour on a texture of 2-pixel blocks). The score at
//! that shift is the plain content score ([`pair_scores`]) over the overlap
//! of the two frames.

use super::{pair_scores, ContentWeights};
use crate::MediaError;
use candle_core::Tensor;

/// Reduction of the coarse search.
const COARSE: usize = 4;
/// Half-width, in full-size pixels, of the fine search around the coarse
/// shift.
const FINE: i32 = 3;

/// The V plane of one HSV frame, at full size and reduced.
struct Plane {
    width: usize,
    height: usize,
    full: Vec<u8>,
    small: Vec<f32>,
}

impl Plane {
    /// From an HSV frame (`u8`, `[3, height, width]`).
    fn new(hsv: &Tensor) -> Result<Self, MediaError> {
        let (_, height, width) = hsv.dims3()?;
        let full = hsv.get(2)?.flatten_all()?.to_vec1::<u8>()?;
        let (sw, sh) = (width / COARSE, height / COARSE);
        let mut small = vec![0f32; sw * sh];
        for (y, row) in full.chunks_exact(width).take(sh * COARSE).enumerate() {
            for (x, cell) in small[(y / COARSE) * sw..][..sw].iter_mut().enumerate() {
                let sum: u32 = row[x * COARSE..][..COARSE]
                    .iter()
                    .map(|&v| u32::from(v))
                    .sum();
                *cell += sum as f32;
            }
        }
        let area = (COARSE * COARSE) as f32;
        small.iter_mut().for_each(|c| *c /= area);
        Ok(Plane {
            width,
            height,
            full,
            small,
        })
    }
}

/// The overlap of a `w`×`h` frame with itself shifted by `d` on one axis:
/// its start in the first frame, its start in the second, and its length.
fn overlap(size: usize, d: i32) -> Option<(usize, usize, usize)> {
    let len = size
        .checked_sub(d.unsigned_abs() as usize)
        .filter(|l| *l > 0)?;
    Some(if d >= 0 {
        (0, d as usize, len)
    } else {
        ((-d) as usize, 0, len)
    })
}

/// Mean `|a(x, y) − b(x + dx, y + dy)|` over the overlap, on every `step`-th
/// row and column; `None` when they do not overlap.
fn mean_abs<T: Copy + Into<f32>>(
    a: &[T],
    b: &[T],
    (width, height): (usize, usize),
    (dx, dy): (i32, i32),
    step: usize,
) -> Option<f32> {
    let (ax, bx, w) = overlap(width, dx)?;
    let (ay, by, h) = overlap(height, dy)?;
    let (mut sum, mut n) = (0f32, 0usize);
    for y in (0..h).step_by(step) {
        let ra = &a[(ay + y) * width + ax..][..w];
        let rb = &b[(by + y) * width + bx..][..w];
        for x in (0..w).step_by(step) {
            sum += (ra[x].into() - rb[x].into()).abs();
        }
        n += w.div_ceil(step);
    }
    Some(sum / n as f32)
}

/// The shift `(dx, dy)` of `b` against `a`, each within ±`radius` pixels,
/// that matches their V planes best.
fn best_shift(a: &Plane, b: &Plane, radius: u32) -> (i32, i32) {
    let (sw, sh) = (a.width / COARSE, a.height / COARSE);
    let r = (radius as usize).div_ceil(COARSE) as i32;
    let mut best = (f32::INFINITY, 0, 0);
    for dy in -r..=r {
        for dx in -r..=r {
            if let Some(d) = mean_abs(&a.small, &b.small, (sw, sh), (dx, dy), 1) {
                if d < best.0 {
                    best = (d, dx, dy);
                }
            }
        }
    }
    let (cx, cy) = (best.1 * COARSE as i32, best.2 * COARSE as i32);
    let fine = best_around(a, b, (cx, cy), FINE, 2);
    // Every other pixel cannot tell a shift from its neighbour on a picture
    // made of 2-pixel blocks (each sampled pixel equals the one beside it,
    // which the neighbouring shift compares instead): a pan over such a
    // texture matched a pixel off, scored as a change, and one frame that
    // happened to match exactly stood out as a cut. The best shift's
    // neighbours are ranked again on every pixel.
    best_around(a, b, fine, 1, 1)
}

/// The shift within `reach` pixels of `around` whose V planes differ least,
/// compared on every `step`-th row and column at full size.
fn best_around(a: &Plane, b: &Plane, around: (i32, i32), reach: i32, step: usize) -> (i32, i32) {
    let size = (a.width, a.height);
    let mut best = (f32::INFINITY, around.0, around.1);
    for dy in around.1 - reach..=around.1 + reach {
        for dx in around.0 - reach..=around.0 + reach {
            if let Some(d) = mean_abs(&a.full, &b.full, size, (dx, dy), step) {
                if d < best.0 {
                    best = (d, dx, dy);
                }
            }
        }
    }
    (best.1, best.2)
}

/// The content score of HSV frames `a` and `b` (`u8`, `[3, height, width]`)
/// after `b` is shifted by the best translation within ±`radius` pixels: the
/// plain score when that is no shift, never more than it.
pub fn compensated_score(
    weights: ContentWeights,
    a: &Tensor,
    b: &Tensor,
    radius: u32,
) -> Result<f64, MediaError> {
    let plain = pair_scores(weights, &a.unsqueeze(0)?, &b.unsqueeze(0)?)?[0];
    let (dx, dy) = best_shift(&Plane::new(a)?, &Plane::new(b)?, radius);
    let (_, height, width) = a.dims3()?;
    let (Some((ax, bx, w)), Some((ay, by, h))) = (overlap(width, dx), overlap(height, dy)) else {
        return Ok(plain);
    };
    let a = a.narrow(1, ay, h)?.narrow(2, ax, w)?.unsqueeze(0)?;
    let b = b.narrow(1, by, h)?.narrow(2, bx, w)?.unsqueeze(0)?;
    Ok(pair_scores(weights, &a, &b)?[0].min(plain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shots::rgb_to_hsv;
    use candle_core::Device;

    /// A deterministic colour texture `width`×`height`, seen through a
    /// 64×48 window at (`x0`, `y0`): one HSV frame.
    fn window(seed: u32, x0: usize, y0: usize) -> Tensor {
        let (w, h) = (64, 48);
        let texel = |x: usize, y: usize, c: usize| -> u8 {
            let mut v = (x as u32 / 2)
                .wrapping_mul(2_654_435_761)
                .wrapping_add((y as u32 / 2).wrapping_mul(40_503))
                .wrapping_add(seed.wrapping_mul(97) + c as u32 * 13);
            v ^= v >> 13;
            v = v.wrapping_mul(0x5bd1_e995);
            (80 + (v >> 24) % 120) as u8
        };
        let mut data = Vec::with_capacity(3 * w * h);
        for c in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    data.push(texel(x0 + x, y0 + y, c));
                }
            }
        }
        let rgb = Tensor::from_vec(data, (1, 3, h, w), &Device::Cpu).unwrap();
        rgb_to_hsv(&rgb).unwrap().get(0).unwrap()
    }

    #[test]
    fn a_pan_scores_nothing_once_matched_and_a_cut_keeps_its_score() {
        let w = ContentWeights::default();
        let a = window(1, 20, 20);
        // Panned 7 right and 3 down over the same texture.
        let panned = window(1, 27, 23);
        let plain =
            pair_scores(w, &a.unsqueeze(0).unwrap(), &panned.unsqueeze(0).unwrap()).unwrap()[0];
        let matched = compensated_score(w, &a, &panned, 16).unwrap();
        assert!(
            plain > 15.0 && matched < 0.5,
            "plain {plain}, matched {matched}"
        );
        // Beyond the radius the pan is not matched.
        let far = window(1, 45, 20);
        assert!(compensated_score(w, &a, &far, 8).unwrap() > 15.0);
        // A pan by an even number of pixels over a texture of 2-pixel
        // blocks, which every other pixel matches a pixel off as well.
        let even = window(1, 36, 24);
        let matched = compensated_score(w, &a, &even, 24).unwrap();
        assert!(matched < 0.5, "even pan: matched {matched}");
        // Another texture of the same statistics: no shift matches it.
        let other = window(2, 27, 23);
        assert!(compensated_score(w, &a, &other, 16).unwrap() > 15.0);
    }
}
