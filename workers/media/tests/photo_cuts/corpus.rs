//! Videos made with ffmpeg from the fixture photographs, with exactly known
//! truth: shots that pan, zoom or drift over a photograph (with mild temporal
//! noise, so no two frames are identical), joined by hard cuts or dissolves,
//! with flashes (white or overexposed frames, which are not cuts) laid over
//! the result. 320x180, 25 fps, H.264.
//!
//! Videos are cached in Cargo's test scratch directory under a name that
//! hashes the whole ffmpeg command, so a changed spec makes a new video and
//! an unchanged one is encoded once.

use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const WIDTH: u32 = 320;
pub const HEIGHT: u32 = 180;
pub const FPS: u32 = 25;

/// How the camera moves over a photograph during a shot.
#[derive(Debug, Clone, Copy)]
pub enum Motion {
    /// A pan of `dx`, `dy` output pixels a frame (a slow drift when small),
    /// at magnification `zoom` (1: the photo just covers the frame).
    Pan { dx: f64, dy: f64, zoom: f64 },
    /// Magnification going linearly from `from` to `to` over the shot,
    /// centred at (`cx`, `cy`) as fractions of the slack.
    Zoom {
        from: f64,
        to: f64,
        cx: f64,
        cy: f64,
    },
}

pub use Motion::{Pan, Zoom};

/// A slow drift at magnification 1: one pixel a frame (the crop moves by
/// whole pixels, so slower motion would jump a pixel every few frames, a
/// judder that is not what a slow drift looks like).
pub const DRIFT: Motion = Pan {
    dx: 1.0,
    dy: 0.0,
    zoom: 1.0,
};

/// One shot: `frames` frames of `photo` (a fixture's file name) seen with
/// `motion`, the frame placed at (`sx`, `sy`), fractions of the slack left
/// around the moving window.
#[derive(Debug, Clone, Copy)]
pub struct Shot {
    pub photo: &'static str,
    pub frames: u32,
    pub motion: Motion,
    pub sx: f64,
    pub sy: f64,
    /// Gains of red, green and blue: colour for the grey textures, all
    /// three a similar sandy brown, so that they differ in texture more
    /// than in colour.
    pub tint: [f64; 3],
}

/// A shot of `photo` with `motion`, placed in the middle; the grey textures
/// tinted.
pub fn shot(photo: &'static str, frames: u32, motion: Motion) -> Shot {
    let tint = match photo {
        "brick.png" => [1.0, 0.78, 0.6],
        "grass.png" => [0.92, 0.84, 0.6],
        "gravel.png" => [0.96, 0.8, 0.62],
        _ => [1.0; 3],
    };
    Shot {
        photo,
        frames,
        motion,
        sx: 0.5,
        sy: 0.5,
        tint,
    }
}

impl Shot {
    /// The same shot placed at (`sx`, `sy`).
    pub fn at(self, sx: f64, sy: f64) -> Shot {
        Shot { sx, sy, ..self }
    }
}

/// How a shot follows the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    Cut,
    /// A cross-fade over this many frames (ffmpeg's `xfade`, `fade`).
    Dissolve(u32),
}

/// A flash laid over the finished video: not a cut.
#[derive(Debug, Clone, Copy)]
pub enum Flash {
    /// `len` frames of full white from frame `at`.
    White { at: u32, len: u32 },
    /// `len` frames overexposed (brightened, washed out) from frame `at`.
    Over { at: u32, len: u32 },
}

/// A video of the corpus: its shots, each after the first with the join
/// that leads into it, and its flashes.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: &'static str,
    /// What the video tests, for the report.
    pub about: &'static str,
    pub first: Shot,
    pub rest: Vec<(Join, Shot)>,
    pub flashes: Vec<Flash>,
}

/// A true transition: a cut at `from` (`from == to`), or a dissolve whose
/// blended frames are `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: u64,
    pub to: u64,
}

impl Spec {
    /// The true transitions, in output frames, and the video's length.
    pub fn truth(&self) -> (Vec<Transition>, u64) {
        let mut length = u64::from(self.first.frames);
        let mut truth = Vec::new();
        for (join, shot) in &self.rest {
            match join {
                Join::Cut => {
                    truth.push(Transition {
                        from: length,
                        to: length,
                    });
                    length += u64::from(shot.frames);
                }
                Join::Dissolve(d) => {
                    let d = u64::from(*d);
                    truth.push(Transition {
                        from: length - d,
                        to: length - 1,
                    });
                    length += u64::from(shot.frames) - d;
                }
            }
        }
        (truth, length)
    }

    /// The ffmpeg filter graph: one input per shot (the looped photo), the
    /// output labelled `[out]`.
    fn graph(&self) -> String {
        let shots: Vec<&Shot> = std::iter::once(&self.first)
            .chain(self.rest.iter().map(|(_, s)| s))
            .collect();
        let mut graph = String::new();
        for (i, shot) in shots.iter().enumerate() {
            let _ = write!(graph, "[{i}:v]{}[s{i}];", shot_filters(shot));
        }
        let mut acc = "s0".to_string();
        let mut length = u64::from(self.first.frames);
        for (i, (join, shot)) in self.rest.iter().enumerate() {
            let next = format!("j{}", i + 1);
            match join {
                Join::Cut => {
                    let _ = write!(
                        graph,
                        "[{acc}][s{}]concat=n=2:v=1:a=0,settb=1/{FPS}[{next}];",
                        i + 1
                    );
                    length += u64::from(shot.frames);
                }
                Join::Dissolve(d) => {
                    let d = u64::from(*d);
                    let _ = write!(
                        graph,
                        "[{acc}][s{}]xfade=transition=fade:duration={}:offset={},settb=1/{FPS}[{next}];",
                        i + 1,
                        seconds(d),
                        seconds(length - d)
                    );
                    length += u64::from(shot.frames) - d;
                }
            }
            acc = next;
        }
        let mut tail = String::from("null");
        for flash in &self.flashes {
            tail += ",";
            tail += &match flash {
                Flash::White { at, len } => format!(
                    "drawbox=x=0:y=0:w=iw:h=ih:c=white:t=fill:enable='between(n,{at},{})'",
                    at + len - 1
                ),
                Flash::Over { at, len } => format!(
                    "lutyuv=y='clip(val*1.7+80,0,255)':u='128+(val-128)*0.4':\
                     v='128+(val-128)*0.4':enable='between(n,{at},{})'",
                    at + len - 1
                ),
            };
        }
        let _ = write!(graph, "[{acc}]{tail},format=yuv420p[out]");
        graph
    }

    /// The video, made on first use and cached; its frame count is checked
    /// against the truth's.
    pub fn video(&self, photos: &dyn Fn(&str) -> PathBuf) -> PathBuf {
        let mut args: Vec<String> = ["-v", "error", "-nostdin", "-y"].map(String::from).to_vec();
        for shot in std::iter::once(&self.first).chain(self.rest.iter().map(|(_, s)| s)) {
            args.extend(["-loop", "1", "-framerate", "25", "-i"].map(String::from));
            args.push(photos(shot.photo).display().to_string());
        }
        let (_, length) = self.truth();
        args.extend(["-filter_complex".to_string(), self.graph()]);
        args.extend(["-map", "[out]", "-frames:v"].map(String::from));
        args.push(length.to_string());
        args.extend(
            [
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
            ]
            .map(String::from),
        );
        let key = hex::encode(&Sha256::digest(args.join("\u{1f}").as_bytes())[..8]);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("photo_cuts");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}-{key}.mp4", self.name));
        if path.exists() {
            return path;
        }
        // Written aside and renamed, so tests running at once never read a
        // half-written video.
        let part = dir.join(format!(".{}-{key}.{}.mp4", self.name, std::process::id()));
        let output = Command::new("ffmpeg")
            .args(&args)
            .arg(&part)
            .output()
            .expect("ffmpeg runs");
        assert!(
            output.status.success(),
            "ffmpeg could not make {}: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        let frames = count_frames(&part);
        assert_eq!(
            frames,
            length,
            "{}: frames made vs the truth's; ffmpeg {}",
            self.name,
            args.join(" ")
        );
        std::fs::rename(&part, &path).unwrap();
        path
    }
}

fn seconds(frames: u64) -> String {
    format!("{:.4}", frames as f64 / f64::from(FPS))
}

/// The filters that turn a looped photo into one shot of `WIDTHxHEIGHT`.
fn shot_filters(shot: &Shot) -> String {
    let n = shot.frames;
    let travel = |v: f64| v.abs() * f64::from(n.saturating_sub(1));
    let [r, g, b] = shot.tint;
    let mut f = format!(
        "trim=end_frame={n},settb=1/{FPS},setpts=N,format=rgb24,\
         colorchannelmixer=rr={r}:gg={g}:bb={b},\
         scale=w={WIDTH}:h={HEIGHT}:force_original_aspect_ratio=increase,"
    );
    match shot.motion {
        Pan { dx, dy, zoom } => {
            // The canvas: the photo covering the frame at `zoom`, and at
            // least as large as the frame plus the pan's travel.
            let need_w = (f64::from(WIDTH) * zoom).max(f64::from(WIDTH) + travel(dx) + 2.0);
            let need_h = (f64::from(HEIGHT) * zoom).max(f64::from(HEIGHT) + travel(dy) + 2.0);
            let _ = write!(
                f,
                "scale=w={}:h={}:force_original_aspect_ratio=increase,\
                 crop={WIDTH}:{HEIGHT}:x='{}':y='{}',",
                even(need_w),
                even(need_h),
                pan_expr("iw", "ow", dx, travel(dx), shot.sx),
                pan_expr("ih", "oh", dy, travel(dy), shot.sy),
            );
        }
        Zoom { from, to, cx, cy } => {
            let step = (to - from) / f64::from(n.saturating_sub(1).max(1));
            let _ = write!(
                f,
                "scale=w='trunc(iw*({from}+{step}*n)/2)*2+2':h=-2:eval=frame,\
                 crop={WIDTH}:{HEIGHT}:x='floor((iw-ow)*{cx})':y='floor((ih-oh)*{cy})',"
            );
        }
    }
    // The crop works in RGB (in YUV 4:2:0 it would move by even pixels
    // only). The noise is temporal and on luma only: noise in the chroma of
    // grey photos gives near-grey pixels random hues, which would swamp
    // every content score with hue noise.
    f += "format=rgb24,format=yuv420p,noise=c0s=4:c0f=t,setsar=1";
    f
}

/// The crop offset of a pan: the slack not used by the travel, times the
/// placement, plus the distance moved so far (counted from the far end when
/// moving backwards), floored: `crop` rounds halves to even, which would
/// move a 1-pixel pan by 2 pixels every other frame.
fn pan_expr(size: &str, out: &str, v: f64, travel: f64, place: f64) -> String {
    let base = format!("({size}-{out}-{travel:.3})*{place}");
    if v >= 0.0 {
        format!("floor({base}+{v}*n)")
    } else {
        format!("floor({base}+{travel:.3}+{v}*n)")
    }
}

fn even(x: f64) -> u32 {
    (x / 2.0).ceil() as u32 * 2
}

fn count_frames(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a frame count")
}
