//! Extra `sprocket worker render` processes beside a [`Stack`], on its broker,
//! database and stores. Each has a host name of its own (`HOSTNAME`), so the
//! `producer` of what it publishes says which process did the work, serves
//! `/metrics` on a port of its own, and may be pinned to CPUs, as a replica
//! with a CPU limit would be.

use std::collections::{BTreeMap, BTreeSet};

use std::time::Duration;

use sprocket_tests::procs::{Launcher, Proc};

use crate::stack::Stack;
use crate::topic_log::TopicLog;

pub struct RenderWorkers {
    procs: BTreeMap<String, Proc>,
    /// Each worker's `/metrics` URL, once it has printed it.
    metrics: BTreeMap<String, String>,
    http: reqwest::Client,
    launcher: Launcher,
    started: u32,
    pub kafka: String,
}

impl RenderWorkers {
    /// Workers configured as the stack's own.
    pub fn beside(stack: &Stack) -> RenderWorkers {
        let root = stack
            .archive_dir()
            .parent()
            .expect("the stack's tempdir")
            .to_owned();
        RenderWorkers {
            procs: BTreeMap::new(),
            metrics: BTreeMap::new(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("HTTP client"),
            launcher: stack.launcher_beside(&root.join("render-logs")),
            started: 0,
            kafka: stack.kafka.clone(),
        }
    }

    /// Waits until `job`'s render starts on `events`; returns the `producer`
    /// that started it and its host (one of these workers).
    pub async fn render_started(events: &mut TopicLog, job: &str) -> (String, String) {
        events
            .read_until(
                &format!("{job}'s render starting"),
                Duration::from_secs(120),
                |r| {
                    r.iter().any(|e| {
                        e.job() == job && e.kind() == "PhaseStarted" && e.phase() == "render"
                    })
                },
            )
            .await;
        let producer = events.of(job, "PhaseStarted", "render")[0]
            .producer()
            .to_owned();
        let host = Self::host_of(&producer)
            .unwrap_or_else(|| panic!("render started by {producer:?}"))
            .to_owned();
        (producer, host)
    }

    /// The host of a render worker's `producer`, if it is one of these.
    pub fn host_of(producer: &str) -> Option<&str> {
        producer.strip_prefix("sprocket-worker-render@")
    }

    /// Starts a render worker named `host`, on `cpus` if any are given.
    pub fn start(&mut self, host: &str, cpus: &[usize]) {
        self.start_env(host, cpus, &[]);
    }

    /// Like [`start`](Self::start), with extra environment variables.
    pub fn start_env(&mut self, host: &str, cpus: &[usize], extra: &[(&str, &str)]) {
        assert!(!self.procs.contains_key(host), "{host} is already running");
        self.started += 1;
        let log = format!("{:02}-{host}", self.started);
        let args = ["worker", "render"];
        let mut env = vec![
            ("HOSTNAME", host),
            ("SPROCKET__METRICS__ADDR", "127.0.0.1:0"),
        ];
        env.extend_from_slice(extra);
        let p = if cpus.is_empty() {
            self.launcher.spawn_env(&log, &args, &env)
        } else {
            self.launcher.spawn_pinned(&log, &args, &env, cpus)
        };
        self.procs.insert(host.to_owned(), p);
    }

    /// The render partitions the worker on `host` has been assigned, as its
    /// consumer-lag gauge shows them (a label appears at the first lag reading,
    /// every 5 s, after a partition is assigned; it is never removed). `None`
    /// until the worker serves its metrics.
    pub async fn assigned(&mut self, host: &str, topic: &str) -> Option<BTreeSet<i32>> {
        if !self.metrics.contains_key(host) {
            let p = self.procs.get(host)?;
            let url = p.metrics_url()?;
            self.metrics.insert(host.to_owned(), url);
        }
        let url = &self.metrics[host];
        let text = self.http.get(url).send().await.ok()?.text().await.ok()?;
        let topic = format!("topic=\"{topic}\"");
        Some(
            text.lines()
                .filter(|l| l.starts_with("sprocket_consumer_lag_messages{") && l.contains(&topic))
                .filter_map(|l| {
                    let (_, rest) = l.split_once("partition=\"")?;
                    rest.split_once('"')?.0.parse().ok()
                })
                .collect(),
        )
    }

    /// The worker on `host`.
    pub fn proc(&self, host: &str) -> &Proc {
        self.procs
            .get(host)
            .unwrap_or_else(|| panic!("no render worker on {host}"))
    }

    /// Takes the worker on `host` out of the set (it keeps running until the
    /// returned handle is dropped or it exits).
    pub fn take(&mut self, host: &str) -> Proc {
        self.metrics.remove(host);
        self.procs
            .remove(host)
            .unwrap_or_else(|| panic!("no render worker on {host}"))
    }

    /// `GET /healthz` on the worker's metrics address: status and body.
    pub async fn healthz(&mut self, host: &str) -> Option<(u16, serde_json::Value)> {
        self.assigned(host, "").await?;
        let url = self.metrics[host].replace("/metrics", "/healthz");
        let r = self.http.get(&url).send().await.ok()?;
        let status = r.status().as_u16();
        Some((status, r.json().await.ok()?))
    }

    /// SIGKILLs the worker on `host`.
    pub fn kill(&mut self, host: &str) {
        let mut p = self
            .procs
            .remove(host)
            .unwrap_or_else(|| panic!("no render worker on {host}"));
        p.assert_running();
        p.kill();
        self.metrics.remove(host);
    }

    pub fn kill_all(&mut self) {
        let hosts: Vec<String> = self.procs.keys().cloned().collect();
        for h in hosts {
            self.kill(&h);
        }
    }

    /// Panics, with its stderr, if a worker has exited.
    pub fn assert_running(&mut self) {
        for p in self.procs.values_mut() {
            p.assert_running();
        }
    }
}
