//! Every render output through the whole pipeline on `sprocket dev`: a video
//! of real photographs (a face moving as the camera pans) with sound, one
//! job asking for all six outputs; each is listed, served with its content
//! type, archived with its digest, and what ffprobe and ebur128 read of it
//! is what the recipe asked for. The HLS ladder is read by ffprobe through
//! the API itself, as a player would.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use sprocket_media::loudness::ebur128;
use sprocket_tests::{ffprobe, sha256_hex, TestApp};

/// The project's fixture photographs (`models/fetch.sh`).
fn photo(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/fixtures")
        .join(name)
}

fn video_stream(probe: &Value) -> &Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream")
}

fn codecs(probe: &Value) -> Vec<String> {
    let mut c: Vec<String> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap_or_default().to_owned())
        .collect();
    c.sort();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_job_makes_every_output() {
    let app = TestApp::start().await;
    let src = app.inbox().join("faces.mp4");
    let photos = [photo("astronaut.png"), photo("coffee.png")];
    let refs: Vec<&Path> = photos.iter().map(|p| p.as_path()).collect();
    sprocket_media::sample::from_photos(&src, &refs, 150, 25, (640, 360)).unwrap();
    let recipe = json!({"name": "everything", "steps": [
        {"phase": "ingest"},
        {"phase": "analyze"},
        {"phase": "render", "params": {
            "outputs": [
                {"output": "highlight", "target_duration_s": 8},
                "poster", "vertical", "square", "hls", "thumbnails"
            ],
            "loudness": "ebu_r128"
        }},
        {"phase": "archive"}
    ]});
    let (s, body) = app
        .post_job(json!({"job_id": "outputs", "source": {"path": src.to_str().unwrap()}, "recipe": recipe}))
        .await;
    assert_eq!(s, 202, "{body}");
    let job = app.wait_terminal("outputs", Duration::from_secs(300)).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");

    let artifacts = job["artifacts"].as_array().unwrap().clone();
    let names: Vec<&str> = artifacts
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for want in [
        "highlight.mp4",
        "poster.jpg",
        "vertical.mp4",
        "square.mp4",
        "hls/master.m3u8",
        "thumbnails.jpg",
        "thumbnails.vtt",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let manifest: Value =
        serde_json::from_slice(&app.bytes("/v1/jobs/outputs/artifacts/manifest.json").await)
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Every output: served with its type and the digest the job and the
    // manifest list.
    for a in &artifacts {
        let name = a["name"].as_str().unwrap();
        if name == "source" || name == "manifest.json" {
            continue;
        }
        let url = format!("{}/v1/jobs/outputs/artifacts/{name}", app.url);
        let r = app.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let served_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(served_type, a["content_type"].as_str().unwrap(), "{name}");
        let bytes = r.bytes().await.unwrap();
        assert_eq!(sha256_hex(&bytes), a["sha256"].as_str().unwrap(), "{name}");
        let in_manifest = manifest["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in the manifest: {manifest:#}"));
        assert_eq!(in_manifest["sha256"], a["sha256"], "{name}");
        let file = dir.path().join(name.replace('/', "_"));
        std::fs::write(&file, &bytes).unwrap();
    }
    let expected_type = [
        ("highlight.mp4", "video/mp4"),
        ("vertical.mp4", "video/mp4"),
        ("square.mp4", "video/mp4"),
        ("poster.jpg", "image/jpeg"),
        ("thumbnails.jpg", "image/jpeg"),
        ("thumbnails.vtt", "text/vtt"),
        ("hls/master.m3u8", "application/vnd.apple.mpegurl"),
    ];
    for (name, ty) in expected_type {
        let a = artifacts.iter().find(|a| a["name"] == name).unwrap();
        assert_eq!(a["content_type"], ty, "{name}");
    }

    // The reframed edits: 9:16 and 1:1, H.264 + AAC, no larger than the source.
    for (name, aspect) in [("vertical.mp4", 9.0 / 16.0), ("square.mp4", 1.0)] {
        let file = dir.path().join(name);
        let probe = ffprobe(&file);
        assert_eq!(codecs(&probe), ["aac", "h264"], "{name}");
        let v = video_stream(&probe);
        let (w, h) = (v["width"].as_f64().unwrap(), v["height"].as_f64().unwrap());
        assert!(h <= 360.0 && w <= 640.0, "{name}: {w}x{h}");
        assert!((w / h - aspect).abs() < 0.02, "{name}: {w}x{h}");
        let loud = ebur128(&file).unwrap();
        assert!(
            (loud.integrated_lufs + 23.0).abs() <= 1.0,
            "{name}: {loud:?}"
        );
    }
    let loud = ebur128(&dir.path().join("highlight.mp4")).unwrap();
    assert!(
        (loud.integrated_lufs + 23.0).abs() <= 1.0,
        "highlight: {loud:?}"
    );

    // A rendition by byte ranges, as its playlist addresses it.
    let rendition = names
        .iter()
        .find(|n| n.starts_with("hls/") && n.ends_with(".mp4"))
        .expect("a rendition's media file");
    let whole = std::fs::read(dir.path().join(rendition.replace('/', "_"))).unwrap();
    let url = format!("{}/v1/jobs/outputs/artifacts/{rendition}", app.url);
    let r = app
        .http
        .get(&url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 100-199/{}", whole.len()).as_str()
    );
    assert_eq!(&r.bytes().await.unwrap()[..], &whole[100..200]);
    let r = app
        .http
        .get(&url)
        .header("range", format!("bytes={}-", whole.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);

    // The ladder, read through the API as a player reads it: ffprobe follows
    // the master playlist's relative URIs with the key.
    let master = String::from_utf8(
        app.bytes("/v1/jobs/outputs/artifacts/hls/master.m3u8")
            .await,
    )
    .unwrap();
    assert!(master.starts_with("#EXTM3U"), "{master}");
    for attr in ["BANDWIDTH=", "RESOLUTION=", "CODECS="] {
        assert!(master.contains(attr), "{attr} missing: {master}");
    }
    assert!(
        !master.contains("1080"),
        "a 360p source is never upscaled: {master}"
    );
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_streams"])
        .args([
            "-headers",
            &format!("Authorization: Bearer {}\r\n", app.dev.api_key),
        ])
        .arg(format!(
            "{}/v1/jobs/outputs/artifacts/hls/master.m3u8",
            app.url
        ))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe through the API: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probe: Value = serde_json::from_slice(&out.stdout).unwrap();
    let heights: Vec<u64> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_type"] == "video")
        .filter_map(|s| s["height"].as_u64())
        .collect();
    assert!(
        !heights.is_empty() && heights.iter().all(|h| *h <= 360),
        "{heights:?}"
    );

    // Scrub previews: the VTT's cues point into the sheet.
    let vtt = std::fs::read_to_string(dir.path().join("thumbnails.vtt")).unwrap();
    assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    assert!(vtt.contains("thumbnails.jpg#xywh="), "{vtt}");
    app.dev.stop().await;
}
