//! The metric names a PromQL expression reads, so alerts and dashboard queries can
//! be checked against what Sprocket exports.

use std::collections::BTreeSet;

/// Series the `prometheus` crate's process collector exports on Linux.
const PROCESS_METRICS: [&str; 8] = [
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
];

/// Aggregation operators may be written `sum by (x) (…)`, not followed by `(`.
const AGGREGATIONS: [&str; 12] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

const KEYWORDS: [&str; 11] = [
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
];

/// Whether `name` is a series Sprocket's processes export: a name in
/// `sprocket_platform::metrics::ALL` (histograms with their `_bucket`, `_sum` and
/// `_count` series) or a process collector series.
pub fn exported(name: &str) -> bool {
    let histograms = [
        sprocket_platform::metrics::PHASE_DURATION,
        sprocket_platform::metrics::HTTP_DURATION,
    ];
    sprocket_platform::metrics::ALL
        .iter()
        .any(|(n, _)| *n == name)
        || histograms.iter().any(|h| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name == format!("{h}{s}"))
        })
        || PROCESS_METRICS.contains(&name)
}

/// The metric names in a PromQL expression: identifiers that are not functions or
/// aggregations (followed by `(`), keywords, label names (inside `{}`, or the
/// lists after by/without/on/ignoring/group_*), durations or strings.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut prev_word = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if c == '{' || c == '[' {
            let close = if c == '{' { '}' } else { ']' };
            while i < chars.len() && chars[i] != close {
                i += 1;
            }
            i += 1;
        } else if c == '(' && KEYWORDS[3..9].contains(&prev_word.as_str()) {
            // by (…), without (…), on (…), ignoring (…), group_left (…): labels.
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            i += 1;
            prev_word.clear();
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            prev_word.clear();
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let is_call = j < chars.len() && chars[j] == '(';
            let lower = word.to_ascii_lowercase();
            if !is_call
                && !KEYWORDS.contains(&lower.as_str())
                && !AGGREGATIONS.contains(&lower.as_str())
            {
                names.insert(word);
            }
            prev_word = lower;
        } else {
            if !c.is_whitespace() {
                prev_word.clear();
            }
            i += 1;
        }
    }
    names
}

/// The names in `expr` that Sprocket does not export.
pub fn unknown_metrics(expr: &str) -> Vec<String> {
    metric_names(expr)
        .into_iter()
        .filter(|n| !exported(n))
        .collect()
}

/// The `label="value"` matchers of each selector in `expr`, as (metric, label,
/// value); regular-expression and negative matchers are left out.
pub fn equality_matchers(expr: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(open) = rest.find('{') {
        let metric: String = rest[..open]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        for m in rest[open + 1..open + close].split(',') {
            if let Some((label, value)) = m.split_once('=') {
                let (label, value) = (label.trim(), value.trim());
                if label.ends_with('!') || value.starts_with('~') {
                    continue;
                }
                out.push((
                    metric.clone(),
                    label.to_string(),
                    value.trim_matches('"').to_string(),
                ));
            }
        }
        rest = &rest[open + close..];
    }
    out
}

/// The values a bounded label of Sprocket's metrics takes.
fn label_values(metric: &str, label: &str) -> Option<Vec<&'static str>> {
    use sprocket_platform::metrics as m;
    let base = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| metric.strip_suffix(s))
        .unwrap_or(metric);
    match (base, label) {
        (_, "phase") if base.starts_with("sprocket_") => Some(
            sprocket_core::Phase::ALL
                .map(sprocket_core::Phase::as_str)
                .to_vec(),
        ),
        (m::JOBS_FINISHED, "status") => Some(m::JOB_STATUSES.to_vec()),
        (m::PHASE_DURATION, "outcome") => Some(m::PHASE_OUTCOMES.to_vec()),
        (m::PHASE_FAILURES, "class") => Some(m::FAILURE_CLASSES.to_vec()),
        (m::TRANSACTIONS, "outcome") => Some(m::TRANSACTION_OUTCOMES.to_vec()),
        _ => None,
    }
}

/// Matchers in `expr` on a value a bounded label never takes.
pub fn unknown_label_values(expr: &str) -> Vec<String> {
    equality_matchers(expr)
        .into_iter()
        .filter_map(|(metric, label, value)| {
            let values = label_values(&metric, &label)?;
            (!values.contains(&value.as_str()))
                .then(|| format!("{metric}{{{label}=\"{value}\"}}: {label} is one of {values:?}"))
        })
        .collect()
}

#[test]
fn bounded_label_values_are_checked() {
    assert_eq!(
        equality_matchers(r#"rate(a_total{x="1", y=~"2", z!="3"}[5m]) / b{w = "4"}"#),
        [
            ("a_total".into(), "x".into(), "1".into()),
            ("b".into(), "w".into(), "4".into())
        ]
    );
    assert!(unknown_label_values(
        r#"sprocket_kafka_transactions_total{outcome="aborted"} + sprocket_phase_duration_seconds_count{phase="render",outcome="dead_lettered"}"#
    )
    .is_empty());
    let bad = unknown_label_values(
        r#"sprocket_jobs_finished_total{status="failure"} + sprocket_retries_total{phase="encode"}"#,
    );
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].contains("status is one of"), "{bad:?}");
}

#[test]
fn finds_metric_names_and_skips_the_rest() {
    let e = r#"sum by (phase, le) (rate(sprocket_phase_duration_seconds_bucket{phase=~"a|b"}[$__rate_interval])) / on(phase) group_left(x) max without (pod) (sprocket_jobs_in_flight offset 5m) > bool 0.5 and up"#;
    let got: Vec<_> = metric_names(e).into_iter().collect();
    assert_eq!(
        got,
        [
            "sprocket_jobs_in_flight",
            "sprocket_phase_duration_seconds_bucket",
            "up"
        ]
    );
}

#[test]
fn foreign_metrics_are_rejected() {
    assert!(unknown_metrics("sum(rate(sprocket_dead_letters_total[5m]))").is_empty());
    assert!(unknown_metrics("changes(process_start_time_seconds[15m]) > 2").is_empty());
    assert_eq!(unknown_metrics("up == 0"), ["up"]);
    assert_eq!(
        unknown_metrics("rate(kube_pod_container_status_restarts_total[5m]) > 0"),
        ["kube_pod_container_status_restarts_total"]
    );
    assert_eq!(
        unknown_metrics("sprocket_phase_duration_seconds_bukket"),
        ["sprocket_phase_duration_seconds_bukket"]
    );
    assert_eq!(unknown_metrics("process_made_up"), ["process_made_up"]);
}
