//! A real media job through ingest → analyze → render → archive on `sprocket dev`.

use std::time::Duration;

use serde_json::Value;
use sprocket_tests::{ffprobe, sha256_hex, video, TestApp};

fn names(job: &Value) -> Vec<String> {
    let mut v: Vec<String> = job["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

/// The thumbnail names analysis.json gives its shots, in shot order.
fn thumbnails(analysis: &Value) -> Vec<String> {
    analysis["shots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["thumbnail"].as_str().expect("a thumbnail").to_owned())
        .collect()
}

/// Each shot's thumbnail downloads as a JPEG of the size analysis.json states
/// (ffprobe reads it), with the size and digest the job lists, and is
/// archived and in the manifest with that digest.
async fn check_thumbnails(
    app: &TestApp,
    id: &str,
    analysis: &Value,
    job: &Value,
    manifest: &Value,
) {
    let size = &analysis["thumbnails"];
    assert_eq!(size["content_type"], "image/jpeg", "{analysis:#}");
    let (width, height) = (
        size["width"].as_u64().unwrap(),
        size["height"].as_u64().unwrap(),
    );
    // Face boxes are fractions of the analysed frame, which the thumbnail shows whole.
    let ratio = |w: &Value, h: &Value| w.as_f64().unwrap() / h.as_f64().unwrap();
    let aspect = ratio(&analysis["width"], &analysis["height"]);
    assert!((ratio(&size["width"], &size["height"]) - aspect).abs() < 0.05);
    let dir = tempfile::tempdir().unwrap();
    for name in thumbnails(analysis) {
        let url = format!("{}/v1/jobs/{id}/artifacts/{name}", app.url);
        let r = app.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(r.headers()["content-type"], "image/jpeg", "{name}");
        let bytes = r.bytes().await.unwrap();
        let file = dir.path().join(&name);
        std::fs::write(&file, &bytes).unwrap();
        let stream = &ffprobe(&file)["streams"][0];
        assert_eq!(stream["codec_name"], "mjpeg", "{name}: {stream}");
        assert_eq!(
            (stream["width"].as_u64(), stream["height"].as_u64()),
            (Some(width), Some(height))
        );
        let digest = sha256_hex(&bytes);
        let listed = |list: &Value| {
            list.as_array()
                .unwrap()
                .iter()
                .find(|a| a["name"] == name.as_str())
                .unwrap_or_else(|| panic!("{name} missing from {list:#}"))
                .clone()
        };
        let artifact = listed(&job["artifacts"]);
        assert_eq!(artifact["sha256"], digest.as_str());
        assert_eq!(artifact["bytes"], bytes.len() as u64);
        assert_eq!(listed(&manifest["artifacts"])["sha256"], digest.as_str());
        let archived = app.data.path().join("archive/jobs").join(id).join(&name);
        assert_eq!(
            sha256_hex(&std::fs::read(&archived).unwrap()),
            digest,
            "{}",
            archived.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_flows_through_all_four_phases() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("cuts.mp4");
    let cuts = video::with_cuts(&src, &[40, 55, 60, 45], 25, true);

    let id = app.submit(&src, "highlight", "e2e-highlight").await;
    let job = app.wait_terminal(&id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "succeeded", "{job:#}");
    let (shot_thumbnails, outputs): (Vec<String>, Vec<String>) = names(&job)
        .into_iter()
        .partition(|n| n.starts_with("shot-"));
    assert_eq!(
        outputs,
        [
            "analysis.json",
            "highlight.mp4",
            "manifest.json",
            "poster.jpg",
            "source"
        ]
    );
    assert_eq!(job["progress"], 100.0);
    for phase in ["ingest", "analyze", "render", "archive"] {
        let t = &job["phases"][phase];
        assert!(
            t["started_at"].is_string() && t["finished_at"].is_string(),
            "{phase}: {t}"
        );
    }

    // The detected cuts are the ones the video was made with.
    let analysis: Value = serde_json::from_slice(
        &app.bytes(&format!("/v1/jobs/{id}/artifacts/analysis.json"))
            .await,
    )
    .unwrap();
    let starts: Vec<u64> = analysis["shots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start_frame"].as_u64().unwrap())
        .collect();
    assert_eq!(starts[0], 0);
    // Every shot has a keyframe inside it and a face count; the model that
    // counted them is named with its weights' digests.
    for s in analysis["shots"].as_array().unwrap() {
        let k = s["keyframe"]["frame"].as_u64().expect("a keyframe");
        assert!(
            k >= s["start_frame"].as_u64().unwrap() && k < s["end_frame"].as_u64().unwrap(),
            "{s}"
        );
        assert!(s["faces"].is_u64(), "{s}");
    }
    assert_eq!(analysis["models"][0]["name"], "mtcnn", "{analysis}");
    assert_eq!(
        analysis["models"][0]["weights"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(
        starts.len(),
        cuts.len() + 1,
        "shots {starts:?}, cuts {cuts:?}"
    );
    for (found, known) in starts[1..].iter().zip(&cuts) {
        assert!(
            found.abs_diff(*known) <= 1,
            "cut at {found}, made at {known}"
        );
    }
    // One thumbnail per shot, listed in analysis.json and among the job's artifacts.
    let listed = thumbnails(&analysis);
    assert_eq!(listed.len(), starts.len(), "{analysis:#}");
    assert_eq!(listed, shot_thumbnails);

    // The highlight is H.264 + AAC, and every artifact's bytes match its sha256.
    let reel = dir.path().join("highlight.mp4");
    std::fs::write(
        &reel,
        app.bytes(&format!("/v1/jobs/{id}/artifacts/highlight.mp4"))
            .await,
    )
    .unwrap();
    let probe = ffprobe(&reel);
    let codecs: Vec<&str> = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap())
        .collect();
    assert!(
        codecs.contains(&"h264") && codecs.contains(&"aac"),
        "{codecs:?}"
    );
    for a in job["artifacts"].as_array().unwrap() {
        let bytes = app.bytes(a["url"].as_str().unwrap()).await;
        assert_eq!(
            sha256_hex(&bytes),
            a["sha256"].as_str().unwrap(),
            "{}",
            a["name"]
        );
        assert_eq!(bytes.len() as u64, a["bytes"].as_u64().unwrap());
    }
    let poster = app
        .bytes(&format!("/v1/jobs/{id}/artifacts/poster.jpg"))
        .await;
    assert_eq!(&poster[..2], &[0xFF, 0xD8], "poster is a JPEG");
    // A download is an attachment browsers do not sniff; media may be inline.
    for (query, disposition) in [("", "attachment"), ("?inline=true", "inline")] {
        let r = app
            .http
            .get(format!(
                "{}/v1/jobs/{id}/artifacts/poster.jpg{query}",
                app.url
            ))
            .send()
            .await
            .unwrap();
        let h = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(h("x-content-type-options"), "nosniff");
        assert_eq!(
            h("content-disposition"),
            format!("{disposition}; filename=\"poster.jpg\"")
        );
        assert_eq!(
            h("access-control-allow-origin"),
            "",
            "no CORS unless configured"
        );
    }
    let r = app
        .http
        .get(format!(
            "{}/v1/jobs/{id}/artifacts/analysis.json?inline=true",
            app.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"analysis.json\"",
        "only media is ever inline"
    );

    // The manifest lists the archived outputs with their digests.
    let manifest: Value = serde_json::from_slice(
        &app.bytes(&format!("/v1/jobs/{id}/artifacts/manifest.json"))
            .await,
    )
    .unwrap();
    let listed: Vec<&str> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for name in ["analysis.json", "highlight.mp4", "poster.jpg"] {
        assert!(listed.contains(&name), "{name} missing from {listed:?}");
    }
    check_thumbnails(&app, &id, &analysis, &job, &manifest).await;
    assert_eq!(manifest["job_id"], id);
    assert!(manifest["phases"]["archive"]["finished_at"].is_string());
    let archived = app
        .data
        .path()
        .join("archive/jobs")
        .join(&id)
        .join("highlight.mp4");
    assert!(archived.exists(), "archive copy at {}", archived.display());

    // The history is in order: submitted first, succeeded last, each phase completed once.
    let (_, events) = app.get(&format!("/v1/jobs/{id}/events")).await;
    let types: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"JobSubmitted"), "{types:?}");
    assert_eq!(types.last(), Some(&"JobSucceeded"), "{types:?}");
    for done in [
        "MediaIngested",
        "MediaAnalyzed",
        "MediaRendered",
        "MediaArchived",
    ] {
        assert_eq!(
            types.iter().filter(|t| **t == done).count(),
            1,
            "{done} in {types:?}"
        );
    }
    assert!(
        types.contains(&"PhaseProgress"),
        "render reports progress: {types:?}"
    );
    let analyzed = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "MediaAnalyzed")
        .unwrap();
    assert_eq!(
        analyzed["data"]["thumbnails"].as_array().map(Vec::len),
        Some(shot_thumbnails.len()),
        "{analyzed}"
    );
    let summary = &analyzed["data"]["summary"];
    assert!(summary["faces"].is_u64(), "{analyzed}");
    assert!(
        summary["models"]["mtcnn"]
            .as_str()
            .is_some_and(|v| v.contains("facenet-pytorch")),
        "{analyzed}"
    );
    app.dev.stop().await;
}
