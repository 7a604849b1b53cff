//! Phase work that does no media work: it returns at once the completion a
//! real phase would, with artifacts that name the keys the real phase writes
//! (nothing is written), so the runtime's every other step — decoding,
//! claiming, the live `PhaseStarted`, encoding against the JSON Schemas, the
//! transaction — runs as in production and is all that is timed.

use async_trait::async_trait;
use sprocket_core::event::{
    Artifact, MediaAnalyzed, MediaArchived, MediaInfo, MediaIngested, MediaRendered,
};
use sprocket_core::{EventBody, Phase, WorkItem};
use sprocket_workers::{Cx, Done, PhaseWork, WorkError};

/// sha256 of no bytes: what the named artifacts would hold.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub struct NoOp(pub Phase);

#[async_trait]
impl PhaseWork for NoOp {
    fn phase(&self) -> Phase {
        self.0
    }

    async fn run(&self, item: &WorkItem, _cx: &Cx) -> Result<Done, WorkError> {
        Ok(completion(self.0, item))
    }
}

fn artifact(item: &WorkItem, name: &str, content_type: &str) -> Artifact {
    Artifact {
        name: name.into(),
        key: format!("{}{name}", item.prefix()),
        bytes: 0,
        sha256: EMPTY_SHA256.into(),
        content_type: content_type.into(),
    }
}

/// The phase's completion event and what it hands on, shaped as the real
/// phase's (`workers/src/phases/*.rs`).
pub fn completion(phase: Phase, item: &WorkItem) -> Done {
    match phase {
        Phase::Ingest => {
            let source = artifact(item, "source", "video/mp4");
            let media = MediaInfo {
                format: "mov,mp4,m4a,3gp,3g2,mj2".into(),
                duration_s: 2.0,
                width: 160,
                height: 90,
                fps: 10.0,
                video_codec: "h264".into(),
                audio_codec: None,
                bit_rate: None,
                video_stream: None,
            };
            Done {
                event: EventBody::MediaIngested(MediaIngested {
                    source: source.clone(),
                    media: media.clone(),
                }),
                artifacts: vec![source],
                media: Some(media),
            }
        }
        Phase::Analyze => {
            let analysis = artifact(item, "analysis.json", "application/json");
            Done {
                event: EventBody::MediaAnalyzed(MediaAnalyzed {
                    analysis: analysis.clone(),
                    frames: 20,
                    fps: 10.0,
                    shots: 1,
                    summary: None,
                    thumbnails: vec![],
                }),
                artifacts: vec![analysis],
                media: None,
            }
        }
        Phase::Render => {
            let poster = artifact(item, "poster.jpg", "image/jpeg");
            Done {
                event: EventBody::MediaRendered(MediaRendered {
                    artifacts: vec![poster.clone()],
                }),
                artifacts: vec![poster],
                media: None,
            }
        }
        Phase::Archive => Done {
            event: EventBody::MediaArchived(MediaArchived {
                artifacts: vec![],
                manifest: artifact(item, "manifest.json", "application/json"),
            }),
            artifacts: vec![],
            media: None,
        },
    }
}
