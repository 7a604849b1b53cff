//! Offline checks of the deployment files: `infra/` (kustomize base and overlays,
//! KEDA ScaledObjects, ServiceMonitor, PrometheusRule, Grafana dashboard) and
//! `compose/`. No cluster and no Docker engine: overlays are rendered with
//! kustomize (`kustomize build`, or `kubectl kustomize`), every rendered object is
//! validated against the JSON Schema vendored under `infra/schemas/` (see its
//! README for the registry package each came from), and the cross-references
//! between objects, topics, consumer groups, metrics and probes are checked.

mod compose;
mod crossref;
mod dockerfile;
mod lifecycle;
mod promql;
mod render;
mod schema;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Every document of a YAML stream as JSON values (merge keys applied; empty
/// documents dropped).
pub fn yaml_docs(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let mut v = serde_norway::Value::deserialize(doc).map_err(|e| e.to_string())?;
        v.apply_merge().map_err(|e| e.to_string())?;
        if v.is_null() {
            continue;
        }
        out.push(serde_json::to_value(v).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Every file under `dir` (recursively) whose name ends with one of `exts`.
pub fn files_under(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if exts.iter().any(|x| p.to_string_lossy().ends_with(x)) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_yaml_file_parses() {
    let root = root();
    let mut files = files_under(&root.join("infra"), &[".yaml", ".yml"]);
    files.extend(files_under(&root.join("compose"), &[".yaml", ".yml"]));
    assert!(
        files.len() >= 20,
        "expected the infra and compose files, got {files:?}"
    );
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable");
        let docs = yaml_docs(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!docs.is_empty(), "{} holds no document", f.display());
    }
}

#[test]
fn every_json_file_parses() {
    let root = root();
    let files = files_under(&root.join("infra"), &[".json"]);
    assert!(files.iter().any(|f| f.ends_with("dashboard.json")));
    for f in files {
        let text = std::fs::read_to_string(&f).expect("readable");
        serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

#[test]
fn yaml_parse_errors_are_reported() {
    assert!(yaml_docs("a: [1, 2\nb: c").is_err());
    let docs = yaml_docs("x: &a {k: 1}\ny:\n  <<: *a\n  j: 2\n---\n").unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["y"]["k"], 1);
}
