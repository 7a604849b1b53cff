//! The render phase's decisions: which outputs a recipe asks for, which shots make
//! the highlight reel, and which frame makes the poster. The ffmpeg runs that
//! carry them out live in `encode` and are re-exported here.

use crate::{Analysis, MediaError, Shot};
use serde::Deserialize;

pub use crate::encode::{render_highlight, render_poster};

/// The outputs the render phase knows how to make.
pub const OUTPUTS: &[&str] = &["highlight", "poster"];
/// Shots shorter than this are skipped by [`select_highlights`] unless nothing
/// else is left, and a trimmed last piece shorter than this is not added.
pub const MIN_SEGMENT_S: f64 = 0.5;
/// The longest highlight reel a recipe may ask for.
pub const MAX_TARGET_S: f64 = 3600.0;

/// The render step's parameters in a recipe.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RenderParams {
    /// Which outputs to make: `"highlight"` (MP4 reel) and/or `"poster"` (JPEG).
    pub outputs: Vec<String>,
    /// How long the highlight reel may be, in seconds (default 30).
    pub target_duration_s: f64,
}

impl Default for RenderParams {
    fn default() -> Self {
        RenderParams {
            outputs: OUTPUTS.iter().map(|s| s.to_string()).collect(),
            target_duration_s: 30.0,
        }
    }
}

impl RenderParams {
    /// Reads and validates the render step's parameters; anything it cannot use
    /// (unknown keys or outputs, duplicates, no outputs, a bad duration) is
    /// [`MediaError::InvalidParams`].
    pub fn from_params(
        map: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, MediaError> {
        let params: RenderParams =
            serde_json::from_value(serde_json::Value::Object(map.clone()))
                .map_err(|e| MediaError::InvalidParams(format!("render: {e}")))?;
        if params.outputs.is_empty() {
            return Err(MediaError::InvalidParams("render: outputs is empty".into()));
        }
        for (i, output) in params.outputs.iter().enumerate() {
            if !OUTPUTS.contains(&output.as_str()) {
                return Err(MediaError::InvalidParams(format!(
                    "render: unknown output {output:?} (known: {})",
                    OUTPUTS.join(", ")
                )));
            }
            if params.outputs[..i].contains(output) {
                return Err(MediaError::InvalidParams(format!(
                    "render: output {output:?} is listed twice"
                )));
            }
        }
        let t = params.target_duration_s;
        if !(t.is_finite() && t > 0.0 && t <= MAX_TARGET_S) {
            return Err(MediaError::InvalidParams(format!(
                "render: target_duration_s must be in (0, {MAX_TARGET_S}], got {t}"
            )));
        }
        Ok(params)
    }

    /// Whether the recipe asks for `output`.
    pub fn wants(&self, output: &str) -> bool {
        self.outputs.iter().any(|o| o == output)
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
        ] {
            let err = params(bad.clone()).unwrap_err();
            assert!(
                matches!(err, MediaError::InvalidParams(_)),
                "{bad}: {err:?}"
            );
        }
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
