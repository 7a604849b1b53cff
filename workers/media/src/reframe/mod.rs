//! Reframing to 9:16 (`vertical`) and 1:1 (`square`): a crop window that
//! follows the subject through each shot.
//!
//! Where the subject is comes from the analysis: each shot's face track
//! (the largest face on frames sampled through the shot by the analyze
//! phase, `face_samples_per_s` a second). [`plan`] turns it into the
//! window's position on every frame ([`path`] says how: a dead zone, a
//! zero-phase moving average and a speed limit, reset at every cut; the
//! frame's centre in shots without a face). [`render_reframed`] then crops
//! every output asked for from one decode of the source, in one ffmpeg run.

mod path;
mod run;

pub use path::{jitter, Motion};
pub use run::render_reframed;

use crate::analysis::Analysis;
use serde::Deserialize;
use std::path::Path;

/// A reframed output's parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReframeParams {
    /// The output's width in pixels (even, 64–4320; default 1080): 1080×1920
    /// vertical, 1080×1080 square. Never more than the crop window itself:
    /// a smaller source gives a smaller output, never an upscaled one.
    pub width: u32,
    /// How far, as a fraction of the window's width (or height), the
    /// subject may move from the window's centre before the window follows
    /// (0–0.4; default 0.1). Narrowed where a face would not fit beside it.
    pub dead_zone: f64,
    /// Length of the moving average that smooths the window's path, seconds
    /// (0–5; default 0.5; 0 smooths nothing).
    pub smoothing_s: f64,
    /// The window's top speed, in frame widths (or heights) a second
    /// (0.05–10; default 0.6: 768 px/s across a 1280-pixel frame).
    pub max_speed: f64,
}

impl Default for ReframeParams {
    fn default() -> Self {
        ReframeParams {
            width: 1080,
            dead_zone: 0.1,
            smoothing_s: 0.5,
            max_speed: 0.6,
        }
    }
}

impl ReframeParams {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let w = self.width;
        if !(64..=4320).contains(&w) || !w.is_multiple_of(2) {
            return Err(format!("width must be even and in 64–4320, got {w}"));
        }
        let within = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
        if !within(self.dead_zone, 0.0, 0.4) {
            return Err(format!(
                "dead_zone must be in 0–0.4, got {}",
                self.dead_zone
            ));
        }
        if !within(self.smoothing_s, 0.0, 5.0) {
            return Err(format!(
                "smoothing_s must be in 0–5, got {}",
                self.smoothing_s
            ));
        }
        if !within(self.max_speed, 0.05, 10.0) {
            return Err(format!(
                "max_speed must be in 0.05–10, got {}",
                self.max_speed
            ));
        }
        Ok(())
    }

    fn motion(&self) -> Motion {
        Motion {
            dead_zone: self.dead_zone,
            smoothing_s: self.smoothing_s,
            max_speed: self.max_speed,
        }
    }
}

/// The shape of a reframed output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aspect {
    /// 9:16, `vertical.mp4`.
    Vertical,
    /// 1:1, `square.mp4`.
    Square,
}

impl Aspect {
    /// Width and height of the ratio.
    fn ratio(self) -> (u32, u32) {
        match self {
            Aspect::Vertical => (9, 16),
            Aspect::Square => (1, 1),
        }
    }
}

/// One reframed output to make: its shape, parameters and file.
#[derive(Debug, Clone, Copy)]
pub struct Reframe<'a> {
    pub aspect: Aspect,
    pub params: &'a ReframeParams,
    pub out: &'a Path,
}

/// Where the window is on every frame, in the source's (display) pixels,
/// and what it is scaled to.
#[derive(Debug, Clone, PartialEq)]
pub struct Framing {
    /// The source frame the window moves over.
    pub frame: (u32, u32),
    /// The window's size.
    pub window: (u32, u32),
    /// The output's size (the window's, or smaller).
    pub output: (u32, u32),
    /// The window's top-left corner on each analysed frame.
    pub xs: Vec<u32>,
    pub ys: Vec<u32>,
}

fn even(v: f64) -> u32 {
    ((v / 2.0).floor() * 2.0).max(2.0) as u32
}

/// The window's path for `aspect` over a `frame`-sized source (display
/// pixels) whose analysis is `analysis`: the largest window of that shape
/// (even sides), scaled down to `params.width` if wider.
pub fn plan(
    analysis: &Analysis,
    frame: (u32, u32),
    aspect: Aspect,
    params: &ReframeParams,
) -> Framing {
    let (fw, fh) = (frame.0 as f64, frame.1 as f64);
    let (rw, rh) = aspect.ratio();
    let (rw, rh) = (f64::from(rw), f64::from(rh));
    let window = if fh * rw / rh <= fw {
        (even(fh * rw / rh), even(fh))
    } else {
        (even(fw), even(fw * rh / rw))
    };
    let output = if params.width < window.0 {
        let h = even(f64::from(params.width) * f64::from(window.1) / f64::from(window.0));
        (params.width, h)
    } else {
        window
    };
    let motion = params.motion();
    let (frames, fps) = (analysis.frames, analysis.fps);
    let along_x = path::Axis {
        frame: frame.0,
        window: window.0,
    };
    let along_y = path::Axis {
        frame: frame.1,
        window: window.1,
    };
    let xs = path::offsets(
        &analysis.shots,
        frames,
        fps,
        along_x,
        |f| (f.x + f.w / 2.0, f.w),
        &motion,
    );
    let ys = path::offsets(
        &analysis.shots,
        frames,
        fps,
        along_y,
        |f| (f.y + f.h / 2.0, f.h),
        &motion,
    );
    Framing {
        frame,
        window,
        output,
        xs,
        ys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(frames: u64) -> Analysis {
        Analysis {
            fps: 25.0,
            frames,
            width: 320,
            height: 180,
            duration_s: frames as f64 / 25.0,
            detector: serde_json::json!({}),
            models: Vec::new(),
            thumbnails: None,
            shots: Vec::new(),
        }
    }

    #[test]
    fn windows_fit_the_frame_and_are_never_upscaled() {
        let p = ReframeParams::default();
        let f = plan(&analysis(10), (1920, 1080), Aspect::Vertical, &p);
        assert_eq!((f.window, f.output), ((606, 1080), (606, 1080)));
        let f = plan(&analysis(10), (3840, 2160), Aspect::Vertical, &p);
        assert_eq!((f.window, f.output), ((1214, 2160), (1080, 1920)));
        let f = plan(&analysis(10), (1280, 720), Aspect::Square, &p);
        assert_eq!((f.window, f.output), ((720, 720), (720, 720)));
        // Portrait: the whole width, part of the height.
        let f = plan(&analysis(10), (720, 1440), Aspect::Vertical, &p);
        assert_eq!(f.window, (720, 1280));
        assert_eq!(f.ys, vec![80; 10], "centred without a face");
        assert_eq!(f.xs, vec![0; 10]);
        let f = plan(
            &analysis(10),
            (1440, 720),
            Aspect::Square,
            &ReframeParams { width: 360, ..p },
        );
        assert_eq!((f.window, f.output), ((720, 720), (360, 360)));
    }

    #[test]
    fn params_default_and_validate() {
        let read = |v: serde_json::Value| -> Result<ReframeParams, String> {
            let p: ReframeParams = serde_json::from_value(v).map_err(|e| e.to_string())?;
            p.validate().map(|()| p)
        };
        assert_eq!(
            read(serde_json::json!({})).unwrap(),
            ReframeParams::default()
        );
        assert_eq!(read(serde_json::json!({"width": 720})).unwrap().width, 720);
        for bad in [
            serde_json::json!({"width": 721}),
            serde_json::json!({"width": 32}),
            serde_json::json!({"dead_zone": 0.5}),
            serde_json::json!({"smoothing_s": -1}),
            serde_json::json!({"max_speed": 0}),
            serde_json::json!({"zoom": 2}),
        ] {
            assert!(read(bad.clone()).is_err(), "{bad}");
        }
    }
}
