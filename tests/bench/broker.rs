//! The two brokers the bench compares on: Apache Kafka (a one-node KRaft
//! cluster from `scripts/kafka.sh`) and the embedded broker (librdkafka's mock
//! cluster behind Sprocket's relay, in this process). Each comes with the
//! embedded schema registry, and makes topics the way its kind allows: Kafka
//! through CreateTopics, the mock cluster through its own API (it does not
//! serve CreateTopics).

use std::path::PathBuf;

use anyhow::{bail, Context};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use sprocket_core::Topics;
use sprocket_platform::admin::{self, TopicSpec};
use sprocket_platform::bus::Bus;
use sprocket_server::dev::{EmbeddedRegistry, Infra};
use sprocket_tests::kafka::KafkaCluster;

/// Partitions of every topic the bench makes (Sprocket's default).
pub const PARTITIONS: i32 = 3;

pub enum Broker {
    /// Apache Kafka, one node, and the embedded registry beside it.
    Kafka {
        cluster: KafkaCluster,
        registry: EmbeddedRegistry,
    },
    /// The embedded broker and registry, as `sprocket dev` runs them.
    Embedded(Infra),
}

impl Broker {
    pub async fn kafka() -> anyhow::Result<Broker> {
        let cluster = KafkaCluster::start(1);
        let registry = EmbeddedRegistry::start("127.0.0.1:0").await?;
        Ok(Broker::Kafka { cluster, registry })
    }

    pub async fn embedded() -> anyhow::Result<Broker> {
        // Sprocket's topics under the default prefix are made too; the bench
        // uses prefixes of its own, made by `sprocket_topics`.
        let infra =
            Infra::start("127.0.0.1:0", "127.0.0.1:0", &Topics::default(), PARTITIONS).await?;
        Ok(Broker::Embedded(infra))
    }

    /// A short name for tables: `Kafka` or `embedded`.
    pub fn name(&self) -> &'static str {
        match self {
            Broker::Kafka { .. } => "Kafka",
            Broker::Embedded(_) => "embedded",
        }
    }

    pub fn bootstrap(&self) -> String {
        match self {
            Broker::Kafka { cluster, .. } => cluster.bootstrap.clone(),
            Broker::Embedded(infra) => infra.bootstrap_servers(),
        }
    }

    pub fn registry_url(&self) -> String {
        match self {
            Broker::Kafka { registry, .. } => registry.url(),
            Broker::Embedded(infra) => infra.registry_url(),
        }
    }

    /// The Kafka node's process, whose CPU time the bench reads; `None` for
    /// the embedded broker (it runs in this process).
    pub fn pid_file(&self) -> Option<PathBuf> {
        match self {
            Broker::Kafka { cluster, .. } => Some(cluster.dir().join("node-1").join("pid")),
            Broker::Embedded(_) => None,
        }
    }

    /// Sprocket's topics under `bus`'s prefix: on Kafka as `sprocket topics
    /// create` makes them ([`Bus::create_topics`]).
    pub async fn sprocket_topics(&self, bus: &Bus) -> anyhow::Result<()> {
        match self {
            Broker::Kafka { .. } => {
                let report = bus.create_topics().await?;
                if !report.differing().is_empty() {
                    bail!("Sprocket's topics differ from their configuration:\n{report}");
                }
                Ok(())
            }
            Broker::Embedded(_) => self.topics(bus, &bus.topics.all()).await,
        }
    }

    /// Plain topics of [`PARTITIONS`] partitions each (the chain's).
    pub async fn topics(&self, bus: &Bus, names: &[String]) -> anyhow::Result<()> {
        match self {
            Broker::Kafka { .. } => {
                let admin: AdminClient<DefaultClientContext> = bus
                    .client_config()
                    .create()
                    .context("creating an admin client")?;
                let specs = names
                    .iter()
                    .map(|name| TopicSpec {
                        name: name.clone(),
                        partitions: PARTITIONS,
                        replication: 1,
                        configs: Default::default(),
                    })
                    .collect();
                admin::ensure(&admin, specs).await?;
                Ok(())
            }
            Broker::Embedded(infra) => {
                let broker = infra.broker.as_ref().context("the embedded broker")?;
                for name in names {
                    broker.create_topic(name, PARTITIONS)?;
                }
                Ok(())
            }
        }
    }
}
