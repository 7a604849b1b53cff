//! Client commands: they talk to the status API over HTTP, like any user.

use std::ops::ControlFlow;
use std::path::Path;

use anyhow::{bail, Context};
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

    pub(super) fn get(&self, path: &str) -> reqwest::RequestBuilder {
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
    super::sse::events(api, id, |e| {
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

/// `sprocket jobs`' filters, as `GET /v1/jobs` takes them.
pub struct JobFilters<'a> {
    pub status: Option<&'a str>,
    /// `key=value` each.
    pub labels: &'a [String],
    /// RFC 3339.
    pub since: Option<&'a str>,
}

impl JobFilters<'_> {
    /// `/v1/jobs?…`, each value encoded (`label` once per label).
    fn path(&self, limit: u32) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("limit", &limit.to_string());
        if let Some(s) = self.status {
            q.append_pair("status", s);
        }
        for l in self.labels {
            q.append_pair("label", l);
        }
        if let Some(t) = self.since {
            q.append_pair("since", t);
        }
        format!("/v1/jobs?{}", q.finish())
    }
}

pub async fn jobs(api: &Api, filters: &JobFilters<'_>, limit: u32) -> anyhow::Result<()> {
    print!("{}", jobs_table(api, filters, limit).await?);
    Ok(())
}

/// The first page of jobs as a table: id, status, phase, progress, age,
/// recipe and labels.
pub(super) async fn jobs_table(
    api: &Api,
    filters: &JobFilters<'_>,
    limit: u32,
) -> anyhow::Result<String> {
    use std::fmt::Write;
    let request = api.get(&filters.path(limit));
    let page = check(request.send().await?).await?;
    let now = chrono::Utc::now();
    let mut out = format!(
        "{:<34} {:<10} {:<8} {:>6} {:>8}  {:<10} labels\n",
        "id", "status", "phase", "%", "age", "recipe"
    );
    for j in page["jobs"].as_array().into_iter().flatten() {
        let age = j["submitted_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| age(now - t.with_timezone(&chrono::Utc)))
            .unwrap_or_default();
        let labels: Vec<String> = j["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        let _ = writeln!(
            out,
            "{:<34} {:<10} {:<8} {:>6} {:>8}  {:<10} {}",
            j["id"].as_str().unwrap_or(""),
            j["status"].as_str().unwrap_or(""),
            j["phase"].as_str().unwrap_or("-"),
            j["progress"],
            age,
            j["recipe"]["name"].as_str().unwrap_or("-"),
            labels.join(",")
        );
    }
    Ok(out)
}

/// `42s`, `5m`, `3h`, `2d`.
fn age(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
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
    use super::*;

    #[test]
    fn job_filters_are_encoded_with_a_label_pair_each() {
        let labels = ["team=a b".to_owned(), "k=v&x=1".to_owned()];
        let filters = JobFilters {
            status: Some("running"),
            labels: &labels,
            since: Some("2025-06-01T00:00:00+02:00"),
        };
        assert_eq!(
            filters.path(5),
            "/v1/jobs?limit=5&status=running&label=team%3Da+b&label=k%3Dv%26x%3D1\
             &since=2025-06-01T00%3A00%3A00%2B02%3A00"
        );
        let none = JobFilters {
            status: None,
            labels: &[],
            since: None,
        };
        assert_eq!(none.path(20), "/v1/jobs?limit=20");
    }
}
