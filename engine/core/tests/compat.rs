//! Events written by earlier versions still decode, as they were written.

use sprocket_core::{Envelope, EventBody};

/// A `MediaAnalyzed` from before faces (no `summary`) and thumbnails (no
/// `thumbnails`): it reads with neither, and writes back without them.
#[test]
fn a_media_analyzed_without_summary_or_thumbnails_decodes() {
    let old = br#"{
        "event_id": "0190a0b0-0000-7000-8000-000000000001",
        "job_id": "old-job",
        "type": "MediaAnalyzed",
        "occurred_at": "2025-06-01T00:00:00Z",
        "producer": "sprocket-worker-analyze",
        "attempt": 1,
        "data": {
            "analysis": {
                "name": "analysis.json",
                "key": "jobs/old-job/analysis.json",
                "bytes": 2048,
                "sha256": "00",
                "content_type": "application/json"
            },
            "frames": 250,
            "fps": 25.0,
            "shots": 3
        }
    }"#;
    let e = Envelope::from_json(old, || unreachable!("a complete envelope")).unwrap();
    let EventBody::MediaAnalyzed(m) = &e.body else {
        panic!("{e:?}")
    };
    assert!(m.summary.is_none() && m.thumbnails.is_empty());
    let written: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
    let data = written["data"].as_object().unwrap();
    assert!(!data.contains_key("thumbnails") && !data.contains_key("summary"));
}
