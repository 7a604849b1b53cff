//! What ffprobe's reports make usable media, and the reasons given otherwise.

use super::*;

fn report(json: serde_json::Value) -> ProbeReport {
    serde_json::from_value(json).unwrap()
}

fn reason(json: serde_json::Value) -> String {
    match media_info(&report(json), &Limits::default()) {
        Err(MediaError::Unusable(why)) => why,
        other => panic!("expected Unusable, got {other:?}"),
    }
}

#[test]
fn a_cut_off_index_is_named_when_ffprobe_only_says_invalid_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.mp4");
    let mut bytes = [&16u32.to_be_bytes()[..], b"ftypisom", &[0; 4]].concat();
    bytes.extend(1000u32.to_be_bytes());
    bytes.extend(b"moov");
    bytes.extend([0u8; 100]);
    std::fs::write(&path, &bytes).unwrap();
    let why = unreadable_reason(&path, "error reading header\ncut.mp4: Invalid data found");
    assert!(why.contains("truncated") && why.contains("'moov'"), "{why}");

    std::fs::write(&path, "not a video at all").unwrap();
    let why = unreadable_reason(&path, "cut.mp4: Invalid data found when processing input");
    assert_eq!(
        why,
        "not a media file that can be read: Invalid data found when processing input"
    );
}

#[test]
fn rates_parse() {
    assert_eq!(parse_rate("25/1"), Some(25.0));
    assert!((parse_rate("30000/1001").unwrap() - 29.97).abs() < 0.01);
    assert_eq!(parse_rate("0/0"), None);
    assert_eq!(parse_rate("24"), Some(24.0));
    assert_eq!(parse_rate("x/1"), None);
}

#[test]
fn falls_back_to_r_frame_rate_and_stream_duration() {
    let info = media_info(
        &report(serde_json::json!({
            "streams": [{"codec_type": "video", "codec_name": "vp9", "width": 64, "height": 48,
                         "avg_frame_rate": "0/0", "r_frame_rate": "30/1", "duration": "2.5"}],
            "format": {"format_name": "matroska,webm", "duration": "N/A"}
        })),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        (info.fps, info.duration_s, info.bit_rate),
        (30.0, 2.5, None)
    );
    assert_eq!(info.audio_codec, None);
}

#[test]
fn cover_art_is_not_video() {
    let why = reason(serde_json::json!({
        "streams": [{"codec_type": "audio", "codec_name": "mp3"},
                    {"codec_type": "video", "codec_name": "mjpeg", "width": 500, "height": 500,
                     "avg_frame_rate": "0/0", "r_frame_rate": "90000/1", "disposition": {"attached_pic": 1}}],
        "format": {"format_name": "mp3", "duration": "180.0"}
    }));
    assert!(
        why.contains("no video stream") && why.contains("cover art"),
        "{why}"
    );
}

#[test]
fn unknown_rate_duration_and_indirect_formats() {
    let stream = |rate: &str| {
        serde_json::json!({"codec_type": "video", "codec_name": "h264",
        "width": 64, "height": 48, "avg_frame_rate": rate, "r_frame_rate": rate})
    };
    let why = reason(
        serde_json::json!({"streams": [stream("0/0")], "format": {"format_name": "mp4", "duration": "3"}}),
    );
    assert!(why.contains("frame rate"), "{why}");
    let why =
        reason(serde_json::json!({"streams": [stream("25/1")], "format": {"format_name": "mp4"}}));
    assert!(why.contains("duration"), "{why}");
    let why = reason(
        serde_json::json!({"streams": [stream("25/1")], "format": {"format_name": "hls", "duration": "3"}}),
    );
    assert!(why.contains("hls"), "{why}");
}

#[test]
fn the_displayed_size_and_a_decoded_frame_are_bounded() {
    let stream = |w: u32, h: u32, sar: &str, pix: &str| {
        serde_json::json!({"streams": [{"codec_type": "video", "codec_name": "h264",
            "width": w, "height": h, "sample_aspect_ratio": sar, "pix_fmt": pix,
            "avg_frame_rate": "25/1"}], "format": {"format_name": "mp4", "duration": "3"}})
    };
    // Anamorphic PAL is fine; a 2-pixel-high stream stretched 10,000
    // times is not, nor is one squeezed to 4320 * 3 rows.
    let limits = Limits::default();
    assert!(media_info(&report(stream(720, 576, "64:45", "yuv420p")), &limits).is_ok());
    assert!(media_info(&report(stream(720, 576, "0:1", "yuv420p")), &limits).is_ok());
    let why = reason(stream(1000, 2, "10000:1", "yuv420p"));
    assert!(why.contains("shown at 10000000x2"), "{why}");
    let why = reason(stream(1000, 4320, "1:3", "yuv420p"));
    assert!(why.contains("shown at 1000x12960"), "{why}");
    // Within the size limits, a frame's bytes are bounded on their own
    // when the limits are raised.
    let wide = Limits {
        max_width: 20_000,
        max_height: 20_000,
        ..Limits::default()
    };
    match media_info(&report(stream(16_000, 16_000, "1:1", "yuv444p16le")), &wide) {
        Err(MediaError::Unusable(why)) => assert!(why.contains("a decoded frame is"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(bytes_per_pixel(Some("yuv420p")), 4);
    assert_eq!(bytes_per_pixel(Some("yuv420p10le")), 8);
}
