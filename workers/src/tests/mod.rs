//! The runtime on fakes: the pure step, the stepper under paused time, and
//! the lane's ordered, batched commits.

mod lane;
mod step;

use std::sync::Arc;

use async_trait::async_trait;
use sprocket_core::event::{Artifact, MediaRendered, Submitted};
use sprocket_core::{Envelope, EventBody, JobId, Phase, RecipeRef, Source, Topics, WorkItem};
use sprocket_platform::config::Config;
use sprocket_platform::store;

use crate::ports::fakes::Fakes;
use crate::{Cx, Done, PhaseWork, Stepper, Stores, WorkError};

pub(crate) fn topics() -> Topics {
    Topics::new("sprocket.")
}

pub(crate) fn job(n: usize) -> JobId {
    JobId::parse(&format!("job-{n}")).unwrap()
}

pub(crate) fn submission(n: usize, recipe: &str) -> Envelope {
    Envelope::new(
        job(n),
        "test",
        1,
        EventBody::JobSubmitted(Submitted {
            source: Source::Url("https://example.com/a.mp4".into()),
            recipe: RecipeRef::Name(recipe.into()),
            recipe_version: None,
            labels: Default::default(),
            tenant: None,
        }),
    )
}

/// A `minimal` job's work item for `phase`, at `attempt`.
pub(crate) fn item(n: usize, phase: Phase, attempt: u32) -> Envelope {
    let mut item = match sprocket_core::machine::accept(
        &submission(n, "minimal"),
        sprocket_core::machine::Claim::Ours,
        &sprocket_core::Bounds::default(),
    ) {
        sprocket_core::Action::Dispatch(item) => *item,
        other => panic!("{other:?}"),
    };
    item.phase = phase;
    Envelope::new(job(n), "test", attempt, EventBody::WorkItem(Box::new(item)))
}

pub(crate) fn rendered() -> Done {
    let a = Artifact {
        name: "poster.jpg".into(),
        key: "jobs/x/poster.jpg".into(),
        bytes: 1,
        sha256: "00".into(),
        content_type: "image/jpeg".into(),
    };
    Done {
        event: EventBody::MediaRendered(MediaRendered {
            artifacts: vec![a.clone()],
        }),
        artifacts: vec![a],
        media: None,
    }
}

/// What a scripted phase does with an item.
pub(crate) type RunFn =
    dyn Fn(&WorkItem) -> futures::future::BoxFuture<'static, Result<Done, WorkError>> + Send + Sync;

/// Phase work whose behaviour a test picks per job.
pub(crate) struct Scripted {
    pub phase: Phase,
    pub run: Box<RunFn>,
}

#[async_trait]
impl PhaseWork for Scripted {
    fn phase(&self) -> Phase {
        self.phase
    }
    async fn run(&self, item: &WorkItem, _cx: &Cx) -> Result<Done, WorkError> {
        (self.run)(item).await
    }
}

pub(crate) fn stepper(work: Scripted, cfg: Config) -> (Arc<Stepper>, Fakes) {
    let (fakes, ports) = Fakes::new();
    let stores = Stores {
        work: store::open("memory://").unwrap(),
        archive: store::open("memory://").unwrap(),
        cold: None,
    };
    let s = Stepper::with_ports(
        Arc::new(work),
        ports,
        stores,
        Arc::new(cfg),
        topics(),
        "sprocket-worker-test".into(),
    )
    .unwrap();
    (Arc::new(s), fakes)
}
