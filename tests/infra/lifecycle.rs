//! `infra/lifecycle/sprocket-work.json`, the object lifecycle rules offered in
//! place of the janitor: valid S3 lifecycle JSON, every rule enabled,
//! expirations only under the working store's `jobs/` and `uploads/` (never
//! the whole bucket), both of those covered, and unfinished multipart uploads
//! aborted.

use serde_json::Value;

use crate::root;

/// The prefixes the janitor cleans (engine/core/src/work.rs `job_prefix`,
/// engine/server/src/api/uploads.rs).
const EXPIRED_PREFIXES: [&str; 2] = ["jobs/", "uploads/"];

fn rules() -> Value {
    let path = root().join("infra/lifecycle/sprocket-work.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every problem with a lifecycle configuration.
fn problems(config: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let Some(rules) = config["Rules"].as_array() else {
        return vec!["no Rules".into()];
    };
    let mut expired = Vec::new();
    let mut aborts = false;
    for r in rules {
        let id = r["ID"].as_str().unwrap_or("?");
        if r["Status"] != "Enabled" {
            p.push(format!("{id}: Status {}, not Enabled", r["Status"]));
        }
        let Some(prefix) = r["Filter"]["Prefix"].as_str() else {
            p.push(format!("{id}: no Filter.Prefix"));
            continue;
        };
        if !r["Expiration"].is_null() {
            let days = r["Expiration"]["Days"].as_i64().unwrap_or(0);
            if days < 1 {
                p.push(format!("{id}: Expiration is not a number of days ≥ 1"));
            }
            if !EXPIRED_PREFIXES.contains(&prefix) {
                p.push(format!(
                    "{id}: expires objects under {prefix:?}, which the janitor leaves alone"
                ));
            }
            expired.push(prefix.to_owned());
        }
        if r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
            .as_i64()
            .is_some_and(|d| d >= 1)
        {
            aborts = true;
        }
    }
    for prefix in EXPIRED_PREFIXES {
        if !expired.iter().any(|e| e == prefix) {
            p.push(format!("no rule expires {prefix}"));
        }
    }
    if !aborts {
        p.push("no rule aborts unfinished multipart uploads".into());
    }
    p
}

#[test]
fn the_lifecycle_rules_expire_what_the_janitor_would() {
    let p = problems(&rules());
    assert!(p.is_empty(), "{}", p.join("\n"));
}

#[test]
fn broken_lifecycle_rules_are_caught() {
    let caught = |mutate: &dyn Fn(&mut Value), needle: &str| {
        let mut c = rules();
        mutate(&mut c);
        let p = problems(&c);
        assert!(p.iter().any(|x| x.contains(needle)), "{needle}: {p:?}");
    };
    caught(
        &|c| c["Rules"][0]["Filter"]["Prefix"] = "".into(),
        "expires objects under \"\"",
    );
    caught(
        &|c| c["Rules"][1]["Status"] = "Disabled".into(),
        "Status \"Disabled\", not Enabled",
    );
    caught(
        &|c| {
            c["Rules"].as_array_mut().unwrap().remove(1);
        },
        "no rule expires uploads/",
    );
    caught(
        &|c| c["Rules"].as_array_mut().unwrap().truncate(2),
        "no rule aborts unfinished multipart uploads",
    );
    caught(
        &|c| c["Rules"][0]["Expiration"]["Days"] = 0.into(),
        "Expiration is not a number of days",
    );
}
