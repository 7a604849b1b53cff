//! The runtime's own `work` spans (`workers/src/lane.rs`: one per message a
//! lane handles, opened once the lane took it up and holds an in-flight
//! permit, closed when `Stepper::step` returned, before the commit), recorded
//! with wall-clock times by a tracing layer, so the bench can time the steps
//! of the real runtime without a change to it.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::observe::Position;
use crate::stats::now_ms;

/// A `work` span: when it opened and closed (ms since the epoch).
#[derive(Debug, Clone, Copy)]
pub struct Work {
    pub opened: f64,
    pub closed: f64,
}

/// Closed `work` spans by the position of the message they handled.
fn store() -> &'static Mutex<HashMap<Position, Work>> {
    static SPANS: OnceLock<Mutex<HashMap<Position, Work>>> = OnceLock::new();
    SPANS.get_or_init(Default::default)
}

/// The span of the message at `position`, if it closed.
pub fn work(position: &Position) -> Option<Work> {
    store()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(position)
        .copied()
}

/// Installs the recorder beside a log to stderr (`SPROCKET_LOG`, default
/// `warn`), so the report on stdout stays clean.
pub fn install() {
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            EnvFilter::try_from_env("SPROCKET_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        );
    let _ = tracing_subscriber::registry()
        .with(log)
        .with(WorkSpans.with_filter(filter_fn(is_work)))
        .try_init();
}

struct WorkSpans;

/// Set on a `work` span when it opens.
struct Opened {
    position: Position,
    at: f64,
}

#[derive(Default)]
struct Fields {
    topic: Option<String>,
    partition: Option<i64>,
    offset: Option<i64>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "topic" {
            self.topic = Some(format!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "topic" {
            self.topic = Some(value.to_owned());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            "partition" => self.partition = Some(value),
            "offset" => self.offset = Some(value),
            _ => {}
        }
    }
}

impl<S> Layer<S> for WorkSpans
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        let (Some(topic), Some(partition), Some(offset)) = (f.topic, f.partition, f.offset) else {
            return;
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Opened {
                position: (topic, partition as i32, offset),
                at: now_ms(),
            });
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let closed = now_ms();
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let opened = span
            .extensions()
            .get::<Opened>()
            .map(|o| (o.position.clone(), o.at));
        if let Some((position, opened)) = opened {
            store()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(position, Work { opened, closed });
        }
    }
}

/// The lane's `work` span, and nothing else.
fn is_work(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_span() && meta.name() == "work" && meta.target().starts_with("sprocket_workers")
}
