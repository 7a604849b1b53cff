//! Pod templates: the expected Deployments and their args, security contexts, resources, images, probes, shutdown grace, PDBs, metrics Services and network policies (Kafka and the registry reachable; the internet only on 80/443 and never its private ranges).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sprocket_platform::config::Config;

use super::*;

/// Checks every Deployment and Job pod template.
pub(super) fn check(c: &Ctx, p: &mut Vec<String>) {
    let objs = c.objs;
    let api_port = c.api_port;
    let metrics_port = c.metrics_port;
    let deployments = &c.deployments;
    // Deployments: the expected seven, their args, probes, security, shutdown.
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    expected.insert("sprocket-api".into(), vec!["api".into()]);
    expected.insert("sprocket-projector".into(), vec!["projector".into()]);
    expected.insert("sprocket-webhooks".into(), vec!["webhooks".into()]);
    expected.insert("sprocket-janitor".into(), vec!["janitor".into()]);
    for ph in PHASES {
        expected.insert(
            format!("sprocket-worker-{ph}"),
            vec!["worker".into(), ph.into()],
        );
    }
    for (dn, args) in &expected {
        let Some(d) = deployments.get(dn.as_str()) else {
            p.push(format!("no Deployment {dn}"));
            continue;
        };
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        let got: Vec<&str> = strs(&c["args"]);
        if got != args.iter().map(String::as_str).collect::<Vec<_>>() {
            p.push(format!("{dn}: args {got:?}, expected {args:?}"));
        }
    }
    let mut pod_templates: Vec<(String, &Value)> = of_kind(objs, "Deployment")
        .map(|d| (format!("Deployment {}", name(d)), &d["spec"]["template"]))
        .collect();
    pod_templates
        .extend(of_kind(objs, "Job").map(|j| (format!("Job {}", name(j)), &j["spec"]["template"])));
    for (what, t) in &pod_templates {
        let spec = &t["spec"];
        let psc = &spec["securityContext"];
        if psc["runAsNonRoot"] != true {
            p.push(format!("{what}: runAsNonRoot is not set"));
        }
        if psc["seccompProfile"]["type"] != "RuntimeDefault" {
            p.push(format!("{what}: seccompProfile is not RuntimeDefault"));
        }
        if spec["automountServiceAccountToken"] != false {
            p.push(format!("{what}: mounts a service account token"));
        }
        let containers = spec["containers"].as_array().cloned().unwrap_or_default();
        let inits = spec["initContainers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for c in containers.iter().chain(inits.iter()) {
            let cn = c["name"].as_str().unwrap_or("?");
            let sc = &c["securityContext"];
            if sc["readOnlyRootFilesystem"] != true {
                p.push(format!("{what}/{cn}: root filesystem is writable"));
            }
            if sc["allowPrivilegeEscalation"] != false {
                p.push(format!("{what}/{cn}: allows privilege escalation"));
            }
            if strs(&sc["capabilities"]["drop"]) != ["ALL"] {
                p.push(format!("{what}/{cn}: does not drop ALL capabilities"));
            }
            for part in ["requests", "limits"] {
                for r in ["cpu", "memory"] {
                    if c["resources"][part][r].is_null() {
                        p.push(format!("{what}/{cn}: no {r} {part}"));
                    }
                }
            }
            let image = c["image"].as_str().unwrap_or_default();
            let tag = image
                .rsplit_once(':')
                .map(|(_, t)| t)
                .filter(|t| !t.contains('/'));
            if tag.is_none() || tag == Some("latest") {
                p.push(format!("{what}/{cn}: image {image:?} has no pinned tag"));
            }
            // /tmp must be writable with a read-only root.
            let mounts: Vec<&str> = c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["mountPath"].as_str())
                .collect();
            if !mounts.contains(&"/tmp") {
                p.push(format!("{what}/{cn}: no writable /tmp"));
            }
            for e in c["env"].as_array().into_iter().flatten() {
                if e["value"]
                    .as_str()
                    .is_some_and(|v| v.contains("://") && v.contains('@'))
                {
                    p.push(format!("{what}/{cn}: credentials in a literal env value"));
                }
            }
        }
    }
    for d in of_kind(objs, "Deployment") {
        let dn = name(d);
        let spec = &d["spec"]["template"]["spec"];
        let c = &spec["containers"][0];
        if strs(&c["args"]).first() == Some(&"worker") {
            shutdown(dn, spec, &container_env(objs, c), p);
        }
        let is_api = strs(&c["args"]).first() == Some(&"api");
        let (paths, port): (&[&str], Option<i64>) = if is_api {
            (&API_PROBE_PATHS, api_port)
        } else {
            (&METRICS_PROBE_PATHS, metrics_port)
        };
        let ports: BTreeMap<&str, i64> = c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| Some((x["name"].as_str()?, x["containerPort"].as_i64()?)))
            .collect();
        let mut probes = 0;
        for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
            let h = &c[probe]["httpGet"];
            if h.is_null() {
                continue;
            }
            probes += 1;
            let path = h["path"].as_str().unwrap_or_default();
            if !paths.contains(&path) {
                p.push(format!(
                    "{dn}: {probe} asks {path}, which the process does not serve"
                ));
            }
            let probe_port = match &h["port"] {
                Value::String(n) => ports.get(n.as_str()).copied(),
                v => v.as_i64(),
            };
            if probe_port.is_none() || probe_port != port {
                p.push(format!(
                    "{dn}: {probe} port {probe_port:?} is not where it listens ({port:?})"
                ));
            }
        }
        if c["livenessProbe"].is_null() {
            p.push(format!("{dn}: no liveness probe"));
        }
        if is_api && c["readinessProbe"]["httpGet"]["path"] != "/readyz" {
            p.push(format!("{dn}: readiness is not /readyz"));
        }
        if probes == 0 {
            p.push(format!("{dn}: no probes"));
        }
        for e in c["env"].as_array().into_iter().flatten() {
            if let Some(s) = e["valueFrom"]["secretKeyRef"]["name"].as_str() {
                if s != "sprocket-secrets" {
                    p.push(format!("{dn}: secret {s} is not sprocket-secrets"));
                }
            }
        }
        let labels = &d["spec"]["template"]["metadata"]["labels"];
        if !of_kind(objs, "PodDisruptionBudget").any(|b| selects(&b["spec"]["selector"], labels)) {
            p.push(format!("{dn}: no PodDisruptionBudget"));
        }
        if !of_kind(objs, "Service").any(|s| {
            s["metadata"]["labels"]["sprocket.dev/metrics"] == "true"
                && selects(&s["spec"]["selector"], labels)
        }) {
            p.push(format!("{dn}: no metrics Service"));
        }
        // Network: some policy denies by default, some allows DNS.
        let policies: Vec<&Value> = of_kind(objs, "NetworkPolicy")
            .filter(|n| selects(&n["spec"]["podSelector"], labels))
            .collect();
        if !policies.iter().any(|n| {
            n["spec"]["ingress"].is_null()
                && n["spec"]["egress"].is_null()
                && strs(&n["spec"]["policyTypes"]) == ["Ingress", "Egress"]
        }) {
            p.push(format!("{dn}: no default-deny NetworkPolicy"));
        }
        if !policies.iter().any(|n| {
            n["spec"]["egress"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| {
                    e["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|x| x["port"] == 53)
                })
        }) {
            p.push(format!("{dn}: DNS egress not allowed"));
        }
    }
    if of_kind(objs, "Secret").next().is_some() {
        p.push("a Secret is committed: secrets are created outside the repository".into());
    }
}

/// A worker's shutdown grace, from its environment (or the default).
fn shutdown_grace_s(env: &BTreeMap<String, String>) -> i64 {
    env.get("SPROCKET__WORKER__SHUTDOWN_GRACE_S")
        .and_then(|v| v.parse().ok())
        .unwrap_or(Config::default().worker.shutdown_grace_s as i64)
}

/// A worker's shutdown grace fits inside its pod's termination period with
/// room for the final commit. (It need not stay under max.poll.interval.ms:
/// the worker keeps polling, partitions paused, through the grace.)
fn shutdown(dn: &str, spec: &Value, env: &BTreeMap<String, String>, p: &mut Vec<String>) {
    let termination = spec["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
    let grace = shutdown_grace_s(env);
    if grace + COMMIT_MARGIN_S > termination {
        p.push(format!(
            "{dn}: terminationGracePeriodSeconds {termination} leaves under {COMMIT_MARGIN_S} s \
             after the {grace} s shutdown grace for the final commit"
        ));
    }
}

/// Long phases get a longer shutdown grace than short ones.
pub(super) fn graces_sized_per_phase(c: &Ctx, p: &mut Vec<String>) {
    let grace = |ph: &str| {
        c.deployments
            .get(format!("sprocket-worker-{ph}").as_str())
            .map(|d| {
                shutdown_grace_s(&container_env(
                    c.objs,
                    &d["spec"]["template"]["spec"]["containers"][0],
                ))
            })
    };
    for long in ["analyze", "render"] {
        for short in ["ingest", "archive"] {
            if let (Some(l), Some(s)) = (grace(long), grace(short)) {
                if l <= s {
                    p.push(format!(
                        "{long}'s shutdown grace {l} s is not longer than {short}'s {s} s"
                    ));
                }
            }
        }
    }
}

/// Every container reaches Kafka and the schema registry through the
/// NetworkPolicies that select its pod (all but `sprocket migrate` need both:
/// connecting the bus talks to the registry).
pub(super) fn reachable(c: &Ctx, p: &mut Vec<String>) {
    let mut templates: Vec<(String, &Value)> = of_kind(c.objs, "Deployment")
        .chain(of_kind(c.objs, "Job"))
        .map(|o| {
            (
                format!("{} {}", o["kind"].as_str().unwrap_or("?"), name(o)),
                &o["spec"]["template"],
            )
        })
        .collect();
    templates.sort_by(|a, b| a.0.cmp(&b.0));
    for (what, t) in templates {
        let labels = &t["metadata"]["labels"];
        let open: BTreeSet<i64> = of_kind(c.objs, "NetworkPolicy")
            .filter(|n| selects(&n["spec"]["podSelector"], labels))
            .flat_map(|n| n["spec"]["egress"].as_array().cloned().unwrap_or_default())
            .flat_map(|e| e["ports"].as_array().cloned().unwrap_or_default())
            .filter_map(|port| port["port"].as_i64())
            .collect();
        for ctr in all_containers(&t["spec"]) {
            if strs(&ctr["args"]) == ["migrate"] {
                continue;
            }
            let env = container_env(c.objs, ctr);
            let kafka = env
                .get("SPROCKET__KAFKA__BROKERS")
                .and_then(|b| b.split(',').next().and_then(port_of));
            let registry = env
                .get("SPROCKET__REGISTRY__URL")
                .and_then(|u| url::Url::parse(u).ok()?.port_or_known_default())
                .map(i64::from);
            for (dep, port) in [("Kafka", kafka), ("the schema registry", registry)] {
                match port {
                    Some(port) if open.contains(&port) => {}
                    Some(port) => p.push(format!(
                        "{what}/{}: no NetworkPolicy lets it reach {dep} on {port}",
                        ctr["name"].as_str().unwrap_or("?")
                    )),
                    None => p.push(format!("{what}: no address for {dep}")),
                }
            }
        }
    }
}

/// Ranges no egress rule to the internet (an ipBlock of `…/0`) may open:
/// private networks, and link-local, where clouds serve instance metadata.
const INTERNAL: [&str; 4] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
];
/// Ranges also closed to a process that connects wherever tenants say (the
/// webhook sender): loopback and carrier-grade NAT.
const INTERNAL_FOR_TENANT_URLS: [&str; 2] = ["127.0.0.0/8", "100.64.0.0/10"];
/// The ports the internet is reached on: http and https.
const INTERNET_PORTS: [i64; 2] = [80, 443];

/// The egress rules of NetworkPolicies as (policy, rule), those of the
/// policies selecting `labels` only when given.
fn egress_rules<'a>(c: &Ctx<'a>, labels: Option<&Value>) -> Vec<(&'a str, &'a Value)> {
    of_kind(c.objs, "NetworkPolicy")
        .filter(|n| labels.is_none_or(|l| selects(&n["spec"]["podSelector"], l)))
        .flat_map(|n| {
            n["spec"]["egress"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |r| (name(n), r))
        })
        .collect()
}

/// A rule's internet peers (ipBlocks of a `…/0`).
fn internet_peers(rule: &Value) -> impl Iterator<Item = &Value> {
    rule["to"].as_array().into_iter().flatten().filter(|peer| {
        peer["ipBlock"]["cidr"]
            .as_str()
            .is_some_and(|c| c.ends_with("/0"))
    })
}

/// Egress reaches the internet only on http(s) ports and never its private and
/// link-local ranges; the webhook sender reaches it on both ports, with
/// loopback and carrier-grade NAT closed as well (defence in depth beside
/// `webhooks.allow_private`).
pub(super) fn internet_egress(c: &Ctx, p: &mut Vec<String>) {
    for (np, rule) in egress_rules(c, None) {
        if rule["to"].as_array().is_none_or(Vec::is_empty) {
            p.push(format!(
                "NetworkPolicy {np}: an egress rule without `to` reaches every address"
            ));
        }
        for peer in internet_peers(rule) {
            let cidr = peer["ipBlock"]["cidr"].as_str().unwrap_or_default();
            let except = strs(&peer["ipBlock"]["except"]);
            for r in INTERNAL.iter().filter(|r| !except.contains(r)) {
                p.push(format!(
                    "NetworkPolicy {np}: egress to {cidr} does not except {r}"
                ));
            }
            let ports = rule["ports"].as_array().cloned().unwrap_or_default();
            if ports.is_empty() {
                p.push(format!(
                    "NetworkPolicy {np}: egress to {cidr} on every port"
                ));
            }
            for port in ports {
                if !port["port"]
                    .as_i64()
                    .is_some_and(|n| INTERNET_PORTS.contains(&n))
                {
                    p.push(format!(
                        "NetworkPolicy {np}: egress to {cidr} on port {}, not http(s)",
                        port["port"]
                    ));
                }
            }
        }
    }
    for (dn, d) in &c.deployments {
        let spec = &d["spec"]["template"];
        if strs(&spec["spec"]["containers"][0]["args"]) != ["webhooks"] {
            continue;
        }
        let mut open = BTreeSet::new();
        for (np, rule) in egress_rules(c, Some(&spec["metadata"]["labels"])) {
            for peer in internet_peers(rule) {
                let except = strs(&peer["ipBlock"]["except"]);
                for r in INTERNAL_FOR_TENANT_URLS
                    .iter()
                    .filter(|r| !except.contains(r))
                {
                    p.push(format!(
                        "{dn}: NetworkPolicy {np} lets it reach {r} (webhook URLs are the tenants')"
                    ));
                }
                open.extend(
                    rule["ports"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|x| x["port"].as_i64()),
                );
            }
        }
        for port in INTERNET_PORTS.iter().filter(|x| !open.contains(x)) {
            p.push(format!(
                "{dn}: no NetworkPolicy lets it reach webhook URLs on port {port}"
            ));
        }
    }
}
