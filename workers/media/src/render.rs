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
mod tests {
    use super::*;

    fn shot(index: u32, start_s: f64, end_s: f64, score: f64) -> Shot {
        Shot {
            index,
            start_frame: (start_s * 25.0) as u64,
            end_frame: (end_s * 25.0) as u64,
            start_s,
            end_s,
            brightness: 100.0,
            sharpness: 10.0,
            motion: 5.0,
            keyframe: None,
            faces: 0,
            largest_face: None,
            score,
            thumbnail: None,
            thumbnail_error: None,
            face_track: Vec::new(),
        }
    }

    fn params(json: serde_json::Value) -> Result<RenderParams, MediaError> {
        RenderParams::from_params(json.as_object().unwrap())
    }

    #[test]
    fn params_default_and_validate() {
        let p = params(serde_json::json!({})).unwrap();
        assert_eq!(p, RenderParams::default());
        assert!(p.wants("highlight") && p.wants("poster"));
        let p =
            params(serde_json::json!({"outputs": ["poster"], "target_duration_s": 12.5})).unwrap();
        assert!(!p.wants("highlight") && p.wants("poster"));
        assert_eq!(p.target_duration_s, 12.5);
        for bad in [
            serde_json::json!({"outputs": ["gif"]}),
            serde_json::json!({"outputs": []}),
            serde_json::json!({"outputs": ["poster", "poster"]}),
            serde_json::json!({"target_duration_s": 0}),
            serde_json::json!({"target_duration_s": -3}),
            serde_json::json!({"target_duration_s": "30"}),
            serde_json::json!({"colour": "red"}),
            serde_json::json!({"outputs": [{"height": 3}]}),
            serde_json::json!({"outputs": [{"output": "gif"}]}),
            serde_json::json!({"outputs": [{"output": "highlight", "colour": "red"}]}),
            serde_json::json!({"outputs": [{"output": "highlight", "target_duration_s": 0}]}),
            serde_json::json!({"outputs": ["hls", {"output": "hls"}]}),
            serde_json::json!({"loudness": {"target_lufs": 3}}),
        ] {
            let err = params(bad.clone()).unwrap_err();
            assert!(
                matches!(err, MediaError::InvalidParams(_)),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn outputs_by_name_or_with_their_parameters() {
        let p = params(serde_json::json!({
            "outputs": ["poster", {"output": "highlight", "target_duration_s": 8}, "thumbnails"],
            "target_duration_s": 20,
        }))
        .unwrap();
        let names: Vec<_> = p.outputs.iter().map(Output::name).collect();
        assert_eq!(names, ["poster", "highlight", "thumbnails"]);
        assert_eq!(p.highlight_target_s(), Some(8.0));
        let p =
            params(serde_json::json!({"outputs": ["highlight"], "target_duration_s": 20})).unwrap();
        assert_eq!(p.highlight_target_s(), Some(20.0));
        let p = params(serde_json::json!({"outputs": ["vertical", "square", "hls"]})).unwrap();
        assert_eq!(p.highlight_target_s(), None);
        let err = params(serde_json::json!({"outputs": ["gif"]})).unwrap_err();
        assert!(
            err.to_string().contains("known: highlight, poster"),
            "{err}"
        );
    }

    #[test]
    fn best_shots_in_time_order_within_target() {
        let shots = [
            shot(0, 0.0, 4.0, 0.2),
            shot(1, 4.0, 7.0, 0.9),
            shot(2, 7.0, 9.0, 0.5),
            shot(3, 9.0, 15.0, 0.7),
        ];
        // 0.9 (3 s) + 0.7 (6 s) = 9 s; 0.5 (2 s) is cut to the 1 s left.
        assert_eq!(
            select_highlights(&shots, 10.0),
            vec![(4.0, 7.0), (7.0, 8.0), (9.0, 15.0)]
        );
        assert_eq!(select_highlights(&shots, 3.0), vec![(4.0, 7.0)]);
        // All of it fits.
        let all = select_highlights(&shots, 100.0);
        assert_eq!(all.len(), 4);
        assert_eq!(all.iter().map(|(a, b)| b - a).sum::<f64>(), 15.0);
    }

    #[test]
    fn short_shots_and_slivers_are_skipped() {
        let shots = [
            shot(0, 0.0, 0.2, 1.0),
            shot(1, 0.2, 3.0, 0.4),
            shot(2, 3.0, 5.0, 0.3),
        ];
        // The 0.2 s shot is skipped; a 0.2 s sliver of shot 2 is not added.
        assert_eq!(select_highlights(&shots, 3.0), vec![(0.2, 3.0)]);
        // Only short shots: they are used.
        let tiny = [shot(0, 0.0, 0.2, 0.1), shot(1, 0.2, 0.4, 0.8)];
        assert_eq!(select_highlights(&tiny, 1.0), vec![(0.0, 0.2), (0.2, 0.4)]);
        // A target below the minimum still gets one trimmed piece.
        assert_eq!(select_highlights(&shots[1..], 0.3), vec![(0.2, 0.5)]);
        assert!(select_highlights(&shots, 0.0).is_empty());
        assert!(select_highlights(&[], 10.0).is_empty());
    }

    #[test]
    fn ties_are_deterministic() {
        let shots = [
            shot(0, 0.0, 2.0, 0.5),
            shot(1, 2.0, 5.0, 0.5),
            shot(2, 5.0, 7.0, 0.5),
        ];
        // Longer first, then earlier.
        assert_eq!(select_highlights(&shots, 5.0), vec![(0.0, 2.0), (2.0, 5.0)]);
        let mut reversed = shots.to_vec();
        reversed.reverse();
        assert_eq!(
            select_highlights(&reversed, 5.0),
            select_highlights(&shots, 5.0)
        );
    }

    #[test]
    fn poster_is_middle_of_best_shot() {
        let mut analysis = Analysis {
            fps: 25.0,
            frames: 250,
            width: 320,
            height: 240,
            duration_s: 10.0,
            detector: serde_json::json!({}),
            models: Vec::new(),
            thumbnails: None,
            shots: vec![
                shot(0, 0.0, 4.0, 0.3),
                shot(1, 4.0, 6.0, 0.8),
                shot(2, 6.0, 10.0, 0.8),
            ],
        };
        assert_eq!(poster_time(&analysis), 5.0);
        analysis.shots[1].keyframe = Some(crate::analysis::Keyframe {
            frame: 110,
            time_s: 4.4,
            sharpness: 12.0,
        });
        assert_eq!(poster_time(&analysis), 4.4, "the best shot's keyframe");
        analysis.shots.clear();
        assert_eq!(poster_time(&analysis), 5.0);
    }
}
