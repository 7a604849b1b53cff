//! Scaling: resources sized per phase, and one KEDA ScaledObject per phase on a real Deployment, topic, consumer group and partition count.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

/// Checks requests per phase and the ScaledObjects.
pub(super) fn check(c: &Ctx, p: &mut Vec<String>) {
    let objs = c.objs;
    let prefix = &c.prefix;
    let partitions = c.partitions;
    let deployments = &c.deployments;
    // Resources sized per phase: analyze and render need far more than ingest/archive.
    let req = |dn: &str, r: &str| {
        deployments
            .get(dn)
            .map(|d| {
                quantity(
                    &d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"][r],
                )
            })
            .unwrap_or(0.0)
    };
    for heavy in ["analyze", "render"] {
        for light in ["ingest", "archive"] {
            for r in ["cpu", "memory"] {
                let (h, l) = (
                    req(&format!("sprocket-worker-{heavy}"), r),
                    req(&format!("sprocket-worker-{light}"), r),
                );
                if h < 2.0 * l {
                    p.push(format!(
                        "{heavy} requests {r} {h}, not well above {light}'s {l}"
                    ));
                }
            }
        }
    }

    // ScaledObjects: one per phase, each on a real Deployment, topic and group.
    let mut phases_seen = BTreeSet::new();
    let mut lag: BTreeMap<String, f64> = BTreeMap::new();
    for s in of_kind(objs, "ScaledObject") {
        let sn = name(s);
        let spec = &s["spec"];
        let target = spec["scaleTargetRef"]["name"].as_str().unwrap_or_default();
        let kind = spec["scaleTargetRef"]["kind"]
            .as_str()
            .unwrap_or("Deployment");
        let Some(d) = deployments.get(target).filter(|_| kind == "Deployment") else {
            p.push(format!(
                "ScaledObject {sn}: target {kind} {target} does not exist"
            ));
            continue;
        };
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        let args = strs(&c["args"]);
        let phase = match args.as_slice() {
            ["worker", ph] if PHASES.contains(ph) => *ph,
            _ => {
                p.push(format!(
                    "ScaledObject {sn}: target {target} is not a phase worker ({args:?})"
                ));
                continue;
            }
        };
        phases_seen.insert(phase);
        if d["spec"]["replicas"].is_number() {
            p.push(format!(
                "{target}: sets spec.replicas although KEDA scales it"
            ));
        }
        if spec["minReplicaCount"] != 0 {
            p.push(format!("ScaledObject {sn}: does not scale to zero"));
        }
        if spec["maxReplicaCount"].as_i64() != Some(partitions) {
            p.push(format!(
                "ScaledObject {sn}: maxReplicaCount {} is not the partition count {partitions}",
                spec["maxReplicaCount"]
            ));
        }
        let triggers = spec["triggers"].as_array().cloned().unwrap_or_default();
        if triggers.len() != 1 || triggers[0]["type"] != "kafka" {
            p.push(format!(
                "ScaledObject {sn}: expected exactly one kafka trigger"
            ));
            continue;
        }
        let m = &triggers[0]["metadata"];
        let get = |k: &str| m[k].as_str().unwrap_or_default().to_string();
        if get("topic") != format!("{prefix}{phase}") {
            p.push(format!(
                "ScaledObject {sn}: topic {:?} is not {prefix}{phase}",
                get("topic")
            ));
        }
        if get("consumerGroup") != format!("sprocket-{phase}") {
            p.push(format!(
                "ScaledObject {sn}: consumer group {:?} is not sprocket-{phase}",
                get("consumerGroup")
            ));
        }
        let env = container_env(objs, c);
        let brokers = match (
            m["bootstrapServers"].as_str(),
            m["bootstrapServersFromEnv"].as_str(),
        ) {
            (Some(b), None) => Some(b.to_string()),
            (None, Some(var)) => env.get(var).cloned(),
            _ => None,
        };
        if brokers.as_deref() != env.get("SPROCKET__KAFKA__BROKERS").map(String::as_str)
            || brokers.is_none()
        {
            p.push(format!("ScaledObject {sn}: brokers {brokers:?} are not the workers' SPROCKET__KAFKA__BROKERS"));
        }
        if get("allowIdleConsumers") != "false" {
            p.push(format!(
                "ScaledObject {sn}: allowIdleConsumers is not false"
            ));
        }
        if get("offsetResetPolicy") != "earliest" {
            p.push(format!(
                "ScaledObject {sn}: offsetResetPolicy is not earliest"
            ));
        }
        // Scaled to zero, a worker only wakes when lag exceeds the activation
        // threshold: anything above 0 would strand a small backlog.
        if get("activationLagThreshold") != "0" {
            p.push(format!(
                "ScaledObject {sn}: activationLagThreshold is not 0"
            ));
        }
        match get("lagThreshold").parse::<f64>() {
            Ok(v) if v >= 1.0 => {
                lag.insert(phase.to_string(), v);
            }
            _ => p.push(format!(
                "ScaledObject {sn}: lagThreshold {:?} is not a number ≥ 1",
                get("lagThreshold")
            )),
        }
    }
    for ph in PHASES {
        if !phases_seen.contains(ph) {
            p.push(format!("no ScaledObject for the {ph} workers"));
        }
    }
    if lag.len() == 4 {
        if lag["render"] != 1.0 {
            p.push("one waiting render is worth a replica: render lagThreshold must be 1".into());
        }
        if lag["analyze"] > 2.0 {
            p.push("analyze lagThreshold must be 1 or 2".into());
        }
        for cheap in ["ingest", "archive"] {
            if lag[cheap] <= lag["analyze"] {
                p.push(format!(
                    "{cheap} items are cheap: its lagThreshold must exceed analyze's"
                ));
            }
        }
    }
}
