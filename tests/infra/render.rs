//! Renders kustomizations with the real kustomize: the pinned build `.ci/setup`
//! makes (`~/.cache/sprocket/bin/kustomize`, or `SPROCKET_KUSTOMIZE`), else a
//! `kustomize` on the PATH, else the copy built into `kubectl`.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::{root, yaml_docs};

pub const OVERLAYS: [&str; 3] = ["dev", "staging", "production"];

fn renderer() -> &'static (String, Vec<String>) {
    static R: OnceLock<(String, Vec<String>)> = OnceLock::new();
    R.get_or_init(|| {
        let works = |cmd: &str, args: &[&str]| {
            Command::new(cmd)
                .args(args)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
            .map(|c| c.join("sprocket/bin/kustomize"));
        let pinned = std::env::var("SPROCKET_KUSTOMIZE")
            .ok()
            .or_else(|| cache.map(|c| c.display().to_string()))
            .filter(|k| works(k, &["version"]));
        if let Some(k) = pinned {
            (k, vec!["build".into()])
        } else if works("kustomize", &["version"]) {
            ("kustomize".into(), vec!["build".into()])
        } else if works("kubectl", &["version", "--client"]) {
            ("kubectl".into(), vec!["kustomize".into()])
        } else {
            panic!(
                "rendering infra/ needs kustomize: run `bash .ci/setup` (it builds \
                 the pinned one), or put kustomize or kubectl on PATH"
            )
        }
    })
}

/// The objects a kustomization directory renders to.
pub fn render_dir(dir: &Path) -> Result<Vec<Value>, String> {
    let (cmd, args) = renderer();
    let out = Command::new(cmd)
        .args(args)
        .arg(dir)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd} {} {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    yaml_docs(&String::from_utf8_lossy(&out.stdout))
}

/// The objects `infra/overlays/<name>` renders to.
pub fn overlay(name: &str) -> Vec<Value> {
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<String, Vec<Value>>>> =
        OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().unwrap().get(name) {
        return v.clone();
    }
    let objs = render_dir(&root().join("infra/overlays").join(name))
        .unwrap_or_else(|e| panic!("overlay {name}: {e}"));
    cache.lock().unwrap().insert(name.into(), objs.clone());
    objs
}

#[test]
fn base_and_overlays_render() {
    let base = render_dir(&root().join("infra/base")).expect("base renders");
    assert!(base.len() > 20, "base rendered only {} objects", base.len());
    for o in OVERLAYS {
        let objs = overlay(o);
        let ns: Vec<_> = objs
            .iter()
            .filter_map(|v| v["metadata"]["namespace"].as_str())
            .collect();
        assert_eq!(
            ns.len(),
            objs.len(),
            "{o}: every object is namespaced by the overlay"
        );
    }
}

#[test]
fn a_broken_kustomization_fails_to_render() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "resources:\n  - missing.yaml\n",
    )
    .unwrap();
    assert!(render_dir(dir.path()).is_err());
}
