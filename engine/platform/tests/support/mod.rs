//! Helpers of the codec tests: the embedded registry on a free port, and a sample
//! envelope of every event type built from core types.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sprocket_core::event::*;
use sprocket_core::{ErrorInfo, JobId, Phase, PhaseTimes, Recipe, RecipeRef, Source, WorkItem};

pub struct Registry {
    pub url: String,
    pub addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The embedded registry on a free port.
pub async fn registry() -> Registry {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_registry(listener)
}

/// The embedded registry (empty) on `addr`, once the port is free again
/// (a registry dropped just before may still be letting go of it).
pub async fn registry_at(addr: std::net::SocketAddr) -> Registry {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => return serve_registry(listener),
            Err(e) if std::time::Instant::now() > deadline => panic!("binding {addr}: {e}"),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
}

fn serve_registry(listener: tokio::net::TcpListener) -> Registry {
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sprocket_platform::registry::serve(listener, async {
        let _ = stopped.await;
    }));
    Registry {
        url: format!("http://{addr}"),
        addr,
        _stop: stop,
    }
}

pub fn fill() -> Fill {
    Fill {
        event_id: "filled-id".into(),
        occurred_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        producer: "filled-producer".into(),
    }
}

pub fn no_fill() -> Fill {
    panic!("a complete envelope needs no fill")
}

pub fn artifact(name: &str) -> Artifact {
    Artifact {
        name: name.into(),
        key: format!("jobs/j1/{name}"),
        bytes: 1234,
        sha256: "ab".repeat(32),
        content_type: "video/mp4".into(),
    }
}

pub fn media() -> MediaInfo {
    MediaInfo {
        format: "mov,mp4".into(),
        duration_s: 12.5,
        width: 1920,
        height: 1080,
        fps: 29.97,
        video_codec: "h264".into(),
        audio_codec: Some("aac".into()),
        bit_rate: None,
        video_stream: None,
    }
}

pub fn err() -> ErrorInfo {
    ErrorInfo::new("ffmpeg_failed", "exit status 1")
}

/// One body of every event type, with optional fields both set and unset.
pub fn bodies() -> Vec<EventBody> {
    let recipe = Recipe::builtin("highlight").unwrap();
    let mut phases = BTreeMap::new();
    phases.insert(
        Phase::Ingest,
        PhaseTimes {
            started_at: Some(Utc::now()),
            finished_at: Some(Utc::now()),
            attempts: 1,
        },
    );
    let item = WorkItem {
        job_id: JobId::parse("j1").unwrap(),
        phase: Phase::Analyze,
        recipe: recipe.clone(),
        source: Source::Url("https://example.com/a.mp4".into()),
        labels: BTreeMap::from([("team".into(), "video".into())]),
        submitted_at: Utc::now(),
        artifacts: BTreeMap::from([("source".into(), artifact("source"))]),
        media: Some(media()),
        phases,
    };
    vec![
        EventBody::JobSubmitted(Submitted {
            source: Source::Upload("u1".into()),
            recipe: RecipeRef::Inline(recipe),
            recipe_version: None,
            labels: BTreeMap::from([("k".into(), "v".into())]),
            tenant: None,
        }),
        EventBody::PhaseStarted(PhaseStarted {
            phase: Phase::Ingest,
            worker: "w1".into(),
        }),
        EventBody::PhaseProgress(PhaseProgress {
            phase: Phase::Render,
            percent: 42.5,
            detail: Some("frame 100".into()),
        }),
        EventBody::MediaIngested(MediaIngested {
            source: artifact("source"),
            media: media(),
        }),
        EventBody::MediaAnalyzed(MediaAnalyzed {
            analysis: artifact("analysis.json"),
            frames: 300,
            fps: 25.0,
            shots: 4,
            summary: Some(sprocket_core::event::AnalysisSummary {
                faces: 2,
                shots_with_faces: 1,
                models: [("mtcnn".to_owned(), "facenet-pytorch==2.6.0".to_owned())].into(),
            }),
            thumbnails: vec![artifact("shot-001.jpg"), artifact("shot-002.jpg")],
        }),
        EventBody::MediaRendered(MediaRendered {
            artifacts: vec![artifact("highlight.mp4"), artifact("poster.jpg")],
        }),
        EventBody::MediaArchived(MediaArchived {
            artifacts: vec![artifact("highlight.mp4")],
            manifest: artifact("manifest.json"),
        }),
        EventBody::PhaseRetryScheduled(PhaseRetryScheduled {
            phase: Phase::Analyze,
            delay_ms: 5000,
            cause: err(),
        }),
        EventBody::PhaseFailed(PhaseFailed {
            phase: Phase::Render,
            error: err(),
            retryable: false,
        }),
        EventBody::JobSucceeded(Empty {}),
        EventBody::JobFailed(JobFailed {
            phase: Some(Phase::Render),
            error: err(),
        }),
        EventBody::JobCancelRequested(JobCancelRequested { reason: None }),
        EventBody::JobCancelled(JobCancelled {
            phase: Some(Phase::Archive),
        }),
        EventBody::JobDeadLettered(JobDeadLettered {
            phase: Phase::Ingest,
            topic: "sprocket.ingest.dlq".into(),
            reason: "no such upload".into(),
        }),
        EventBody::JobRedriven(JobRedriven {
            phase: Phase::Ingest,
        }),
        EventBody::WorkItem(Box::new(item)),
        EventBody::JobDataExpired(sprocket_core::event::Retired {
            rule: "retention.work".into(),
            after: "24h".into(),
            removed: vec!["highlight.mp4".into(), "analysis.json".into()],
            bytes: 4096,
        }),
        EventBody::JobArchiveTiered(sprocket_core::event::JobArchiveTiered {
            rule: "retention.cold_after".into(),
            after: "7days".into(),
            moved: vec!["manifest.json".into()],
            to: "s3://cold/archive".into(),
            bytes: 512,
        }),
        EventBody::JobArchiveExpired(sprocket_core::event::Retired {
            rule: "retention.archive".into(),
            after: "30days".into(),
            removed: vec!["manifest.json".into()],
            bytes: 512,
        }),
    ]
}

pub fn envelopes() -> Vec<Envelope> {
    bodies()
        .into_iter()
        .map(|b| Envelope::new(JobId::parse("j1").unwrap(), "sprocket-test", 2, b))
        .collect()
}
