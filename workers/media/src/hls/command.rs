//! The one ffmpeg run's graph and options: decode once, `split` and
//! `scale` per rung, keyframes forced at the same times everywhere.

use super::{HlsParams, Rung};
use std::fmt::Write as _;

/// Everything after `-i <source>` but where the files go: the filter graph,
/// the maps, the encoders and the HLS muxer's options. The caller adds
/// `-hls_segment_filename <folder>/%v.mp4 <folder>/%v.m3u8`.
pub fn ladder_args(
    rungs: &[Rung],
    stream: Option<u32>,
    has_audio: bool,
    gain: Option<&str>,
    params: &HlsParams,
) -> Vec<String> {
    let seg = params.segment_s;
    let mut args: Vec<String> = vec![
        "-filter_complex".into(),
        ladder_graph(rungs, stream, has_audio, gain),
    ];
    for i in 0..rungs.len() {
        args.extend(["-map".into(), format!("[v{i}]")]);
        if has_audio {
            args.extend(["-map".into(), format!("[a{i}]")]);
        }
    }
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    args.extend(s(&[
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "high",
    ]));
    for (i, r) in rungs.iter().enumerate() {
        let k = r.video_kbps;
        args.extend([
            format!("-b:v:{i}"),
            format!("{k}k"),
            format!("-maxrate:v:{i}"),
            format!("{}k", k * 3 / 2),
            format!("-bufsize:v:{i}"),
            format!("{}k", k * 2),
        ]);
    }
    // Keyframes only where segments start, at the same times in every
    // rendition: forced at each multiple of the segment length, no scene-cut
    // keyframes, and a GOP too long to add any of its own.
    args.extend(s(&["-sc_threshold", "0", "-g", "1000", "-keyint_min", "1"]));
    args.extend([
        "-force_key_frames".into(),
        format!("expr:gte(t,n_forced*{seg})"),
    ]);
    if has_audio {
        args.extend(s(&["-c:a", "aac", "-ac", "2", "-ar", "48000"]));
        args.extend(["-b:a".into(), format!("{}k", params.audio_kbps)]);
    }
    let map: Vec<String> = rungs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let audio = if has_audio {
                format!(",a:{i}")
            } else {
                String::new()
            };
            format!("v:{i}{audio},name:{}", r.name())
        })
        .collect();
    args.extend(s(&["-map_metadata", "-1", "-f", "hls"]));
    args.extend(["-hls_time".into(), format!("{seg}")]);
    args.extend(s(&[
        "-hls_playlist_type",
        "vod",
        "-hls_segment_type",
        "fmp4",
        "-hls_flags",
        "single_file+independent_segments",
        "-var_stream_map",
    ]));
    args.push(map.join(" "));
    args
}

/// The ladder's graph: the video decoded once, `split` into one branch per
/// rung, each scaled to its height (width from the aspect ratio, even); the
/// audio normalised once (`gain`, the loudness pass), then `asplit` to every
/// rendition.
pub fn ladder_graph(
    rungs: &[Rung],
    stream: Option<u32>,
    has_audio: bool,
    gain: Option<&str>,
) -> String {
    let n = rungs.len();
    let video = crate::source::stream_spec(stream, "0:");
    let mut g = format!("[{video}]split={n}");
    (0..n).for_each(|i| {
        let _ = write!(g, "[s{i}]");
    });
    for (i, r) in rungs.iter().enumerate() {
        let _ = write!(
            g,
            ";[s{i}]scale=-2:{}:flags=bicubic,format=yuv420p[v{i}]",
            r.height
        );
    }
    if has_audio {
        crate::encode::audio_split(&mut g, gain, n);
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_decode_split_per_rung() {
        let p = HlsParams::default();
        let rungs = p.rungs(1280, 720);
        let g = ladder_graph(&rungs, None, true, Some("volume=2"));
        assert!(g.starts_with("[0:v:0]split=3[s0][s1][s2];"), "{g}");
        assert!(
            g.contains("[s2]scale=-2:360:flags=bicubic,format=yuv420p[v2]"),
            "{g}"
        );
        assert!(g.ends_with(",asplit=3[a0][a1][a2]"), "{g}");
        assert!(g.contains("[0:a:0]volume=2,aformat"), "{g}");
        let args = ladder_args(&rungs, Some(1), false, None, &p).join(" ");
        assert!(args.contains("[0:1]split=3"), "{args}");
        assert!(!args.contains("[a0]") && !args.contains("-c:a"), "{args}");
        assert!(
            args.contains("v:0,name:720p v:1,name:480p v:2,name:360p"),
            "{args}"
        );
        assert!(args.contains("-b:v:1 1150k"), "{args}");
        assert!(args.contains("expr:gte(t,n_forced*6)"), "{args}");
    }
}
