//! Each check fires on a deliberately broken copy.

use serde_json::Value;

use super::*;
use crate::render::{overlay, OVERLAYS};

#[test]
fn overlays_are_consistent() {
    for o in OVERLAYS {
        let p = problems(&overlay(o));
        assert!(p.is_empty(), "overlay {o}:\n{}", p.join("\n"));
    }
}

#[test]
fn the_committed_dashboard_uses_exported_metrics() {
    let path = crate::root().join("infra/base/monitoring/dashboard.json");
    let d: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let p = dashboard_problems(&d);
    assert!(p.is_empty(), "{}", p.join("\n"));
}

fn broken(mutate: impl FnOnce(&mut Vec<Value>)) -> Vec<String> {
    let mut objs = overlay("dev");
    mutate(&mut objs);
    problems(&objs)
}

fn find_mut<'a>(objs: &'a mut [Value], kind: &str, n: &str) -> &'a mut Value {
    objs.iter_mut()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == n)
        .unwrap_or_else(|| panic!("no {kind} {n}"))
}

fn has(problems: &[String], needle: &str) -> bool {
    problems.iter().any(|p| p.contains(needle))
}

#[test]
fn broken_copies_are_caught() {
    let p = broken(|o| {
        find_mut(o, "ScaledObject", "sprocket-worker-render")["spec"]["scaleTargetRef"]["name"] =
            "sprocket-worker-rendr".into()
    });
    assert!(has(&p, "does not exist"), "{p:?}");
    let p = broken(|o| {
        find_mut(o, "ScaledObject", "sprocket-worker-analyze")["spec"]["triggers"][0]["metadata"]
            ["topic"] = "sprocket.render".into()
    });
    assert!(has(&p, "is not sprocket.analyze"), "{p:?}");
    let p = broken(|o| {
        find_mut(o, "ScaledObject", "sprocket-worker-ingest")["spec"]["triggers"][0]["metadata"]
            ["consumerGroup"] = "ingest".into()
    });
    assert!(has(&p, "is not sprocket-ingest"), "{p:?}");
    let p = broken(|o| {
        find_mut(o, "ScaledObject", "sprocket-worker-archive")["spec"]["maxReplicaCount"] =
            50.into()
    });
    assert!(has(&p, "is not the partition count"), "{p:?}");
    let p = broken(|o| {
        find_mut(o, "ScaledObject", "sprocket-worker-render")["spec"]["triggers"][0]["metadata"]
            ["lagThreshold"] = "10".into()
    });
    assert!(has(&p, "render lagThreshold"), "{p:?}");
    let p = broken(|o| {
        o.retain(|x| {
            !(x["kind"] == "ScaledObject" && x["metadata"]["name"] == "sprocket-worker-archive")
        })
    });
    assert!(has(&p, "no ScaledObject for the archive"), "{p:?}");
    let p = broken(|o| {
        find_mut(o, "Deployment", "sprocket-worker-render")["spec"]["template"]["spec"]
            ["terminationGracePeriodSeconds"] = 10.into()
    });
    assert!(has(&p, "terminationGracePeriodSeconds 10"), "{p:?}");
    let p = broken(|o| {
        find_mut(o, "Deployment", "sprocket-worker-ingest")["spec"]["template"]["spec"]
            ["containers"][0]["livenessProbe"]["httpGet"]["path"] = "/readyz".into()
    });
    assert!(has(&p, "asks /readyz"), "{p:?}");
    let p = broken(|o| {
        find_mut(o, "Deployment", "sprocket-api")["spec"]["template"]["spec"]["containers"][0]
            ["readinessProbe"]["httpGet"]["port"] = 9090.into()
    });
    assert!(has(&p, "is not where it listens"), "{p:?}");
    let p = broken(|o| {
        find_mut(o, "Deployment", "sprocket-projector")["spec"]["template"]["spec"]["containers"]
            [0]["securityContext"]["readOnlyRootFilesystem"] = false.into()
    });
    assert!(has(&p, "root filesystem is writable"), "{p:?}");
    let p = broken(|o| {
        find_mut(o, "Deployment", "sprocket-worker-render")["spec"]["template"]["spec"]
            ["containers"][0]["resources"]["requests"]["cpu"] = "100m".into()
    });
    assert!(has(&p, "render requests cpu"), "{p:?}");
    let p = broken(|o| {
        let r = find_mut(o, "PrometheusRule", "sprocket");
        r["spec"]["groups"][0]["rules"][0]["expr"] = "up == 0".into();
    });
    assert!(has(&p, "up is not a metric"), "{p:?}");
    let p = broken(|o| {
        o.retain(|x| {
            x["kind"] != "NetworkPolicy" || x["metadata"]["name"] != "sprocket-default-deny"
        })
    });
    assert!(has(&p, "no default-deny"), "{p:?}");
    let p = broken(|o| {
        o.push(
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "leak"}}),
        )
    });
    assert!(has(&p, "a Secret is committed"), "{p:?}");
    let dash = serde_json::json!({"panels": [{"title": "x", "targets": [{"expr": "sum(kube_deployment_status_replicas)"}]}]});
    assert!(has(
        &dashboard_problems(&dash),
        "kube_deployment_status_replicas"
    ));
}
