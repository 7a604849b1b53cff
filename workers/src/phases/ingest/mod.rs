//! Ingest: fetch the source under the job's prefix (streamed, size-limited,
//! sha256 computed), probe it, and reject what is not usable media.

mod source;

use async_trait::async_trait;
use sprocket_core::event::{Artifact, MediaIngested};
use sprocket_core::{EventBody, Phase, WorkItem};
use sprocket_media::probe::{probe, Limits};
use sprocket_platform::config::IngestConfig;
use sprocket_platform::outbound::Fetcher;
use sprocket_platform::store;

use super::{blocking, output_key, Done, PhaseWork};
use crate::{Cx, WorkError};

const PHASE: Phase = Phase::Ingest;

pub struct Ingest {
    /// Fetches `{"url": …}` sources, within `ingest.url_*`.
    fetcher: Fetcher,
}

impl Ingest {
    pub fn new(cfg: &IngestConfig) -> Result<Ingest, WorkError> {
        let fetcher = Fetcher::new(&cfg.url_fetch()).map_err(|e| WorkError::internal(PHASE, e))?;
        Ok(Ingest { fetcher })
    }
}

#[async_trait]
impl PhaseWork for Ingest {
    fn phase(&self) -> Phase {
        PHASE
    }

    async fn run(&self, item: &WorkItem, cx: &Cx) -> Result<Done, WorkError> {
        let cfg = &cx.config.ingest;
        let local = cx
            .scratch_file("source")
            .map_err(|e| WorkError::internal(PHASE, e))?;
        source::fetch(&item.source, cfg, cx, &self.fetcher, &local).await?;
        let limits = Limits {
            max_bytes: cfg.max_bytes,
            max_duration_s: cfg.max_duration_s,
            max_width: cfg.max_width,
            max_height: cfg.max_height,
        };
        let path = local.clone();
        let media = blocking(PHASE, move || probe(&path, &limits)).await?;
        let key = output_key(item, "source");
        let w = store::put_file(&cx.stores.work, &key, &local)
            .await
            .map_err(WorkError::store(PHASE))?;
        let source = Artifact {
            name: "source".into(),
            key,
            bytes: w.bytes,
            sha256: w.sha256,
            content_type: content_type(&media.format).into(),
        };
        Ok(Done {
            event: EventBody::MediaIngested(MediaIngested {
                source: source.clone(),
                media: media.clone(),
            }),
            artifacts: vec![source],
            media: Some(media),
        })
    }
}

fn content_type(format: &str) -> &'static str {
    if format.contains("mp4") || format.contains("mov") {
        "video/mp4"
    } else if format.contains("matroska") || format.contains("webm") {
        "video/x-matroska"
    } else if format.contains("avi") {
        "video/x-msvideo"
    } else {
        "application/octet-stream"
    }
}
