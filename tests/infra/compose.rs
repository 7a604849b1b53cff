//! `compose/`: the compose file against the compose specification, and the stack's
//! own wiring (every Sprocket process present, healthy before its dependants,
//! scraped by Prometheus; Grafana given the Kubernetes base's dashboard; Kafka's
//! data in its volume; every long-running service restarting alike; every
//! Kafka client authenticated as its own role's principal, with the password
//! kafka-acls gives it, ACLs enforced).

use serde_json::Value;

use crate::schema::compose_errors;
use crate::{root, yaml_docs};

fn compose() -> Value {
    let text = std::fs::read_to_string(root().join("compose/docker-compose.yml")).unwrap();
    yaml_docs(&text).unwrap().remove(0)
}

const SPROCKET: [(&str, &[&str]); 8] = [
    ("api", &["api"]),
    ("projector", &["projector"]),
    ("webhooks", &["webhooks"]),
    ("janitor", &["janitor"]),
    ("worker-ingest", &["worker", "ingest"]),
    ("worker-analyze", &["worker", "analyze"]),
    ("worker-render", &["worker", "render"]),
    ("worker-archive", &["worker", "archive"]),
];

/// Every problem in the stack's wiring.
pub fn problems(c: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let services = c["services"].as_object().cloned().unwrap_or_default();
    for needed in [
        "kafka",
        "schema-registry",
        "postgres",
        "minio",
        "minio-init",
        "prometheus",
        "grafana",
        "sprocket-init",
    ] {
        if !services.contains_key(needed) {
            p.push(format!("no {needed} service"));
        }
    }
    if !c["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
        .as_str()
        .is_some_and(|r| r.contains("controller"))
    {
        p.push("kafka does not run in KRaft mode".into());
    }
    let init = c["services"]["sprocket-init"]["command"].to_string();
    if !(init.contains("sprocket migrate") && init.contains("sprocket topics create")) {
        p.push("sprocket-init does not migrate and create topics".into());
    }
    for (name, args) in SPROCKET {
        let s = &c["services"][name];
        if s.is_null() {
            p.push(format!("no {name} service"));
            continue;
        }
        let got: Vec<&str> = s["command"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if got != args {
            p.push(format!("{name}: command {got:?}, expected {args:?}"));
        }
        if s["healthcheck"].is_null() {
            p.push(format!("{name}: no healthcheck"));
        }
        if s["depends_on"]["sprocket-init"]["condition"] != "service_completed_successfully" {
            p.push(format!("{name}: does not wait for sprocket-init"));
        }
        if s["stop_signal"] != "SIGINT" {
            p.push(format!(
                "{name}: not stopped with SIGINT (sprocket's graceful shutdown)"
            ));
        }
        let env = &s["environment"];
        for k in [
            "SPROCKET__KAFKA__BROKERS",
            "SPROCKET__REGISTRY__URL",
            "SPROCKET__STORE__URL",
            "SPROCKET__METRICS__ADDR",
            "AWS_ENDPOINT_URL",
        ] {
            if env[k].is_null() {
                p.push(format!("{name}: {k} is not set"));
            }
        }
    }
    p.extend(kafka_keeps_its_data(c));
    p.extend(kafka_authenticates(c));
    p.extend(restart_alike(c));
    // Everything a service waits on must be a service with a healthcheck (or a
    // one-shot that completes).
    for (name, s) in &services {
        for (dep, cond) in s["depends_on"].as_object().into_iter().flatten() {
            let d = &c["services"][dep];
            match cond["condition"].as_str() {
                _ if d.is_null() => p.push(format!("{name}: depends on unknown {dep}")),
                Some("service_healthy") if d["healthcheck"].is_null() => p.push(format!(
                    "{name}: waits for {dep} to be healthy, which has no healthcheck"
                )),
                Some(_) => {}
                None => p.push(format!("{name}: depends on {dep} without a condition")),
            }
        }
    }
    p
}

/// A service's volume mounts as (source, target), short or long syntax.
fn mounts(s: &Value) -> Vec<(String, String)> {
    s["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| match v {
            Value::String(short) => {
                let mut parts = short.split(':');
                Some((parts.next()?.to_string(), parts.next()?.to_string()))
            }
            long => Some((
                long["source"].as_str()?.to_string(),
                long["target"].as_str()?.to_string(),
            )),
        })
        .collect()
}

/// Kafka's log directories (KRaft metadata included) are set, not left to the
/// image's default under /tmp, and each is a named volume's mount point.
fn kafka_keeps_its_data(c: &Value) -> Vec<String> {
    let kafka = &c["services"]["kafka"];
    let Some(dirs) = kafka["environment"]["KAFKA_LOG_DIRS"].as_str() else {
        return vec!["kafka: KAFKA_LOG_DIRS is not set (the image's default is under /tmp)".into()];
    };
    let volumes = c["volumes"].as_object().cloned().unwrap_or_default();
    let mounted = mounts(kafka);
    dirs.split(',')
        .filter(|dir| {
            !mounted
                .iter()
                .any(|(source, target)| target == dir && volumes.contains_key(source))
        })
        .map(|dir| format!("kafka: log dir {dir} is not a named volume's mount point"))
        .collect()
}

/// Kafka accepts only SASL and denies what no ACL allows; `kafka-acls` makes
/// the principals with scripts/kafka-acls.sh before anything uses them; every
/// Sprocket process (and the registry) authenticates, each Sprocket process
/// as its own role.
fn kafka_authenticates(c: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let kafka = &c["services"]["kafka"]["environment"];
    if kafka["KAFKA_AUTHORIZER_CLASS_NAME"]
        != "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        || kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] != "false"
    {
        p.push("kafka: ACLs are not enforced (StandardAuthorizer, no ACL: denied)".into());
    }
    let map = kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
        .as_str()
        .unwrap_or_default();
    if map
        .split(',')
        .any(|l| !l.ends_with(":SASL_PLAINTEXT") && !l.ends_with(":SASL_SSL"))
    {
        p.push(format!("kafka: a listener without SASL ({map})"));
    }
    let acls = &c["services"]["kafka-acls"];
    if !acls["volumes"].to_string().contains("kafka/kafka-acls.sh:")
        || !acls["command"].to_string().contains("kafka-acls.sh")
    {
        p.push("kafka-acls does not run scripts/kafka-acls.sh".into());
    }
    for waits in ["sprocket-init", "schema-registry"] {
        if c["services"][waits]["depends_on"]["kafka-acls"]["condition"]
            != "service_completed_successfully"
        {
            p.push(format!("{waits}: does not wait for kafka-acls"));
        }
    }
    let registry = &c["services"]["schema-registry"]["environment"];
    if !registry["SCHEMA_REGISTRY_KAFKASTORE_SECURITY_PROTOCOL"]
        .as_str()
        .is_some_and(|v| v.starts_with("SASL_"))
    {
        p.push("schema-registry: its Kafka store does not authenticate".into());
    }
    let roles = SPROCKET
        .iter()
        .map(|(name, args)| (*name, *args.last().unwrap_or(&"")))
        .chain([("sprocket-init", "ops")]);
    // kafka-acls gives a role a credential only where it writes the role's
    // password file (`for r in <roles>; do echo "$$r-secret" …`).
    let acl_command = acls["command"].to_string();
    let credentials: Vec<&str> = acl_command
        .split_once("for r in ")
        .and_then(|(_, rest)| rest.split_once(';'))
        .map(|(list, _)| list.split_whitespace().collect())
        .unwrap_or_default();
    for (name, role) in roles {
        let env = &c["services"][name]["environment"];
        let var = |k: &str| env[format!("SPROCKET__KAFKA__PROPERTIES__{k}")].as_str();
        if !credentials.contains(&role) {
            p.push(format!(
                "{name}: kafka-acls makes no credential for role {role}"
            ));
        } else if var("SASL__PASSWORD") != Some(format!("{role}-secret").as_str()) {
            p.push(format!(
                "{name}: Kafka password {:?}, not the {role}-secret kafka-acls sets",
                var("SASL__PASSWORD")
            ));
        }
        if !var("SECURITY__PROTOCOL").is_some_and(|v| v.starts_with("SASL_"))
            || var("SASL__MECHANISM") != Some("SCRAM-SHA-512")
        {
            p.push(format!("{name}: does not authenticate with SCRAM-SHA-512"));
        }
        if var("SASL__USERNAME") != Some(role) {
            p.push(format!(
                "{name}: Kafka principal {:?}, not its role {role}",
                var("SASL__USERNAME")
            ));
        }
    }
    p
}

/// Every long-running service restarts as Sprocket's services do; only the
/// one-shots others wait to complete may stay down.
fn restart_alike(c: &Value) -> Vec<String> {
    let services = c["services"].as_object().cloned().unwrap_or_default();
    let policy = &c["services"]["api"]["restart"];
    if !policy.is_string() || policy == "no" {
        return vec![format!("api: restart policy {policy} brings nothing back")];
    }
    let one_shots: Vec<&String> = services
        .values()
        .flat_map(|s| s["depends_on"].as_object().into_iter().flatten())
        .filter(|(_, cond)| cond["condition"] == "service_completed_successfully")
        .map(|(dep, _)| dep)
        .collect();
    services
        .iter()
        .filter(|(name, _)| !one_shots.contains(name))
        .filter(|(_, s)| s["restart"] != *policy)
        .map(|(name, s)| {
            format!(
                "{name}: restart {}, unlike Sprocket's services ({policy})",
                s["restart"]
            )
        })
        .collect()
}

fn prometheus_problems(prom: &Value) -> Vec<String> {
    let text = prom.to_string();
    SPROCKET
        .iter()
        .filter(|(name, _)| !text.contains(&format!("\"{name}\"")))
        .map(|(name, _)| format!("prometheus does not scrape {name}"))
        .collect()
}

#[test]
fn compose_file_follows_the_compose_specification() {
    let errors = compose_errors(&compose());
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn compose_stack_is_wired() {
    let c = compose();
    let p = problems(&c);
    assert!(p.is_empty(), "{}", p.join("\n"));
    let prom = std::fs::read_to_string(root().join("compose/prometheus.yml")).unwrap();
    let p = prometheus_problems(&yaml_docs(&prom).unwrap()[0]);
    assert!(p.is_empty(), "{}", p.join("\n"));
    let mounts = c["services"]["grafana"]["volumes"].to_string();
    assert!(
        mounts.contains("infra/base/monitoring/dashboard.json"),
        "grafana gets the shared dashboard"
    );
}

#[test]
fn broken_compose_files_are_caught() {
    let mut c = compose();
    c["services"]["api"]["depends_on"]["sprocket-init"]["condition"] = "service_done".into();
    assert!(
        !compose_errors(&c).is_empty(),
        "unknown depends_on condition accepted"
    );
    let mut c = compose();
    c["services"]["worker-render"]["healthcheck"]["intervall"] = "5s".into();
    assert!(
        !compose_errors(&c).is_empty(),
        "unknown healthcheck field accepted"
    );
    let mut c = compose();
    c["services"]["worker-render"]["command"] = serde_json::json!(["worker", "rendr"]);
    assert!(problems(&c)
        .iter()
        .any(|x| x.contains("worker-render: command")));
    let mut c = compose();
    c["services"]["schema-registry"]
        .as_object_mut()
        .unwrap()
        .remove("healthcheck");
    assert!(problems(&c).iter().any(|x| x.contains("no healthcheck")));
    let caught = |mutate: &dyn Fn(&mut Value), needle: &str| {
        let mut c = compose();
        mutate(&mut c);
        let p = problems(&c);
        assert!(p.iter().any(|x| x.contains(needle)), "{needle}: {p:?}");
    };
    let remove = |v: &mut Value, key: &str| {
        v.as_object_mut().unwrap().remove(key);
    };
    caught(
        &|c| remove(&mut c["services"]["kafka"]["environment"], "KAFKA_LOG_DIRS"),
        "KAFKA_LOG_DIRS is not set",
    );
    caught(
        &|c| {
            c["services"]["kafka"]["environment"]["KAFKA_LOG_DIRS"] =
                "/tmp/kraft-combined-logs".into()
        },
        "log dir /tmp/kraft-combined-logs is not a named volume's mount point",
    );
    caught(
        &|c| remove(&mut c["services"]["postgres"], "restart"),
        "postgres: restart null, unlike Sprocket's services",
    );
    caught(
        &|c| c["services"]["kafka"]["restart"] = "on-failure".into(),
        "kafka: restart \"on-failure\"",
    );
    caught(
        &|c| {
            c["services"]["kafka"]["environment"]["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] =
                "true".into()
        },
        "kafka: ACLs are not enforced",
    );
    caught(
        &|c| {
            c["services"]["worker-render"]["environment"]
                ["SPROCKET__KAFKA__PROPERTIES__SASL__USERNAME"] = "ops".into()
        },
        "worker-render: Kafka principal Some(\"ops\"), not its role render",
    );
    caught(
        &|c| {
            remove(
                &mut c["services"]["sprocket-init"]["depends_on"],
                "kafka-acls",
            )
        },
        "sprocket-init: does not wait for kafka-acls",
    );
    caught(
        &|c| {
            c["services"]["webhooks"]["environment"]
                ["SPROCKET__KAFKA__PROPERTIES__SASL__USERNAME"] = "projector".into()
        },
        "webhooks: Kafka principal Some(\"projector\"), not its role webhooks",
    );
    caught(
        &|c| {
            let cmd = c["services"]["kafka-acls"]["command"][0].as_str().unwrap();
            c["services"]["kafka-acls"]["command"][0] = cmd.replace(" webhooks ", " ").into()
        },
        "webhooks: kafka-acls makes no credential for role webhooks",
    );
    caught(
        &|c| {
            c["services"]["webhooks"]["environment"]
                ["SPROCKET__KAFKA__PROPERTIES__SASL__PASSWORD"] = "projector-secret".into()
        },
        "webhooks: Kafka password Some(\"projector-secret\"), not the webhooks-secret",
    );
    caught(
        &|c| remove(&mut c["services"]["webhooks"], "healthcheck"),
        "webhooks: no healthcheck",
    );
    caught(
        &|c| remove(&mut c["services"], "webhooks"),
        "no webhooks service",
    );
    caught(
        &|c| remove(&mut c["services"], "janitor"),
        "no janitor service",
    );
    caught(
        &|c| {
            let cmd = c["services"]["kafka-acls"]["command"][0].as_str().unwrap();
            c["services"]["kafka-acls"]["command"][0] = cmd.replace(" janitor ", " ").into()
        },
        "janitor: kafka-acls makes no credential for role janitor",
    );
    caught(
        &|c| {
            c["services"]["janitor"]["environment"]["SPROCKET__KAFKA__PROPERTIES__SASL__USERNAME"] =
                "webhooks".into()
        },
        "janitor: Kafka principal Some(\"webhooks\"), not its role janitor",
    );
    caught(
        &|c| c["services"]["janitor"]["command"] = serde_json::json!(["webhooks"]),
        "janitor: command [\"webhooks\"], expected [\"janitor\"]",
    );
    let prom = serde_json::json!({"scrape_configs": [{"dns_sd_configs": [{"names": ["api"]}]}]});
    let p = prometheus_problems(&prom);
    assert!(p.iter().any(|x| x.contains("worker-render")));
    assert!(
        p.iter().any(|x| x.contains("does not scrape webhooks")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|x| x.contains("does not scrape janitor")),
        "{p:?}"
    );
}
