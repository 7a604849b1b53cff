//! Face detection with MTCNN, as facenet-pytorch runs it, on candle.
//!
//! * [`nets`]: P-Net, R-Net and O-Net, pure model code (`VarBuilder` in,
//!   `forward` out), on the [`layers`] they need.
//! * The cascade (image pyramid, area resampling, box regression, NMS) follows
//!   facenet-pytorch's `detect_face` step for step, so that detections match
//!   its own `MTCNN.detect` (see `tests/faces.rs` and its golden file).
//!
//! The weights are facenet-pytorch's, converted to safetensors by
//! `models/fetch.sh` into `models/mtcnn/`; nothing is downloaded at run time.

mod boxes;
pub mod layers;
pub mod nets;
mod resample;
mod stages;

use crate::MediaError;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use nets::{ONet, PNet, RNet};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The folder under the models directory that holds MTCNN's weights.
pub const MTCNN_SUBDIR: &str = "mtcnn";
/// The weights files, in the order P-Net, R-Net, O-Net.
pub const WEIGHTS_FILES: [&str; 3] = ["pnet.safetensors", "rnet.safetensors", "onet.safetensors"];
/// What to run when the weights are missing.
pub const SETUP_HINT: &str =
    "run `bash models/fetch.sh` (or `bash .ci/setup`) from the repository root";

/// One detected face, in pixels of the image given to [`Mtcnn::detect`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// `x1, y1, x2, y2`.
    pub bbox: [f32; 4],
    /// O-Net's face probability.
    pub prob: f32,
    /// `[x, y]` of the left eye, right eye, nose, left and right mouth corner.
    pub landmarks: [[f32; 2]; 5],
}

/// Detection parameters; the defaults are facenet-pytorch's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MtcnnParams {
    /// The smallest face searched for, in pixels (sets the pyramid's top scale).
    pub min_face_size: f64,
    /// Face probability thresholds of P-Net, R-Net and O-Net.
    pub thresholds: [f32; 3],
    /// The pyramid's step between scales, in (0, 1).
    pub factor: f64,
}

impl Default for MtcnnParams {
    fn default() -> Self {
        Self {
            min_face_size: 20.0,
            thresholds: [0.6, 0.7, 0.7],
            factor: 0.709,
        }
    }
}

impl MtcnnParams {
    fn validate(&self) -> Result<(), MediaError> {
        let bad = |m: String| Err(MediaError::InvalidParams(m));
        if !(self.min_face_size.is_finite() && self.min_face_size >= 1.0) {
            return bad(format!("min_face_size {} is not >= 1", self.min_face_size));
        }
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return bad(format!("factor {} is not in (0, 1)", self.factor));
        }
        if self.thresholds.iter().any(|t| !(0.0..=1.0).contains(t)) {
            return bad(format!(
                "thresholds {:?} are not in [0, 1]",
                self.thresholds
            ));
        }
        Ok(())
    }
}

/// Which model produced the faces, for the analysis record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// `"mtcnn"`.
    pub name: String,
    /// Where the weights came from (MODEL.json's `source`), e.g.
    /// `facenet-pytorch==2.6.0 (PyPI wheel)`.
    pub version: String,
    /// `(file name, sha256 hex)` of each weights file, as loaded.
    pub weights: Vec<(String, String)>,
}

/// MTCNN face detector: the three networks on one device, and the parameters.
#[derive(Debug, Clone)]
pub struct Mtcnn {
    pnet: PNet,
    rnet: RNet,
    onet: ONet,
    params: MtcnnParams,
    info: ModelInfo,
    device: Device,
}

/// The directory that holds `mtcnn/`: `SPROCKET_MODELS_DIR` if set, else
/// `./models` if it has `mtcnn/`, else the repository's `models/`.
pub fn default_model_dir() -> PathBuf {
    let env = std::env::var_os("SPROCKET_MODELS_DIR").map(PathBuf::from);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    resolve_model_dir(env, &cwd)
}

/// [`default_model_dir`] given the environment variable's value and the
/// current directory.
pub fn resolve_model_dir(env: Option<PathBuf>, cwd: &Path) -> PathBuf {
    if let Some(dir) = env.filter(|d| !d.as_os_str().is_empty()) {
        return dir;
    }
    let local = cwd.join("models");
    if local.join(MTCNN_SUBDIR).is_dir() {
        return local;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models"))
}

fn model_error(message: String) -> MediaError {
    MediaError::Model(message)
}

/// MODEL.json as `models/fetch.sh` writes it.
#[derive(Deserialize)]
struct ModelManifest {
    source: String,
    sha256: std::collections::BTreeMap<String, String>,
}

fn read_manifest(dir: &Path) -> Result<Option<ModelManifest>, MediaError> {
    let path = dir.join("MODEL.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            model_error(format!(
                "{} is not valid: {e}; {SETUP_HINT}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(MediaError::io(path, e)),
    }
}

impl Mtcnn {
    /// Loads the weights from [`default_model_dir`] onto the analysis device
    /// ([`crate::tensors::device`]).
    pub fn load_default() -> Result<Mtcnn, MediaError> {
        Self::load(
            &default_model_dir().join(MTCNN_SUBDIR),
            crate::tensors::device(),
        )
    }

    /// [`load_default`](Self::load_default)'s model, loaded once per process
    /// and shared (a failed load is not remembered: the next call tries again).
    pub fn shared_default() -> Result<&'static Mtcnn, MediaError> {
        static SHARED: std::sync::OnceLock<Mtcnn> = std::sync::OnceLock::new();
        if let Some(m) = SHARED.get() {
            return Ok(m);
        }
        let m = Self::load_default()?;
        Ok(SHARED.get_or_init(|| m))
    }

    /// Loads P-Net, R-Net and O-Net from `dir` (the folder holding
    /// [`WEIGHTS_FILES`], normally `models/mtcnn`) onto `device`. A missing
    /// file is an error naming it and the setup command; a file whose sha256
    /// differs from `MODEL.json` beside it is an error too.
    pub fn load(dir: &Path, device: &Device) -> Result<Mtcnn, MediaError> {
        let manifest = read_manifest(dir)?;
        let mut weights = Vec::with_capacity(WEIGHTS_FILES.len());
        let mut builders = Vec::with_capacity(WEIGHTS_FILES.len());
        for name in WEIGHTS_FILES {
            let path = dir.join(name);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(model_error(format!(
                        "MTCNN weights file {} is missing: {SETUP_HINT}",
                        path.display()
                    )));
                }
                Err(e) => return Err(MediaError::io(path, e)),
            };
            let digest = hex::encode(Sha256::digest(&bytes));
            if let Some(expected) = manifest.as_ref().and_then(|m| m.sha256.get(name)) {
                if *expected != digest {
                    return Err(model_error(format!(
                        "MTCNN weights file {} has sha256 {digest}, MODEL.json says {expected}: {SETUP_HINT}",
                        path.display()
                    )));
                }
            }
            weights.push((name.to_string(), digest));
            // Read rather than memory-mapped: the files are small (2 MB) and
            // hashed anyway.
            let builder = VarBuilder::from_buffered_safetensors(bytes, DType::F32, device)
                .map_err(|e| {
                    model_error(format!(
                        "{} is not a safetensors file: {e}; {SETUP_HINT}",
                        path.display()
                    ))
                })?;
            builders.push(builder);
        }
        let [pnet, rnet, onet]: [VarBuilder; 3] = builders
            .try_into()
            .map_err(|_| model_error("MTCNN: expected three weights files".into()))?;
        let net_error = |net: &str, e: candle_core::Error| {
            model_error(format!(
                "MTCNN {net} weights in {} do not fit: {e}",
                dir.display()
            ))
        };
        let info = ModelInfo {
            name: "mtcnn".into(),
            version: manifest
                .map(|m| m.source)
                .unwrap_or_else(|| "unknown (no MODEL.json)".into()),
            weights,
        };
        Ok(Mtcnn {
            pnet: PNet::new(pnet).map_err(|e| net_error("P-Net", e))?,
            rnet: RNet::new(rnet).map_err(|e| net_error("R-Net", e))?,
            onet: ONet::new(onet).map_err(|e| net_error("O-Net", e))?,
            params: MtcnnParams::default(),
            info,
            device: device.clone(),
        })
    }

    /// The same detector with other parameters.
    pub fn with_params(mut self, params: MtcnnParams) -> Result<Mtcnn, MediaError> {
        params.validate()?;
        self.params = params;
        Ok(self)
    }

    pub fn params(&self) -> &MtcnnParams {
        &self.params
    }

    /// The model's name, source and weights hashes.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The faces in an RGB24 image (`width × height × 3` bytes, row-major),
    /// largest box first.
    pub fn detect(&self, rgb: &[u8], width: usize, height: usize) -> Result<Vec<Face>, MediaError> {
        if width == 0 || height == 0 || rgb.len() != width * height * 3 {
            return Err(MediaError::InvalidParams(format!(
                "an RGB24 image of {width}×{height} needs {} bytes, got {}",
                width * height * 3,
                rgb.len()
            )));
        }
        let image = Tensor::from_slice(rgb, (height, width, 3), &self.device)?
            .to_dtype(DType::F32)?
            .permute((2, 0, 1))?
            .unsqueeze(0)?
            .contiguous()?;
        let faces = stages::detect((&self.pnet, &self.rnet, &self.onet), &image, &self.params)?;
        tracing::debug!(width, height, faces = faces.len(), "mtcnn detect");
        Ok(faces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_dir_prefers_the_environment_then_the_working_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let env = Some(PathBuf::from("/opt/models"));
        assert_eq!(
            resolve_model_dir(env, tmp.path()),
            PathBuf::from("/opt/models")
        );
        let fallback = resolve_model_dir(None, tmp.path());
        assert!(fallback.ends_with("../../models"), "{}", fallback.display());
        std::fs::create_dir_all(tmp.path().join("models/mtcnn")).unwrap();
        assert_eq!(
            resolve_model_dir(None, tmp.path()),
            tmp.path().join("models")
        );
    }

    #[test]
    fn params_are_validated() {
        let ok = MtcnnParams::default();
        assert!(ok.validate().is_ok());
        for bad in [
            MtcnnParams {
                factor: 1.0,
                ..ok.clone()
            },
            MtcnnParams {
                min_face_size: 0.0,
                ..ok.clone()
            },
            MtcnnParams {
                thresholds: [0.6, 1.5, 0.7],
                ..ok.clone()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(MediaError::InvalidParams(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn scales_follow_facenet_pytorch() {
        // 512 × 512 with the defaults: 0.6 · 0.709^k while 307.2 · 0.709^k >= 12.
        let s = stages::scales(512, 512, &MtcnnParams::default());
        assert_eq!(s.len(), 10);
        assert_eq!(s[0], 0.6);
        assert!((s[9] - 0.6 * 0.709f64.powi(9)).abs() < 1e-12);
    }
}
