//! `[retention]` and the archive store's cold tier (`archive.cold_url`):
//! how long finished jobs' data and unused uploads are kept, and when the
//! janitor looks for what is due.

use serde::{Deserialize, Serialize};
use sprocket_core::retention::{JobRetention, Keep};

use super::ConfigError;

/// The archive store (`[archive]`) and its cold tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// Where archive copies are written (`file:///…`, `s3://…`, `memory://`).
    pub url: String,
    /// Another object store that archive copies move to `retention.cold_after`
    /// after their job finished (absent: no cold tier).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cold_url: Option<String>,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            url: "file://data/archive".into(),
            cold_url: None,
        }
    }
}

/// Retention (`[retention]`), as humantime durations (`"36h"`, `"30d"`,
/// `"10s"`; `"0"` keeps for ever). A recipe may override `work`, `archive`
/// and `cold_after` for its jobs in its archive step's `params.retention`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// A finished job's working-store objects, after it finished.
    pub work: Keep,
    /// An upload no queued or running job uses, after it was uploaded.
    pub uploads: Keep,
    /// A finished job's archive copies, after it finished.
    pub archive: Keep,
    /// When a finished job's archive copies move to `archive.cold_url`
    /// (`"0"`: never).
    pub cold_after: Keep,
    /// How often the janitor looks for what is due (not `"0"`).
    pub interval: Keep,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        let day = Keep::after(std::time::Duration::from_secs(24 * 3600));
        RetentionConfig {
            work: day,
            uploads: day,
            archive: Keep::FOREVER,
            cold_after: Keep::FOREVER,
            interval: Keep::after(std::time::Duration::from_secs(60)),
        }
    }
}

impl RetentionConfig {
    /// The deployment's rules for a job (before its recipe's overrides).
    pub fn job(&self) -> JobRetention {
        JobRetention {
            work: self.work,
            archive: self.archive,
            cold_after: self.cold_after,
        }
    }

    pub(super) fn validate(&self, archive: &ArchiveConfig) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| {
            Err(ConfigError::Invalid {
                key,
                reason: reason.into(),
            })
        };
        if self.interval.period().is_none() {
            return invalid("retention.interval", "must be longer than 0");
        }
        if self.cold_after.period().is_some() && archive.cold_url.is_none() {
            return invalid(
                "retention.cold_after",
                "needs archive.cold_url, the store archive copies move to",
            );
        }
        if let (Some(cold), Some(gone)) = (self.cold_after.period(), self.archive.period()) {
            if cold >= gone {
                return invalid(
                    "retention.cold_after",
                    "must be shorter than retention.archive (or \"0\")",
                );
            }
        }
        Ok(())
    }
}
