//! Kafka authentication: every container that talks to Kafka does so as its
//! role's SASL principal (`sasl.username` its role, `sasl.password` from
//! `sprocket-secrets`), the setup Job makes those principals and their ACLs
//! with the very script the repository runs (`scripts/kafka-acls.sh`), and
//! KEDA's triggers authenticate through a TriggerAuthentication whose values
//! come from a Secret.

use std::collections::BTreeSet;
use std::process::Command;

use super::*;

const PROPERTY: &str = "SPROCKET__KAFKA__PROPERTIES__";

/// The principal a `sprocket` container runs as, by its args.
fn role_of<'a>(args: &[&'a str]) -> Option<&'a str> {
    match args {
        ["api"] => Some("api"),
        ["projector"] => Some("projector"),
        ["webhooks"] => Some("webhooks"),
        ["janitor"] => Some("janitor"),
        ["worker", phase] => Some(phase),
        ["topics", "create"] => Some("ops"),
        _ => None,
    }
}

/// The roles `scripts/kafka-acls.sh --print` gives ACLs to.
fn script_roles() -> BTreeSet<String> {
    let out = Command::new("bash")
        .arg(crate::root().join("scripts/kafka-acls.sh"))
        .arg("--print")
        .output()
        .expect("running scripts/kafka-acls.sh --print");
    assert!(out.status.success(), "kafka-acls.sh --print failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split('\t').next()?.strip_prefix("User:"))
        .map(str::to_owned)
        .collect()
}

fn secret_ref(e: &Value) -> Option<(&str, &str)> {
    let r = &e["valueFrom"]["secretKeyRef"];
    Some((r["name"].as_str()?, r["key"].as_str()?))
}

/// Checks every Kafka client container, the ACL init container and the
/// ScaledObjects' authentication.
pub(super) fn check(c: &Ctx, p: &mut Vec<String>) {
    let roles = script_roles();
    let templates = of_kind(c.objs, "Deployment")
        .chain(of_kind(c.objs, "Job"))
        .map(|o| (name(o), &o["spec"]["template"]["spec"]));
    let mut acl_containers = 0;
    for (owner, spec) in templates {
        for ctr in all_containers(spec) {
            let cn = ctr["name"].as_str().unwrap_or("?");
            let what = format!("{owner}/{cn}");
            if cn == "kafka-acls" {
                acl_containers += 1;
                acl_container(c, &what, spec, &roles, p);
                continue;
            }
            let args = strs(&ctr["args"]);
            if args == ["migrate"] {
                continue;
            }
            let Some(role) = role_of(&args) else {
                p.push(format!(
                    "{what}: {args:?} is no role with a Kafka principal"
                ));
                continue;
            };
            if !roles.contains(role) {
                p.push(format!("{what}: kafka-acls.sh makes no principal {role}"));
            }
            let env = container_env(c.objs, ctr);
            let get = |k: &str| env.get(&format!("{PROPERTY}{k}")).map(String::as_str);
            if !get("SECURITY__PROTOCOL").is_some_and(|v| v.starts_with("SASL_")) {
                p.push(format!("{what}: security.protocol is not SASL_*"));
            }
            if get("SASL__MECHANISM") != Some("SCRAM-SHA-512") {
                p.push(format!("{what}: sasl.mechanism is not SCRAM-SHA-512"));
            }
            if get("SASL__USERNAME") != Some(role) {
                p.push(format!(
                    "{what}: sasl.username {:?}, not its role {role}",
                    get("SASL__USERNAME")
                ));
            }
            let password = ctr["env"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["name"] == format!("{PROPERTY}SASL__PASSWORD"))
                .and_then(secret_ref);
            let want = format!("kafka-password-{role}");
            if password != Some(("sprocket-secrets", want.as_str())) {
                p.push(format!(
                    "{what}: sasl.password from {password:?}, not sprocket-secrets/{want}"
                ));
            }
        }
    }
    if acl_containers != 1 {
        p.push(format!(
            "{acl_containers} kafka-acls containers, expected the setup Job's one"
        ));
    }
    triggers_authenticate(c, p);
}

/// The ACL init container runs scripts/kafka-acls.sh as the repository has
/// it, with a password file for every role it makes.
fn acl_container(c: &Ctx, what: &str, spec: &Value, roles: &BTreeSet<String>, p: &mut Vec<String>) {
    let volumes = spec["volumes"].as_array().cloned().unwrap_or_default();
    let volume = |n: &str| volumes.iter().find(|v| v["name"] == n);
    let script = volume("kafka-acls")
        .and_then(|v| v["configMap"]["name"].as_str())
        .and_then(|cm| of_kind(c.objs, "ConfigMap").find(|o| name(o) == cm))
        .and_then(|cm| cm["data"]["kafka-acls.sh"].as_str());
    let ours = std::fs::read_to_string(crate::root().join("scripts/kafka-acls.sh"))
        .expect("scripts/kafka-acls.sh");
    if script != Some(ours.as_str()) {
        p.push(format!(
            "{what}: its kafka-acls.sh is not scripts/kafka-acls.sh"
        ));
    }
    let files: BTreeSet<String> = volume("kafka-users")
        .map(|v| {
            v["projected"]["sources"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .unwrap_or_default()
        .iter()
        .flat_map(|s| s["secret"]["items"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| i["path"].as_str().map(str::to_owned))
        .collect();
    if &files != roles {
        p.push(format!(
            "{what}: password files {files:?}, but kafka-acls.sh makes {roles:?}"
        ));
    }
}

/// Every kafka trigger names a TriggerAuthentication that gives KEDA's
/// scaler its SASL mode, user and password from a Secret.
fn triggers_authenticate(c: &Ctx, p: &mut Vec<String>) {
    for s in of_kind(c.objs, "ScaledObject") {
        for (i, t) in s["spec"]["triggers"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let sn = name(s);
            let Some(auth) = t["authenticationRef"]["name"].as_str() else {
                p.push(format!(
                    "ScaledObject {sn}: trigger {i} has no authenticationRef"
                ));
                continue;
            };
            let Some(ta) = of_kind(c.objs, "TriggerAuthentication").find(|o| name(o) == auth)
            else {
                p.push(format!(
                    "ScaledObject {sn}: no TriggerAuthentication {auth}"
                ));
                continue;
            };
            let given: BTreeSet<&str> = ta["spec"]["secretTargetRef"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["parameter"].as_str())
                .collect();
            for param in ["sasl", "username", "password"] {
                if !given.contains(param) {
                    p.push(format!(
                        "TriggerAuthentication {auth}: no {param} from a Secret"
                    ));
                }
            }
        }
    }
}
