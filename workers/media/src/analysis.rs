//! The analyze phase's result, written as `analysis.json`.

use serde::{Deserialize, Serialize};

/// `analysis.json`. Shots are in order, the first starts at frame 0, and each
/// shot's `end_frame` is exclusive (it equals the next shot's `start_frame`; the
/// last shot ends at `frames`).
///
/// Frame sizes: `width × height` is the analysed frame (the stream at the
/// analysis width, in its display aspect ratio). Face boxes are fractions of
/// it, so they hold at any size: on a thumbnail, which shows that whole frame
/// at `thumbnails.width × thumbnails.height`, a box is at
/// `(x·width, y·height)` of the thumbnail's pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Frame rate of the analysed stream.
    pub fps: f64,
    /// Frames analysed.
    pub frames: u64,
    /// Width of the analysed frames, in pixels.
    pub width: u32,
    /// Height of the analysed frames, in pixels.
    pub height: u32,
    pub duration_s: f64,
    /// How shots were found: detector name, its parameters, the decode size.
    pub detector: serde_json::Value,
    /// The models used, each with its version and the sha256 of its weights.
    pub models: Vec<crate::faces::ModelInfo>,
    /// The shots' thumbnails, when any were asked for (absent in analyses
    /// made before thumbnails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnails: Option<Thumbnails>,
    pub shots: Vec<Shot>,
}

/// What every shot thumbnail (`Shot::thumbnail`) is: the shot's keyframe, the
/// whole analysed frame scaled to `width × height`, as a JPEG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnails {
    pub width: u32,
    pub height: u32,
    pub content_type: String,
    /// Most shots given one: the first this many shots have one each, unless
    /// the shot has no keyframe or its thumbnail failed (its
    /// `thumbnail_error` says why); shots after them have none.
    pub max: u32,
}

/// One shot with its quality measures and highlight score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shot {
    pub index: u32,
    pub start_frame: u64,
    /// Exclusive.
    pub end_frame: u64,
    pub start_s: f64,
    pub end_s: f64,
    /// Mean luma, 0–255.
    pub brightness: f64,
    /// Mean Laplacian magnitude of luma (higher is sharper).
    pub sharpness: f64,
    /// Mean absolute luma difference between consecutive frames, 0–255.
    pub motion: f64,
    /// The shot's keyframe: its sharpest frame among those sampled every
    /// `min_shot_len` frames (`None` only for a shot shorter than that).
    pub keyframe: Option<Keyframe>,
    /// Faces MTCNN found on the keyframe.
    pub faces: u32,
    /// The largest of them (render reframes around it).
    pub largest_face: Option<FaceBox>,
    /// Highlight score in 0–1 (documented in `quality::score`).
    pub score: f64,
    /// The artifact name of the keyframe's thumbnail (`shot-001.jpg` for
    /// shot 0, …), or `None` (see [`Thumbnails::max`]).
    #[serde(default)]
    pub thumbnail: Option<String>,
    /// Why the shot has no thumbnail although it was due one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_error: Option<String>,
    /// The largest face on frames sampled through the shot
    /// (`face_samples_per_s` of them a second, in time order): what the
    /// reframed outputs follow. Empty when sampling was off (and in analyses
    /// made before it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub face_track: Vec<FaceSample>,
}

/// One frame sampled for the face track: when, and the largest face on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceSample {
    /// The frame's index in the analysed stream.
    pub frame: u64,
    /// Its time, seconds from the first frame.
    pub time_s: f64,
    /// The largest face MTCNN found on it, if any.
    pub face: Option<FaceBox>,
}

/// A shot's keyframe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Keyframe {
    pub frame: u64,
    pub time_s: f64,
    /// Its sharpness (the same measure as the shot's).
    pub sharpness: f64,
}

/// A face's box as fractions of the frame's width and height (0–1, from the
/// top left), so it holds at any resolution, with MTCNN's probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceBox {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub prob: f64,
}

impl Shot {
    pub fn duration_s(&self) -> f64 {
        self.end_s - self.start_s
    }
}
