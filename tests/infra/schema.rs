//! Validation against the JSON Schemas vendored under `infra/schemas/`:
//! Kubernetes (kubernetes-validate's "local-strict" schemas), KEDA and the
//! Prometheus Operator CRDs (strict), and the compose specification.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::render::{overlay, OVERLAYS};
use crate::root;

fn schemas() -> PathBuf {
    root().join("infra/schemas")
}

fn read_json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The schema file for an object's apiVersion and kind.
fn schema_file(api_version: &str, kind: &str) -> Option<&'static str> {
    Some(match (api_version, kind) {
        ("v1", "ConfigMap") => "kubernetes/configmap-v1.json",
        ("v1", "Service") => "kubernetes/service-v1.json",
        ("v1", "ServiceAccount") => "kubernetes/serviceaccount-v1.json",
        ("apps/v1", "Deployment") => "kubernetes/deployment-apps-v1.json",
        ("batch/v1", "Job") => "kubernetes/job-batch-v1.json",
        ("policy/v1", "PodDisruptionBudget") => "kubernetes/poddisruptionbudget-policy-v1.json",
        ("networking.k8s.io/v1", "NetworkPolicy") => "kubernetes/networkpolicy-networking-v1.json",
        ("keda.sh/v1alpha1", "ScaledObject") => "crds/scaledobject-keda-v1alpha1.json",
        ("keda.sh/v1alpha1", "TriggerAuthentication") => {
            "crds/triggerauthentication-keda-v1alpha1.json"
        }
        ("monitoring.coreos.com/v1", "ServiceMonitor") => "crds/servicemonitor-monitoring-v1.json",
        ("monitoring.coreos.com/v1", "PrometheusRule") => "crds/prometheusrule-monitoring-v1.json",
        _ => return None,
    })
}

/// A Kubernetes kind's schema refers to `/api/_definitions.json#/$defs/…`; the
/// validator gets one self-contained document: those definitions embedded as
/// `$defs` and the references pointed at them.
fn self_contained(mut schema: Value, defs: &Value) -> Value {
    fn rewrite(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get_mut("$ref") {
                    if let Some(rest) = r.strip_prefix("/api/_definitions.json") {
                        *r = rest.to_string();
                    }
                }
                m.values_mut().for_each(rewrite);
            }
            Value::Array(a) => a.iter_mut().for_each(rewrite),
            _ => {}
        }
    }
    rewrite(&mut schema);
    schema["$defs"] = defs["$defs"].clone();
    schema
}

type Validators = HashMap<&'static str, jsonschema::Validator>;

fn validators() -> &'static Validators {
    static V: OnceLock<Validators> = OnceLock::new();
    V.get_or_init(|| {
        let defs = read_json(schemas().join("kubernetes/_definitions.json"));
        let mut out = HashMap::new();
        for (av, kind) in [
            ("v1", "ConfigMap"),
            ("v1", "Service"),
            ("v1", "ServiceAccount"),
            ("apps/v1", "Deployment"),
            ("batch/v1", "Job"),
            ("policy/v1", "PodDisruptionBudget"),
            ("networking.k8s.io/v1", "NetworkPolicy"),
            ("keda.sh/v1alpha1", "ScaledObject"),
            ("keda.sh/v1alpha1", "TriggerAuthentication"),
            ("monitoring.coreos.com/v1", "ServiceMonitor"),
            ("monitoring.coreos.com/v1", "PrometheusRule"),
        ] {
            let file = schema_file(av, kind).unwrap();
            let mut schema = read_json(schemas().join(file));
            if file.starts_with("kubernetes/") {
                schema = self_contained(schema, &defs);
            }
            let v = jsonschema::validator_for(&schema)
                .unwrap_or_else(|e| panic!("{file} is not a usable schema: {e}"));
            out.insert(file, v);
        }
        out
    })
}

/// Every way `obj` breaks its kind's schema; an object of a kind without a
/// vendored schema is itself a failure.
pub fn k8s_errors(obj: &Value) -> Vec<String> {
    let av = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"].as_str().unwrap_or("?");
    let Some(file) = schema_file(av, kind) else {
        return vec![format!(
            "{av} {kind} {name}: no schema vendored for this kind"
        )];
    };
    validators()[file]
        .iter_errors(obj)
        .map(|e| format!("{kind} {name}: {} at {}", e, e.instance_path()))
        .collect()
}

fn compose_validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema = read_json(schemas().join("compose/compose-spec.json"));
        jsonschema::validator_for(&schema).expect("the compose-spec schema compiles")
    })
}

/// Every way a compose file breaks the compose specification.
pub fn compose_errors(doc: &Value) -> Vec<String> {
    compose_validator()
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn vendored_schemas_match_their_checksums() {
    let sums = std::fs::read_to_string(schemas().join("SHA256SUMS")).expect("SHA256SUMS");
    let mut seen = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (want, file) = line.split_once("  ").expect("sha256sum format");
        let bytes = std::fs::read(schemas().join(file.trim_start_matches("./"))).expect(file);
        let got = format!("{:x}", Sha256::digest(&bytes));
        assert_eq!(
            got, want,
            "{file} was edited after it was vendored (run infra/schemas/fetch.sh)"
        );
        seen += 1;
    }
    assert_eq!(seen, 13, "every vendored schema is listed in SHA256SUMS");
}

#[test]
fn every_rendered_object_matches_its_schema() {
    for o in OVERLAYS {
        let errors: Vec<String> = overlay(o).iter().flat_map(k8s_errors).collect();
        assert!(errors.is_empty(), "overlay {o}:\n{}", errors.join("\n"));
    }
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|v| v["kind"] == kind && v["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn broken_objects_fail_validation() {
    let objs = overlay("dev");
    // A misspelt field in a Deployment (strict schemas reject unknown fields).
    let mut d = find(&objs, "Deployment", "sprocket-api").clone();
    d["spec"]["replica"] = 2.into();
    assert!(
        !k8s_errors(&d).is_empty(),
        "unknown Deployment field accepted"
    );
    // A wrong type deep in the pod template.
    let mut d = find(&objs, "Deployment", "sprocket-worker-render").clone();
    d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] =
        "yes".into();
    assert!(!k8s_errors(&d).is_empty(), "string runAsNonRoot accepted");
    // A ScaledObject with a misspelt spec field and one with no triggers.
    let mut s = find(&objs, "ScaledObject", "sprocket-worker-render").clone();
    s["spec"]["maxReplicas"] = 3.into();
    assert!(
        !k8s_errors(&s).is_empty(),
        "unknown ScaledObject field accepted"
    );
    let mut s = find(&objs, "ScaledObject", "sprocket-worker-render").clone();
    s["spec"].as_object_mut().unwrap().remove("triggers");
    assert!(
        !k8s_errors(&s).is_empty(),
        "ScaledObject without triggers accepted"
    );
    // A TriggerAuthentication whose secret reference lacks its key.
    let mut t = find(&objs, "TriggerAuthentication", "sprocket-kafka").clone();
    t["spec"]["secretTargetRef"][0]
        .as_object_mut()
        .unwrap()
        .remove("key");
    assert!(
        !k8s_errors(&t).is_empty(),
        "secretTargetRef without a key accepted"
    );
    // A ServiceMonitor endpoint with an integer port name; a rule without expr.
    let mut m = find(&objs, "ServiceMonitor", "sprocket").clone();
    m["spec"]["endpoints"][0]["port"] = 8080.into();
    assert!(
        !k8s_errors(&m).is_empty(),
        "integer ServiceMonitor port accepted"
    );
    let mut r = find(&objs, "PrometheusRule", "sprocket").clone();
    r["spec"]["groups"][0]["rules"][0]["exprr"] = "1".into();
    assert!(!k8s_errors(&r).is_empty(), "unknown rule field accepted");
    // A kind with no schema.
    let unknown = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}});
    assert!(!k8s_errors(&unknown).is_empty());
}
