//! A webhook receiver outside Sprocket's code (support/webhook_receiver.py,
//! Python's standard library): it checks the documented signature itself
//! and prints each request it gets, which [`Receiver`] collects.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

/// The receiver, and what it has printed so far.
pub struct Receiver {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    secrets: tempfile::NamedTempFile,
    seen: Arc<Mutex<Vec<Value>>>,
    _child: tokio::process::Child,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let secrets = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(secrets.path(), "{}").unwrap();
        let mut child = tokio::process::Command::new("python3")
            .arg(root.join("support/webhook_receiver.py"))
            .arg(secrets.path())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the receiver");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the receiver starts")
            .unwrap()
            .expect("it prints its port");
        let port = first.strip_prefix("port ").expect("port N").to_owned();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                into.lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).unwrap());
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}"),
            secrets,
            seen,
            _child: child,
        }
    }

    pub fn set_secrets(&self, secrets: &BTreeMap<&str, &str>) {
        std::fs::write(self.secrets.path(), serde_json::to_vec(secrets).unwrap()).unwrap();
    }

    pub fn on(&self, path: &str) -> Vec<Value> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|r| r["path"] == path).cloned().collect()
    }

    /// Waits until `done` holds for what `path` received.
    pub async fn wait(
        &self,
        path: &str,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let got = self.on(path);
            if done(&got) {
                return got;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "{path}: {what} never happened; received {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
