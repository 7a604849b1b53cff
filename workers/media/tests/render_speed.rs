//! How much Sprocket's renderers cost over the ffmpeg command a person would
//! type for the same output: each of highlight, poster, hls, thumbnails and
//! vertical + square (one decode, two moving crops) is timed against a
//! hand-written ffmpeg command line (same input, same filter graph, same
//! encoder settings, the loudness measuring pass included where the output
//! has audio), alternating the two, in the same process run.
//!
//! `cargo test --release -p sprocket-media --test render_speed -- --ignored --nocapture`
//! (report: `workers/media/tests/RENDER_SPEED.md`; `RENDER_SPEED_ONLY=vertical,poster`
//! before it runs only those outputs).

mod render_speed_support;
mod render_support;

use render_speed_support::{
    compare, frames_md5, measure_by_hand, moving_face_analysis, run, s, sendcmd_by_hand,
};
use render_support::ffmpeg;
use sprocket_media::hls::{render_hls, HlsParams};
use sprocket_media::loudness::Loudness;
use sprocket_media::reframe::{plan, render_reframed, Aspect, Framing, Reframe, ReframeParams};
use sprocket_media::render::{render_highlight, render_poster, Source};
use sprocket_media::sprite::{render_sprite, SpriteParams};
use tokio_util::sync::CancellationToken;

/// Rounds for the outputs that take seconds; the sub-second ones (poster,
/// thumbnails) get more, which costs little and steadies their medians.
const ROUNDS: usize = 3;
const SHORT_ROUNDS: usize = 11;

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
        path: src.clone(),
        stream: None,
        has_audio: true,
        longest_s: Source::DEFAULT_LONGEST_S,
    };
    let cancel = CancellationToken::new();
    let loudness = Loudness::default();
    let srcs = src.display().to_string();
    eprintln!(
        "| output | rounds | Sprocket (median) | direct ffmpeg (median) | paired wall ratio, median (IQR) | overhead | \
         CPU, Sprocket / direct (medians) | paired CPU ratio, median (IQR) | load |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    let (rounds, short_rounds) = (
        render_speed_support::rounds("RENDER_SPEED_ROUNDS", ROUNDS),
        render_speed_support::rounds("RENDER_SPEED_SHORT_ROUNDS", SHORT_ROUNDS),
    );

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
        rounds,
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
        short_rounds,
        || render_poster(&source, 12.0, &poster, &cancel).unwrap(),
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
        rounds,
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
        short_rounds,
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

    // vertical + square: one decode, split, two crops moving along the
    // planned path (sendcmd), audio measured once and normalised for both.
    let analysis = moving_face_analysis();
    let params = ReframeParams::default();
    let framings: Vec<Framing> = [Aspect::Vertical, Aspect::Square]
        .iter()
        .map(|&aspect| plan(&analysis, (1280, 720), aspect, &params))
        .collect();
    let (vertical, square) = (d.join("vertical.mp4"), d.join("square.mp4"));
    let outputs =
        [(Aspect::Vertical, &vertical), (Aspect::Square, &square)].map(|(aspect, out)| Reframe {
            aspect,
            params: &params,
            out,
        });
    let cmds = d.join("reframe-direct.cmds");
    compare(
        "vertical + square",
        rounds,
        || {
            let got = render_reframed(
                &source,
                &analysis,
                &loudness,
                &outputs,
                &mut |_| {},
                &cancel,
            )
            .unwrap();
            assert_eq!(
                got, framings,
                "Sprocket follows the path the hand command does"
            );
        },
        || {
            std::fs::write(&cmds, sendcmd_by_hand(&framings, analysis.fps)).unwrap();
            let gain = measure_by_hand(&src, "[0:a:0]anull[a]");
            let mut graph = format!(
                "[0:v:0]setpts=PTS-STARTPTS,sendcmd=f={},split=2[s0][s1]",
                cmds.display()
            );
            for (i, f) in framings.iter().enumerate() {
                let (w, h, x, y) = (f.window.0, f.window.1, f.xs[0], f.ys[0]);
                graph += &format!(
                    ";[s{i}]crop@r{i}=w={w}:h={h}:x={x}:y={y},setsar=1,format=yuv420p[v{i}]"
                );
            }
            graph += &format!(
                ";[0:a:0]{gain},aformat=sample_fmts=fltp:sample_rates=48000:\
                 channel_layouts=stereo,asplit=2[a0][a1]"
            );
            let mut args = s(&["-v", "error", "-i", &srcs, "-filter_complex", &graph]);
            for (i, name) in ["vertical", "square"].iter().enumerate() {
                args.extend(s(&["-map", &format!("[v{i}]"), "-map", &format!("[a{i}]")]));
                args.extend(s(&["-c:a", "aac", "-b:a", "128k", "-c:v", "libx264"]));
                args.extend(s(&[
                    "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
                ]));
                args.extend(s(&["-map_metadata", "-1", "-movflags", "+faststart"]));
                args.extend(s(&["-f", "mp4"]));
                args.push(d.join(format!("{name}-direct.mp4")).display().to_string());
            }
            run(&args);
        },
    );
    // Same command, same pictures? Printed rather than asserted: the
    // frames matched in one run of two (see RENDER_SPEED.md, run 2).
    for name in ["vertical", "square"] {
        let ours = d.join(format!("{name}.mp4"));
        if ours.exists() {
            let hand = frames_md5(&d.join(format!("{name}-direct.mp4")));
            let same = frames_md5(&ours) == hand;
            eprintln!("{name}: decoded frames identical to the hand command's: {same}");
        }
    }
}
