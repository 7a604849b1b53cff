//! What the outbound fetcher logs, alone in its binary: the subscriber that
//! captures the logs is the process's only one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::routing::get;
use axum::Router;
use sprocket_platform::outbound::{Fetcher, Settings};

/// Captures what is logged.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn credentials_and_queries_never_reach_errors_or_logs() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();
    // Every path answers 404 but `/loop`, which redirects to itself forever.
    let app = Router::new().route(
        "/loop",
        get(|| async {
            (
                StatusCode::FOUND,
                [(header::LOCATION, "/loop?token=s3cr3t")],
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let fetcher = |allow: Vec<_>| {
        Fetcher::new(&Settings {
            allow_private: allow,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(20),
        })
        .unwrap()
    };
    let secret = |path: &str| format!("http://user:hunter2@{addr}/{path}?token=s3cr3t#frag");
    let allowed = fetcher(vec!["127.0.0.1/32".parse().unwrap()]);
    let errors = [
        fetcher(vec![]).get(&secret("refused"), 100).await.err(),
        allowed.get(&secret("missing"), 100).await.err(),
        allowed.get(&secret("loop"), 100).await.err(),
    ];

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for cause in [
        "/refused",
        "/missing",
        "404",
        "/loop",
        "more than 5 redirects",
    ] {
        assert!(logged.contains(cause), "{cause} is logged: {logged}");
    }
    for e in errors {
        let e = e.expect("an error");
        let text = format!("{e} {e:?}");
        for leak in ["hunter2", "user", "s3cr3t", "token", "frag"] {
            assert!(!text.contains(leak), "{leak} in the error {text}");
        }
    }
    for leak in ["hunter2", "s3cr3t", "token", "frag"] {
        assert!(!logged.contains(leak), "{leak} in the logs: {logged}");
    }
}
