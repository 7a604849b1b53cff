//! The ladder's parameters and the rungs they give for a source.

use serde::Deserialize;

/// The ladder's parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HlsParams {
    /// The renditions' heights in pixels (default 1080, 720, 480, 360). A rung
    /// above the source is capped at the source's height (never upscaled), so
    /// a 720p source gets 720, 480 and 360, and a 240p one a single 240.
    pub ladder: Vec<u32>,
    /// The segment length in seconds (default 6, 2 to 10): every rendition
    /// has a keyframe and a segment boundary at each multiple of it.
    pub segment_s: f64,
    /// The AAC bitrate of every rendition's audio, kbit/s (default 128).
    pub audio_kbps: u32,
}

impl Default for HlsParams {
    fn default() -> Self {
        HlsParams {
            ladder: vec![1080, 720, 480, 360],
            segment_s: 6.0,
            audio_kbps: 128,
        }
    }
}

/// The most rungs a ladder may have.
pub const MAX_RUNGS: usize = 8;

impl HlsParams {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.ladder.is_empty() || self.ladder.len() > MAX_RUNGS {
            return Err(format!(
                "ladder must list 1 to {MAX_RUNGS} heights, got {}",
                self.ladder.len()
            ));
        }
        for (i, &h) in self.ladder.iter().enumerate() {
            if !(120..=4320).contains(&h) || !h.is_multiple_of(2) {
                return Err(format!(
                    "ladder heights must be even and in [120, 4320], got {h}"
                ));
            }
            if self.ladder[..i].contains(&h) {
                return Err(format!("ladder lists {h} twice"));
            }
        }
        if !(self.segment_s.is_finite() && (2.0..=10.0).contains(&self.segment_s)) {
            return Err(format!(
                "segment_s must be in [2, 10], got {}",
                self.segment_s
            ));
        }
        if !(32..=320).contains(&self.audio_kbps) {
            return Err(format!(
                "audio_kbps must be in [32, 320], got {}",
                self.audio_kbps
            ));
        }
        Ok(())
    }

    /// The rungs for a `width`×`height` source, highest first: each height
    /// capped at the source's (rounded down to even), duplicates dropped.
    pub fn rungs(&self, width: u32, height: u32) -> Vec<Rung> {
        let top = (height & !1).max(2);
        let mut heights: Vec<u32> = self.ladder.iter().map(|&h| h.min(top)).collect();
        heights.sort_unstable_by(|a, b| b.cmp(a));
        heights.dedup();
        heights
            .into_iter()
            .map(|h| {
                let w = (f64::from(width) * f64::from(h) / f64::from(height.max(1)) / 2.0)
                    .round()
                    .max(1.0) as u32
                    * 2;
                Rung {
                    height: h,
                    video_kbps: video_kbps(w, h),
                }
            })
            .collect()
    }
}

/// One rung of the ladder as planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    pub height: u32,
    /// The H.264 target bitrate, kbit/s.
    pub video_kbps: u32,
}

impl Rung {
    /// The rendition's name: its playlist is `<name>.m3u8`, its media `<name>.mp4`.
    pub fn name(&self) -> String {
        format!("{}p", self.height)
    }
}

/// The video bitrate for a `w`×`h` rendition: 0.01 kbit/s × pixels^0.9,
/// rounded to 50 kbit/s (bits per pixel fall as the picture grows, as in
/// published ladders): 4850 for 1080p, 2350 for 720p, 1150 for 480p,
/// 650 for 360p.
pub fn video_kbps(w: u32, h: u32) -> u32 {
    let pixels = f64::from(w) * f64::from(h);
    let kbps = 0.01 * pixels.powf(0.9);
    ((kbps / 50.0).round() as u32 * 50).max(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: serde_json::Value) -> Result<HlsParams, String> {
        let p: HlsParams = serde_json::from_value(v).map_err(|e| e.to_string())?;
        p.validate()?;
        Ok(p)
    }

    #[test]
    fn defaults_and_validation() {
        let p = params(serde_json::json!({})).unwrap();
        assert_eq!(p.ladder, [1080, 720, 480, 360]);
        assert_eq!(p.segment_s, 6.0);
        let p = params(serde_json::json!({"ladder": [480, 240], "segment_s": 4})).unwrap();
        assert_eq!(p.ladder, [480, 240]);
        for bad in [
            serde_json::json!({"ladder": []}),
            serde_json::json!({"ladder": [721]}),
            serde_json::json!({"ladder": [100]}),
            serde_json::json!({"ladder": [720, 720]}),
            serde_json::json!({"ladder": [360, 400, 480, 540, 600, 720, 900, 1080, 1440]}),
            serde_json::json!({"segment_s": 1}),
            serde_json::json!({"segment_s": 11}),
            serde_json::json!({"audio_kbps": 8}),
            serde_json::json!({"bitrate": 8}),
        ] {
            assert!(params(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn rungs_are_capped_at_the_source_and_never_upscaled() {
        let p = HlsParams::default();
        let heights = |w, h| p.rungs(w, h).iter().map(|r| r.height).collect::<Vec<_>>();
        assert_eq!(heights(1920, 1080), [1080, 720, 480, 360]);
        assert_eq!(heights(1280, 720), [720, 480, 360]);
        assert_eq!(heights(1920, 1000), [1000, 720, 480, 360]);
        assert_eq!(heights(320, 240), [240]);
        assert_eq!(heights(321, 241), [240]);
        let kbps: Vec<u32> = p.rungs(1920, 1080).iter().map(|r| r.video_kbps).collect();
        assert!(kbps.windows(2).all(|w| w[0] > w[1]), "{kbps:?}");
        assert_eq!(kbps, [4850, 2350, 1150, 650]);
    }
}
