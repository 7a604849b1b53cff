//! The render phase's decisions: which outputs a recipe asks for, which shots make
//! the highlight reel, and which frame makes the poster. The ffmpeg runs that
//! carry them out live in `encode` and are re-exported here.

use crate::{Analysis, MediaError, Shot};
use serde::Deserialize;

pub use crate::encode::{render_highlight, render_poster, Source};

/// The outputs the render phase knows how to make, by the name a recipe uses.
pub const OUTPUTS: &[&str] = &[
    "highlight",
    "poster",
    "vertical",
    "square",
    "hls",
    "thumbnails",
];
/// Shots shorter than this are skipped by [`select_highlights`] unless nothing
/// else is left, and a trimmed last piece shorter than this is not added.
pub const MIN_SEGMENT_S: f64 = 0.5;
/// The longest highlight reel a recipe may ask for.
pub const MAX_TARGET_S: f64 = 3600.0;

/// One output a recipe asks for, with its own parameters. In a recipe it is
/// either its name alone (`"hls"`, every parameter at its default) or an
/// object naming it in `output` beside its parameters
/// (`{"output": "vertical", "height": 1280}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "output", rename_all = "lowercase")]
pub enum Output {
    /// The highlight reel, `highlight.mp4`.
    Highlight(HighlightParams),
    /// One frame as `poster.jpg`.
    Poster(PosterParams),
    /// A 9:16 edit whose crop follows the subject, `vertical.mp4`.
    Vertical(crate::reframe::ReframeParams),
    /// A 1:1 edit whose crop follows the subject, `square.mp4`.
    Square(crate::reframe::ReframeParams),
    /// An adaptive-bitrate ladder under `hls/`, entered at `hls/master.m3u8`.
    Hls(crate::hls::HlsParams),
    /// A scrub-preview sprite sheet and its WebVTT, `thumbnails.jpg` and `.vtt`.
    Thumbnails(crate::sprite::SpriteParams),
}

impl Output {
    /// The name a recipe uses for this output.
    pub fn name(&self) -> &'static str {
        match self {
            Output::Highlight(_) => "highlight",
            Output::Poster(_) => "poster",
            Output::Vertical(_) => "vertical",
            Output::Square(_) => "square",
            Output::Hls(_) => "hls",
            Output::Thumbnails(_) => "thumbnails",
        }
    }

    /// Checks this output's parameters.
    fn validate(&self) -> Result<(), String> {
        match self {
            Output::Highlight(p) => p.validate(),
            Output::Poster(_) => Ok(()),
            Output::Vertical(p) | Output::Square(p) => p.validate(),
            Output::Hls(p) => p.validate(),
            Output::Thumbnails(p) => p.validate(),
        }
    }
}

/// The highlight reel's parameters.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HighlightParams {
    /// How long the reel may be, in seconds; the render step's
    /// `target_duration_s` (default 30) when not given here.
    pub target_duration_s: Option<f64>,
}

impl HighlightParams {
    fn validate(&self) -> Result<(), String> {
        self.target_duration_s.map_or(Ok(()), check_target)
    }
}

/// The poster's parameters (none yet: the frame is chosen from the analysis).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PosterParams {}

fn check_target(t: f64) -> Result<(), String> {
    if t.is_finite() && t > 0.0 && t <= MAX_TARGET_S {
        Ok(())
    } else {
        Err(format!(
            "target_duration_s must be in (0, {MAX_TARGET_S}], got {t}"
        ))
    }
}

/// An output as a recipe writes it: a bare name or an object.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Name(String),
    Full(serde_json::Map<String, serde_json::Value>),
}

impl Written {
    /// The output this names, with the reason when it names none.
    fn read(self) -> Result<Output, String> {
        let map = match self {
            Written::Name(name) => {
                let mut m = serde_json::Map::new();
                m.insert("output".into(), serde_json::Value::String(name));
                m
            }
            Written::Full(m) => m,
        };
        let name = match map.get("output") {
            Some(serde_json::Value::String(n)) => n.clone(),
            _ => return Err("an output object names its kind in \"output\"".into()),
        };
        if !OUTPUTS.contains(&name.as_str()) {
            return Err(format!(
                "unknown output {name:?} (known: {})",
                OUTPUTS.join(", ")
            ));
        }
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| format!("output {name:?}: {e}"))
    }
}

/// The render step's parameters in a recipe.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderParams {
    /// The outputs to make, in order, each at most once.
    pub outputs: Vec<Output>,
    /// How long the highlight reel may be, in seconds (default 30), unless
    /// its own parameters say.
    pub target_duration_s: f64,
    /// The integrated loudness every output with audio is brought to.
    pub loudness: crate::loudness::Loudness,
}

/// The step's parameters as written, before each output is read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct WrittenParams {
    outputs: Vec<Written>,
    target_duration_s: f64,
    loudness: crate::loudness::Loudness,
}

impl Default for WrittenParams {
    fn default() -> Self {
        WrittenParams {
            outputs: ["highlight", "poster"]
                .iter()
                .map(|s| Written::Name(s.to_string()))
                .collect(),
            target_duration_s: 30.0,
            loudness: Default::default(),
        }
    }
}

impl Default for RenderParams {
    fn default() -> Self {
        RenderParams::from_params(&serde_json::Map::new()).expect("the defaults are valid")
    }
}

impl RenderParams {
    /// Reads and validates the render step's parameters; anything it cannot use
    /// (unknown keys or outputs, duplicates, no outputs, a bad parameter) is
    /// [`MediaError::InvalidParams`].
    pub fn from_params(
        map: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, MediaError> {
        let bad = |m: String| MediaError::InvalidParams(format!("render: {m}"));
        let written: WrittenParams = serde_json::from_value(serde_json::Value::Object(map.clone()))
            .map_err(|e| bad(e.to_string()))?;
        if written.outputs.is_empty() {
            return Err(bad("outputs is empty".into()));
        }
        check_target(written.target_duration_s).map_err(bad)?;
        written.loudness.validate().map_err(bad)?;
        let mut outputs: Vec<Output> = Vec::new();
        for w in written.outputs {
            let output = w.read().map_err(bad)?;
            if outputs.iter().any(|o| o.name() == output.name()) {
                return Err(bad(format!("output {:?} is listed twice", output.name())));
            }
            output
                .validate()
                .map_err(|m| bad(format!("output {:?}: {m}", output.name())))?;
            outputs.push(output);
        }
        Ok(RenderParams {
            outputs,
            target_duration_s: written.target_duration_s,
            loudness: written.loudness,
        })
    }

    /// Whether the recipe asks for `output`.
    pub fn wants(&self, output: &str) -> bool {
        self.outputs.iter().any(|o| o.name() == output)
    }

    /// The highlight reel's target length, if the recipe asks for one.
    pub fn highlight_target_s(&self) -> Option<f64> {
        self.outputs.iter().find_map(|o| match o {
            Output::Highlight(h) => Some(h.target_duration_s.unwrap_or(self.target_duration_s)),
            _ => None,
        })
    }
}

/// Picks the highlight reel's segments, as `(start_s, end_s)` in time order.
///
/// The rule: shots are ranked by score, highest first; ties go to the longer
/// shot, then to the earlier one, so the choice is deterministic. Shots shorter
/// than [`MIN_SEGMENT_S`] (and shots with broken times) are left out unless no
/// other shot exists. Going down the ranking, each shot is taken whole while it
/// fits in what is left of `target_s`; the first one that does not fit is cut
/// to its first seconds to fill the rest (unless that piece would be shorter
/// than [`MIN_SEGMENT_S`] and something is already picked), and picking stops.
/// The picked segments are returned in story order; their total never exceeds
/// `target_s`.
pub fn select_highlights(shots: &[Shot], target_s: f64) -> Vec<(f64, f64)> {
    if !(target_s.is_finite() && target_s > 0.0) {
        return Vec::new();
    }
    let sane = |s: &&Shot| {
        s.start_s.is_finite() && s.end_s.is_finite() && s.start_s >= 0.0 && s.end_s > s.start_s
    };
    let mut ranked: Vec<&Shot> = shots
        .iter()
        .filter(sane)
        .filter(|s| s.duration_s() >= MIN_SEGMENT_S)
        .collect();
    if ranked.is_empty() {
        ranked = shots.iter().filter(sane).collect();
    }
    let score = |s: &Shot| {
        if s.score.is_nan() {
            f64::NEG_INFINITY
        } else {
            s.score
        }
    };
    ranked.sort_by(|a, b| {
        score(b)
            .total_cmp(&score(a))
            .then(b.duration_s().total_cmp(&a.duration_s()))
            .then(a.start_s.total_cmp(&b.start_s))
            .then(a.index.cmp(&b.index))
    });

    let mut picked: Vec<(f64, f64)> = Vec::new();
    let mut left = target_s;
    for shot in ranked {
        let length = shot.duration_s();
        if length <= left {
            picked.push((shot.start_s, shot.end_s));
            left -= length;
            if left <= 0.0 {
                break;
            }
        } else {
            if left >= MIN_SEGMENT_S || picked.is_empty() {
                picked.push((shot.start_s, shot.start_s + left));
            }
            break;
        }
    }
    picked.sort_by(|a, b| a.0.total_cmp(&b.0));
    picked
}

/// The poster's time: the keyframe of the best-scoring shot (ties to the
/// earlier shot; its middle if it has no keyframe), or the middle of the video
/// when there are no shots.
pub fn poster_time(analysis: &Analysis) -> f64 {
    let score = |s: &Shot| {
        if s.score.is_nan() {
            f64::NEG_INFINITY
        } else {
            s.score
        }
    };
    let best = analysis
        .shots
        .iter()
        .filter(|s| s.end_s > s.start_s)
        .reduce(|best, s| if score(s) > score(best) { s } else { best });
    let t = match best {
        Some(shot) => match &shot.keyframe {
            Some(k) => k.time_s,
            None => (shot.start_s + shot.end_s) / 2.0,
        },
        None => analysis.duration_s / 2.0,
    };
    if t.is_finite() {
        t.max(0.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests;
