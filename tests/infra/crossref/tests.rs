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

pub(super) fn broken(mutate: impl FnOnce(&mut Vec<Value>)) -> Vec<String> {
    let mut objs = overlay("dev");
    mutate(&mut objs);
    problems(&objs)
}

pub(super) fn find_mut<'a>(objs: &'a mut [Value], kind: &str, n: &str) -> &'a mut Value {
    objs.iter_mut()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == n)
        .unwrap_or_else(|| panic!("no {kind} {n}"))
}

pub(super) fn has(problems: &[String], needle: &str) -> bool {
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
    assert!(
        has(
            &p,
            "topic \"sprocket.render\", but ScaledObject::for_phase says \"sprocket.analyze\""
        ),
        "{p:?}"
    );
    let p = broken(|o| {
        find_mut(o, "ScaledObject", "sprocket-worker-ingest")["spec"]["triggers"][0]["metadata"]
            ["consumerGroup"] = "ingest".into()
    });
    assert!(has(&p, "consumerGroup \"ingest\""), "{p:?}");
    let p = broken(|o| {
        find_mut(o, "ScaledObject", "sprocket-worker-archive")["spec"]["maxReplicaCount"] =
            50.into()
    });
    assert!(has(&p, "maxReplicaCount 50, but"), "{p:?}");
    let p = broken(|o| {
        find_mut(o, "ScaledObject", "sprocket-worker-render")["spec"]["triggers"][0]["metadata"]
            ["lagThreshold"] = "10".into()
    });
    assert!(
        has(
            &p,
            "lagThreshold \"10\", but ScaledObject::for_phase says \"1\""
        ),
        "{p:?}"
    );
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
        let r = find_mut(o, "PrometheusRule", "sprocket");
        r["spec"]["groups"][0]["rules"][0]["expr"] =
            "sum(rate(sprocket_kafka_transactions_total{outcome=\"abort\"}[5m])) > 0".into();
    });
    assert!(has(&p, "outcome is one of"), "{p:?}");
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

/// Sets a worker's shutdown grace, and its pod's termination period if given.
fn shutdown(objs: &mut [Value], phase: &str, grace: &str, termination: Option<i64>) {
    let spec = &mut find_mut(objs, "Deployment", &format!("sprocket-worker-{phase}"))["spec"]
        ["template"]["spec"];
    if let Some(t) = termination {
        spec["terminationGracePeriodSeconds"] = t.into();
    }
    let e = spec["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["name"] == "SPROCKET__WORKER__SHUTDOWN_GRACE_S")
        .unwrap_or_else(|| panic!("the {phase} workers set no shutdown grace"));
    e["value"] = grace.into();
}

fn trigger_meta<'a>(objs: &'a mut [Value], so: &str, i: usize) -> &'a mut Value {
    &mut find_mut(objs, "ScaledObject", so)["spec"]["triggers"][i]["metadata"]
}

#[test]
fn scaling_and_shutdown_breakage_is_caught() {
    // Another topic prefix: the groups and topics must follow it.
    let p = broken(|o| {
        let cm = o
            .iter_mut()
            .find(|x| x["kind"] == "ConfigMap" && name(x).starts_with("sprocket-config"))
            .unwrap();
        cm["data"]["SPROCKET__KAFKA__TOPIC_PREFIX"] = "staging.sprocket.".into();
    });
    assert!(
        has(
            &p,
            "consumerGroup \"sprocket-render\", but ScaledObject::for_phase says \"staging.sprocket-render\""
        ),
        "{p:?}"
    );
    assert!(has(&p, "says \"staging.sprocket.ingest.retry\""), "{p:?}");
    let p = broken(|o| {
        find_mut(o, "ScaledObject", "sprocket-worker-render")["spec"]["triggers"]
            .as_array_mut()
            .unwrap()
            .pop();
    });
    assert!(has(&p, "sprocket-worker-render: triggers on"), "{p:?}");
    let p = broken(|o| {
        trigger_meta(o, "sprocket-worker-analyze", 1)["excludePersistentLag"] = "true".into()
    });
    assert!(has(&p, "trigger 1 excludePersistentLag \"true\""), "{p:?}");
    let p = broken(|o| trigger_meta(o, "sprocket-worker-archive", 0)["lagThreshold"] = "0".into());
    assert!(has(&p, "lagThreshold must be a positive number"), "{p:?}");
    let p = broken(|o| {
        trigger_meta(o, "sprocket-worker-ingest", 1)["bootstrapServers"] = "elsewhere:9092".into()
    });
    assert!(
        has(&p, "are not the workers' SPROCKET__KAFKA__BROKERS"),
        "{p:?}"
    );
    // Shutdown: grace inside the termination period, longer for long phases.
    let p = broken(|o| shutdown(o, "analyze", "130", None));
    assert!(
        has(&p, "terminationGracePeriodSeconds 150 leaves under 30 s"),
        "{p:?}"
    );
    let p = broken(|o| shutdown(o, "ingest", "240", Some(270)));
    assert!(
        has(
            &p,
            "render's shutdown grace 240 s is not longer than ingest's 240 s"
        ),
        "{p:?}"
    );
    // The setup Job's `topics create` needs the registry.
    let p = broken(|o| {
        let np = find_mut(o, "NetworkPolicy", "sprocket-setup");
        for rule in np["spec"]["egress"].as_array_mut().unwrap() {
            if let Some(ports) = rule["ports"].as_array_mut() {
                ports.retain(|x| x["port"] != 8081);
            }
        }
    });
    assert!(
        has(
            &p,
            "Job sprocket-setup/topics: no NetworkPolicy lets it reach the schema registry on 8081"
        ),
        "{p:?}"
    );
}

#[test]
fn kafka_authentication_breakage_is_caught() {
    // A worker authenticating as another role's principal.
    let p = broken(|o| {
        let d = find_mut(o, "Deployment", "sprocket-worker-render");
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .unwrap()
        {
            if e["name"] == "SPROCKET__KAFKA__PROPERTIES__SASL__USERNAME" {
                e["value"] = "api".into();
            }
        }
    });
    assert!(
        has(&p, "sasl.username Some(\"api\"), not its role render"),
        "{p:?}"
    );
    // Plaintext Kafka for every process.
    let p = broken(|o| {
        let c = o
            .iter_mut()
            .find(|x| x["kind"] == "ConfigMap" && name(x).starts_with("sprocket-config"))
            .unwrap();
        c["data"]["SPROCKET__KAFKA__PROPERTIES__SECURITY__PROTOCOL"] = "PLAINTEXT".into();
    });
    assert!(
        has(&p, "sprocket-api/sprocket: security.protocol is not SASL_*"),
        "{p:?}"
    );
    // A trigger KEDA cannot authenticate.
    let p = broken(|o| {
        find_mut(o, "ScaledObject", "sprocket-worker-analyze")["spec"]["triggers"][1]
            .as_object_mut()
            .unwrap()
            .remove("authenticationRef");
    });
    assert!(has(&p, "trigger 1 has no authenticationRef"), "{p:?}");
    // A role left without its password file in the ACL Job.
    let p = broken(|o| {
        find_mut(o, "Job", "sprocket-setup")["spec"]["template"]["spec"]["volumes"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|v| v["name"] == "kafka-users")
            .unwrap()["projected"]["sources"][1]["secret"]["items"] = serde_json::json!([]);
    });
    assert!(has(&p, "password files"), "{p:?}");
}

/// The internet egress rule of a NetworkPolicy (its ipBlock of 0.0.0.0/0).
fn internet_rule<'a>(objs: &'a mut [Value], np: &str) -> &'a mut Value {
    find_mut(objs, "NetworkPolicy", np)["spec"]["egress"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["to"][0]["ipBlock"]["cidr"] == "0.0.0.0/0")
        .unwrap_or_else(|| panic!("{np} has no egress to 0.0.0.0/0"))
}

#[test]
fn webhook_sender_breakage_is_caught() {
    // Gone, or run as another command.
    let p =
        broken(|o| o.retain(|x| !(x["kind"] == "Deployment" && name(x) == "sprocket-webhooks")));
    assert!(has(&p, "no Deployment sprocket-webhooks"), "{p:?}");
    let p = broken(|o| {
        find_mut(o, "Deployment", "sprocket-webhooks")["spec"]["template"]["spec"]["containers"]
            [0]["args"] = serde_json::json!(["projector"])
    });
    assert!(has(&p, "sprocket-webhooks: args [\"projector\"]"), "{p:?}");
    // Another role's principal, or its password from elsewhere.
    let p = broken(|o| {
        let d = find_mut(o, "Deployment", "sprocket-webhooks");
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array_mut()
            .unwrap()
        {
            if e["name"] == "SPROCKET__KAFKA__PROPERTIES__SASL__USERNAME" {
                e["value"] = "projector".into();
            }
            if e["name"] == "SPROCKET__KAFKA__PROPERTIES__SASL__PASSWORD" {
                e["valueFrom"]["secretKeyRef"]["key"] = "kafka-password-projector".into();
            }
        }
    });
    assert!(
        has(
            &p,
            "sasl.username Some(\"projector\"), not its role webhooks"
        ),
        "{p:?}"
    );
    assert!(
        has(&p, "not sprocket-secrets/kafka-password-webhooks"),
        "{p:?}"
    );
    // Its hardening, disruption budget and metrics.
    let p = broken(|o| {
        find_mut(o, "Deployment", "sprocket-webhooks")["spec"]["template"]["spec"]
            ["securityContext"]["runAsNonRoot"] = false.into()
    });
    assert!(
        has(&p, "Deployment sprocket-webhooks: runAsNonRoot is not set"),
        "{p:?}"
    );
    let p = broken(|o| {
        o.retain(|x| !(x["kind"] == "PodDisruptionBudget" && name(x) == "sprocket-webhooks"))
    });
    assert!(
        has(&p, "sprocket-webhooks: no PodDisruptionBudget"),
        "{p:?}"
    );
    let p = broken(|o| {
        o.retain(|x| !(x["kind"] == "Service" && name(x) == "sprocket-webhooks-metrics"))
    });
    assert!(has(&p, "sprocket-webhooks: no metrics Service"), "{p:?}");
    // Kafka and the registry out of reach.
    let p =
        broken(|o| o.retain(|x| !(x["kind"] == "NetworkPolicy" && name(x) == "sprocket-webhooks")));
    assert!(
        has(
            &p,
            "Deployment sprocket-webhooks/sprocket: no NetworkPolicy lets it reach Kafka"
        ),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "sprocket-webhooks: no NetworkPolicy lets it reach webhook URLs on port 443"
        ),
        "{p:?}"
    );
}

#[test]
fn internet_egress_breakage_is_caught() {
    // The webhook sender: both http(s) ports, loopback and CGNAT closed too.
    let p = broken(|o| {
        internet_rule(o, "sprocket-webhooks")["ports"]
            .as_array_mut()
            .unwrap()
            .retain(|x| x["port"] != 80)
    });
    assert!(
        has(
            &p,
            "sprocket-webhooks: no NetworkPolicy lets it reach webhook URLs on port 80"
        ),
        "{p:?}"
    );
    let p = broken(|o| {
        internet_rule(o, "sprocket-webhooks")["to"][0]["ipBlock"]["except"]
            .as_array_mut()
            .unwrap()
            .retain(|x| x != "100.64.0.0/10")
    });
    assert!(
        has(
            &p,
            "sprocket-webhooks: NetworkPolicy sprocket-webhooks lets it reach 100.64.0.0/10"
        ),
        "{p:?}"
    );
    // Any policy: never the metadata endpoint's range, never a port but http(s).
    let p = broken(|o| {
        internet_rule(o, "sprocket-webhooks")["to"][0]["ipBlock"]["except"]
            .as_array_mut()
            .unwrap()
            .retain(|x| x != "169.254.0.0/16")
    });
    assert!(
        has(
            &p,
            "NetworkPolicy sprocket-webhooks: egress to 0.0.0.0/0 does not except 169.254.0.0/16"
        ),
        "{p:?}"
    );
    let p = broken(|o| {
        internet_rule(o, "sprocket-api")["ports"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"protocol": "TCP", "port": 5432}))
    });
    assert!(
        has(
            &p,
            "NetworkPolicy sprocket-api: egress to 0.0.0.0/0 on port 5432, not http(s)"
        ),
        "{p:?}"
    );
    let p = broken(|o| {
        internet_rule(o, "sprocket-worker-ingest")
            .as_object_mut()
            .unwrap()
            .remove("ports");
    });
    assert!(
        has(
            &p,
            "NetworkPolicy sprocket-worker-ingest: egress to 0.0.0.0/0 on every port"
        ),
        "{p:?}"
    );
    let p = broken(|o| {
        find_mut(o, "NetworkPolicy", "sprocket-webhooks")["spec"]["egress"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"ports": [{"protocol": "TCP", "port": 443}]}))
    });
    assert!(
        has(
            &p,
            "NetworkPolicy sprocket-webhooks: an egress rule without `to` reaches every address"
        ),
        "{p:?}"
    );
}
