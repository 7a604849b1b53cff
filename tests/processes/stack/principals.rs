//! Kafka principals for a stack on a `--sasl` cluster: a SCRAM-SHA-512 user
//! per role, made with its ACLs by `scripts/kafka-acls.sh`, and what each
//! process is given to authenticate as its role — `[kafka.properties]` as
//! `SPROCKET__KAFKA__PROPERTIES__…` variables, as a Kubernetes Secret would.
//! On a `--tls` cluster that is SASL_SSL, the brokers verified against the
//! cluster's CA (`ssl.ca.location`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use sprocket_tests::kafka::KafkaCluster;

/// The roles `kafka-acls.sh` makes a principal for.
pub const ROLES: [&str; 11] = [
    "api",
    "projector",
    "ingest",
    "analyze",
    "render",
    "archive",
    "webhooks",
    "janitor",
    "ops",
    "keda",
    "submitter",
];

pub struct Principals {
    passwords: BTreeMap<&'static str, String>,
    /// The cluster's `security.protocol` (SASL_SSL or SASL_PLAINTEXT).
    protocol: &'static str,
    /// The cluster's CA, when its listener is SASL_SSL.
    ca: Option<PathBuf>,
}

impl Principals {
    /// Runs `scripts/kafka-acls.sh` as the cluster's super user, with a fresh
    /// password per role written under `dir`.
    pub fn make(cluster: &KafkaCluster, dir: &Path) -> Principals {
        std::fs::create_dir_all(dir).expect("the passwords' folder");
        let passwords: BTreeMap<&'static str, String> = ROLES
            .iter()
            .map(|r| (*r, format!("{r}-{}", uuid::Uuid::now_v7().simple())))
            .collect();
        for (role, password) in &passwords {
            std::fs::write(dir.join(role), password).expect("a role's password");
        }
        let started = Instant::now();
        let out = tokio::task::block_in_place(|| {
            Command::new("bash")
                .arg(sprocket_tests::kafka::script().with_file_name("kafka-acls.sh"))
                .arg("--bootstrap-server")
                .arg(&cluster.bootstrap)
                .arg("--command-config")
                .arg(cluster.admin_properties())
                .arg("--passwords")
                .arg(dir)
                .stdin(Stdio::null())
                .output()
                .expect("running scripts/kafka-acls.sh")
        });
        assert!(
            out.status.success(),
            "kafka-acls.sh failed ({})\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "[kafka] principals and ACLs made in {:.1?}: {}",
            started.elapsed(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
        Principals {
            passwords,
            protocol: cluster.security_protocol(),
            ca: cluster.ca(),
        }
    }

    pub fn password(&self, principal: &str) -> &str {
        self.passwords
            .get(principal)
            .unwrap_or_else(|| panic!("no principal {principal}"))
    }

    /// The principal a stack's process runs as: its role (`worker-render` →
    /// `render`, `api`, `projector`).
    pub fn of_process(process: &str) -> &str {
        process.strip_prefix("worker-").unwrap_or(process)
    }

    /// What a `sprocket` process is given to authenticate as `principal`
    /// (and, on a `--tls` cluster, to verify the brokers).
    pub fn env(&self, principal: &str) -> Vec<(String, String)> {
        let var = |name: &str| format!("SPROCKET__KAFKA__PROPERTIES__{name}");
        let mut env = vec![
            (var("SECURITY__PROTOCOL"), self.protocol.into()),
            (var("SASL__MECHANISM"), "SCRAM-SHA-512".into()),
            (var("SASL__USERNAME"), principal.into()),
            (var("SASL__PASSWORD"), self.password(principal).into()),
        ];
        if let Some(ca) = &self.ca {
            env.push((var("SSL__CA__LOCATION"), ca.display().to_string()));
        }
        env
    }

    /// librdkafka properties for a client of the test's own as `principal`.
    pub fn client_config(&self, bootstrap: &str, principal: &str) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", bootstrap)
            .set("security.protocol", self.protocol)
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .set("sasl.username", principal)
            .set("sasl.password", self.password(principal));
        if let Some(ca) = &self.ca {
            c.set("ssl.ca.location", ca.display().to_string());
        }
        c
    }

    /// Java client properties (Kafka's tools) for `principal`.
    pub fn java_properties(&self, principal: &str) -> String {
        let tls = match &self.ca {
            Some(ca) => format!(
                "ssl.truststore.type=PEM\nssl.truststore.location={}\n",
                ca.display()
            ),
            None => String::new(),
        };
        format!(
            "security.protocol={}\n{tls}sasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \
             required username=\"{principal}\" password=\"{}\";\n",
            self.protocol,
            self.password(principal)
        )
    }
}
