//! The projector's transactions, counted from its own `projected` debug event
//! (one per committed batch, with the batch's `events`, `skipped` and
//! `transaction_ms`) by a tracing layer.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{filter_fn, LevelFilter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

static TRANSACTIONS: AtomicU64 = AtomicU64::new(0);
static MESSAGES: AtomicU64 = AtomicU64::new(0);
/// Microseconds spent in transactions.
static BUSY_US: AtomicU64 = AtomicU64::new(0);

/// Transactions committed and messages they held, since the process started.
#[derive(Debug, Clone, Copy, Default)]
pub struct Commits {
    pub transactions: u64,
    pub messages: u64,
    busy_us: u64,
}

impl Commits {
    pub fn now() -> Commits {
        Commits {
            transactions: TRANSACTIONS.load(Ordering::Relaxed),
            messages: MESSAGES.load(Ordering::Relaxed),
            busy_us: BUSY_US.load(Ordering::Relaxed),
        }
    }

    /// What was committed since `earlier`.
    pub fn since(earlier: Commits) -> Commits {
        let now = Commits::now();
        Commits {
            transactions: now.transactions - earlier.transactions,
            messages: now.messages - earlier.messages,
            busy_us: now.busy_us - earlier.busy_us,
        }
    }

    /// Mean time a transaction took (ms), from handing the batch over to its commit.
    pub fn mean_transaction_ms(&self) -> f64 {
        self.busy_us as f64 / 1000.0 / self.transactions.max(1) as f64
    }

    /// Messages per transaction.
    pub fn mean_batch(&self) -> f64 {
        self.messages as f64 / self.transactions.max(1) as f64
    }
}

/// Installs the counter beside a log to stderr (`SPROCKET_LOG`, default `warn`).
pub fn install() {
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            EnvFilter::try_from_env("SPROCKET_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        );
    let projected = Counter
        .with_filter(LevelFilter::DEBUG)
        .with_filter(filter_fn(|m| m.target() == "sprocket_server::projector"));
    let _ = tracing_subscriber::registry()
        .with(log)
        .with(projected)
        .try_init();
}

struct Counter;

#[derive(Default)]
struct Fields {
    projected: bool,
    messages: u64,
    busy_us: u64,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if matches!(field.name(), "events" | "skipped") {
            self.messages += value;
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "transaction_ms" {
            self.busy_us += (value * 1000.0) as u64;
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.projected = format!("{value:?}") == "projected";
        }
    }
}

impl<S: Subscriber> Layer<S> for Counter {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        if f.projected {
            TRANSACTIONS.fetch_add(1, Ordering::Relaxed);
            MESSAGES.fetch_add(f.messages, Ordering::Relaxed);
            BUSY_US.fetch_add(f.busy_us, Ordering::Relaxed);
        }
    }
}
