//! What a phase's work may use: the stores, the configuration, a scratch
//! directory, progress reporting and the cancellation token.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sprocket_platform::config::Config;
use sprocket_platform::store::{self, Store, StoreError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The working store (job outputs), the archive store and, where
/// `archive.cold_url` names one, the cold tier archive copies move to.
#[derive(Clone)]
pub struct Stores {
    pub work: Store,
    pub archive: Store,
    pub cold: Option<Store>,
}

impl Stores {
    pub fn open(cfg: &Config) -> Result<Stores, StoreError> {
        Ok(Stores {
            work: store::open(&store::absolutize(&cfg.store.url))?,
            archive: store::open(&store::absolutize(&cfg.archive.url))?,
            cold: match &cfg.archive.cold_url {
                Some(url) => Some(store::open(&store::absolutize(url))?),
                None => None,
            },
        })
    }
}

/// The context of one work item.
pub struct Cx {
    pub stores: Stores,
    pub config: Arc<Config>,
    /// A directory of this item's own, made at its first use and removed
    /// when the work ends.
    scratch: Scratch,
    /// Cancelled when the work must stop (the job was cancelled, the time
    /// limit passed, or the partition was taken away).
    pub cancel: CancellationToken,
    progress: mpsc::UnboundedSender<f64>,
}

impl Cx {
    pub fn new(
        stores: Stores,
        config: Arc<Config>,
        scratch: Scratch,
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

    /// A path in the item's scratch directory, which is made on first use.
    pub fn scratch_file(&self, name: &str) -> std::io::Result<PathBuf> {
        Ok(self.scratch.dir()?.join(name))
    }
}

/// A work item's scratch directory, made only when the work asks for it: most
/// work items of a busy worker need none, and making and removing a
/// directory per item cost the file system more than the rest of a no-op item.
pub struct Scratch {
    base: PathBuf,
    prefix: String,
    dir: std::sync::OnceLock<tempfile::TempDir>,
}

impl Scratch {
    /// A directory named `<prefix>…` under `base`, once asked for.
    pub fn new(base: PathBuf, prefix: String) -> Scratch {
        Scratch {
            base,
            prefix,
            dir: std::sync::OnceLock::new(),
        }
    }

    fn dir(&self) -> std::io::Result<&std::path::Path> {
        if let Some(d) = self.dir.get() {
            return Ok(d.path());
        }
        std::fs::create_dir_all(&self.base)?;
        let made = tempfile::Builder::new()
            .prefix(&self.prefix)
            .tempdir_in(&self.base)?;
        Ok(self.dir.get_or_init(|| made).path())
    }
}
