//! How much Sprocket's renderers cost over the ffmpeg command a person would
//! type for the same output: each of highlight, poster, hls and thumbnails is
//! timed against a hand-written ffmpeg command line (same input, same filter
//! graph, same encoder settings, the loudness measuring pass included where
//! the output has audio), alternating the two, in the same process run.
//!
//! `cargo test --release -p sprocket-media --test render_speed -- --ignored --nocapture`
//! (report: `workers/media/tests/RENDER_SPEED.md`).

mod render_support;

use render_support::ffmpeg;
use sprocket_media::hls::{render_hls, HlsParams};
use sprocket_media::loudness::Loudness;
use sprocket_media::render::{render_highlight, render_poster, Source};
use sprocket_media::sprite::{render_sprite, SpriteParams};
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 3;

fn run(args: &[String]) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-nostats", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The first loudness pass by hand: loudnorm's JSON for `graph`'s `[a]`.
fn measure_by_hand(src: &Path, graph: &str) -> String {
    let log = run(&[
        "-v".into(),
        "info".into(),
        "-vn".into(),
        "-i".into(),
        src.display().to_string(),
        "-filter_complex".into(),
        format!("{graph};[a]loudnorm=I=-16:TP=-1:LRA=11:print_format=json[m]"),
        "-map".into(),
        "[m]".into(),
        "-f".into(),
        "null".into(),
        "-".into(),
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&log[log.rfind('{').unwrap()..=log.rfind('}').unwrap()]).unwrap();
    let f = |k: &str| json[k].as_str().unwrap().to_owned();
    format!(
        "loudnorm=I=-16:TP=-1:LRA=11:measured_I={}:measured_TP={}:measured_LRA={}:\
         measured_thresh={}:offset={}:linear=true,aresample=48000",
        f("input_i"),
        f("input_tp"),
        f("input_lra"),
        f("input_thresh"),
        f("target_offset")
    )
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Times `ours` and `direct` alternately; medians in seconds.
fn compare(name: &str, mut ours: impl FnMut(), mut direct: impl FnMut()) -> (f64, f64) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t = Instant::now();
        direct();
        b.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        ours();
        a.push(t.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut a), median(&mut b));
    eprintln!(
        "| {name} | {a:.3} s | {b:.3} s | {:.3} | {:+.1}% |",
        a / b,
        (a / b - 1.0) * 100.0
    );
    (a, b)
}

#[test]
#[ignore = "a benchmark: run it on its own, in release"]
fn render_speed_against_direct_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=25:duration=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000:duration=30",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        src.to_str().unwrap(),
    ]);
    let source = Source {
        path: &src,
        stream: None,
        has_audio: true,
    };
    let cancel = CancellationToken::new();
    let loudness = Loudness::default();
    let srcs = src.display().to_string();
    eprintln!("| output | Sprocket | direct ffmpeg | ratio | overhead |\n|---|---|---|---|---|");

    // highlight: three pieces cut, joined and normalised.
    let segments = [(1.0, 6.0), (10.0, 15.0), (20.0, 28.0)];
    let reel = d.join("reel.mp4");
    let mut audio = String::from("[0:a:0]asetpts=PTS-STARTPTS,asplit=3[a0][a1][a2]");
    let mut video = String::from("[0:v:0]setpts=PTS-STARTPTS,split=3[v0][v1][v2]");
    for (i, (a, b)) in segments.iter().enumerate() {
        audio += &format!(";[a{i}]atrim=start={a}:end={b},asetpts=PTS-STARTPTS[sa{i}]");
        video += &format!(";[v{i}]trim=start={a}:end={b},setpts=PTS-STARTPTS[sv{i}]");
    }
    let audio_only = format!("{audio};[sa0][sa1][sa2]concat=n=3:v=0:a=1[a]");
    compare(
        "highlight",
        || render_highlight(&source, &segments, &loudness, &reel, &mut |_| {}, &cancel).unwrap(),
        || {
            let gain = measure_by_hand(&src, &audio_only);
            let graph = format!(
                "{video};{audio};[sv0][sa0][sv1][sa1][sv2][sa2]concat=n=3:v=1:a=1[vc][ac];\
                 [vc]scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p[v];\
                 [ac]{gain},aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo[a]"
            );
            let mut args = s(&["-v", "error", "-i", &srcs, "-filter_complex", &graph]);
            args.extend(s(&[
                "-map", "[v]", "-map", "[a]", "-t", "18", "-c:v", "libx264",
            ]));
            args.extend(s(&[
                "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
            ]));
            args.extend(s(&["-c:a", "aac", "-b:a", "128k", "-map_metadata", "-1"]));
            args.extend(s(&["-movflags", "+faststart", "-f", "mp4"]));
            args.push(d.join("reel-direct.mp4").display().to_string());
            run(&args);
        },
    );

    let poster = d.join("poster.jpg");
    compare(
        "poster",
        || render_poster(&src, None, 12.0, &poster, &cancel).unwrap(),
        || {
            let mut args = s(&["-v", "error", "-ss", "12", "-i", &srcs, "-map", "0:v:0"]);
            args.extend(s(&["-frames:v", "1", "-an", "-c:v", "mjpeg", "-q:v", "2"]));
            args.extend(s(&["-f", "image2", "-update", "1"]));
            args.push(d.join("poster-direct.jpg").display().to_string());
            run(&args);
        },
    );

    // hls: 720/480/360 from one decode, audio normalised.
    let hls = d.join("hls");
    let direct = d.join("hls-direct");
    std::fs::create_dir_all(&direct).unwrap();
    let (hand_map, hand_out) = (
        "v:0,a:0,name:720p v:1,a:1,name:480p v:2,a:2,name:360p",
        direct.join("%v.m3u8").display().to_string(),
    );
    compare(
        "hls",
        || {
            render_hls(
                &source,
                (1280, 720),
                30.0,
                &HlsParams::default(),
                &loudness,
                &hls,
                &mut |_| {},
                &cancel,
            )
            .unwrap();
        },
        || {
            let gain = measure_by_hand(&src, "[0:a:0]anull[a]");
            let graph = format!(
                "[0:v:0]split=3[s0][s1][s2];[s0]scale=-2:720:flags=bicubic,format=yuv420p[v0];\
                 [s1]scale=-2:480:flags=bicubic,format=yuv420p[v1];\
                 [s2]scale=-2:360:flags=bicubic,format=yuv420p[v2];\
                 [0:a:0]{gain},aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo,\
                 asplit=3[a0][a1][a2]"
            );
            let mut args = s(&["-v", "error", "-i", &srcs, "-filter_complex", &graph]);
            for i in 0..3 {
                args.extend(s(&["-map", &format!("[v{i}]"), "-map", &format!("[a{i}]")]));
            }
            args.extend(s(&[
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-profile:v",
                "high",
            ]));
            args.extend(s(&[
                "-b:v:0",
                "2350k",
                "-maxrate:v:0",
                "3525k",
                "-bufsize:v:0",
                "4700k",
            ]));
            args.extend(s(&[
                "-b:v:1",
                "1150k",
                "-maxrate:v:1",
                "1725k",
                "-bufsize:v:1",
                "2300k",
            ]));
            args.extend(s(&[
                "-b:v:2",
                "650k",
                "-maxrate:v:2",
                "975k",
                "-bufsize:v:2",
                "1300k",
            ]));
            args.extend(s(&["-sc_threshold", "0", "-g", "1000", "-keyint_min", "1"]));
            args.extend(s(&["-force_key_frames", "expr:gte(t,n_forced*6)"]));
            args.extend(s(&[
                "-c:a", "aac", "-ac", "2", "-ar", "48000", "-b:a", "128k",
            ]));
            args.extend(s(&["-map_metadata", "-1", "-f", "hls", "-hls_time", "6"]));
            args.extend(s(&[
                "-hls_playlist_type",
                "vod",
                "-hls_segment_type",
                "fmp4",
            ]));
            args.extend(s(&["-hls_flags", "single_file+independent_segments"]));
            args.extend(s(&["-var_stream_map", hand_map, "-hls_segment_filename"]));
            args.push(direct.join("%v.mp4").display().to_string());
            args.push(hand_out.clone());
            run(&args);
        },
    );

    let (jpg, vtt) = (d.join("thumbnails.jpg"), d.join("thumbnails.vtt"));
    compare(
        "thumbnails",
        || {
            render_sprite(
                &source,
                (1280, 720),
                30.0,
                &SpriteParams::default(),
                &jpg,
                &vtt,
                &cancel,
            )
            .unwrap();
        },
        || {
            let graph = "[0:v:0]fps=fps=1/2:round=up,trim=end_frame=15,\
                         scale=160:90:flags=bicubic,setsar=1,tile=10x2,format=yuvj420p[s]";
            let mut args = s(&["-v", "error", "-i", &srcs, "-filter_complex", graph]);
            args.extend(s(&[
                "-map",
                "[s]",
                "-frames:v",
                "1",
                "-c:v",
                "mjpeg",
                "-q:v",
                "4",
            ]));
            args.extend(s(&["-f", "image2", "-update", "1"]));
            args.push(d.join("thumbnails-direct.jpg").display().to_string());
            run(&args);
        },
    );
}
