//! The MTCNN cascade as facenet-pytorch's `detect_face` runs it for one
//! image: P-Net over an image pyramid, R-Net and O-Net over area-resampled
//! crops, with box regression and non-maximum suppression between them.
//! Tensor work is candle's; the box lists in between are plain Rust.

use super::boxes::{self, Candidate};
use super::nets::{ONet, PNet, RNet};
use super::resample::{area_resize, crop_resize};
use super::{Face, MtcnnParams};
use candle_core::{DType, IndexOp, Result, Tensor};

/// facenet-pytorch runs R-Net and O-Net on at most this many crops at a time.
const BATCH: usize = 512;

/// `(x - 127.5) * 0.0078125`, the networks' input scaling (exact: the factor
/// is a power of two).
fn normalise(x: &Tensor) -> Result<Tensor> {
    x.affine(0.0078125, -127.5 * 0.0078125)
}

/// The pyramid's scales: from `12 / min_face_size` down by `factor` while the
/// short side stays at least 12 pixels.
pub(crate) fn scales(width: usize, height: usize, params: &MtcnnParams) -> Vec<f64> {
    let m = 12.0 / params.min_face_size;
    let mut minl = width.min(height) as f64 * m;
    let mut scale = m;
    let mut out = Vec::new();
    while minl >= 12.0 {
        out.push(scale);
        scale *= params.factor;
        minl *= params.factor;
    }
    out
}

/// Stage one: candidate squares from P-Net over the pyramid.
fn propose(pnet: &PNet, image: &Tensor, params: &MtcnnParams) -> Result<Vec<[f32; 4]>> {
    let (_, _, h, w) = image.dims4()?;
    let mut picked = Vec::new();
    for scale in scales(w, h, params) {
        let sh = (h as f64 * scale + 1.0) as usize;
        let sw = (w as f64 * scale + 1.0) as usize;
        let input = normalise(&area_resize(image, sh, sw)?)?;
        let (reg, probs) = pnet.forward(&input)?;
        let (_, _, mh, mw) = probs.dims4()?;
        let face = probs.i((0, 1))?.flatten_all()?.to_vec1::<f32>()?;
        let reg = reg.i(0)?.flatten_all()?.to_vec1::<f32>()?;
        let found = boxes::generate(&reg, &face, (mh, mw), scale, params.thresholds[0]);
        let keep = boxes::nms(&found, 0.5);
        picked.extend(keep.into_iter().map(|i| found[i]));
    }
    let keep = boxes::nms(&picked, 0.7);
    Ok(keep
        .into_iter()
        .map(|i| boxes::rerec(boxes::regress_proposal(&picked[i])))
        .collect())
}

/// The boxes that facenet-pytorch can crop, with their crops resampled to
/// `size × size`, normalised, as one `[n, 3, size, size]` tensor.
fn crops(image: &Tensor, squares: &[[f32; 4]], size: usize) -> Result<(Vec<[f32; 4]>, Tensor)> {
    let (_, _, h, w) = image.dims4()?;
    let mut kept = Vec::with_capacity(squares.len());
    let mut windows = Vec::with_capacity(squares.len());
    for &square in squares {
        if let Some(window) = boxes::crop_window(square, w, h) {
            kept.push(square);
            windows.push(window);
        }
    }
    if windows.is_empty() {
        return Ok((
            kept,
            Tensor::zeros((0, 3, size, size), DType::F32, image.device())?,
        ));
    }
    Ok((kept, normalise(&crop_resize(image, &windows, size)?)?))
}

/// Runs `net` over `batch` in chunks of [`BATCH`], returning each output as
/// rows of `f32`.
fn in_chunks<const N: usize>(
    batch: &Tensor,
    net: impl Fn(&Tensor) -> Result<[Tensor; N]>,
) -> Result<[Vec<Vec<f32>>; N]> {
    let mut out: [Vec<Vec<f32>>; N] = std::array::from_fn(|_| Vec::new());
    let n = batch.dim(0)?;
    let mut start = 0;
    while start < n {
        let len = BATCH.min(n - start);
        let outputs = net(&batch.narrow(0, start, len)?)?;
        for (rows, t) in out.iter_mut().zip(outputs) {
            rows.extend(t.to_vec2::<f32>()?);
        }
        start += len;
    }
    Ok(out)
}

fn four(row: &[f32]) -> [f32; 4] {
    [row[0], row[1], row[2], row[3]]
}

/// Stage two: R-Net keeps and refines the proposals.
fn refine(
    rnet: &RNet,
    image: &Tensor,
    squares: &[[f32; 4]],
    threshold: f32,
) -> Result<Vec<[f32; 4]>> {
    if squares.is_empty() {
        return Ok(Vec::new());
    }
    let (squares, batch) = crops(image, squares, 24)?;
    let [reg, probs] = in_chunks(&batch, |x| {
        let (reg, probs) = rnet.forward(x)?;
        Ok([reg, probs])
    })?;
    let passed: Vec<Candidate> = (0..squares.len())
        .filter(|&k| probs[k][1] > threshold)
        .map(|k| Candidate {
            bbox: squares[k],
            score: probs[k][1],
            reg: four(&reg[k]),
        })
        .collect();
    Ok(boxes::nms(&passed, 0.7)
        .into_iter()
        .map(|i| boxes::rerec(boxes::bbreg(passed[i].bbox, passed[i].reg)))
        .collect())
}

/// Stage three: O-Net scores the refined squares, places the landmarks and
/// gives the final boxes.
fn output(onet: &ONet, image: &Tensor, squares: &[[f32; 4]], threshold: f32) -> Result<Vec<Face>> {
    if squares.is_empty() {
        return Ok(Vec::new());
    }
    let (squares, batch) = crops(image, squares, 48)?;
    let [reg, points, probs] = in_chunks(&batch, |x| {
        let (reg, points, probs) = onet.forward(x)?;
        Ok([reg, points, probs])
    })?;
    let mut passed = Vec::new();
    let mut landmarks = Vec::new();
    for k in (0..squares.len()).filter(|&k| probs[k][1] > threshold) {
        let [x1, y1, x2, y2] = squares[k];
        let (w, h) = (x2 - x1 + 1.0, y2 - y1 + 1.0);
        let p = &points[k];
        landmarks.push(std::array::from_fn(|i| {
            [w * p[i] + x1 - 1.0, h * p[5 + i] + y1 - 1.0]
        }));
        passed.push(Candidate {
            bbox: boxes::bbreg(squares[k], four(&reg[k])),
            score: probs[k][1],
            reg: [0.0; 4],
        });
    }
    Ok(boxes::nms_min(&passed, 0.7)
        .into_iter()
        .map(|i| Face {
            bbox: passed[i].bbox,
            prob: passed[i].score,
            landmarks: landmarks[i],
        })
        .collect())
}

/// The faces in `image` (`[1, 3, h, w]`, `f32` RGB 0–255), largest box first
/// as facenet-pytorch's `MTCNN.detect` orders them by default.
pub(crate) fn detect(
    nets: (&PNet, &RNet, &ONet),
    image: &Tensor,
    params: &MtcnnParams,
) -> Result<Vec<Face>> {
    let (pnet, rnet, onet) = nets;
    let proposals = propose(pnet, image, params)?;
    let refined = refine(rnet, image, &proposals, params.thresholds[1])?;
    let mut faces = output(onet, image, &refined, params.thresholds[2])?;
    let area = |f: &Face| (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]);
    faces.sort_by(|a, b| area(b).total_cmp(&area(a)));
    Ok(faces)
}
