//! Sprocket's pure core.
//!
//! The event model, recipes, work items and the job state machine. Nothing here
//! performs I/O: no Kafka, no database, no object store, no ffmpeg, no models.
//! Adapters depend on this crate, never the reverse.

pub mod bounds;
pub mod error;
pub mod event;
pub mod ids;
pub mod job;
pub mod machine;
pub mod phase;
pub mod recipe;
pub mod redact;
pub mod retention;
pub mod retry;
pub mod source;
pub mod stored;
pub mod topics;
pub mod wire;
pub mod work;

pub use bounds::Bounds;
pub use error::{CoreError, ErrorInfo};
pub use event::{Artifact, Envelope, EventBody, EventKind, MediaInfo};
pub use ids::JobId;
pub use job::{Job, PhaseTimes};
pub use machine::Action;
pub use phase::{JobStatus, Phase};
pub use recipe::{Recipe, RecipeRef, Step};
pub use source::Source;
pub use topics::Topics;
pub use work::WorkItem;
