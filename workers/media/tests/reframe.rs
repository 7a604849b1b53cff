//! The `vertical` and `square` outputs on videos whose face moves across the
//! frame: the truth is MTCNN on every frame of the source (at 480 pixels
//! wide, independent of the analysis' 4-a-second track that the crop
//! follows); the crop must hold the face's centre on ≥ 98% of frames and its
//! whole box on ≥ 95%, and jitter less than a naive per-frame follower.
//! `cargo test -p sprocket-media --test reframe -- --nocapture` prints the
//! figures (tests/REFRAME.md keeps them).

mod photos;
mod render_support;

use photos::fixture;
use render_support::{codecs, duration, ffmpeg, ffprobe, processes_mentioning};
use sprocket_media::analyze::{analyze, AnalyzeParams};
use sprocket_media::decode::{DecodeOptions, FrameDecoder};
use sprocket_media::faces::Mtcnn;
use sprocket_media::loudness::{ebur128, Loudness};
use sprocket_media::reframe::{jitter, render_reframed, Aspect, Framing, Reframe, ReframeParams};
use sprocket_media::render::Source;
use sprocket_media::{Analysis, MediaError};
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// One shot of a test video: a fixture photo as the background, the
/// astronaut (`size` pixels square) laid over it at `x`, `y` (ffmpeg
/// expressions of the shot's time `t`), for `seconds`.
struct Segment {
    background: &'static str,
    seconds: f64,
    x: &'static str,
    y: &'static str,
}

/// A 25 fps H.264 video of `segments` joined by hard cuts, `w × h`, with a
/// quiet tone (−30 dBFS) when `audio`.
fn moving_face(
    dir: &Path,
    name: &str,
    (w, h): (u32, u32),
    size: u32,
    segments: &[Segment],
    audio: bool,
) -> PathBuf {
    let out = dir.join(name);
    let astronaut = fixture("astronaut.png");
    let mut args: Vec<String> = Vec::new();
    let mut filter = String::new();
    for (i, s) in segments.iter().enumerate() {
        let bg = fixture(s.background);
        for input in [&bg, &astronaut] {
            args.extend(["-loop", "1", "-framerate", "25", "-t"].map(String::from));
            args.push(format!("{}", s.seconds));
            args.extend(["-i".into(), input.display().to_string()]);
        }
        let (b, f) = (2 * i, 2 * i + 1);
        filter.push_str(&format!(
            "[{b}:v]scale={w}:{h},setsar=1[bg{i}];[{f}:v]scale={size}:{size}[fg{i}];\
             [bg{i}][fg{i}]overlay=x='{}':y='{}':eval=frame,format=yuv420p[v{i}];",
            s.x, s.y
        ));
    }
    for i in 0..segments.len() {
        filter.push_str(&format!("[v{i}]"));
    }
    filter.push_str(&format!("concat=n={}:v=1:a=0[v]", segments.len()));
    let total: f64 = segments.iter().map(|s| s.seconds).sum();
    if audio {
        args.extend(["-f", "lavfi", "-i"].map(String::from));
        args.push(format!("sine=frequency=330:duration={total},volume=-30dB"));
    }
    args.extend([
        "-filter_complex".into(),
        filter,
        "-map".into(),
        "[v]".into(),
    ]);
    if audio {
        args.extend(
            ["-map", &format!("{}:a", 2 * segments.len()), "-c:a", "aac"].map(String::from),
        );
    }
    args.extend(
        [
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-r", "25",
        ]
        .map(String::from),
    );
    args.extend(["-t".into(), format!("{total}"), out.display().to_string()]);
    ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
    out
}

fn analyse(video: &Path) -> Analysis {
    analyze(
        video,
        &AnalyzeParams::default(),
        Mtcnn::shared_default().expect("MTCNN weights (bash models/fetch.sh)"),
        &mut |_| {},
        &CancellationToken::new(),
    )
    .expect("analysis")
}

/// A face box in pixels: left, top, right, bottom.
type Px = [f64; 4];

/// MTCNN's largest face on every `every`-th frame of `video` decoded `width`
/// wide (`None` on the others), in pixels of a `frame`-wide source.
fn faces_per_frame(video: &Path, width: u32, frame_w: u32, every: usize) -> Vec<Option<Px>> {
    let mtcnn = Mtcnn::shared_default().expect("MTCNN weights");
    let options = DecodeOptions {
        width,
        batch_frames: 8,
        max_seconds: None,
        stream: None,
    };
    let mut decoder = FrameDecoder::open(video, &options).expect("decodes");
    let cancel = CancellationToken::new();
    let mut out = Vec::new();
    while let Some(batch) = decoder.next_batch(&mut |_| {}, &cancel).expect("a batch") {
        let (w, h) = (batch.width as usize, batch.height as usize);
        let scale = f64::from(frame_w) / w as f64;
        for i in 0..batch.len {
            if !(batch.first_frame as usize + i).is_multiple_of(every) {
                out.push(None);
                continue;
            }
            let planar = &batch.data[i * w * h * 3..(i + 1) * w * h * 3];
            let packed: Vec<u8> = (0..w * h)
                .flat_map(|p| [planar[p], planar[w * h + p], planar[2 * w * h + p]])
                .collect();
            let faces = mtcnn.detect(&packed, w, h).expect("detects");
            let largest = faces.iter().max_by(|a, b| {
                let area = |f: &sprocket_media::faces::Face| {
                    (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])
                };
                area(a).total_cmp(&area(b))
            });
            out.push(largest.map(|f| f.bbox.map(|v| f64::from(v) * scale)));
        }
    }
    out
}

/// What one reframed output scored against the truth.
struct Score {
    frames: usize,
    centre_in: f64,
    box_in: f64,
    jitter: f64,
    naive_jitter: f64,
}

fn score(f: &Framing, truth: &[Option<Px>], cuts: &[u64]) -> Score {
    let (cw, ch) = (f64::from(f.window.0), f64::from(f.window.1));
    let (mut seen, mut centre, mut whole) = (0usize, 0usize, 0usize);
    for (i, t) in truth.iter().enumerate() {
        let Some([l, t, r, b]) = *t else { continue };
        let (x, y) = (f64::from(f.xs[i]), f64::from(f.ys[i]));
        seen += 1;
        let (cx, cy) = ((l + r) / 2.0, (t + b) / 2.0);
        centre += usize::from(cx >= x && cx <= x + cw && cy >= y && cy <= y + ch);
        // One pixel of slack: MTCNN's box edges are not sharper than that.
        whole +=
            usize::from(l >= x - 1.0 && r <= x + cw + 1.0 && t >= y - 1.0 && b <= y + ch + 1.0);
    }
    // The naive follower: the window centred on each frame's face (held
    // where none was found), clamped to the frame.
    let travel = f64::from(f.frame.0) - cw;
    let mut last = travel / 2.0;
    let naive: Vec<f64> = truth
        .iter()
        .map(|t| {
            if let Some([l, _, r, _]) = t {
                last = ((l + r) / 2.0 - cw / 2.0).clamp(0.0, travel).round();
            }
            last
        })
        .collect();
    let ours: Vec<f64> = f.xs.iter().map(|&x| f64::from(x)).collect();
    Score {
        frames: seen,
        centre_in: centre as f64 / seen.max(1) as f64,
        box_in: whole as f64 / seen.max(1) as f64,
        jitter: jitter(&ours, cuts),
        naive_jitter: jitter(&naive, cuts),
    }
}

/// The vertical and square outputs, with the same parameters, into `vertical`
/// and `square`.
fn both<'a>(params: &'a ReframeParams, vertical: &'a Path, square: &'a Path) -> [Reframe<'a>; 2] {
    [
        Reframe {
            aspect: Aspect::Vertical,
            params,
            out: vertical,
        },
        Reframe {
            aspect: Aspect::Square,
            params,
            out: square,
        },
    ]
}

fn stream<'a>(probe: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} stream"))
}

/// Renders vertical and square of `video` in one run and checks them: the
/// coverage and jitter figures, codecs, sizes, duration, loudness.
fn check(label: &str, video: &Path, frame_w: u32, audio: bool) {
    let dir = video.parent().unwrap();
    let analysis = analyse(video);
    let cuts: Vec<u64> = analysis
        .shots
        .iter()
        .skip(1)
        .map(|s| s.start_frame)
        .collect();
    let truth = faces_per_frame(video, 480, frame_w, 1);
    assert_eq!(
        truth.len() as u64,
        analysis.frames,
        "the truth covers every frame"
    );
    let found = truth.iter().filter(|t| t.is_some()).count();
    assert!(
        found * 10 >= truth.len() * 9,
        "the face is found on {found} of {} frames",
        truth.len()
    );

    let params = ReframeParams::default();
    let (vertical, square) = (dir.join("vertical.mp4"), dir.join("square.mp4"));
    let outputs = both(&params, &vertical, &square);
    let source = Source {
        path: video.to_path_buf(),
        stream: None,
        has_audio: audio,
        longest_s: Source::DEFAULT_LONGEST_S,
    };
    let mut seen = Vec::new();
    let framings = render_reframed(
        &source,
        &analysis,
        &Loudness::default(),
        &outputs,
        &mut |p| seen.push(p),
        &CancellationToken::new(),
    )
    .expect("rendered");
    assert_eq!(seen.first(), Some(&0.0));
    assert_eq!(seen.last(), Some(&100.0));
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "progress not rising: {seen:?}"
    );

    for ((out, f), (name, ratio)) in [&vertical, &square]
        .iter()
        .zip(&framings)
        .zip([("vertical", 9.0 / 16.0), ("square", 1.0)])
    {
        let s = score(f, &truth, &cuts);
        println!(
            "{label} {name}: {} frames with a face; centre in crop {:.1}%, whole box {:.1}%; \
             jitter {:.3} px/frame² (naive per-frame follower {:.3})",
            s.frames,
            s.centre_in * 100.0,
            s.box_in * 100.0,
            s.jitter,
            s.naive_jitter
        );
        assert!(
            s.centre_in >= 0.98,
            "{label} {name}: centre in {:.3}",
            s.centre_in
        );
        assert!(s.box_in >= 0.95, "{label} {name}: box in {:.3}", s.box_in);
        assert!(
            s.jitter < s.naive_jitter,
            "{label} {name}: jitter {} vs naive {}",
            s.jitter,
            s.naive_jitter
        );

        let probe = ffprobe(out);
        assert_eq!(codecs(&probe, "video"), ["h264"], "{name}");
        let v = stream(&probe, "video");
        assert_eq!(v["pix_fmt"], "yuv420p");
        let (w, h) = (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap());
        assert_eq!((w as u32, h as u32), f.output, "{name}");
        assert!(w % 2 == 0 && h % 2 == 0);
        assert!(
            ((w as f64 / h as f64) - ratio).abs() < 0.01,
            "{name}: {w}x{h}"
        );
        let got = duration(&probe);
        assert!(
            (got - analysis.duration_s).abs() < 0.15,
            "{name}: {got} s vs {}",
            analysis.duration_s
        );
        if audio {
            assert_eq!(codecs(&probe, "audio"), ["aac"], "{name}");
            let r = ebur128(out).expect("loudness");
            assert!(
                (r.integrated_lufs + 16.0).abs() <= 1.0,
                "{name}: {} LUFS",
                r.integrated_lufs
            );
        } else {
            assert!(
                codecs(&probe, "audio").is_empty(),
                "{name}: no source audio, no track"
            );
        }
    }
    check_crop_was_applied(&vertical, &framings[0], &truth);
}

/// The crop ffmpeg made is the one planned: the face MTCNN finds on the
/// output's frames sits where the truth and the planned window put it.
fn check_crop_was_applied(out: &Path, f: &Framing, truth: &[Option<Px>]) {
    let scale = f64::from(f.output.0) / f64::from(f.window.0);
    // Every third frame is plenty here, and much quicker.
    let on_output = faces_per_frame(out, f.output.0, f.output.0, 3);
    assert_eq!(
        on_output.len(),
        truth.len(),
        "a frame out for every frame in"
    );
    let mut errors: Vec<f64> = truth
        .iter()
        .zip(&on_output)
        .enumerate()
        .step_by(3)
        .filter_map(|(i, (t, o))| {
            let ([l, _, r, _], [ol, _, or, _]) = ((*t)?, (*o)?);
            let expected = ((l + r) / 2.0 - f64::from(f.xs[i])) * scale;
            Some(((ol + or) / 2.0 - expected).abs())
        })
        .collect();
    assert!(
        errors.len() * 30 >= truth.len() * 8,
        "the face is on the output's frames"
    );
    errors.sort_by(f64::total_cmp);
    let p90 = errors[errors.len() * 9 / 10];
    assert!(
        p90 < 0.04 * f64::from(f.output.0),
        "the output's face is {p90} px from where the plan puts it"
    );
}

#[test]
fn follows_a_face_across_the_frame_and_back() {
    let dir = tempfile::tempdir().unwrap();
    // Held 1 s at the left, across in 3 s, held 1.5 s, back in 2 s, held 1 s.
    let x = "if(lt(t,1),20,if(lt(t,4),20+620*(t-1)/3,if(lt(t,5.5),640,if(lt(t,7.5),640-620*(t-5.5)/2,20))))";
    let video = moving_face(
        dir.path(),
        "across.mp4",
        (960, 540),
        300,
        &[Segment {
            background: "coffee.png",
            seconds: 8.5,
            x,
            y: "120",
        }],
        true,
    );
    check("across-and-back", &video, 960, true);
}

#[test]
fn follows_a_face_through_a_cut() {
    let dir = tempfile::tempdir().unwrap();
    let video = moving_face(
        dir.path(),
        "cut.mp4",
        (1280, 720),
        360,
        &[
            // Swaying left and right and bobbing, for 4 s.
            Segment {
                background: "grass.png",
                seconds: 4.0,
                x: "460+380*sin(2*PI*t/4)",
                y: "180+60*sin(2*PI*t/2)",
            },
            // A cut to another place: right to left in 2 s, then still.
            Segment {
                background: "brick.png",
                seconds: 4.0,
                x: "if(lt(t,1),880,if(lt(t,3),880-840*(t-1)/2,40))",
                y: "300",
            },
        ],
        false,
    );
    check("sway-cut-cross", &video, 1280, false);
}

fn pan_without_faces(dir: &Path, name: &str, size: &str) -> PathBuf {
    let out = dir.join(name);
    let coffee = fixture("coffee.png");
    let filter = format!(
        "scale=1200:800,zoompan=z=1.2:x='(iw-iw/zoom)*on/100':y=0:d=100:s={size}:fps=25,format=yuv420p"
    );
    ffmpeg(&[
        "-i",
        coffee.to_str().unwrap(),
        "-vf",
        &filter,
        "-frames:v",
        "75",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        out.to_str().unwrap(),
    ]);
    out
}

#[test]
fn no_face_gets_a_still_centred_crop() {
    let dir = tempfile::tempdir().unwrap();
    let video = pan_without_faces(dir.path(), "coffee.mp4", "640x360");
    let analysis = analyse(&video);
    assert!(analysis
        .shots
        .iter()
        .all(|s| s.face_track.iter().all(|t| t.face.is_none())));
    assert!(
        analysis.shots.iter().any(|s| !s.face_track.is_empty()),
        "frames were sampled"
    );
    let out = dir.path().join("vertical.mp4");
    let params = ReframeParams::default();
    let framings = render_reframed(
        &Source {
            path: video.clone(),
            stream: None,
            has_audio: false,
            longest_s: Source::DEFAULT_LONGEST_S,
        },
        &analysis,
        &Loudness::default(),
        &[Reframe {
            aspect: Aspect::Vertical,
            params: &params,
            out: &out,
        }],
        &mut |_| {},
        &CancellationToken::new(),
    )
    .unwrap();
    let f = &framings[0];
    assert_eq!(f.window, (202, 360));
    let centre = ((640 - 202) / 2) & !1;
    assert!(f.xs.iter().all(|&x| x == centre), "{:?}", f.xs);
    assert!(f.ys.iter().all(|&y| y == 0));
    assert_eq!(f.xs.len(), 75);
    assert!(out.exists());
}

#[test]
fn a_small_portrait_source_is_never_upscaled() {
    let dir = tempfile::tempdir().unwrap();
    let video = pan_without_faces(dir.path(), "portrait.mp4", "240x426");
    let analysis = analyse(&video);
    let (vertical, square) = (
        dir.path().join("vertical.mp4"),
        dir.path().join("square.mp4"),
    );
    let params = ReframeParams::default();
    render_reframed(
        &Source {
            path: video.clone(),
            stream: None,
            has_audio: false,
            longest_s: Source::DEFAULT_LONGEST_S,
        },
        &analysis,
        &Loudness::default(),
        &both(&params, &vertical, &square),
        &mut |_| {},
        &CancellationToken::new(),
    )
    .unwrap();
    for (out, expected) in [(&vertical, (238, 426)), (&square, (240, 240))] {
        let probe = ffprobe(out);
        let v = stream(&probe, "video");
        let size = (v["width"].as_u64().unwrap(), v["height"].as_u64().unwrap());
        assert_eq!(size, expected, "{}", out.display());
    }
}

#[test]
fn cancel_kills_ffmpeg_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let video = moving_face(
        dir.path(),
        "long.mp4",
        (1280, 720),
        300,
        &[Segment {
            background: "coffee.png",
            seconds: 20.0,
            x: "40*t",
            y: "100",
        }],
        true,
    );
    // Its first 2 s analysed are enough: the render is cancelled at once.
    let analysis = analyze(
        &video,
        &AnalyzeParams {
            max_seconds: Some(2.0),
            ..AnalyzeParams::default()
        },
        Mtcnn::shared_default().expect("MTCNN weights"),
        &mut |_| {},
        &CancellationToken::new(),
    )
    .unwrap();
    let (vertical, square) = (
        dir.path().join("cancelled-vertical.mp4"),
        dir.path().join("cancelled-square.mp4"),
    );
    let params = ReframeParams::default();
    let cancel = CancellationToken::new();
    let result = render_reframed(
        &Source {
            path: video.clone(),
            stream: None,
            has_audio: true,
            longest_s: Source::DEFAULT_LONGEST_S,
        },
        &analysis,
        &Loudness::default(),
        &both(&params, &vertical, &square),
        &mut |p| {
            if p > 0.0 {
                cancel.cancel();
            }
        },
        &cancel,
    );
    assert!(matches!(result, Err(MediaError::Cancelled)), "{result:?}");
    for out in [&vertical, &square] {
        assert!(!out.exists());
        let part = format!("{}.part", out.display());
        assert!(!Path::new(&part).exists());
        let left = processes_mentioning(&part);
        assert!(left.is_empty(), "ffmpeg still running: {left:?}");
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "only the source is left: {names:?}");
}
