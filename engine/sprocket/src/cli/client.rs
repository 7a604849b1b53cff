//! Client commands: they talk to the status API over HTTP, like any user.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{json, Value};

/// The status API as a client reaches it: its URL, and an HTTP client that
/// sends the API key on every request.
#[derive(Clone)]
pub struct Api {
    pub url: String,
    pub http: reqwest::Client,
}

impl Api {
    /// `url` with `key` (`Authorization: Bearer <key>`) on every request.
    pub fn new(url: &str, key: Option<&str>) -> anyhow::Result<Api> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = key {
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.trim()))
                    .context("the API key is not a valid header value")?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(Api {
            url: url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .default_headers(headers)
                .build()?,
        })
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.url))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.url))
    }

    fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.delete(format!("{}{path}", self.url))
    }
}

pub(super) async fn check(resp: reqwest::Response) -> anyhow::Result<Value> {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = body["error"]["message"].as_str().unwrap_or("no details");
        bail!("{status}: {msg}");
    }
    Ok(body)
}

/// Uploads `file`, submits a job for it and, with `wait`, follows it to the end.
/// Returns the job id.
pub async fn submit(
    api: &Api,
    file: &Path,
    recipe: &str,
    id: Option<&str>,
    wait: bool,
) -> anyhow::Result<String> {
    let f = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("opening {}", file.display()))?;
    let len = f.metadata().await?.len();
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(f));
    let upload = check(
        api.post("/v1/uploads")
            .header("content-length", len)
            .body(body)
            .send()
            .await
            .context("uploading")?,
    )
    .await?;
    let mut req = json!({"source": {"upload": upload["upload"]}, "recipe": recipe});
    if let Some(id) = id {
        req["job_id"] = json!(id);
    }
    let job = check(api.post("/v1/jobs").json(&req).send().await?).await?;
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    println!(
        "job {id} submitted ({} bytes uploaded, sha256 {})",
        upload["bytes"],
        upload["sha256"].as_str().unwrap_or("")
    );
    if wait {
        watch(api, &id).await?;
    }
    Ok(id)
}

/// Follows the job's event stream, one progress bar per phase, until the
/// job ends; prints it then. Fails unless it succeeded.
pub async fn watch(api: &Api, id: &str) -> anyhow::Result<()> {
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>8} [{bar:40}] {percent:>3}% {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    let phases: Vec<(&str, ProgressBar)> = ["ingest", "analyze", "render", "archive"]
        .into_iter()
        .map(|p| {
            let bar = bars.add(ProgressBar::new(100).with_style(style.clone()));
            bar.set_prefix(p);
            bar.set_message("waiting");
            (p, bar)
        })
        .collect();
    let bar = |phase: &str| phases.iter().find(|(p, _)| *p == phase).map(|(_, b)| b);
    let mut end = None;
    events(api, id, |e| {
        let data = &e["data"];
        let phase = data["phase"].as_str().unwrap_or_default();
        match e["type"].as_str().unwrap_or_default() {
            "PhaseStarted" => {
                if let Some(b) = bar(phase) {
                    b.set_message(format!("running (attempt {})", e["attempt"]));
                }
            }
            "PhaseProgress" => {
                if let Some(b) = bar(phase) {
                    b.set_position(data["percent"].as_f64().unwrap_or(0.0) as u64);
                }
            }
            "PhaseRetryScheduled" => {
                if let Some(b) = bar(phase) {
                    b.set_message(format!(
                        "retrying: {}",
                        data["error"]["message"].as_str().unwrap_or("")
                    ));
                }
            }
            "PhaseFailed" => {
                if let Some(b) = bar(phase) {
                    b.abandon_with_message(format!(
                        "failed: {}",
                        data["error"]["code"].as_str().unwrap_or("")
                    ));
                }
            }
            done @ ("MediaIngested" | "MediaAnalyzed" | "MediaRendered" | "MediaArchived") => {
                let phase = match done {
                    "MediaIngested" => "ingest",
                    "MediaAnalyzed" => "analyze",
                    "MediaRendered" => "render",
                    _ => "archive",
                };
                if let Some(b) = bar(phase) {
                    b.set_position(100);
                    b.finish_with_message("done");
                }
            }
            status @ ("JobSucceeded" | "JobFailed" | "JobCancelled") => {
                end = Some(status.to_owned());
                return ControlFlow::Break(());
            }
            _ => {}
        }
        ControlFlow::Continue(())
    })
    .await?;
    for (_, b) in &phases {
        if !b.is_finished() {
            b.abandon();
        }
    }
    let job = check(api.get(&format!("/v1/jobs/{id}")).send().await?).await?;
    print_job(&api.url, &job);
    match end.as_deref() {
        Some("JobSucceeded") => Ok(()),
        _ => bail!("job {id} {}", job["status"].as_str().unwrap_or("ended")),
    }
}

/// Reads the job's Server-Sent Events, handing each event's envelope to
/// `on_event` until it breaks; a dropped connection is resumed with
/// `Last-Event-ID`, and a job not projected yet is waited for.
async fn events(
    api: &Api,
    id: &str,
    mut on_event: impl FnMut(&Value) -> ControlFlow<()>,
) -> anyhow::Result<()> {
    let path = format!("/v1/jobs/{id}/events/stream");
    let mut last: Option<String> = None;
    loop {
        let mut req = api.get(&path).header("accept", "text/event-stream");
        if let Some(l) = &last {
            req = req.header("last-event-id", l);
        }
        let resp = match req.send().await {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
            Ok(r) if !r.status().is_success() => {
                check(r).await?;
                unreachable!("check fails on an error status");
            }
            Ok(r) => r,
            Err(e) => {
                eprintln!("event stream: {e}; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut body = resp.bytes_stream();
        let mut sse = SseReader::default();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            for (id, data) in sse.push(&chunk) {
                if id.is_some() {
                    last = id;
                }
                let envelope: Value = serde_json::from_str(&data)
                    .with_context(|| format!("an event that is not JSON: {data}"))?;
                if on_event(&envelope).is_break() {
                    return Ok(());
                }
            }
        }
        // Ended without the terminal event (the connection dropped, or the
        // job ended and was retried): go on after the last one.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The `text/event-stream` format, read as it arrives: `id:` and `data:`
/// lines up to a blank line make an event; comments and other fields are
/// skipped.
#[derive(Default)]
struct SseReader {
    line: Vec<u8>,
    id: Option<String>,
    data: Option<String>,
}

impl SseReader {
    /// The events `bytes` completes, each as its id and its data.
    fn push(&mut self, bytes: &[u8]) -> Vec<(Option<String>, String)> {
        let mut out = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let line = String::from_utf8_lossy(&self.line)
                .trim_end_matches('\r')
                .to_owned();
            self.line.clear();
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    out.push((self.id.take(), data));
                }
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => self.id = Some(value.to_owned()),
                "data" => match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => self.data = Some(value.to_owned()),
                },
                _ => {}
            }
        }
        out
    }
}

fn print_job(api: &str, job: &Value) {
    println!(
        "job {} {}",
        job["id"].as_str().unwrap_or(""),
        job["status"].as_str().unwrap_or("")
    );
    if let Some(e) = job.get("error").filter(|e| !e.is_null()) {
        println!(
            "  error: {} — {}",
            e["code"].as_str().unwrap_or(""),
            e["message"].as_str().unwrap_or("")
        );
    }
    for a in job["artifacts"].as_array().into_iter().flatten() {
        println!(
            "  {:<15} {:>10} bytes  sha256 {}  {api}{}",
            a["name"].as_str().unwrap_or(""),
            a["bytes"],
            a["sha256"].as_str().unwrap_or(""),
            a["url"].as_str().unwrap_or("")
        );
    }
}

pub async fn status(api: &Api, id: &str) -> anyhow::Result<()> {
    let job = check(api.get(&format!("/v1/jobs/{id}")).send().await?).await?;
    print_job(&api.url, &job);
    println!(
        "  progress {}%  phase {}  attempts {}",
        job["progress"], job["phase"], job["attempts"]
    );
    Ok(())
}

pub async fn jobs(api: &Api, status: Option<&str>, limit: u32) -> anyhow::Result<()> {
    let mut path = format!("/v1/jobs?limit={limit}");
    if let Some(s) = status {
        path.push_str(&format!("&status={s}"));
    }
    let page = check(api.get(&path).send().await?).await?;
    println!(
        "{:<34} {:<10} {:<8} {:>6}  submitted",
        "id", "status", "phase", "%"
    );
    for j in page["jobs"].as_array().into_iter().flatten() {
        println!(
            "{:<34} {:<10} {:<8} {:>6}  {}",
            j["id"].as_str().unwrap_or(""),
            j["status"].as_str().unwrap_or(""),
            j["phase"].as_str().unwrap_or("-"),
            j["progress"],
            j["submitted_at"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

pub async fn cancel(api: &Api, id: &str) -> anyhow::Result<()> {
    let resp = api.post(&format!("/v1/jobs/{id}/cancel")).send().await?;
    check(resp).await?;
    println!("cancellation of job {id} requested");
    Ok(())
}

pub async fn retry(api: &Api, id: &str) -> anyhow::Result<()> {
    let resp = api.post(&format!("/v1/jobs/{id}/retry")).send().await?;
    let body = check(resp).await?;
    println!(
        "job {id} redriven from its {} phase",
        body["phase"].as_str().unwrap_or("?")
    );
    Ok(())
}

/// `sprocket keys create`: prints the new key as the last line.
pub async fn create_key(
    api: &Api,
    tenant: &str,
    scopes: &[String],
    name: Option<&str>,
) -> anyhow::Result<()> {
    let mut req = json!({"tenant": tenant, "scopes": scopes});
    if let Some(n) = name {
        req["name"] = json!(n);
    }
    let key = check(api.post("/v1/keys").json(&req).send().await?).await?;
    println!(
        "key {} for tenant {} with {} (shown once):",
        key["id"].as_str().unwrap_or(""),
        key["tenant"].as_str().unwrap_or(""),
        scopes.join(", ")
    );
    println!("{}", key["key"].as_str().unwrap_or(""));
    Ok(())
}

/// `sprocket keys list`.
pub async fn list_keys(api: &Api) -> anyhow::Result<()> {
    let page = check(api.get("/v1/keys").send().await?).await?;
    println!(
        "{:<32} {:<16} {:<28} {:<30} name",
        "id", "tenant", "scopes", "revoked"
    );
    for k in page["keys"].as_array().into_iter().flatten() {
        let scopes: Vec<&str> = k["scopes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        println!(
            "{:<32} {:<16} {:<28} {:<30} {}",
            k["id"].as_str().unwrap_or(""),
            k["tenant"].as_str().unwrap_or(""),
            scopes.join(","),
            k["revoked_at"].as_str().unwrap_or("-"),
            k["name"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// `sprocket keys revoke ID`.
pub async fn revoke_key(api: &Api, id: &str) -> anyhow::Result<()> {
    let key = check(api.delete(&format!("/v1/keys/{id}")).send().await?).await?;
    println!(
        "key {id} revoked at {}",
        key["revoked_at"].as_str().unwrap_or("?")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::SseReader;

    #[test]
    fn events_are_read_across_chunks_and_comments_are_skipped() {
        let mut r = SseReader::default();
        assert!(r.push(b": keep-alive\n\nid: 1\ndata: {\"a\"").is_empty());
        let got = r.push(b": 1}\n\nid: 2\r\ndata: x\r\ndata: y\r\n\r\n");
        assert_eq!(
            got,
            [
                (Some("1".to_owned()), "{\"a\": 1}".to_owned()),
                (Some("2".to_owned()), "x\ny".to_owned()),
            ]
        );
    }
}
