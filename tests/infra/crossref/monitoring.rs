//! Monitoring and setup: the ServiceMonitor reaches every metrics port, alerts use exported metrics, and the setup Job migrates and creates topics.

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;

/// Checks the ServiceMonitor, the PrometheusRule and the setup Job.
pub(super) fn check(c: &Ctx, p: &mut Vec<String>) {
    let objs = c.objs;
    // Monitoring: the ServiceMonitor reaches every metrics port; alerts and the
    // dashboard use only exported metrics.
    let monitors: Vec<&Value> = of_kind(objs, "ServiceMonitor").collect();
    if monitors.is_empty() {
        p.push("no ServiceMonitor".into());
    }
    for s in of_kind(objs, "Service")
        .filter(|s| s["metadata"]["labels"]["sprocket.dev/metrics"] == "true")
    {
        let ports: Vec<&str> = s["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["name"].as_str())
            .collect();
        let scraped = monitors.iter().any(|m| {
            selects(&m["spec"]["selector"], &s["metadata"]["labels"])
                && m["spec"]["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| {
                        e["port"].as_str().is_some_and(|n| ports.contains(&n))
                            && e["path"].as_str().unwrap_or("/metrics") == "/metrics"
                    })
        });
        if !scraped {
            p.push(format!(
                "Service {}: no ServiceMonitor endpoint scrapes it",
                name(s)
            ));
        }
    }
    let mut alerts = BTreeSet::new();
    for r in of_kind(objs, "PrometheusRule") {
        for g in r["spec"]["groups"].as_array().into_iter().flatten() {
            for rule in g["rules"].as_array().into_iter().flatten() {
                let expr = rule["expr"].as_str().unwrap_or_default();
                let id = rule["alert"]
                    .as_str()
                    .or(rule["record"].as_str())
                    .unwrap_or("?");
                alerts.insert(id.to_string());
                for m in unknown_metrics(expr) {
                    p.push(format!("alert {id}: {m} is not a metric Sprocket exports"));
                }
                for m in unknown_label_values(expr) {
                    p.push(format!("alert {id}: {m}"));
                }
            }
        }
    }
    for needed in [
        "LagGrowing",
        "DeadLetters",
        "FailureRate",
        "ProjectionLag",
        "CrashLooping",
    ] {
        if !alerts.iter().any(|a| a.contains(needed)) {
            p.push(format!("no alert for {needed}"));
        }
    }
    let dashboards: Vec<&Value> = of_kind(objs, "ConfigMap")
        .filter(|c| c["metadata"]["labels"]["grafana_dashboard"] == "1")
        .collect();
    if dashboards.is_empty() {
        p.push("no Grafana dashboard ConfigMap".into());
    }
    for c in dashboards {
        for (file, text) in c["data"].as_object().into_iter().flatten() {
            match serde_json::from_str::<Value>(text.as_str().unwrap_or_default()) {
                Ok(d) => p.extend(
                    dashboard_problems(&d)
                        .into_iter()
                        .map(|e| format!("{file}: {e}")),
                ),
                Err(e) => p.push(format!("{file}: not JSON: {e}")),
            }
        }
    }

    // The setup Job runs the migrations and creates the topics.
    let jobs: Vec<Vec<String>> = of_kind(objs, "Job")
        .flat_map(|j| {
            let s = &j["spec"]["template"]["spec"];
            let mut cs = s["initContainers"].as_array().cloned().unwrap_or_default();
            cs.extend(s["containers"].as_array().cloned().unwrap_or_default());
            cs
        })
        .map(|c| strs(&c["args"]).into_iter().map(String::from).collect())
        .collect();
    for needed in [vec!["migrate"], vec!["topics", "create"]] {
        if !jobs.iter().any(|args| *args == needed) {
            p.push(format!("no Job runs sprocket {}", needed.join(" ")));
        }
    }
}
