//! What a phase's work may use: the stores, the configuration, a scratch
//! directory, progress reporting and the cancellation token.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sprocket_platform::config::Config;
use sprocket_platform::store::{self, Store, StoreError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The working store (job outputs) and the archive store.
#[derive(Clone)]
pub struct Stores {
    pub work: Store,
    pub archive: Store,
}

impl Stores {
    pub fn open(cfg: &Config) -> Result<Stores, StoreError> {
        Ok(Stores {
            work: store::open(&store::absolutize(&cfg.store.url))?,
            archive: store::open(&store::absolutize(&cfg.archive.url))?,
        })
    }
}

/// The context of one work item.
pub struct Cx {
    pub stores: Stores,
    pub config: Arc<Config>,
    /// A directory of this item's own, removed when the work ends.
    pub scratch: PathBuf,
    /// Cancelled when the work must stop (the job was cancelled, the time
    /// limit passed, or the partition was taken away).
    pub cancel: CancellationToken,
    progress: mpsc::UnboundedSender<f64>,
}

impl Cx {
    pub fn new(
        stores: Stores,
        config: Arc<Config>,
        scratch: PathBuf,
        cancel: CancellationToken,
        progress: mpsc::UnboundedSender<f64>,
    ) -> Cx {
        Cx {
            stores,
            config,
            scratch,
            cancel,
            progress,
        }
    }

    /// A progress callback for blocking media code: forwards at most one value per
    /// 250 ms (and always 100) as `PhaseProgress`.
    pub fn progress(&self) -> impl FnMut(f64) + Send + 'static {
        let tx = self.progress.clone();
        let mut last: Option<(Instant, f64)> = None;
        move |p: f64| {
            let p = p.clamp(0.0, 100.0);
            let due = match last {
                None => true,
                Some((t, v)) => {
                    (p >= 100.0 && v < 100.0)
                        || (t.elapsed() >= Duration::from_millis(250) && p > v)
                }
            };
            if due {
                last = Some((Instant::now(), p));
                let _ = tx.send(p);
            }
        }
    }

    pub fn scratch_file(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }
}
