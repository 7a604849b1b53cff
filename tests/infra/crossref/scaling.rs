//! Scaling: resources sized per phase, and one KEDA ScaledObject per phase on a
//! real Deployment, saying exactly what `sprocket_server::scale::ScaledObject::for_phase`
//! says for the overlay's topic prefix and partition count (topics, consumer
//! groups, thresholds, flags, replica bounds): the Rust side is the one source
//! of truth, the YAML its written-out copy.

use std::collections::{BTreeMap, BTreeSet};

use sprocket_core::{Phase, Topics};
use sprocket_server::scale::{ScaledObject, Trigger};

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

    // ScaledObjects: one per phase, each on a real Deployment, and saying what
    // ScaledObject::for_phase says for this overlay's topic prefix and
    // partition count.
    let topics = Topics::new(prefix.as_str());
    let mut phases_seen = BTreeSet::new();
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
        let phase: Phase = phase.parse().expect("one of PHASES");
        let want = ScaledObject::for_phase(&topics, phase, partitions);
        let env = container_env(objs, c);
        match read_scaled_object(spec, &env) {
            Ok(got) => p.extend(differences(sn, &got, &want)),
            Err(e) => p.push(format!("ScaledObject {sn}: {e}")),
        }
    }
    for ph in PHASES {
        if !phases_seen.contains(ph) {
            p.push(format!("no ScaledObject for the {ph} workers"));
        }
    }
}

/// A rendered ScaledObject's spec read as KEDA reads it (its defaults: 0 and
/// 100 replicas); every trigger must be `kafka` on the workers' own brokers.
fn read_scaled_object(
    spec: &Value,
    env: &BTreeMap<String, String>,
) -> Result<ScaledObject, String> {
    let mut triggers = Vec::new();
    for (i, t) in spec["triggers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if t["type"] != "kafka" {
            return Err(format!("trigger {i} is not a kafka trigger"));
        }
        let mut meta = BTreeMap::new();
        for (k, v) in t["metadata"].as_object().into_iter().flatten() {
            let v = v
                .as_str()
                .ok_or_else(|| format!("trigger {i}: {k} is not a string"))?;
            meta.insert(k.clone(), v.to_string());
        }
        let brokers = match (
            meta.get("bootstrapServers"),
            meta.get("bootstrapServersFromEnv"),
        ) {
            (Some(b), None) => Some(b.clone()),
            (None, Some(var)) => env.get(var).cloned(),
            _ => None,
        };
        if brokers.is_none() || brokers.as_ref() != env.get("SPROCKET__KAFKA__BROKERS") {
            return Err(format!(
                "trigger {i}: brokers {brokers:?} are not the workers' SPROCKET__KAFKA__BROKERS"
            ));
        }
        triggers.push(Trigger::from_metadata(&meta).map_err(|e| format!("trigger {i}: {e}"))?);
    }
    Ok(ScaledObject {
        min_replica_count: spec["minReplicaCount"].as_i64().unwrap_or(0),
        max_replica_count: spec["maxReplicaCount"].as_i64().unwrap_or(100),
        triggers,
    })
}

/// Where a ScaledObject differs from what `ScaledObject::for_phase` says.
fn differences(sn: &str, got: &ScaledObject, want: &ScaledObject) -> Vec<String> {
    let mut p = Vec::new();
    let says = "ScaledObject::for_phase says";
    for (key, g, w) in [
        (
            "minReplicaCount",
            got.min_replica_count,
            want.min_replica_count,
        ),
        (
            "maxReplicaCount",
            got.max_replica_count,
            want.max_replica_count,
        ),
    ] {
        if g != w {
            p.push(format!(
                "ScaledObject {sn}: {key} {g}, but {says} {w} (max: the partition count)"
            ));
        }
    }
    let topics =
        |o: &ScaledObject| -> Vec<String> { o.triggers.iter().map(|t| t.topic.clone()).collect() };
    if got.triggers.len() != want.triggers.len() {
        p.push(format!(
            "ScaledObject {sn}: triggers on {:?}, but {says} {:?}",
            topics(got),
            topics(want)
        ));
        return p;
    }
    for (i, (g, w)) in got.triggers.iter().zip(&want.triggers).enumerate() {
        let (g, w) = (g.metadata(), w.metadata());
        for (key, wv) in &w {
            if g.get(key) != Some(wv) {
                p.push(format!(
                    "ScaledObject {sn}: trigger {i} {key} {:?}, but {says} {wv:?}",
                    g.get(key).map(String::as_str).unwrap_or_default()
                ));
            }
        }
    }
    p
}
