//! Apache Kafka for the tests: a KRaft cluster started by `scripts/kafka.sh`
//! in a tempdir, and Kafka's own command-line tools run from the same jars.
//!
//! The cluster never outlives the test process: `kafka.sh` is given this
//! process's pid (`SPROCKET_KAFKA_PARENT`) and stops the cluster when it ends,
//! and dropping the handle stops it at once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use sprocket_server::lag::PartitionView;

/// `scripts/kafka.sh` of this source tree.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("kafka.sh")
}

/// A running cluster of combined broker+controller nodes on loopback.
pub struct KafkaCluster {
    dir: tempfile::TempDir,
    /// `host:port,…` of every node.
    pub bootstrap: String,
    nodes: usize,
    sasl: bool,
    tls: bool,
}

impl KafkaCluster {
    /// Starts `nodes` nodes (topics made by Sprocket get replication
    /// `min(nodes, 3)`); returns once every node answers with all brokers.
    pub fn start(nodes: usize) -> KafkaCluster {
        Self::start_with(nodes, false, false)
    }

    /// Like [`start`](Self::start), with `kafka.sh start --sasl`: clients
    /// authenticate with SCRAM-SHA-512 and ACLs decide what each may do
    /// (none yet: only the super user `admin` may do anything).
    pub fn start_sasl(nodes: usize) -> KafkaCluster {
        Self::start_with(nodes, true, false)
    }

    /// Like [`start_sasl`](Self::start_sasl), with `kafka.sh start --sasl
    /// --tls`: the listener clients and brokers use is SASL_SSL, its
    /// certificate signed by the cluster's own CA ([`ca`](Self::ca)).
    pub fn start_sasl_tls(nodes: usize) -> KafkaCluster {
        Self::start_with(nodes, true, true)
    }

    fn start_with(nodes: usize, sasl: bool, tls: bool) -> KafkaCluster {
        let dir = tempfile::Builder::new()
            .prefix("sprocket-kafka-")
            .tempdir()
            .expect("tempdir for Kafka");
        let started = Instant::now();
        let out = blocking(|| {
            Command::new("bash")
                .arg(script())
                .arg("start")
                .arg(dir.path())
                .arg(nodes.to_string())
                .args(sasl.then_some("--sasl"))
                .args(tls.then_some("--tls"))
                .env("SPROCKET_KAFKA_PARENT", std::process::id().to_string())
                .stdin(Stdio::null())
                .output()
                .expect("running scripts/kafka.sh")
        });
        assert!(
            out.status.success(),
            "scripts/kafka.sh start failed ({}); run `bash scripts/kafka.sh install` first?\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let bootstrap = stdout.lines().last().unwrap_or_default().trim().to_owned();
        assert!(
            bootstrap.contains(':'),
            "kafka.sh start printed no bootstrap servers last:\n{stdout}"
        );
        eprintln!(
            "[kafka] {nodes}-node cluster at {bootstrap} up in {:.1?}",
            started.elapsed()
        );
        KafkaCluster {
            dir,
            bootstrap,
            nodes,
            sasl,
            tls,
        }
    }

    /// The CA the brokers' certificate is signed by (PEM), on a `--tls`
    /// cluster.
    pub fn ca(&self) -> Option<PathBuf> {
        self.tls.then(|| self.dir.path().join("ca.pem"))
    }

    /// The `security.protocol` clients of this cluster use.
    pub fn security_protocol(&self) -> &'static str {
        match (self.sasl, self.tls) {
            (_, true) => "SASL_SSL",
            (true, false) => "SASL_PLAINTEXT",
            (false, false) => "PLAINTEXT",
        }
    }

    /// librdkafka properties of a client of this cluster as the super user
    /// (on a `--sasl` cluster; plain otherwise): bootstrap servers, SASL and,
    /// on a `--tls` cluster, `security.protocol=SASL_SSL` with
    /// `ssl.ca.location`.
    pub fn admin_client_config(&self) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("security.protocol", self.security_protocol());
        if self.sasl {
            c.set("sasl.mechanism", "SCRAM-SHA-512")
                .set("sasl.username", "admin")
                .set("sasl.password", self.admin_password());
        }
        if let Some(ca) = self.ca() {
            c.set("ssl.ca.location", ca.display().to_string());
        }
        c
    }

    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The super user's client properties on a `--sasl` cluster, for Kafka's
    /// tools (`--command-config`, `--producer.config`, …).
    pub fn admin_properties(&self) -> PathBuf {
        assert!(self.sasl, "the cluster was started without --sasl");
        self.dir.path().join("admin.properties")
    }

    /// The super user's password on a `--sasl` cluster.
    pub fn admin_password(&self) -> String {
        let text = std::fs::read_to_string(self.admin_properties()).expect("admin.properties");
        text.split("password=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a password in admin.properties")
            .to_owned()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The replication factor Sprocket's topics get on this cluster.
    pub fn replication(&self) -> usize {
        self.nodes.min(3)
    }

    fn script(&self, args: &[&str]) -> Output {
        blocking(|| {
            Command::new("bash")
                .arg(script())
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("running scripts/kafka.sh")
        })
    }

    fn node_verb(&self, verb: &str, node: usize) {
        let dir = self.dir.path().display().to_string();
        let out = self.script(&[verb, &dir, &node.to_string()]);
        assert!(
            out.status.success(),
            "kafka.sh {verb} {node} failed\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SIGKILLs node `n` (from 1).
    pub fn kill(&self, n: usize) {
        self.node_verb("kill", n)
    }

    /// Starts node `n` again; returns once it is back in the cluster.
    pub fn restart(&self, n: usize) {
        self.node_verb("restart", n)
    }

    /// SIGSTOPs node `n`: its process is frozen, its sockets stay open.
    pub fn pause(&self, n: usize) {
        self.node_verb("pause", n)
    }

    /// SIGCONTs node `n`.
    pub fn resume(&self, n: usize) {
        self.node_verb("resume", n)
    }

    /// Runs one of Kafka's tools (`kafka-topics`, `kafka-consumer-groups`, …)
    /// against this cluster's jars; `--bootstrap-server` is the caller's to give.
    pub fn tool(&self, name: &str, args: &[&str]) -> Output {
        tool(name, args, None)
    }

    /// `kafka-configs --describe` of a topic's configs.
    pub fn topic_configs(&self, topic: &str) -> String {
        self.tool_ok(
            "kafka-configs",
            &[
                "--bootstrap-server",
                &self.bootstrap,
                "--describe",
                "--entity-type",
                "topics",
                "--entity-name",
                topic,
            ],
        )
    }

    /// `kafka-topics --describe` of a topic.
    pub fn describe_topic(&self, topic: &str) -> String {
        self.tool_ok(
            "kafka-topics",
            &[
                "--bootstrap-server",
                &self.bootstrap,
                "--describe",
                "--topic",
                topic,
            ],
        )
    }

    /// Like [`tool`](Self::tool), panicking unless it exits 0; returns stdout.
    pub fn tool_ok(&self, name: &str, args: &[&str]) -> String {
        let out = self.tool(name, args);
        assert!(
            out.status.success(),
            "{name} {args:?} failed ({})\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One row of `kafka-consumer-groups --describe`: a partition the group has
/// (or had) offsets for. `None` where the tool prints `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub topic: String,
    pub partition: i32,
    pub current: Option<i64>,
    pub end: Option<i64>,
    pub lag: Option<i64>,
}

impl KafkaCluster {
    /// The groups' offsets as one `kafka-consumer-groups --describe` run
    /// shows them.
    pub fn describe_groups(
        &self,
        groups: &[&str],
    ) -> std::collections::BTreeMap<String, Vec<GroupRow>> {
        let mut args = vec!["--bootstrap-server", self.bootstrap.as_str(), "--describe"];
        for g in groups {
            args.extend(["--group", g]);
        }
        let out = self.tool_ok("kafka-consumer-groups", &args);
        groups
            .iter()
            .map(|g| ((*g).to_owned(), parse_group_rows(&out, g)))
            .collect()
    }
}

/// The rows of `kafka-consumer-groups --describe` output for `group`
/// (columns GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG …).
pub fn parse_group_rows(out: &str, group: &str) -> Vec<GroupRow> {
    let num = |w: &str| w.parse::<i64>().ok();
    let mut rows: Vec<GroupRow> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() >= 6 && w[0] == group)
        .filter_map(|w| {
            Some(GroupRow {
                topic: w[1].to_owned(),
                partition: w[2].parse().ok()?,
                current: num(w[3]),
                end: num(w[4]),
                lag: num(w[5]),
            })
        })
        .collect();
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    rows
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        let dir = self.dir.path().display().to_string();
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", &dir])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs a Kafka tool through `kafka.sh tool`, feeding `stdin` if given.
pub fn tool(name: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(script()).arg("tool").arg(name).args(args);
    blocking(|| crate::output_with_stdin(cmd, stdin)).expect("running scripts/kafka.sh tool")
}

/// Runs blocking work without stalling a multi-threaded tokio runtime's
/// other tasks (and plainly outside one).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// `topic`'s partitions on `brokers` against `group`'s committed offsets,
/// read as `GET /v1/phases` reads a phase's lag (the group need not exist).
pub fn topic_offsets(brokers: &str, group: &str, topic: &str) -> Vec<PartitionView> {
    blocking(|| {
        // A client with the group's id asks for its offsets without joining it.
        let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .create()
            .expect("an offsets client");
        sprocket_server::lag::topic_offsets(&consumer, topic)
            .unwrap_or_else(|e| panic!("{group}'s offsets on {topic}: {e}"))
    })
}

/// The partitions of `topic` that consumer group `group` has not committed
/// to their end (a partition never written to is caught up).
pub fn group_behind(brokers: &str, group: &str, topic: &str) -> Vec<PartitionView> {
    topic_offsets(brokers, group, topic)
        .into_iter()
        .filter(|p| p.lag > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_rows_are_read_from_the_tools_table() {
        let out = "\nConsumer group 'sprocket-render' has no active members.\n\n\
GROUP           TOPIC                 PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST  CLIENT-ID\n\
sprocket-render sprocket.render.retry 0          -               0               -    -            -     -\n\
sprocket-render sprocket.render       1          4               6               2    -            -     -\n";
        let rows = parse_group_rows(out, "sprocket-render");
        assert_eq!(
            rows,
            vec![
                GroupRow {
                    topic: "sprocket.render".into(),
                    partition: 1,
                    current: Some(4),
                    end: Some(6),
                    lag: Some(2)
                },
                GroupRow {
                    topic: "sprocket.render.retry".into(),
                    partition: 0,
                    current: None,
                    end: Some(0),
                    lag: None
                },
            ]
        );
    }
}
