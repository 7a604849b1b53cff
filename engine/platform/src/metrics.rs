//! Sprocket's metrics: every name in one place, `sprocket_<name>_<unit>[_total]`,
//! with bounded label values (phase, status, outcome, class, route templates,
//! topic/partition/group of Sprocket's own topics).
//!
//! One registry per process ([`metrics`]); [`render`] writes the Prometheus text
//! exposition for `/metrics`. Process CPU and memory come from the registered
//! process collector (`process_cpu_seconds_total`, `process_resident_memory_bytes`).

use std::sync::OnceLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub const JOBS_SUBMITTED: &str = "sprocket_jobs_submitted_total";
pub const JOBS_FINISHED: &str = "sprocket_jobs_finished_total";
pub const PHASE_DURATION: &str = "sprocket_phase_duration_seconds";
pub const JOBS_IN_FLIGHT: &str = "sprocket_jobs_in_flight";
pub const PHASE_FAILURES: &str = "sprocket_phase_failures_total";
pub const RETRIES: &str = "sprocket_retries_total";
pub const DEAD_LETTERS: &str = "sprocket_dead_letters_total";
pub const CONSUMER_LAG: &str = "sprocket_consumer_lag_messages";
pub const PROJECTION_LAG: &str = "sprocket_projection_lag_seconds";
pub const EVENTS_PROJECTED: &str = "sprocket_events_projected_total";
pub const TRANSACTIONS: &str = "sprocket_kafka_transactions_total";
pub const HTTP_REQUESTS: &str = "sprocket_http_requests_total";
pub const HTTP_DURATION: &str = "sprocket_http_request_duration_seconds";
pub const WEBHOOK_DELIVERIES: &str = "sprocket_webhook_deliveries_total";
pub const JANITOR_BYTES_FREED: &str = "sprocket_janitor_bytes_freed_total";
pub const JANITOR_OBJECTS_MOVED: &str = "sprocket_janitor_objects_moved_total";
pub const JANITOR_ERRORS: &str = "sprocket_janitor_errors_total";
pub const JANITOR_SWEEPS: &str = "sprocket_janitor_sweeps_total";

/// Every metric Sprocket exports, with its help text (for docs and alert checks).
pub const ALL: [(&str, &str); 18] = [
    (
        JOBS_SUBMITTED,
        "Jobs submitted (first submission of a job id).",
    ),
    (
        JOBS_FINISHED,
        "Jobs that reached a terminal status, by status.",
    ),
    (
        PHASE_DURATION,
        "Time a phase's work took, by phase and outcome.",
    ),
    (JOBS_IN_FLIGHT, "Work items being worked on now, by phase."),
    (
        PHASE_FAILURES,
        "Failed phase attempts, by phase and class (retryable, permanent).",
    ),
    (RETRIES, "Phase attempts retried, by phase."),
    (
        DEAD_LETTERS,
        "Messages sent to a dead letter topic, by phase.",
    ),
    (
        CONSUMER_LAG,
        "Messages between a partition's end and the consumer's position.",
    ),
    (
        PROJECTION_LAG,
        "Age of the newest event the projector has folded.",
    ),
    (EVENTS_PROJECTED, "Events folded into the projections."),
    (
        TRANSACTIONS,
        "Kafka transactions, by outcome (committed, aborted).",
    ),
    (HTTP_REQUESTS, "HTTP requests, by route and status."),
    (HTTP_DURATION, "HTTP request latency, by route and status."),
    (
        WEBHOOK_DELIVERIES,
        "Webhook delivery attempts, by outcome (delivered, failed, dead, dropped).",
    ),
    (
        JANITOR_BYTES_FREED,
        "Bytes the janitor removed from the stores, by rule (work, archive).",
    ),
    (
        JANITOR_OBJECTS_MOVED,
        "Archive objects the janitor moved to the cold store.",
    ),
    (
        JANITOR_ERRORS,
        "Retention rules the janitor could not carry out or record (retried next sweep).",
    ),
    (
        JANITOR_SWEEPS,
        "Janitor sweeps over the finished jobs and uploads run to their end.",
    ),
];
/// `rule` of [`JANITOR_BYTES_FREED`].
pub const JANITOR_RULES: [&str; 2] = ["work", "archive"];

/// `status` of [`JOBS_FINISHED`]: a job's terminal statuses.
pub const JOB_STATUSES: [&str; 3] = ["succeeded", "failed", "cancelled"];
/// `outcome` of [`PHASE_DURATION`]: what became of a work item (the workers'
/// `Outcome::label`).
pub const PHASE_OUTCOMES: [&str; 6] = [
    "succeeded",
    "failed",
    "retried",
    "dead_lettered",
    "cancelled",
    "skipped",
];
/// `class` of [`PHASE_FAILURES`].
pub const FAILURE_CLASSES: [&str; 2] = ["retryable", "permanent"];
/// `outcome` of [`WEBHOOK_DELIVERIES`].
pub const WEBHOOK_OUTCOMES: [&str; 4] = ["delivered", "failed", "dead", "dropped"];
/// `outcome` of [`TRANSACTIONS`].
pub const TRANSACTION_OUTCOMES: [&str; 2] = ["committed", "aborted"];

pub struct Metrics {
    pub registry: Registry,
    pub jobs_submitted: prometheus::IntCounter,
    pub jobs_finished: IntCounterVec,
    pub phase_duration: HistogramVec,
    pub jobs_in_flight: IntGaugeVec,
    pub phase_failures: IntCounterVec,
    pub retries: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub consumer_lag: IntGaugeVec,
    pub projection_lag: prometheus::Gauge,
    pub events_projected: prometheus::IntCounter,
    pub transactions: IntCounterVec,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub webhook_deliveries: IntCounterVec,
    pub janitor_bytes_freed: IntCounterVec,
    pub janitor_objects_moved: prometheus::IntCounter,
    pub janitor_errors: prometheus::IntCounter,
    pub janitor_sweeps: prometheus::IntCounter,
    /// Incremented on every scrape; lets a test see the endpoint is live.
    pub scrapes: IntGauge,
}

fn help(name: &str) -> &'static str {
    ALL.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, h)| *h)
        .expect("every metric is listed in ALL")
}

fn counter_vec(r: &Registry, name: &str, labels: &[&str]) -> IntCounterVec {
    let m = IntCounterVec::new(Opts::new(name, help(name)), labels).expect("valid metric");
    r.register(Box::new(m.clone())).expect("registered once");
    m
}

fn counter(r: &Registry, name: &str) -> prometheus::IntCounter {
    let m = prometheus::IntCounter::new(name, help(name)).expect("valid metric");
    r.register(Box::new(m.clone())).expect("registered once");
    m
}

fn gauge_vec(r: &Registry, name: &str, labels: &[&str]) -> IntGaugeVec {
    let m = IntGaugeVec::new(Opts::new(name, help(name)), labels).expect("valid metric");
    r.register(Box::new(m.clone())).expect("registered once");
    m
}

fn histogram_vec(r: &Registry, name: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    let m = HistogramVec::new(
        HistogramOpts::new(name, help(name)).buckets(buckets),
        labels,
    )
    .expect("valid metric");
    r.register(Box::new(m.clone())).expect("registered once");
    m
}

impl Metrics {
    /// Creates every series alerts and the dashboard read, at zero, for each
    /// phase and each bounded label value: `rate()`, `increase()` and ratios
    /// then have a series from the first scrape on, not from the first retry
    /// or dead letter. HTTP series (route × status) and consumer lag (topic ×
    /// partition) are created as they happen.
    fn start_at_zero(&self) {
        for status in JOB_STATUSES {
            self.jobs_finished.with_label_values(&[status]);
        }
        for outcome in TRANSACTION_OUTCOMES {
            self.transactions.with_label_values(&[outcome]);
        }
        for outcome in WEBHOOK_OUTCOMES {
            self.webhook_deliveries.with_label_values(&[outcome]);
        }
        for rule in JANITOR_RULES {
            self.janitor_bytes_freed.with_label_values(&[rule]);
        }
        for phase in sprocket_core::Phase::ALL.map(sprocket_core::Phase::as_str) {
            self.jobs_in_flight.with_label_values(&[phase]);
            self.retries.with_label_values(&[phase]);
            self.dead_letters.with_label_values(&[phase]);
            for outcome in PHASE_OUTCOMES {
                self.phase_duration.with_label_values(&[phase, outcome]);
            }
            for class in FAILURE_CLASSES {
                self.phase_failures.with_label_values(&[phase, class]);
            }
        }
    }

    fn new() -> Metrics {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        {
            let _ = r.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ));
        }
        let jobs_submitted =
            prometheus::IntCounter::new(JOBS_SUBMITTED, help(JOBS_SUBMITTED)).expect("valid");
        r.register(Box::new(jobs_submitted.clone()))
            .expect("registered once");
        let projection_lag =
            prometheus::Gauge::new(PROJECTION_LAG, help(PROJECTION_LAG)).expect("valid");
        r.register(Box::new(projection_lag.clone()))
            .expect("registered once");
        let events_projected =
            prometheus::IntCounter::new(EVENTS_PROJECTED, help(EVENTS_PROJECTED)).expect("valid");
        r.register(Box::new(events_projected.clone()))
            .expect("registered once");
        let scrapes = IntGauge::new(
            "sprocket_metrics_scrapes",
            "Scrapes of this process's /metrics.",
        )
        .expect("valid");
        r.register(Box::new(scrapes.clone()))
            .expect("registered once");
        let phase_buckets = vec![
            0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
        ];
        let http_buckets = vec![
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
        ];
        let m = Metrics {
            jobs_finished: counter_vec(&r, JOBS_FINISHED, &["status"]),
            phase_duration: histogram_vec(&r, PHASE_DURATION, &["phase", "outcome"], phase_buckets),
            jobs_in_flight: gauge_vec(&r, JOBS_IN_FLIGHT, &["phase"]),
            phase_failures: counter_vec(&r, PHASE_FAILURES, &["phase", "class"]),
            retries: counter_vec(&r, RETRIES, &["phase"]),
            dead_letters: counter_vec(&r, DEAD_LETTERS, &["phase"]),
            consumer_lag: gauge_vec(&r, CONSUMER_LAG, &["topic", "partition", "group"]),
            transactions: counter_vec(&r, TRANSACTIONS, &["outcome"]),
            http_requests: counter_vec(&r, HTTP_REQUESTS, &["route", "status"]),
            http_duration: histogram_vec(&r, HTTP_DURATION, &["route", "status"], http_buckets),
            webhook_deliveries: counter_vec(&r, WEBHOOK_DELIVERIES, &["outcome"]),
            janitor_bytes_freed: counter_vec(&r, JANITOR_BYTES_FREED, &["rule"]),
            janitor_objects_moved: counter(&r, JANITOR_OBJECTS_MOVED),
            janitor_errors: counter(&r, JANITOR_ERRORS),
            janitor_sweeps: counter(&r, JANITOR_SWEEPS),
            jobs_submitted,
            projection_lag,
            events_projected,
            scrapes,
            registry: r,
        };
        m.start_at_zero();
        m
    }
}

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

/// The Prometheus text exposition of every metric of this process.
pub fn render() -> String {
    let m = metrics();
    m.scrapes.inc();
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&m.registry.gather(), &mut buf)
        .expect("text encoding never fails");
    String::from_utf8(buf).expect("exposition is UTF-8")
}

/// Serves `/metrics` and `/healthz` on its own address, for processes without
/// the API: workers and the projector. `/healthz` is their liveness: 200 while
/// every loop the process runs has made progress within
/// [`liveness::STALE_AFTER`](crate::liveness::STALE_AFTER), 503 (with the
/// stale loops' ages) once one is wedged.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/metrics", get(|| async { exposition() }))
        .route(
            "/healthz",
            get(|| async { healthz(crate::liveness::STALE_AFTER) }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The liveness answer: each loop's milliseconds since its last beat.
pub fn healthz(stale_after: std::time::Duration) -> impl axum::response::IntoResponse {
    let (alive, ages) = crate::liveness::report(stale_after);
    let status = if alive {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if alive { "ok" } else { "stuck" },
        "stale_after_ms": stale_after.as_millis() as u64,
        "loops_ms_since_progress": ages,
    });
    (status, axum::Json(body))
}

/// `/metrics` as an HTTP response with the exposition content type.
pub fn exposition() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn healthz_fails_once_a_loop_stops_making_progress() {
        use axum::response::IntoResponse;
        let hb = crate::liveness::register("metrics-test-loop");
        let ok = healthz(std::time::Duration::from_secs(60)).into_response();
        assert_eq!(ok.status(), 200);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let stuck = healthz(std::time::Duration::from_millis(5)).into_response();
        assert_eq!(stuck.status(), 503);
        hb.beat();
        crate::liveness::forget("metrics-test-loop");
    }

    #[test]
    fn names_follow_the_convention() {
        for (name, help) in ALL {
            assert!(name.starts_with("sprocket_"), "{name}");
            let unit_ok = ["_total", "_seconds", "_messages", "_in_flight"]
                .iter()
                .any(|s| name.ends_with(s));
            assert!(unit_ok, "{name} names no unit");
            assert!(!help.is_empty());
        }
    }

    #[test]
    fn labelled_series_exist_at_zero_from_the_start() {
        let fresh = Metrics::new();
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&fresh.registry.gather(), &mut buf)
            .unwrap();
        let text = String::from_utf8(buf).unwrap();
        // A histogram is there when its `_count` series is.
        let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
            let histogram = [PHASE_DURATION, HTTP_DURATION].contains(&name);
            let series = if histogram {
                format!("{name}_count{{")
            } else {
                format!("{name}{{")
            };
            text.lines()
                .filter(|l| l.starts_with(&series))
                .find(|l| {
                    labels
                        .iter()
                        .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
                })
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        };
        let mut wanted: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
        for status in JOB_STATUSES {
            wanted.push((JOBS_FINISHED, vec![("status", status)]));
        }
        for outcome in TRANSACTION_OUTCOMES {
            wanted.push((TRANSACTIONS, vec![("outcome", outcome)]));
        }
        for phase in ["ingest", "analyze", "render", "archive"] {
            for name in [RETRIES, DEAD_LETTERS, JOBS_IN_FLIGHT] {
                wanted.push((name, vec![("phase", phase)]));
            }
            for outcome in PHASE_OUTCOMES {
                wanted.push((PHASE_DURATION, vec![("phase", phase), ("outcome", outcome)]));
            }
            for class in FAILURE_CLASSES {
                wanted.push((PHASE_FAILURES, vec![("phase", phase), ("class", class)]));
            }
        }
        for (name, labels) in wanted {
            assert_eq!(value(name, &labels), Some(0.0), "{name}{labels:?}");
        }
    }

    #[test]
    fn every_metric_is_exported() {
        let m = metrics();
        m.jobs_finished.with_label_values(&["succeeded"]).inc();
        m.phase_duration
            .with_label_values(&["render", "succeeded"])
            .observe(1.0);
        m.jobs_in_flight.with_label_values(&["render"]).set(0);
        m.phase_failures
            .with_label_values(&["render", "retryable"])
            .inc();
        m.retries.with_label_values(&["render"]).inc();
        m.dead_letters.with_label_values(&["render"]).inc();
        m.consumer_lag
            .with_label_values(&["sprocket.render", "0", "sprocket-render"])
            .set(0);
        m.transactions.with_label_values(&["committed"]).inc();
        m.http_requests
            .with_label_values(&["/v1/jobs", "200"])
            .inc();
        m.http_duration
            .with_label_values(&["/v1/jobs", "200"])
            .observe(0.01);
        let text = render();
        for (name, _) in ALL {
            assert!(text.contains(name), "{name} missing from the exposition");
        }
    }
}
