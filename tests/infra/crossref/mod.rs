//! Cross-references inside each rendered overlay: ScaledObjects ↔ Deployments,
//! topics, consumer groups and partitions; probes ↔ what each process serves;
//! alerts and dashboard queries ↔ exported metrics; security and shutdown
//! settings on every pod.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::promql::{unknown_label_values, unknown_metrics};

const PHASES: [&str; 4] = ["ingest", "analyze", "render", "archive"];
/// Time a worker pod needs between its shutdown grace running out and SIGKILL:
/// a commit already under way (its transaction calls time out after 30 s,
/// workers/src/commit.rs), leaving the group, exiting.
const COMMIT_MARGIN_S: i64 = 30;
/// Paths the API serves for probes (engine/server/src/api/mod.rs).
const API_PROBE_PATHS: [&str; 2] = ["/healthz", "/readyz"];
/// Paths the metrics listener of workers and the projector serves
/// (sprocket_platform::metrics::serve).
const METRICS_PROBE_PATHS: [&str; 1] = ["/healthz"];

fn of_kind<'a>(objs: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objs.iter().filter(move |o| o["kind"] == kind)
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("?")
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A pod spec's init containers, then its containers.
fn all_containers(spec: &Value) -> impl Iterator<Item = &Value> {
    spec["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(spec["containers"].as_array().into_iter().flatten())
}

/// The environment a container gets from its ConfigMaps (envFrom) and literal env.
fn container_env(objs: &[Value], c: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for from in c["envFrom"].as_array().into_iter().flatten() {
        if let Some(cm) = from["configMapRef"]["name"].as_str() {
            if let Some(o) = of_kind(objs, "ConfigMap").find(|o| name(o) == cm) {
                for (k, v) in o["data"].as_object().into_iter().flatten() {
                    env.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
                }
            }
        }
    }
    for e in c["env"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (e["name"].as_str(), e["value"].as_str()) {
            env.insert(k.to_string(), v.to_string());
        }
    }
    env
}

fn port_of(addr: &str) -> Option<i64> {
    addr.rsplit(':').next()?.parse().ok()
}

/// CPU in millicores, memory in bytes.
fn quantity(q: &Value) -> f64 {
    let s = match q {
        Value::Number(n) => return n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.as_str(),
        _ => return 0.0,
    };
    let units = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("m", 0.001),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
    ];
    for (u, f) in units {
        if let Some(n) = s.strip_suffix(u) {
            return n.parse::<f64>().unwrap_or(0.0) * f;
        }
    }
    s.parse().unwrap_or(0.0)
}

fn selects(selector: &Value, labels: &Value) -> bool {
    let ml = if selector["matchLabels"].is_object() || selector["matchExpressions"].is_array() {
        &selector["matchLabels"]
    } else {
        selector // a Service's selector is a plain map
    };
    let labels_ok = ml
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels[k] == *v);
    let exprs_ok = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let have = labels[e["key"].as_str().unwrap_or_default()].as_str();
            let values = strs(&e["values"]);
            match e["operator"].as_str() {
                Some("In") => have.is_some_and(|h| values.contains(&h)),
                Some("NotIn") => !have.is_some_and(|h| values.contains(&h)),
                Some("Exists") => have.is_some(),
                Some("DoesNotExist") => have.is_none(),
                _ => false,
            }
        });
    labels_ok && exprs_ok
}

mod janitor;
mod kafka_auth;
mod monitoring;
mod pods;
mod scaling;
#[cfg(test)]
mod tests;

/// What the checks share: the rendered objects and the settings they are held to.
pub(super) struct Ctx<'a> {
    objs: &'a [Value],
    prefix: String,
    partitions: i64,
    api_port: Option<i64>,
    metrics_port: Option<i64>,
    deployments: BTreeMap<&'a str, &'a Value>,
}

/// Every inconsistency in one rendered overlay.
pub fn problems(objs: &[Value]) -> Vec<String> {
    let mut p = Vec::new();
    let config = of_kind(objs, "ConfigMap")
        .find(|o| name(o).starts_with("sprocket-config"))
        .map(|o| o["data"].clone())
        .unwrap_or_default();
    let setting = |k: &str| config[k].as_str().unwrap_or_default().to_string();
    let prefix = setting("SPROCKET__KAFKA__TOPIC_PREFIX");
    let partitions: i64 = setting("SPROCKET__KAFKA__PARTITIONS").parse().unwrap_or(-1);
    if prefix.is_empty() || partitions < 1 {
        p.push("sprocket-config lacks the topic prefix or the partition count".into());
    }
    let api_port = port_of(&setting("SPROCKET__API__ADDR"));
    let metrics_port = port_of(&setting("SPROCKET__METRICS__ADDR"));

    let c = Ctx {
        objs,
        prefix,
        partitions,
        api_port,
        metrics_port,
        deployments: of_kind(objs, "Deployment").map(|d| (name(d), d)).collect(),
    };
    pods::check(&c, &mut p);
    pods::graces_sized_per_phase(&c, &mut p);
    pods::reachable(&c, &mut p);
    pods::internet_egress(&c, &mut p);
    scaling::check(&c, &mut p);
    kafka_auth::check(&c, &mut p);
    janitor::check(&c, &mut p);
    monitoring::check(&c, &mut p);
    p
}

/// Every query of a Grafana dashboard that reads a metric Sprocket does not export.
pub fn dashboard_problems(d: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let mut panels: Vec<&Value> = d["panels"].as_array().into_iter().flatten().collect();
    let mut queries = 0;
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for t in panel["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_default();
            queries += 1;
            for m in unknown_metrics(expr) {
                p.push(format!(
                    "panel {:?}: {m} is not a metric Sprocket exports",
                    panel["title"]
                ));
            }
            for m in unknown_label_values(expr) {
                p.push(format!("panel {:?}: {m}", panel["title"]));
            }
        }
    }
    if queries == 0 {
        p.push("the dashboard has no queries".into());
    }
    let text = d.to_string();
    for needed in [
        "sprocket_jobs_finished_total",
        "sprocket_phase_duration_seconds_bucket",
        "sprocket_consumer_lag_messages",
        "sprocket_dead_letters_total",
        "process_start_time_seconds", // replicas per phase
    ] {
        if !text.contains(needed) {
            p.push(format!("the dashboard does not show {needed}"));
        }
    }
    p
}
