//! Box bookkeeping between the MTCNN stages, in `f32` and in the same order of
//! operations as facenet-pytorch's `detect_face` helpers (`generateBoundingBox`,
//! torchvision's `batched_nms`, `nms_numpy`, `rerec`, `pad`, `bbreg`), so that
//! the boxes agree with it to the last bit where the network outputs do.

/// A box `x1, y1, x2, y2` in pixels, its score and the regression the network
/// proposed for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub bbox: [f32; 4],
    pub score: f32,
    pub reg: [f32; 4],
}

/// P-Net's output map at one pyramid scale to candidate boxes: every cell
/// whose face probability is at least `threshold` maps back to a 12×12 window
/// of the image (stride 2). `probs` is the face channel (`h × w`), `reg` the
/// four regression channels (`4 × h × w`), both row-major.
pub(crate) fn generate(
    reg: &[f32],
    probs: &[f32],
    (h, w): (usize, usize),
    scale: f64,
    threshold: f32,
) -> Vec<Candidate> {
    const STRIDE: f32 = 2.0;
    const CELL: f32 = 12.0;
    // PyTorch divides the f32 tensor by the scale cast to f32.
    let scale = scale as f32;
    let plane = h * w;
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let at = y * w + x;
            let score = probs[at];
            if score < threshold {
                continue;
            }
            let (bx, by) = (x as f32, y as f32);
            out.push(Candidate {
                bbox: [
                    ((STRIDE * bx + 1.0) / scale).floor(),
                    ((STRIDE * by + 1.0) / scale).floor(),
                    ((STRIDE * bx + CELL) / scale).floor(),
                    ((STRIDE * by + CELL) / scale).floor(),
                ],
                score,
                reg: [
                    reg[at],
                    reg[plane + at],
                    reg[2 * plane + at],
                    reg[3 * plane + at],
                ],
            });
        }
    }
    out
}

/// torchvision's `nms`: indices kept, by descending score (stable), dropping
/// every box whose IoU with a kept one is above `threshold`.
pub(crate) fn nms(boxes: &[Candidate], threshold: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| boxes[b].score.total_cmp(&boxes[a].score));
    let area = |c: &Candidate| (c.bbox[2] - c.bbox[0]) * (c.bbox[3] - c.bbox[1]);
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (n, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let (bi, area_i) = (&boxes[i].bbox, area(&boxes[i]));
        for &j in &order[n + 1..] {
            if suppressed[j] {
                continue;
            }
            let bj = &boxes[j].bbox;
            let w = (bi[2].min(bj[2]) - bi[0].max(bj[0])).max(0.0);
            let h = (bi[3].min(bj[3]) - bi[1].max(bj[1])).max(0.0);
            let inter = w * h;
            if inter / (area_i + area(&boxes[j]) - inter) > threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// facenet-pytorch's `nms_numpy(.., "Min")`: overlap is the intersection over
/// the smaller box, areas count pixels inclusively (`+ 1`), and among equal
/// scores the later box is taken first, as numpy's `argsort` leaves them.
pub(crate) fn nms_min(boxes: &[Candidate], threshold: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| boxes[a].score.total_cmp(&boxes[b].score));
    let area = |c: &Candidate| (c.bbox[2] - c.bbox[0] + 1.0) * (c.bbox[3] - c.bbox[1] + 1.0);
    let mut keep = Vec::new();
    while let Some(i) = order.pop() {
        keep.push(i);
        let (bi, area_i) = (&boxes[i].bbox, area(&boxes[i]));
        order.retain(|&j| {
            let bj = &boxes[j].bbox;
            let w = (bi[2].min(bj[2]) - bi[0].max(bj[0]) + 1.0).max(0.0);
            let h = (bi[3].min(bj[3]) - bi[1].max(bj[1]) + 1.0).max(0.0);
            let inter = w * h;
            inter / area_i.min(area(&boxes[j])) <= threshold
        });
    }
    keep
}

/// Stage one's regression: offsets scaled by the box's width and height.
pub(crate) fn regress_proposal(c: &Candidate) -> [f32; 4] {
    let [x1, y1, x2, y2] = c.bbox;
    let (w, h) = (x2 - x1, y2 - y1);
    [
        x1 + c.reg[0] * w,
        y1 + c.reg[1] * h,
        x2 + c.reg[2] * w,
        y2 + c.reg[3] * h,
    ]
}

/// `bbreg`: the later stages' regression, with inclusive width and height.
pub(crate) fn bbreg(bbox: [f32; 4], reg: [f32; 4]) -> [f32; 4] {
    let [x1, y1, x2, y2] = bbox;
    let (w, h) = (x2 - x1 + 1.0, y2 - y1 + 1.0);
    [
        x1 + reg[0] * w,
        y1 + reg[1] * h,
        x2 + reg[2] * w,
        y2 + reg[3] * h,
    ]
}

/// `rerec`: the square of side `max(w, h)` with the same centre.
pub(crate) fn rerec(bbox: [f32; 4]) -> [f32; 4] {
    let [x1, y1, x2, y2] = bbox;
    let (h, w) = (y2 - y1, x2 - x1);
    let l = w.max(h);
    let x1 = x1 + w * 0.5 - l * 0.5;
    let y1 = y1 + h * 0.5 - l * 0.5;
    [x1, y1, x1 + l, y1 + l]
}

/// `pad` and the crop test after it: the pixel rows and columns
/// `(y0..y1, x0..x1)` (zero-based, end exclusive) that the box covers inside a
/// `width × height` image, or `None` where facenet-pytorch takes no crop.
pub(crate) fn crop_window(
    bbox: [f32; 4],
    width: usize,
    height: usize,
) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    // `boxes.trunc().int()` then clamping to 1 ..= width / height.
    let trunc = |v: f32| v.trunc() as i64;
    let x = trunc(bbox[0]).max(1);
    let y = trunc(bbox[1]).max(1);
    let ex = trunc(bbox[2]).min(width as i64);
    let ey = trunc(bbox[3]).min(height as i64);
    // facenet-pytorch slices `(y - 1):ey, (x - 1):ex` when `ey > y - 1` and
    // `ex > x - 1`; a negative end would index from the back, which the test
    // already rules out.
    if ey > y - 1 && ex > x - 1 {
        Some(((y - 1) as usize..ey as usize, (x - 1) as usize..ex as usize))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(bbox: [f32; 4], score: f32) -> Candidate {
        Candidate {
            bbox,
            score,
            reg: [0.0; 4],
        }
    }

    #[test]
    fn generate_maps_cells_back_through_the_scale() {
        // A 2×3 map at scale 0.5: only cell (y 1, x 2) passes.
        let probs = [0.1, 0.2, 0.3, 0.4, 0.5, 0.9];
        let reg: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let got = generate(&reg, &probs, (2, 3), 0.5, 0.6);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].bbox, [10.0, 6.0, 32.0, 28.0]);
        assert_eq!(got[0].score, 0.9);
        assert_eq!(got[0].reg, [5.0, 11.0, 17.0, 23.0]);
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let boxes = [
            cand([0.0, 0.0, 10.0, 10.0], 0.8),
            cand([1.0, 1.0, 11.0, 11.0], 0.9),
            cand([20.0, 20.0, 30.0, 30.0], 0.7),
        ];
        assert_eq!(nms(&boxes, 0.5), vec![1, 2]);
        // IoU of the first two is 81 / 119 ≈ 0.68: kept apart at 0.7.
        assert_eq!(nms(&boxes, 0.7), vec![1, 0, 2]);
    }

    #[test]
    fn nms_min_suppresses_a_box_inside_another() {
        // The small box lies inside the big one: IoU is low, but overlap over
        // the smaller area is 1.
        let boxes = [
            cand([0.0, 0.0, 99.0, 99.0], 0.99),
            cand([10.0, 10.0, 29.0, 29.0], 0.95),
        ];
        assert_eq!(nms(&boxes, 0.7), vec![0, 1]);
        assert_eq!(nms_min(&boxes, 0.7), vec![0]);
    }

    #[test]
    fn rerec_squares_around_the_centre() {
        assert_eq!(rerec([10.0, 20.0, 30.0, 60.0]), [0.0, 20.0, 40.0, 60.0]);
    }

    #[test]
    fn bbreg_uses_inclusive_sizes() {
        let got = bbreg([0.0, 0.0, 9.0, 19.0], [0.1, -0.1, 0.2, 0.5]);
        assert_eq!(got, [1.0, -2.0, 11.0, 29.0]);
    }

    #[test]
    fn crop_windows_clamp_to_the_image() {
        assert_eq!(
            crop_window([-5.5, 3.9, 50.2, 120.0], 40, 100),
            Some((2..100, 0..40))
        );
        assert_eq!(crop_window([45.0, 3.0, 60.0, 20.0], 40, 100), None);
    }
}
