//! Where a job's media comes from: an upload, a path under an allowed
//! directory, an object in an allowed place, or a URL fetched through the
//! SSRF-guarded [`Fetcher`]. Each is copied to a local file within the size
//! limit.

use std::path::{Component, Path, PathBuf};

use futures::StreamExt;
use sprocket_core::Source;
use sprocket_platform::config::IngestConfig;
use sprocket_platform::outbound::Fetcher;
use sprocket_platform::store;
use tokio::io::AsyncWriteExt;

use super::PHASE;
use crate::{Cx, WorkError};

fn rejected(code: &'static str, message: String) -> WorkError {
    WorkError::Rejected {
        phase: PHASE,
        code,
        message,
    }
}

/// Copies the source to `local`, refusing more than the configured size.
pub(super) async fn fetch(
    source: &Source,
    cfg: &IngestConfig,
    cx: &Cx,
    fetcher: &Fetcher,
    local: &Path,
) -> Result<(), WorkError> {
    match source {
        Source::Upload(id) => {
            if !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(rejected(
                    "invalid_source",
                    format!("{id:?} is not an upload id"),
                ));
            }
            copy_object(
                &cx.stores.work,
                &sprocket_core::work::upload_key(id),
                local,
                cfg.max_bytes,
            )
            .await
            .map_err(|e| match e {
                WorkError::Store {
                    source: store::StoreError::NotFound { .. },
                    ..
                } => rejected("upload_not_found", format!("upload {id:?} does not exist")),
                e => e,
            })
        }
        Source::Path(p) => {
            let path = allowed_path(p, &cfg.allowed_dirs)?;
            let len = tokio::fs::metadata(&path)
                .await
                .map_err(|e| rejected("source_unreadable", format!("{p}: {e}")))?
                .len();
            if len > cfg.max_bytes {
                return Err(too_large(len, cfg.max_bytes));
            }
            tokio::fs::copy(&path, local)
                .await
                .map_err(|e| rejected("source_unreadable", format!("{p}: {e}")))?;
            Ok(())
        }
        Source::Object(uri) => {
            let (store, key) = object_location(uri, cfg)?;
            copy_object(&store, &key, local, cfg.max_bytes).await
        }
        Source::Url(url) => download(fetcher, url, local, cfg.max_bytes).await,
    }
}

fn too_large(len: u64, limit: u64) -> WorkError {
    rejected(
        "source_too_large",
        format!("the source is {len} bytes, over the limit of {limit} bytes"),
    )
}

async fn copy_object(
    store: &store::Store,
    key: &str,
    local: &Path,
    limit: u64,
) -> Result<(), WorkError> {
    let (size, mut stream) = store::get_stream(store, key)
        .await
        .map_err(WorkError::store(PHASE))?;
    if size > limit {
        return Err(too_large(size, limit));
    }
    let mut out = tokio::fs::File::create(local)
        .await
        .map_err(|e| WorkError::internal(PHASE, e))?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(WorkError::store(PHASE))?;
        out.write_all(&chunk)
            .await
            .map_err(|e| WorkError::internal(PHASE, e))?;
    }
    out.flush().await.map_err(|e| WorkError::internal(PHASE, e))
}

/// Downloads a URL source through the SSRF-guarded fetcher. Its errors name
/// neither the URL (which may carry credentials) nor why a server could not
/// be reached.
async fn download(fetcher: &Fetcher, url: &str, local: &Path, limit: u64) -> Result<(), WorkError> {
    let fetch_error = |source| WorkError::Fetch {
        phase: PHASE,
        source,
    };
    let mut body = fetcher.get(url, limit).await.map_err(fetch_error)?;
    let mut out = tokio::fs::File::create(local)
        .await
        .map_err(|e| WorkError::internal(PHASE, e))?;
    while let Some(chunk) = body.chunk().await.map_err(fetch_error)? {
        out.write_all(&chunk)
            .await
            .map_err(|e| WorkError::internal(PHASE, e))?;
    }
    out.flush().await.map_err(|e| WorkError::internal(PHASE, e))
}

/// Resolves a `path` source: absolute, no `..`, and — after following symlinks —
/// inside one of the allowed directories.
pub fn allowed_path(p: &str, allowed: &[PathBuf]) -> Result<PathBuf, WorkError> {
    let raw = Path::new(p);
    if !raw.is_absolute() {
        return Err(rejected(
            "path_not_allowed",
            format!("{p:?} is not an absolute path"),
        ));
    }
    if raw.components().any(|c| c == Component::ParentDir) {
        return Err(rejected("path_not_allowed", format!("{p:?} contains '..'")));
    }
    if allowed.is_empty() {
        return Err(rejected(
            "path_not_allowed",
            "path sources are disabled: no ingest.allowed_dirs are configured".into(),
        ));
    }
    let real = std::fs::canonicalize(raw)
        .map_err(|e| rejected("source_unreadable", format!("{p}: {e}")))?;
    let inside = allowed
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .any(|d| real.starts_with(d));
    if !inside {
        return Err(rejected(
            "path_not_allowed",
            format!("{p:?} is not under an allowed directory"),
        ));
    }
    Ok(real)
}

/// Splits an object URI into a store and a key. `file://` objects obey the same
/// allowed directories as `path` sources; `s3://` objects must be in a bucket
/// (and under a prefix) of `ingest.allowed_objects`.
fn object_location(uri: &str, cfg: &IngestConfig) -> Result<(store::Store, String), WorkError> {
    let bad = |m: String| rejected("invalid_source", m);
    let url = url::Url::parse(uri).map_err(|e| bad(format!("{uri:?}: {e}")))?;
    match url.scheme() {
        "file" => {
            let path = allowed_path(url.path(), &cfg.allowed_dirs)?;
            let dir = path.parent().unwrap_or(Path::new("/"));
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let store = store::open(&format!("file://{}", dir.display()))
                .map_err(WorkError::store(PHASE))?;
            Ok((store, name))
        }
        "s3" => {
            let bucket = url
                .host_str()
                .ok_or_else(|| bad(format!("{uri:?} names no bucket")))?;
            let key = url.path().trim_start_matches('/').to_owned();
            if cfg.allowed_objects.is_empty() {
                return Err(rejected(
                    "object_not_allowed",
                    "S3 object sources are disabled: no ingest.allowed_objects are configured"
                        .into(),
                ));
            }
            if !cfg.object_allowed(bucket, &key) {
                return Err(rejected(
                    "object_not_allowed",
                    format!("{uri:?} is not in an allowed bucket or prefix"),
                ));
            }
            let store = store::open(&format!("s3://{bucket}")).map_err(WorkError::store(PHASE))?;
            Ok((store, key))
        }
        other => Err(bad(format!(
            "object sources use file:// or s3://, not {other}://"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_sources_stay_inside_allowed_dirs() {
        let root = tempfile::tempdir().unwrap();
        let allowed = root.path().join("in");
        let outside = root.path().join("out");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(allowed.join("a.mp4"), b"x").unwrap();
        std::fs::write(outside.join("b.mp4"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.join("b.mp4"), allowed.join("link.mp4")).unwrap();
        let dirs = vec![allowed.clone()];
        let p = |x: &Path| x.to_string_lossy().into_owned();

        assert!(allowed_path(&p(&allowed.join("a.mp4")), &dirs).is_ok());
        for bad in [
            p(&outside.join("b.mp4")),
            p(&allowed.join("link.mp4")),
            format!("{}/../out/b.mp4", p(&allowed)),
            "relative.mp4".to_owned(),
        ] {
            let e = allowed_path(&bad, &dirs).unwrap_err();
            assert_eq!(e.code(), "path_not_allowed", "{bad}: {e}");
        }
        assert_eq!(
            allowed_path(&p(&allowed.join("a.mp4")), &[])
                .unwrap_err()
                .code(),
            "path_not_allowed"
        );
    }

    #[test]
    fn object_sources_come_only_from_allowed_buckets_and_prefixes() {
        let code = |uri: &str, cfg: &IngestConfig| match object_location(uri, cfg) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        let none = IngestConfig::default();
        assert_eq!(code("s3://media/in/a.mp4", &none), "object_not_allowed");
        let e = object_location("s3://media/in/a.mp4", &none).err().unwrap();
        assert!(e.to_string().contains("ingest.allowed_objects"), "{e}");

        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.mp4"), b"x").unwrap();
        let cfg = IngestConfig {
            allowed_objects: vec!["media/in/".into()],
            ..IngestConfig::default()
        };
        assert_eq!(code("s3://media/in/a.mp4", &cfg), "ok");
        for refused in [
            "s3://other/in/a.mp4",
            "s3://media/out/a.mp4",
            "s3://media/in/../out/a.mp4",
            "s3://media/in/%2e%2e/out/a.mp4",
            "s3://media/a.mp4",
        ] {
            assert_eq!(code(refused, &cfg), "object_not_allowed", "{refused}");
        }
        let file = format!("file://{}/a.mp4", root.path().display());
        assert_eq!(
            code(&file, &cfg),
            "path_not_allowed",
            "files obey allowed_dirs"
        );
        let dirs = IngestConfig {
            allowed_dirs: vec![root.path().to_owned()],
            ..IngestConfig::default()
        };
        assert_eq!(code(&file, &dirs), "ok");
    }

    /// Answers every request on loopback: 404 for `/missing`, else "hello".
    async fn loopback_server() -> std::net::SocketAddr {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut request = [0u8; 1024];
                let n = conn.read(&mut request).await.unwrap_or(0);
                let answer: &[u8] = if request[..n].starts_with(b"GET /missing") {
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
                };
                let _ = conn.write_all(answer).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn url_sources_go_through_the_guarded_fetcher() {
        let addr = loopback_server().await;
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("source");
        let url = format!("http://user:hunter2@{addr}/a.mp4?token=s3cr3t");

        let refused = Fetcher::new(&IngestConfig::default().url_fetch()).unwrap();
        let e = download(&refused, &url, &local, 100).await.unwrap_err();
        let info = e.info();
        assert_eq!(info.code, "source_unreachable");
        assert!(e.retryable(), "alike whatever the cause, so retried");
        for leak in ["hunter2", "s3cr3t", "127.0.0.1"] {
            assert!(!info.message.contains(leak), "{leak} in {info:?}");
        }

        let allowed = IngestConfig {
            url_allow_private: vec!["127.0.0.1/32".parse().unwrap()],
            ..IngestConfig::default()
        };
        let allowed = Fetcher::new(&allowed.url_fetch()).unwrap();
        download(&allowed, &url, &local, 100).await.unwrap();
        assert_eq!(std::fs::read(&local).unwrap(), b"hello");
        let e = download(&allowed, &format!("http://{addr}/missing"), &local, 100)
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.retryable()), ("source_unreadable", false));
        let e = download(&allowed, &url, &local, 4).await.unwrap_err();
        assert_eq!((e.code(), e.retryable()), ("source_too_large", false));
    }
}
