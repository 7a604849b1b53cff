//! The four phases. Each takes a work item and does its real media work,
//! writing outputs to deterministic keys under the job's prefix.

mod analyze;
mod archive;
mod ingest;
mod render;

use std::sync::Arc;

use async_trait::async_trait;
use sprocket_core::event::Artifact;
use sprocket_core::{Phase, WorkItem};
use sprocket_platform::config::Config;
use sprocket_platform::store::{self, Store};

use crate::{Cx, WorkError};

pub use sprocket_media::tensors::one_cpu_thread_unless_set;

/// What a completed phase hands on: the core's [`Completion`].
pub use sprocket_core::machine::Completion as Done;

#[async_trait]
pub trait PhaseWork: Send + Sync + 'static {
    fn phase(&self) -> Phase;
    async fn run(&self, item: &WorkItem, cx: &Cx) -> Result<Done, WorkError>;
}

/// The work of a phase, with what it needs loaded (the analyze phase's models,
/// from `worker.models_dir` or [`default_model_dir`](sprocket_media::faces::default_model_dir)).
pub fn phase_work(phase: Phase, cfg: &Config) -> Result<Arc<dyn PhaseWork>, WorkError> {
    Ok(match phase {
        Phase::Ingest => Arc::new(ingest::Ingest::new(&cfg.ingest)?),
        Phase::Analyze => {
            let dir = cfg
                .worker
                .models_dir
                .clone()
                .unwrap_or_else(sprocket_media::faces::default_model_dir);
            Arc::new(analyze::Analyze::load(&dir)?)
        }
        Phase::Render => Arc::new(render::Render),
        Phase::Archive => Arc::new(archive::Archive),
    })
}

/// The outputs each phase writes, by name.
fn outputs(phase: Phase) -> &'static [&'static str] {
    match phase {
        Phase::Ingest => &["source"],
        Phase::Analyze => &["analysis.json"],
        Phase::Render => &[
            "highlight.mp4",
            "poster.jpg",
            "vertical.mp4",
            "square.mp4",
            "thumbnails.jpg",
            "thumbnails.vtt",
        ],
        Phase::Archive => &[
            "analysis.json",
            "highlight.mp4",
            "poster.jpg",
            "manifest.json",
        ],
    }
}

/// Removes what a cancelled phase may have written (analyze: the analysis and
/// any thumbnails; archive: its copies of the item's outputs and the
/// manifest; the working store's outputs of earlier phases stay).
pub async fn remove_outputs(phase: Phase, item: &WorkItem, stores: &crate::Stores) {
    let store = if phase == Phase::Archive {
        &stores.archive
    } else {
        &stores.work
    };
    let mut names: Vec<String> = outputs(phase).iter().map(|n| n.to_string()).collect();
    match phase {
        Phase::Analyze => names.extend(thumbnails_stored(store, item).await),
        // The ladder's files depend on the source's height: whatever is under `hls/`.
        Phase::Render => names.extend(stored_under(store, item, HLS_PREFIX).await),
        Phase::Archive => names.extend(
            item.artifacts
                .keys()
                .filter(|n| *n != "source" && !names.contains(n))
                .cloned()
                .collect::<Vec<_>>(),
        ),
        _ => {}
    }
    for name in &names {
        let key = object_store::path::Path::from(output_key(item, name));
        let _ = object_store::ObjectStoreExt::delete(store.as_ref(), &key).await;
    }
    if phase == Phase::Archive {
        let key = object_store::path::Path::from(output_key(item, "manifest.json"));
        let _ = object_store::ObjectStoreExt::delete(stores.work.as_ref(), &key).await;
    }
}

/// The names of the shot thumbnails (`shot-NNN.jpg`) under the job's prefix:
/// as many as an analysis stored before it was stopped.
async fn thumbnails_stored(store: &Store, item: &WorkItem) -> Vec<String> {
    use futures::StreamExt;
    let prefix = object_store::path::Path::from(item.prefix());
    store
        .list(Some(&prefix))
        .filter_map(|meta| async move {
            let name = meta.ok()?.location.filename()?.to_owned();
            (name.starts_with("shot-") && name.ends_with(".jpg")).then_some(name)
        })
        .collect()
        .await
}

/// The folder of the HLS ladder's outputs: `hls/master.m3u8` and, per rung,
/// `hls/<height>p.m3u8` and `hls/<height>p.mp4`.
const HLS_PREFIX: &str = "hls/";

/// The names of the job's outputs under `folder` (`hls/`), as stored.
async fn stored_under(store: &Store, item: &WorkItem, folder: &str) -> Vec<String> {
    use futures::StreamExt;
    let job = item.prefix();
    let prefix = object_store::path::Path::from(format!("{job}{folder}"));
    let job = job.as_str();
    store
        .list(Some(&prefix))
        .filter_map(|meta| async move {
            let key = meta.ok()?.location.to_string();
            key.strip_prefix(job).map(str::to_owned)
        })
        .collect()
        .await
}

/// The object key of a job's output.
pub fn output_key(item: &WorkItem, name: &str) -> String {
    format!("{}{name}", item.prefix())
}

/// Uploads a local file as a job output and describes it.
async fn publish_file(
    phase: Phase,
    store: &Store,
    item: &WorkItem,
    name: &str,
    file: &std::path::Path,
    content_type: &str,
) -> Result<Artifact, WorkError> {
    let key = output_key(item, name);
    let w = store::put_file(store, &key, file)
        .await
        .map_err(WorkError::store(phase))?;
    Ok(Artifact {
        name: name.to_owned(),
        key,
        bytes: w.bytes,
        sha256: w.sha256,
        content_type: content_type.to_owned(),
    })
}

/// Fetches an earlier phase's output to a local file.
async fn fetch_artifact(
    phase: Phase,
    cx: &Cx,
    item: &WorkItem,
    name: &str,
) -> Result<std::path::PathBuf, WorkError> {
    let a = item
        .artifacts
        .get(name)
        .ok_or_else(|| WorkError::Rejected {
            phase,
            code: "missing_input",
            message: format!("the work item carries no {name:?} artifact"),
        })?;
    let path = cx
        .scratch_file(name)
        .map_err(|e| WorkError::internal(phase, e))?;
    store::get_file(&cx.stores.work, &a.key, &path)
        .await
        .map_err(WorkError::store(phase))?;
    Ok(path)
}

/// Runs blocking media work off the async threads.
async fn blocking<T: Send + 'static>(
    phase: Phase,
    f: impl FnOnce() -> Result<T, sprocket_media::MediaError> + Send + 'static,
) -> Result<T, WorkError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WorkError::internal(phase, e))?
        .map_err(WorkError::media(phase))
}
