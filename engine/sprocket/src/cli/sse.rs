//! Server-Sent Events as `watch`, `submit --wait` and `jobs --watch` read
//! them: resumed with `Last-Event-ID` after a dropped connection.

use std::ops::ControlFlow;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use serde_json::Value;

use super::client::{check, Api};

/// Reads the job's Server-Sent Events, handing each event's envelope to
/// `on_event` until it breaks; a dropped connection is resumed with
/// `Last-Event-ID`, and a job not projected yet is waited for.
pub(super) async fn events(
    api: &Api,
    id: &str,
    on_event: impl FnMut(&Value) -> ControlFlow<()>,
) -> anyhow::Result<()> {
    follow(api, &format!("/v1/jobs/{id}/events/stream"), on_event).await
}

/// Reads the Server-Sent Events at `path` (a job's, or the tenant's
/// `/v1/events/stream`), handing each event's envelope to `on_event` until
/// it breaks; resumes after a dropped connection, waits while `path`
/// answers 404.
pub(super) async fn follow(
    api: &Api,
    path: &str,
    mut on_event: impl FnMut(&Value) -> ControlFlow<()>,
) -> anyhow::Result<()> {
    let mut last: Option<String> = None;
    loop {
        let mut req = api.get(path).header("accept", "text/event-stream");
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
