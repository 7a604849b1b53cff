//! Sprocket's topics on a cluster (`sprocket topics create`): each made with
//! the configured partitions and replication and the configs its role needs,
//! and each that exists already checked against them. Nothing existing is
//! altered: a difference is reported, and the run fails, for an operator to
//! decide on.
//!
//! | topic | configs |
//! |---|---|
//! | `sprocket.events` | `retention.ms=-1`, `retention.bytes=-1` (the history is kept for ever) |
//! | `sprocket.cancellations` | `cleanup.policy=compact` (latest request per job) |
//! | `sprocket.recipes` | `retention.ms=-1`, `retention.bytes=-1` (every stored version is kept) |
//! | every topic, replication ≥ 3 | `min.insync.replicas=2` (a write survives one broker lost) |

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use sprocket_core::Topics;

use crate::bus::BusError;

/// What a topic should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication: i32,
    pub configs: BTreeMap<&'static str, String>,
}

/// The specs of every Sprocket topic.
pub fn specs(topics: &Topics, partitions: i32, replication: i32) -> Vec<TopicSpec> {
    topics
        .all()
        .into_iter()
        .map(|name| {
            let mut configs = BTreeMap::new();
            if name == topics.events() || name == topics.recipes() {
                configs.insert("retention.ms", "-1".to_owned());
                configs.insert("retention.bytes", "-1".to_owned());
            } else if name == topics.cancellations() {
                configs.insert("cleanup.policy", "compact".to_owned());
            }
            if replication >= 3 {
                configs.insert("min.insync.replicas", "2".to_owned());
            }
            TopicSpec {
                name,
                partitions,
                replication,
                configs,
            }
        })
        .collect()
}

/// A topic as the cluster has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub partitions: i32,
    pub replication: i32,
    /// The spec's configs as the broker reports them; `None` when the broker
    /// does not answer DescribeConfigs (the embedded one).
    pub configs: Option<BTreeMap<String, String>>,
}

/// What became of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicState {
    Created,
    /// It exists as specified (configs unchecked when the broker cannot say).
    Unchanged {
        configs_checked: bool,
    },
    /// It exists, unlike the spec: one line per difference.
    Differs(Vec<String>),
}

/// How an existing topic differs from its spec; empty when it does not.
pub fn differences(spec: &TopicSpec, found: &Found) -> Vec<String> {
    let mut out = Vec::new();
    if found.partitions != spec.partitions {
        out.push(format!(
            "{} partitions (configured: {})",
            found.partitions, spec.partitions
        ));
    }
    if found.replication != spec.replication {
        out.push(format!(
            "replication {} (configured: {})",
            found.replication, spec.replication
        ));
    }
    if let Some(configs) = &found.configs {
        for (key, want) in &spec.configs {
            match configs.get(*key) {
                Some(have) if have == want => {}
                have => out.push(format!(
                    "{key}={} (wanted: {want})",
                    have.map(String::as_str).unwrap_or("unset")
                )),
            }
        }
    }
    out
}

/// The outcome of `sprocket topics create`, one line per topic.
#[derive(Debug, Clone, Default)]
pub struct TopicsReport {
    pub topics: Vec<(TopicSpec, TopicState)>,
}

impl TopicsReport {
    pub fn names(&self) -> Vec<String> {
        self.topics.iter().map(|(s, _)| s.name.clone()).collect()
    }

    pub fn created(&self) -> usize {
        self.count(|s| matches!(s, TopicState::Created))
    }

    /// Topics that exist unlike their spec.
    pub fn differing(&self) -> Vec<&TopicSpec> {
        self.topics
            .iter()
            .filter(|(_, s)| matches!(s, TopicState::Differs(_)))
            .map(|(spec, _)| spec)
            .collect()
    }

    fn count(&self, f: impl Fn(&TopicState) -> bool) -> usize {
        self.topics.iter().filter(|(_, s)| f(s)).count()
    }
}

impl fmt::Display for TopicsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (spec, state) in &self.topics {
            let configs: Vec<String> = spec
                .configs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let shape = format!(
                "{} partitions, replication {}{}",
                spec.partitions,
                spec.replication,
                if configs.is_empty() {
                    String::new()
                } else {
                    format!(", {}", configs.join(", "))
                }
            );
            match state {
                TopicState::Created => writeln!(f, "{}: created ({shape})", spec.name)?,
                TopicState::Unchanged { configs_checked } => writeln!(
                    f,
                    "{}: exists as configured ({shape}){}",
                    spec.name,
                    if *configs_checked {
                        ""
                    } else {
                        "; configs not checked: the broker does not describe them"
                    }
                )?,
                TopicState::Differs(diffs) => writeln!(
                    f,
                    "{}: EXISTS UNLIKE ITS CONFIGURATION: {}; left as it is",
                    spec.name,
                    diffs.join("; ")
                )?,
            }
        }
        write!(
            f,
            "{} topics: {} created, {} already as configured, {} differing",
            self.topics.len(),
            self.created(),
            self.count(|s| matches!(s, TopicState::Unchanged { .. })),
            self.differing().len()
        )
    }
}

const TIMEOUT: Duration = Duration::from_secs(15);

/// Creates the missing topics and checks the existing ones.
pub async fn ensure(
    admin: &AdminClient<DefaultClientContext>,
    wanted: Vec<TopicSpec>,
) -> Result<TopicsReport, BusError> {
    let failed = |context: &str| {
        let context = context.to_owned();
        move |source| BusError::Kafka { context, source }
    };
    let before = found(admin, &wanted)
        .await
        .map_err(failed("reading topics"))?;
    let missing: Vec<&TopicSpec> = wanted
        .iter()
        .filter(|s| !before.contains_key(&s.name))
        .collect();
    if !missing.is_empty() {
        let new: Vec<NewTopic> = missing
            .iter()
            .map(|s| {
                s.configs.iter().fold(
                    NewTopic::new(
                        &s.name,
                        s.partitions,
                        TopicReplication::Fixed(s.replication),
                    ),
                    |t, (k, v)| t.set(k, v),
                )
            })
            .collect();
        let opts = AdminOptions::new()
            .operation_timeout(Some(TIMEOUT))
            .request_timeout(Some(TIMEOUT));
        let results = admin
            .create_topics(new.iter(), &opts)
            .await
            .map_err(failed("creating topics"))?;
        for (name, code) in results.into_iter().filter_map(Result::err) {
            // Another process creating the same topic at once is fine.
            if code != RDKafkaErrorCode::TopicAlreadyExists {
                return Err(BusError::Kafka {
                    context: format!("creating topic {name}"),
                    source: KafkaError::AdminOp(code),
                });
            }
        }
    }
    let mut report = TopicsReport::default();
    for spec in wanted {
        let state = match before.get(&spec.name) {
            None => TopicState::Created,
            Some(found) => match differences(&spec, found) {
                d if d.is_empty() => TopicState::Unchanged {
                    configs_checked: found.configs.is_some(),
                },
                d => TopicState::Differs(d),
            },
        };
        report.topics.push((spec, state));
    }
    Ok(report)
}

/// The wanted topics that exist, as the cluster has them.
async fn found(
    admin: &AdminClient<DefaultClientContext>,
    wanted: &[TopicSpec],
) -> Result<BTreeMap<String, Found>, KafkaError> {
    let md: Metadata = tokio::task::block_in_place(|| admin.inner().fetch_metadata(None, TIMEOUT))?;
    let mut out = BTreeMap::new();
    for t in md.topics() {
        if t.error().is_some() || t.partitions().is_empty() {
            continue;
        }
        if wanted.iter().any(|s| s.name == t.name()) {
            out.insert(
                t.name().to_owned(),
                Found {
                    partitions: t.partitions().len() as i32,
                    replication: t.partitions()[0].replicas().len() as i32,
                    configs: None,
                },
            );
        }
    }
    if out.is_empty() {
        return Ok(out);
    }
    let resources: Vec<ResourceSpecifier> = out
        .keys()
        .map(|n| ResourceSpecifier::Topic(n.as_str()))
        .collect();
    let opts = AdminOptions::new().request_timeout(Some(TIMEOUT));
    // A broker that does not answer DescribeConfigs (the embedded one) leaves
    // the configs unchecked; the report says so.
    let Ok(described) = admin.describe_configs(resources.iter(), &opts).await else {
        return Ok(out);
    };
    for resource in described.into_iter().flatten() {
        let rdkafka::admin::OwnedResourceSpecifier::Topic(name) = &resource.specifier else {
            continue;
        };
        let Some(spec) = wanted.iter().find(|s| &s.name == name) else {
            continue;
        };
        let configs = spec
            .configs
            .keys()
            .filter_map(|k| {
                let v = resource.get(k)?.value.clone()?;
                Some(((*k).to_owned(), v))
            })
            .collect();
        if let Some(f) = out.get_mut(name) {
            f.configs = Some(configs);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_topic_gets_the_configs_of_its_role() {
        let t = Topics::default();
        let small = specs(&t, 3, 1);
        let events = small.iter().find(|s| s.name == "sprocket.events").unwrap();
        assert_eq!(events.configs["retention.ms"], "-1");
        let cancels = small
            .iter()
            .find(|s| s.name == "sprocket.cancellations")
            .unwrap();
        assert_eq!(cancels.configs["cleanup.policy"], "compact");
        let recipes = small.iter().find(|s| s.name == "sprocket.recipes").unwrap();
        assert_eq!(recipes.configs["retention.ms"], "-1");
        assert!(!recipes.configs.contains_key("cleanup.policy"));
        assert!(small
            .iter()
            .all(|s| !s.configs.contains_key("min.insync.replicas")));
        let replicated = specs(&t, 6, 3);
        assert!(replicated
            .iter()
            .all(|s| s.configs["min.insync.replicas"] == "2" && s.partitions == 6));
    }

    #[test]
    fn differences_name_each_mismatch() {
        let spec = specs(&Topics::default(), 3, 3)
            .into_iter()
            .find(|s| s.name == "sprocket.cancellations")
            .unwrap();
        let same = Found {
            partitions: 3,
            replication: 3,
            configs: Some(
                [("cleanup.policy", "compact"), ("min.insync.replicas", "2")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ),
        };
        assert!(differences(&spec, &same).is_empty());
        let unchecked = Found {
            configs: None,
            ..same.clone()
        };
        assert!(differences(&spec, &unchecked).is_empty());
        let off = Found {
            partitions: 1,
            replication: 3,
            configs: Some(
                [("cleanup.policy", "delete")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ),
        };
        assert_eq!(
            differences(&spec, &off),
            vec![
                "1 partitions (configured: 3)".to_owned(),
                "cleanup.policy=delete (wanted: compact)".to_owned(),
                "min.insync.replicas=unset (wanted: 2)".to_owned(),
            ]
        );
    }
}
