//! The janitor (`sprocket janitor`): one replica that is never two (a
//! singleton loop, Recreate), egress to Kafka and the registry, PostgreSQL and
//! the object store and nowhere else, and a Kafka principal that may write
//! sprocket.events in its own transactions and read nothing.

use std::collections::BTreeSet;
use std::process::Command;

use super::*;

/// PostgreSQL's port (the database URL is a secret, so not read from it).
const POSTGRES_PORT: i64 = 5432;
/// DNS, which every pod may reach.
const DNS_PORT: i64 = 53;
/// S3 (https), the object store unless `AWS_ENDPOINT_URL` names another.
const HTTPS_PORT: i64 = 443;

/// Checks the janitor's Deployment and network policies, and its ACLs as
/// `scripts/kafka-acls.sh` makes them for the overlay's topic prefix.
pub(super) fn check(c: &Ctx, p: &mut Vec<String>) {
    for (dn, d) in &c.deployments {
        let template = &d["spec"]["template"];
        let ctr = &template["spec"]["containers"][0];
        if strs(&ctr["args"]) != ["janitor"] {
            continue;
        }
        let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
        if replicas != 1 {
            p.push(format!(
                "{dn}: {replicas} replicas, but the janitor is one loop"
            ));
        }
        let strategy = d["spec"]["strategy"]["type"]
            .as_str()
            .unwrap_or("RollingUpdate");
        if strategy != "Recreate" {
            p.push(format!(
                "{dn}: strategy {strategy}, not Recreate (never two at once)"
            ));
        }
        let env = container_env(c.objs, ctr);
        let needed = needed_ports(&env);
        let open: BTreeSet<(String, i64)> = of_kind(c.objs, "NetworkPolicy")
            .filter(|n| selects(&n["spec"]["podSelector"], &template["metadata"]["labels"]))
            .flat_map(|n| {
                let np = name(n).to_owned();
                n["spec"]["egress"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .flat_map(|e| e["ports"].as_array().cloned().unwrap_or_default())
                    .filter_map(move |x| Some((np.clone(), x["port"].as_i64()?)))
            })
            .collect();
        for (np, port) in &open {
            // S3 on https stays allowed where an overlay adds an endpoint.
            if ![DNS_PORT, HTTPS_PORT].contains(port) && !needed.iter().any(|(_, n)| n == port) {
                p.push(format!(
                    "{dn}: NetworkPolicy {np} lets it reach port {port}, which it has no use for"
                ));
            }
        }
        for (what, port) in &needed {
            if !open.iter().any(|(_, o)| o == port) {
                p.push(format!(
                    "{dn}: no NetworkPolicy lets it reach {what} on {port}"
                ));
            }
        }
        if !ctr["env"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["name"] == "SPROCKET__DATABASE__URL")
        {
            p.push(format!("{dn}: no database-url"));
        }
    }
    let plan = acl_plan(&c.prefix);
    p.extend(janitor_acl_problems(&plan, &c.prefix));
}

/// Where the janitor connects: Kafka, the registry, PostgreSQL, the store.
fn needed_ports(env: &std::collections::BTreeMap<String, String>) -> Vec<(&'static str, i64)> {
    let url_port = |k: &str| {
        env.get(k)
            .and_then(|u| url::Url::parse(u).ok()?.port_or_known_default())
            .map(i64::from)
    };
    let kafka = env
        .get("SPROCKET__KAFKA__BROKERS")
        .and_then(|b| b.split(',').next().and_then(port_of));
    // S3 on https, or the endpoint an overlay names (MinIO).
    let store = url_port("AWS_ENDPOINT_URL").unwrap_or(HTTPS_PORT);
    [
        ("Kafka", kafka),
        ("the schema registry", url_port("SPROCKET__REGISTRY__URL")),
        ("PostgreSQL", Some(POSTGRES_PORT)),
        ("the object store", Some(store)),
    ]
    .into_iter()
    .filter_map(|(w, p)| Some((w, p?)))
    .collect()
}

/// `scripts/kafka-acls.sh --print` for a topic prefix: lines of
/// `User:<role>\t<pattern>\t<operations>\t<resources>`.
fn acl_plan(prefix: &str) -> Vec<String> {
    let out = Command::new("bash")
        .arg(crate::root().join("scripts/kafka-acls.sh"))
        .args(["--print", "--topic-prefix", prefix])
        .output()
        .expect("running scripts/kafka-acls.sh --print");
    assert!(out.status.success(), "kafka-acls.sh --print failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The janitor's grants in `plan` must be: Write (and Describe) on the events
/// topic, Write (and Describe) on transactional ids with prefix
/// `<stem>-janitor`, and nothing else: no Read, no other topic, no group.
fn janitor_acl_problems(plan: &[String], prefix: &str) -> Vec<String> {
    let mut p = Vec::new();
    let stem = prefix.trim_end_matches(['.', '_', '-']);
    let stem = if stem.is_empty() { "sprocket" } else { stem };
    let events = format!("topic:{prefix}events");
    let txn = format!("txn:{stem}-janitor");
    let mut granted = BTreeSet::new();
    for line in plan {
        let f: Vec<&str> = line.split('\t').collect();
        let [user, pattern, ops, resources] = f[..] else {
            continue;
        };
        if user != "User:janitor" {
            continue;
        }
        for op in ops.split(',') {
            if !matches!(op, "Write" | "Describe") {
                p.push(format!(
                    "janitor: {op} on {resources} (it only writes its events)"
                ));
            }
            for r in resources.split(' ') {
                let ok = match pattern {
                    "literal" => r == events,
                    "prefixed" => r == txn,
                    _ => false,
                };
                if !ok {
                    p.push(format!(
                        "janitor: {op} on {pattern} {r}, which it has no use for"
                    ));
                }
                granted.insert((op.to_owned(), pattern.to_owned(), r.to_owned()));
            }
        }
    }
    for (pattern, r) in [("literal", &events), ("prefixed", &txn)] {
        if !granted.contains(&("Write".to_owned(), pattern.to_owned(), r.clone())) {
            p.push(format!("janitor: no Write on {pattern} {r}"));
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::super::tests::{broken, find_mut, has};
    use super::*;

    #[test]
    fn the_script_gives_the_janitor_its_acls_only() {
        for prefix in ["sprocket.", "staging-sprocket."] {
            let p = janitor_acl_problems(&acl_plan(prefix), prefix);
            assert!(p.is_empty(), "{prefix}: {p:?}");
        }
    }

    #[test]
    fn acl_breakage_is_caught() {
        let plan = acl_plan("sprocket.");
        let with = |extra: &str| {
            let mut plan = plan.clone();
            plan.push(extra.to_owned());
            janitor_acl_problems(&plan, "sprocket.")
        };
        let p = with("User:janitor\tliteral\tRead\ttopic:sprocket.events");
        assert!(has(&p, "janitor: Read on topic:sprocket.events"), "{p:?}");
        let p = with("User:janitor\tliteral\tWrite\ttopic:sprocket.render");
        assert!(has(&p, "Write on literal topic:sprocket.render"), "{p:?}");
        let p = with("User:janitor\tprefixed\tWrite\ttxn:sprocket-");
        assert!(has(&p, "Write on prefixed txn:sprocket-,"), "{p:?}");
        let without_txn: Vec<String> = plan
            .iter()
            .filter(|l| !(l.starts_with("User:janitor\t") && l.contains("txn:")))
            .cloned()
            .collect();
        let p = janitor_acl_problems(&without_txn, "sprocket.");
        assert!(
            has(&p, "janitor: no Write on prefixed txn:sprocket-janitor"),
            "{p:?}"
        );
    }

    #[test]
    fn deployment_breakage_is_caught() {
        let p = broken(|o| {
            o.retain(|x| {
                !(x["kind"] == "Deployment" && x["metadata"]["name"] == "sprocket-janitor")
            })
        });
        assert!(has(&p, "no Deployment sprocket-janitor"), "{p:?}");
        let p = broken(|o| {
            find_mut(o, "Deployment", "sprocket-janitor")["spec"]["replicas"] = 2.into()
        });
        assert!(has(&p, "sprocket-janitor: 2 replicas"), "{p:?}");
        let p = broken(|o| {
            find_mut(o, "Deployment", "sprocket-janitor")["spec"]["strategy"] =
                serde_json::json!({"type": "RollingUpdate"})
        });
        assert!(has(&p, "strategy RollingUpdate, not Recreate"), "{p:?}");
        let p = broken(|o| {
            find_mut(o, "Deployment", "sprocket-janitor")["spec"]["template"]["spec"]
                ["securityContext"]["runAsNonRoot"] = false.into()
        });
        assert!(
            has(&p, "Deployment sprocket-janitor: runAsNonRoot is not set"),
            "{p:?}"
        );
        let p = broken(|o| {
            o.retain(|x| {
                !(x["kind"] == "PodDisruptionBudget" && x["metadata"]["name"] == "sprocket-janitor")
            })
        });
        assert!(has(&p, "sprocket-janitor: no PodDisruptionBudget"), "{p:?}");
        let p = broken(|o| {
            find_mut(o, "Deployment", "sprocket-janitor")["spec"]["template"]["spec"]
                ["containers"][0]["env"][0]["value"] = "api".into()
        });
        assert!(
            has(&p, "sasl.username Some(\"api\"), not its role janitor"),
            "{p:?}"
        );
    }

    #[test]
    fn network_breakage_is_caught() {
        // Its policy gone: no PostgreSQL, no Kafka.
        let p = broken(|o| {
            o.retain(|x| {
                !(x["kind"] == "NetworkPolicy" && x["metadata"]["name"] == "sprocket-janitor")
            })
        });
        assert!(
            has(
                &p,
                "sprocket-janitor: no NetworkPolicy lets it reach PostgreSQL on 5432"
            ),
            "{p:?}"
        );
        // A port it has no use for (the internet on 80, like the webhook sender).
        let p = broken(|o| {
            let rules = find_mut(o, "NetworkPolicy", "sprocket-janitor")["spec"]["egress"]
                .as_array_mut()
                .unwrap();
            rules.push(serde_json::json!({
                "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": INTERNAL_RANGES}}],
                "ports": [{"protocol": "TCP", "port": 80}]
            }));
        });
        assert!(
            has(
                &p,
                "sprocket-janitor: NetworkPolicy sprocket-janitor lets it reach port 80"
            ),
            "{p:?}"
        );
    }

    const INTERNAL_RANGES: [&str; 4] = [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
    ];
}
