//! Cross-references inside each rendered overlay: ScaledObjects ↔ Deployments,
//! topics, consumer groups and partitions; probes ↔ what each process serves;
//! alerts and dashboard queries ↔ exported metrics; security and shutdown
//! settings on every pod.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::promql::unknown_metrics;
use crate::render::{overlay, OVERLAYS};

const PHASES: [&str; 4] = ["ingest", "analyze", "render", "archive"];
/// A worker's shutdown grace: it finishes or abandons in-flight work within it.
const SHUTDOWN_GRACE_S: i64 = 25;
/// Time between the grace running out and SIGKILL, for the process to exit.
const KILL_MARGIN_S: i64 = 5;
/// Paths the API serves for probes (engine/src/api/mod.rs).
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

    // Deployments: the expected six, their args, probes, security, shutdown.
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    expected.insert("sprocket-api".into(), vec!["api".into()]);
    expected.insert("sprocket-projector".into(), vec!["projector".into()]);
    for ph in PHASES {
        expected.insert(
            format!("sprocket-worker-{ph}"),
            vec!["worker".into(), ph.into()],
        );
    }
    let deployments: BTreeMap<&str, &Value> =
        of_kind(objs, "Deployment").map(|d| (name(d), d)).collect();
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
        let grace = spec["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
        if grace < SHUTDOWN_GRACE_S + KILL_MARGIN_S {
            p.push(format!(
                "{dn}: terminationGracePeriodSeconds {grace} < {SHUTDOWN_GRACE_S} s shutdown grace + {KILL_MARGIN_S} s"
            ));
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
