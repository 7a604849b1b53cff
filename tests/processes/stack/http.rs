//! The deployment as its users reach it over HTTP: the API, the schema
//! registry and the broker's fault injection.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sprocket_tests::api;

use super::Stack;

impl Stack {
    /// Posts a fault to the broker (started with `faults: true`).
    pub async fn inject(&self, fault: &Value) {
        let url = self.faults.as_deref().expect("the stack serves no faults");
        let r = self
            .http
            .post(url)
            .json(fault)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "fault {fault}: {status} {body}");
    }

    /// `GET` on the schema registry, which must answer 200 with JSON.
    pub async fn registry_get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.registry);
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(r.status(), 200, "GET {url}");
        r.json().await.expect("registry JSON")
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        api::get(&self.http, &format!("{}{path}", self.api)).await
    }

    /// `GET path`, which must answer 200 with JSON.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub async fn bytes(&self, path: &str) -> Vec<u8> {
        api::bytes(&self.http, &format!("{}{path}", self.api)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        api::post_json(&self.http, &format!("{}{path}", self.api), body).await
    }

    /// Uploads a file; returns the upload id.
    pub async fn upload(&self, file: &Path) -> Value {
        api::upload(&self.http, &self.api, file).await["upload"].clone()
    }

    /// Uploads `clip` and submits it as job `id` with `recipe`.
    pub async fn submit(&self, clip: &Path, id: &str, recipe: &str) {
        let upload = self.upload(clip).await;
        let (status, body) = self
            .post_json(
                "/v1/jobs",
                &serde_json::json!({"job_id": id, "source": {"upload": upload}, "recipe": recipe}),
            )
            .await;
        assert_eq!(status, 202, "submitting {id}: {body}");
    }

    /// Polls the job until `done` holds, failing fast if a service dies.
    pub async fn wait_for(
        &mut self,
        id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            self.assert_running();
            let (status, job) = self.get(&format!("/v1/jobs/{id}")).await;
            if status == 200 && done(&job) {
                return job;
            }
            assert!(
                start.elapsed() < timeout,
                "job {id} did not get there in {timeout:?}; last seen: {status} {job:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the job is succeeded, failed or cancelled.
    pub async fn wait_terminal(&mut self, id: &str, timeout: Duration) -> Value {
        self.wait_for(id, timeout, api::is_terminal).await
    }
}
