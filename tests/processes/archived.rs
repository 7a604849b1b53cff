//! What an archived job must look like: exactly the files its manifest lists
//! (plus the manifest), each with the sha256 recorded there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

/// The archived job: exactly the files its manifest lists (plus the manifest),
/// each with the sha256 recorded there; a highlight reel and a poster among them.
pub(crate) fn outputs_match_manifest(dir: &Path) {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json"))
            .unwrap_or_else(|e| panic!("{}/manifest.json: {e}", dir.display())),
    )
    .expect("manifest.json is JSON");
    let listed: BTreeMap<String, String> = manifest["artifacts"]
        .as_array()
        .expect("manifest artifacts")
        .iter()
        .map(|a| {
            (
                a["name"].as_str().expect("artifact name").to_owned(),
                a["sha256"].as_str().expect("artifact sha256").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed.len(),
        manifest["artifacts"].as_array().map_or(0, Vec::len),
        "{}: an artifact listed twice",
        dir.display()
    );
    for name in ["highlight.mp4", "poster.jpg"] {
        assert!(listed.contains_key(name), "{name} not in {listed:?}");
    }
    let mut on_disk = BTreeSet::new();
    for entry in walk(dir) {
        let name = entry
            .strip_prefix(dir)
            .expect("under the job's dir")
            .display()
            .to_string();
        if name == "manifest.json" {
            continue;
        }
        let sha = sprocket_tests::sha256_hex(&std::fs::read(&entry).expect("archived file"));
        assert_eq!(
            listed.get(&name),
            Some(&sha),
            "{}: {name} on disk vs the manifest",
            dir.display()
        );
        on_disk.insert(name);
    }
    let listed: BTreeSet<String> = listed.into_keys().collect();
    assert_eq!(on_disk, listed, "{}: files vs manifest", dir.display());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
