//! The fetcher against real servers on loopback addresses.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body as AxumBody;
use axum::extract::{Path, Query};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::*;

/// Serves on `ip`, port 0:
/// `/ok` "hello"; `/to?url=…` a redirect there; `/hops/{n}` n relative
/// redirects, then "hello"; `/status/{code}`; `/sized/{n}` n bytes with a
/// length, `/streamed/{n}` without; `/silent` never answers; `/stalls` sends
/// its head and one byte, then nothing.
async fn serve(ip: &str) -> SocketAddr {
    #[derive(serde::Deserialize)]
    struct To {
        url: String,
    }
    let app =
        Router::new()
            .route("/ok", get(|| async { "hello" }))
            .route(
                "/to",
                get(|Query(to): Query<To>| async move {
                    (StatusCode::FOUND, [(header::LOCATION, to.url)])
                }),
            )
            .route(
                "/hops/{n}",
                get(|Path(n): Path<u32>| async move {
                    match n {
                        0 => "hello".into_response(),
                        n => (
                            StatusCode::FOUND,
                            [(header::LOCATION, format!("{}", n - 1))],
                        )
                            .into_response(),
                    }
                }),
            )
            .route(
                "/status/{code}",
                get(|Path(code): Path<u16>| async move { StatusCode::from_u16(code).unwrap() }),
            )
            .route(
                "/sized/{n}",
                get(|Path(n): Path<usize>| async move { vec![b'x'; n] }),
            )
            .route(
                "/streamed/{n}",
                get(|Path(n): Path<usize>| async move {
                    let chunks = (0..n).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(b"x")));
                    AxumBody::from_stream(futures::stream::iter(chunks))
                }),
            )
            .route("/silent", get(futures::future::pending::<()>))
            .route(
                "/stalls",
                get(|| async {
                    let first =
                        futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"x"))]);
                    Response::new(AxumBody::from_stream(futures::StreamExt::chain(
                        first,
                        futures::stream::pending(),
                    )))
                }),
            );
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn fetcher(allow: &[&str]) -> Fetcher {
    fetcher_with(allow, Duration::from_secs(5))
}

fn fetcher_with(allow: &[&str], read_timeout: Duration) -> Fetcher {
    Fetcher::new(&Settings {
        allow_private: allow.iter().map(|c| c.parse().unwrap()).collect(),
        connect_timeout: Duration::from_secs(5),
        read_timeout,
        total_timeout: Duration::from_secs(20),
    })
    .unwrap()
}

/// The whole body of `url`, or why not.
async fn fetch(f: &Fetcher, url: &str) -> Result<Vec<u8>, FetchError> {
    let mut body = f.get(url, 1000).await?;
    let mut all = Vec::new();
    while let Some(c) = body.chunk().await? {
        all.extend_from_slice(&c);
    }
    Ok(all)
}

fn assert_unreachable(r: Result<Vec<u8>, FetchError>, what: &str) {
    match r {
        Err(e @ FetchError::Unreachable) => {
            assert_eq!(e.to_string(), "the URL could not be fetched", "{what}")
        }
        other => panic!("{what}: {other:?}"),
    }
}

#[tokio::test]
async fn loopback_is_refused_unless_its_block_is_allowed() {
    let addr = serve("127.0.0.1").await;
    let url = format!("http://{addr}/ok");
    assert_unreachable(fetch(&fetcher(&[]), &url).await, "by default");
    assert_unreachable(
        fetch(&fetcher(&["10.0.0.0/8"]), &url).await,
        "another block allowed",
    );
    assert_eq!(
        fetch(&fetcher(&["127.0.0.1/32"]), &url).await.unwrap(),
        b"hello"
    );
    assert_eq!(
        fetch(&fetcher(&["127.0.0.0/8"]), &url).await.unwrap(),
        b"hello"
    );
}

#[tokio::test]
async fn a_name_is_judged_by_the_addresses_it_resolves_to() {
    let addr = serve("127.0.0.1").await;
    let url = format!("http://localhost:{}/ok", addr.port());
    assert_unreachable(fetch(&fetcher(&[]), &url).await, "localhost");
    assert_eq!(
        fetch(&fetcher(&["127.0.0.0/8", "::1"]), &url)
            .await
            .unwrap(),
        b"hello",
        "the same name, its addresses allowed"
    );
}

#[tokio::test]
async fn other_spellings_of_loopback_are_refused() {
    let addr = serve("127.0.0.1").await;
    let port = addr.port();
    for url in [
        format!("http://2130706433:{port}/ok"),
        format!("http://0x7f.1:{port}/ok"),
        format!("http://[::ffff:127.0.0.1]:{port}/ok"),
        format!("http://127.1:{port}/ok"),
    ] {
        assert_unreachable(fetch(&fetcher(&[]), &url).await, &url);
    }
}

#[tokio::test]
async fn a_redirect_is_checked_like_the_first_request() {
    let allowed = serve("127.0.0.1").await;
    let refused = serve("127.0.0.2").await;
    let to = |url: &str| format!("http://{allowed}/to?url={url}");
    let inner = format!("http://{refused}/ok");
    assert_eq!(
        fetch(&fetcher(&["127.0.0.0/8"]), &to(&inner))
            .await
            .unwrap(),
        b"hello",
        "followed where the target is allowed"
    );
    assert_unreachable(
        fetch(&fetcher(&["127.0.0.1/32"]), &to(&inner)).await,
        "a redirect to 127.0.0.2",
    );
    assert_unreachable(
        fetch(&fetcher(&["127.0.0.1/32"]), &to("file:///etc/passwd")).await,
        "a redirect to file://",
    );
}

#[tokio::test]
async fn at_most_five_redirects_are_followed() {
    let addr = serve("127.0.0.1").await;
    let f = fetcher(&["127.0.0.1/32"]);
    assert_eq!(
        fetch(&f, &format!("http://{addr}/hops/{MAX_REDIRECTS}"))
            .await
            .unwrap(),
        b"hello"
    );
    assert_unreachable(
        fetch(&f, &format!("http://{addr}/hops/{}", MAX_REDIRECTS + 1)).await,
        "six redirects",
    );
}

#[tokio::test]
async fn only_http_and_https_are_fetched() {
    let f = fetcher(&["0.0.0.0/0"]);
    for url in [
        "file:///etc/passwd",
        "ftp://127.0.0.1/x",
        "gopher://127.0.0.1:70/x",
        "data:text/plain,hello",
        "not a url",
    ] {
        assert_unreachable(fetch(&f, url).await, url);
    }
}

#[tokio::test]
async fn a_closed_port_looks_like_a_refused_address() {
    let open = serve("127.0.0.1").await;
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let refused = fetch(&fetcher(&[]), &format!("http://{open}/ok")).await;
    let not_listening = fetch(&fetcher(&["127.0.0.1/32"]), &format!("http://{closed}/ok")).await;
    let no_such_name = fetch(&fetcher(&[]), "http://no-such-host.invalid/ok").await;
    assert_unreachable(refused, "refused address");
    assert_unreachable(not_listening, "closed port");
    assert_unreachable(no_such_name, "unresolvable name");
}

#[tokio::test]
async fn a_silent_server_runs_into_the_read_timeout() {
    let addr = serve("127.0.0.1").await;
    let f = fetcher_with(&["127.0.0.1/32"], Duration::from_millis(300));
    for path in ["silent", "stalls"] {
        let started = std::time::Instant::now();
        assert_unreachable(fetch(&f, &format!("http://{addr}/{path}")).await, path);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "{path}: the read timeout, not the overall one, ended it after {took:?}"
        );
    }
}

#[tokio::test]
async fn the_overall_time_limit_ends_a_fetch() {
    let addr = serve("127.0.0.1").await;
    let f = Fetcher::new(&Settings {
        allow_private: vec!["127.0.0.1/32".parse().unwrap()],
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(30),
        total_timeout: Duration::from_millis(300),
    })
    .unwrap();
    let started = std::time::Instant::now();
    assert_unreachable(fetch(&f, &format!("http://{addr}/silent")).await, "silent");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn error_statuses_and_sizes_stay_distinguishable() {
    let addr = serve("127.0.0.1").await;
    let f = fetcher(&["127.0.0.1/32"]);
    let status = |r: Result<Vec<u8>, FetchError>| match r {
        Err(e @ FetchError::Status(s)) => (s.as_u16(), e.retryable()),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        status(fetch(&f, &format!("http://{addr}/status/404")).await),
        (404, false)
    );
    assert_eq!(
        status(fetch(&f, &format!("http://{addr}/status/503")).await),
        (503, true)
    );
    assert_eq!(
        fetch(&f, &format!("http://{addr}/sized/1000"))
            .await
            .unwrap()
            .len(),
        1000
    );
    for path in ["sized/1001", "streamed/1001"] {
        match fetch(&f, &format!("http://{addr}/{path}")).await {
            Err(FetchError::TooLarge { limit: 1000, .. }) => {}
            other => panic!("{path}: {other:?}"),
        }
    }
}
