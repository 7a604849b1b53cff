//! The HLS ladder against real sources made with ffmpeg: the master and media
//! playlists read as a player would, every rendition checked with ffprobe
//! (codecs, sizes, no upscaling), keyframes aligned at segment boundaries,
//! audio loudness, and cancel.

mod render_support;

use render_support::{ffprobe, processes_mentioning};
use sprocket_media::hls::{render_hls, HlsParams, Ladder};
use sprocket_media::loudness::{ebur128, Loudness};
use sprocket_media::render::Source;
use sprocket_media::MediaError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tokio_util::sync::CancellationToken;

/// A `w`x`h`, 25 fps test pattern of `seconds`, with a tone when `audio`.
fn source(dir: &Path, name: &str, size: (u32, u32), seconds: u32, audio: bool) -> PathBuf {
    render_support::source_sized(dir, name, size, 25, seconds, audio)
}

/// An `#EXT-X-STREAM-INF` entry: its attributes and its URI.
#[derive(Debug)]
struct Variant {
    attrs: BTreeMap<String, String>,
    uri: String,
}

/// Attributes as `KEY=value` pairs, commas inside quotes kept.
fn attributes(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let (mut key, mut value, mut in_value, mut quoted) =
        (String::new(), String::new(), false, false);
    for c in text.chars().chain([',']) {
        match c {
            '"' => quoted = !quoted,
            '=' if !in_value => in_value = true,
            ',' if !quoted => {
                out.insert(std::mem::take(&mut key), std::mem::take(&mut value));
                in_value = false;
            }
            c if in_value => value.push(c),
            c => key.push(c),
        }
    }
    out
}

fn master(text: &str) -> Vec<Variant> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines[0], "#EXTM3U");
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let attrs = attributes(l.strip_prefix("#EXT-X-STREAM-INF:")?);
            Some(Variant {
                attrs,
                uri: lines[i + 1].to_owned(),
            })
        })
        .collect()
}

/// A media playlist as read: its tags and segments.
#[derive(Debug)]
struct Media {
    version: u32,
    target_duration: f64,
    map: (String, u64, u64),
    /// (duration, length, offset, uri)
    segments: Vec<(f64, u64, u64, String)>,
    ended: bool,
}

fn media(text: &str) -> Media {
    let mut m = Media {
        version: 0,
        target_duration: 0.0,
        map: Default::default(),
        segments: Vec::new(),
        ended: false,
    };
    let (mut dur, mut range) = (None, None);
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
            m.version = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            m.target_duration = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
            let a = attributes(v);
            let (len, off) = a["BYTERANGE"].split_once('@').unwrap();
            m.map = (a["URI"].clone(), len.parse().unwrap(), off.parse().unwrap());
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            dur = Some(v.trim_end_matches(',').parse::<f64>().unwrap());
        } else if let Some(v) = line.strip_prefix("#EXT-X-BYTERANGE:") {
            let (len, off) = v.split_once('@').expect("every range has its offset");
            range = Some((len.parse().unwrap(), off.parse().unwrap()));
        } else if line == "#EXT-X-ENDLIST" {
            m.ended = true;
        } else if !line.starts_with('#') {
            let (len, off) = range.take().expect("a byte range before each segment");
            m.segments
                .push((dur.take().unwrap(), len, off, line.to_owned()));
        }
    }
    m
}

fn stream<'a>(probe: &'a serde_json::Value, kind: &str) -> Option<&'a serde_json::Value> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
}

/// The times of `file`'s video keyframes, from ffprobe -skip_frame nokey.
fn keyframes(file: &Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-skip_frame",
            "nokey",
        ])
        .args(["-show_entries", "frame=pts_time", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().trim_end_matches(',').parse().unwrap())
        .collect()
}

/// Renders `src` and checks everything a player and the issue rely on;
/// returns the rendition heights.
fn check_ladder(src: &Path, src_size: (u32, u32), seconds: f64, audio: bool) -> Vec<u32> {
    let dir = src.parent().unwrap();
    let out = dir.join("hls");
    let params = HlsParams::default();
    let mut seen = Vec::new();
    let ladder = render_hls(
        &Source {
            path: src.to_path_buf(),
            stream: None,
            has_audio: audio,
            longest_s: Source::DEFAULT_LONGEST_S,
        },
        src_size,
        seconds,
        &params,
        &Loudness::default(),
        &out,
        &mut |p| seen.push(p),
        &CancellationToken::new(),
    )
    .unwrap();
    assert!(!dir.join("hls.part").exists());
    assert_eq!(seen.first(), Some(&0.0));
    assert_eq!(seen.last(), Some(&100.0));
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");

    // Exactly the files the ladder names, nothing else.
    let mut on_disk: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut named = ladder.files();
    on_disk.sort();
    named.sort();
    assert_eq!(on_disk, named);

    let text = std::fs::read_to_string(out.join(Ladder::MASTER)).unwrap();
    let variants = master(&text);
    assert_eq!(variants.len(), ladder.renditions.len(), "{text}");
    let mut heights = Vec::new();
    let mut boundaries_of_all = Vec::new();
    let mut keys_of_all = Vec::new();
    for v in &variants {
        eprintln!("{:?}", v.attrs);
        assert!(
            !v.uri.contains('/') && !v.uri.contains(':') && v.uri.ends_with(".m3u8"),
            "relative URI: {}",
            v.uri
        );
        let bandwidth: u64 = v.attrs["BANDWIDTH"].parse().unwrap();
        let average: u64 = v.attrs["AVERAGE-BANDWIDTH"].parse().unwrap();
        assert!(bandwidth >= average && average > 0, "{:?}", v.attrs);
        let (w, h) = v.attrs["RESOLUTION"].split_once('x').unwrap();
        let (w, h): (u64, u64) = (w.parse().unwrap(), h.parse().unwrap());

        let list = media(&std::fs::read_to_string(out.join(&v.uri)).unwrap());
        assert!(list.version >= 4, "byte ranges need version 4: {list:?}");
        assert!(list.ended);
        let file = out.join(&list.map.0);
        let size = std::fs::metadata(&file).unwrap().len();
        assert_eq!(list.map.2, 0, "the init segment opens the file");
        // Segments follow each other through the whole file, all in one file.
        let mut next = list.map.1;
        for (_, len, off, uri) in &list.segments {
            assert_eq!((*off, uri), (next, &list.map.0));
            next += len;
        }
        assert_eq!(next, size, "byte ranges cover the file");
        // Every segment but the last is the segment length; none is longer
        // than the target duration.
        let n = list.segments.len();
        assert_eq!(n, (seconds / params.segment_s).ceil() as usize, "{list:?}");
        for (i, (d, ..)) in list.segments.iter().enumerate() {
            assert!(*d <= list.target_duration + 0.5, "{list:?}");
            if i + 1 < n {
                assert!((d - params.segment_s).abs() < 0.05, "segment {i}: {d}");
                assert!((4.0..=6.0).contains(d));
            }
        }
        let total: f64 = list.segments.iter().map(|s| s.0).sum();
        assert!((total - seconds).abs() < 0.1, "{total} of {seconds} s");

        let probe = ffprobe(&file);
        let video = stream(&probe, "video").unwrap();
        assert_eq!(video["codec_name"], "h264");
        assert_eq!(
            (video["width"].as_u64(), video["height"].as_u64()),
            (Some(w), Some(h))
        );
        assert!(h <= u64::from(src_size.1), "never upscaled");
        assert!(
            params.ladder.contains(&(h as u32)) || h == u64::from(src_size.1 & !1),
            "a rung or the source's own height: {h}"
        );
        let profile = match video["profile"].as_str().unwrap() {
            "High" => "64",
            "Main" => "4d",
            other => panic!("profile {other}"),
        };
        let level = format!("{:02x}", video["level"].as_u64().unwrap());
        let codecs = &v.attrs["CODECS"];
        let avc = codecs.split(',').next().unwrap();
        assert!(
            avc.starts_with(&format!("avc1.{profile}")) && avc.ends_with(&level),
            "{codecs} vs ffprobe {profile} level {level}"
        );
        match stream(&probe, "audio") {
            Some(a) => {
                assert!(audio);
                assert_eq!(a["codec_name"], "aac");
                assert_eq!(a["profile"], "LC");
                assert_eq!(codecs, &format!("{avc},mp4a.40.2"));
                let r = ebur128(&file).unwrap();
                eprintln!("{}: {:?}", v.uri, r);
                assert!((r.integrated_lufs + 16.0).abs() <= 1.0, "{r:?}");
                assert!(r.true_peak_db <= -0.5, "{r:?}");
            }
            None => {
                assert!(!audio, "the source's audio is carried");
                assert_eq!(codecs, avc);
            }
        }
        let bits: f64 = probe["format"]["bit_rate"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (average as f64 - bits).abs() / bits < 0.1,
            "AVERAGE-BANDWIDTH {average} vs ffprobe's {bits}"
        );

        let mut t = 0.0;
        let boundaries: Vec<f64> = list
            .segments
            .iter()
            .map(|s| {
                let b = t;
                t += s.0;
                b
            })
            .collect();
        // Times from the stream's start (the H.264 decode delay shifts
        // presentation times by a frame or two in every rendition alike).
        let start: f64 = video["start_time"].as_str().unwrap().parse().unwrap();
        let keys: Vec<f64> = keyframes(&file).iter().map(|k| k - start).collect();
        for b in &boundaries {
            assert!(
                keys.iter().any(|k| (k - b).abs() < 0.021),
                "{}: no keyframe at the segment boundary {b}: {keys:?}",
                v.uri
            );
        }
        heights.push(h as u32);
        boundaries_of_all.push(boundaries);
        keys_of_all.push(keys);
    }
    // Aligned: every rendition has the same keyframes and boundaries.
    for (b, k) in boundaries_of_all.iter().zip(&keys_of_all) {
        assert_eq!(b, &boundaries_of_all[0]);
        assert_eq!(k.len(), keys_of_all[0].len(), "{keys_of_all:?}");
        for (x, y) in k.iter().zip(&keys_of_all[0]) {
            assert!((x - y).abs() < 0.001, "{keys_of_all:?}");
        }
    }
    heights
}

#[test]
fn ladder_from_720p_with_audio() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), "src.mp4", (1280, 720), 20, true);
    let heights = check_ladder(&src, (1280, 720), 20.0, true);
    assert_eq!(heights, [720, 480, 360], "1080 is above the source");
}

#[test]
fn ladder_without_source_audio_has_no_audio() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), "src.mp4", (640, 360), 9, false);
    let heights = check_ladder(&src, (640, 360), 9.0, false);
    assert_eq!(heights, [360]);
}

#[test]
fn small_source_is_never_upscaled() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), "src.mp4", (320, 240), 8, true);
    let heights = check_ladder(&src, (320, 240), 8.0, true);
    assert_eq!(heights, [240], "one rendition at the source's own height");
}

#[test]
fn cancel_kills_ffmpeg_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), "src.mp4", (1280, 720), 20, true);
    let out = dir.path().join("cancelled-hls");
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let result = render_hls(
        &Source {
            path: src.clone(),
            stream: None,
            has_audio: true,
            longest_s: Source::DEFAULT_LONGEST_S,
        },
        (1280, 720),
        20.0,
        &HlsParams::default(),
        &Loudness::default(),
        &out,
        &mut |p| {
            if p > 0.0 {
                trigger.cancel();
            }
        },
        &cancel,
    );
    assert!(matches!(result, Err(MediaError::Cancelled)), "{result:?}");
    assert!(!out.exists());
    assert!(!dir.path().join("cancelled-hls.part").exists());
    let left = processes_mentioning(out.to_str().unwrap());
    assert!(left.is_empty(), "ffmpeg still running: {left:?}");
}
