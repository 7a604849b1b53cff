//! Object stores: `file:///…` (local), `memory://`, `s3://bucket/prefix` (S3/MinIO).
//!
//! Writes stream in parts and compute sha256 on the way, so a large upload or
//! source never sits whole in memory.

use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

pub type Store = Arc<dyn ObjectStore>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("object {key:?} not found")]
    NotFound { key: String },
    #[error("object store error on {key:?}: {source}")]
    Store {
        key: String,
        source: object_store::Error,
    },
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("reading the body failed: {0}")]
    Body(String),
}

impl StoreError {
    /// Whether trying again could succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, StoreError::Store { .. } | StoreError::Io { .. })
    }

    fn store(key: &str, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => StoreError::NotFound {
                key: key.to_owned(),
            },
            source => StoreError::Store {
                key: key.to_owned(),
                source,
            },
        }
    }
}

/// Opens the store a URL names. S3 credentials and endpoint come from the usual
/// `AWS_*` environment variables (never from Sprocket's own configuration).
pub fn open(url: &str) -> Result<Store, StoreError> {
    let invalid = |reason: &str| StoreError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
    match parsed.scheme() {
        "memory" => Ok(Arc::new(InMemory::new())),
        "file" => {
            let dir = parsed
                .to_file_path()
                .map_err(|_| invalid("a file URL needs an absolute path"))?;
            std::fs::create_dir_all(&dir).map_err(|e| invalid(&e.to_string()))?;
            let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| invalid(&e.to_string()))?;
            Ok(Arc::new(fs.with_automatic_cleanup(true)))
        }
        "s3" => {
            let bucket = parsed.host_str().ok_or_else(|| invalid("no bucket"))?;
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
            if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
                b = b.with_allow_http(endpoint.starts_with("http://"));
            }
            let s3 = b.build().map_err(|e| invalid(&e.to_string()))?;
            let prefix = parsed.path().trim_matches('/');
            if prefix.is_empty() {
                Ok(Arc::new(s3))
            } else {
                Ok(Arc::new(PrefixStore::new(s3, prefix)))
            }
        }
        other => Err(invalid(&format!(
            "unsupported scheme {other:?} (file, memory, s3)"
        ))),
    }
}

/// Turns `file://relative/dir` style or bare paths into absolute `file://` URLs.
pub fn absolutize(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("file://") {
        let p = FsPath::new(rest);
        if p.is_relative() {
            let abs = std::env::current_dir().unwrap_or_default().join(p);
            return format!("file://{}", abs.display());
        }
    }
    url.to_owned()
}

/// What a write produced: size and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub bytes: u64,
    pub sha256: String,
}

/// sha256 and size, accumulated chunk by chunk.
#[derive(Default)]
struct Tally {
    hasher: Sha256,
    bytes: u64,
}

impl Tally {
    fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
    }

    fn finish(self) -> Written {
        Written {
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

/// Streams `body` into `key`, computing sha256 and refusing more than `limit` bytes
/// (the partial object is aborted, nothing stays stored).
pub async fn put_stream<S, E>(
    store: &Store,
    key: &str,
    body: S,
    limit: u64,
) -> Result<Written, StoreError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let path = Path::from(key);
    let upload = store
        .put_multipart(&path)
        .await
        .map_err(|e| StoreError::store(key, e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
    let mut tally = Tally::default();
    let mut body = body;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(StoreError::Body(e.to_string()));
            }
        };
        if tally.bytes + chunk.len() as u64 > limit {
            let _ = writer.abort().await;
            return Err(StoreError::TooLarge {
                what: key.to_owned(),
                limit,
            });
        }
        tally.update(&chunk);
        writer
            .wait_for_capacity(4)
            .await
            .map_err(|e| StoreError::store(key, e))?;
        writer.put(chunk);
    }
    writer
        .finish()
        .await
        .map_err(|e| StoreError::store(key, e))?;
    Ok(tally.finish())
}

/// Streams a local file into `key`.
pub async fn put_file(store: &Store, key: &str, file: &FsPath) -> Result<Written, StoreError> {
    let f = tokio::fs::File::open(file)
        .await
        .map_err(|e| StoreError::Io {
            path: file.display().to_string(),
            source: e,
        })?;
    let stream = tokio_util::io::ReaderStream::with_capacity(f, 1 << 20);
    put_stream(store, key, stream, u64::MAX).await
}

/// Writes a small object whole.
pub async fn put_bytes(store: &Store, key: &str, data: Vec<u8>) -> Result<Written, StoreError> {
    let mut tally = Tally::default();
    tally.update(&data);
    let written = tally.finish();
    store
        .put(&Path::from(key), PutPayload::from(data))
        .await
        .map_err(|e| StoreError::store(key, e))?;
    Ok(written)
}

/// Reads a small object whole.
pub async fn get_bytes(store: &Store, key: &str) -> Result<Bytes, StoreError> {
    let r = store
        .get(&Path::from(key))
        .await
        .map_err(|e| StoreError::store(key, e))?;
    r.bytes().await.map_err(|e| StoreError::store(key, e))
}

/// Whether `key` exists.
pub async fn exists(store: &Store, key: &str) -> Result<bool, StoreError> {
    match store.head(&Path::from(key)).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(StoreError::store(key, e)),
    }
}

/// A stream of an object's bytes, and its size.
pub async fn get_stream(
    store: &Store,
    key: &str,
) -> Result<(u64, impl Stream<Item = Result<Bytes, StoreError>>), StoreError> {
    get_part(store, key, None).await
}

/// A stream of the bytes `range` of an object (all of it when `None`), and
/// the object's whole size. `range` must lie inside the object.
pub async fn get_part(
    store: &Store,
    key: &str,
    range: Option<std::ops::Range<u64>>,
) -> Result<(u64, impl Stream<Item = Result<Bytes, StoreError>>), StoreError> {
    let options = object_store::GetOptions {
        range: range.map(object_store::GetRange::Bounded),
        ..Default::default()
    };
    let r = store
        .get_opts(&Path::from(key), options)
        .await
        .map_err(|e| StoreError::store(key, e))?;
    let size = r.meta.size;
    let owned = key.to_owned();
    Ok((
        size,
        r.into_stream()
            .map_err(move |e| StoreError::store(&owned, e)),
    ))
}

/// Streams an object into a local file, returning its size and sha256.
pub async fn get_file(store: &Store, key: &str, file: &FsPath) -> Result<Written, StoreError> {
    let io = |e| StoreError::Io {
        path: file.display().to_string(),
        source: e,
    };
    let (_, mut stream) = get_stream(store, key).await?;
    let mut out = tokio::fs::File::create(file).await.map_err(io)?;
    let mut tally = Tally::default();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        tally.update(&chunk);
        out.write_all(&chunk).await.map_err(io)?;
    }
    out.flush().await.map_err(io)?;
    Ok(tally.finish())
}

/// sha256 and size of an object, read by streaming.
pub async fn digest(store: &Store, key: &str) -> Result<Written, StoreError> {
    let (_, mut stream) = get_stream(store, key).await?;
    let mut tally = Tally::default();
    while let Some(chunk) = stream.next().await {
        tally.update(&chunk?);
    }
    Ok(tally.finish())
}

/// Every object under `prefix`, as key and size.
pub async fn list(store: &Store, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
    let path = Path::from(prefix.trim_end_matches('/'));
    let mut found = vec![];
    let mut stream = store.list(Some(&path));
    while let Some(meta) = stream.next().await {
        let meta = meta.map_err(|e| StoreError::store(prefix, e))?;
        found.push((meta.location.to_string(), meta.size));
    }
    Ok(found)
}

/// Removes an object; one already gone counts as removed (`false`).
pub async fn delete(store: &Store, key: &str) -> Result<bool, StoreError> {
    match store.delete(&Path::from(key)).await {
        Ok(()) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(StoreError::store(key, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn contract(store: Store) {
        let body = futures::stream::iter(vec![
            Ok::<_, std::io::Error>(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world")),
        ]);
        let w = put_stream(&store, "a/b.bin", body, 1024).await.unwrap();
        assert_eq!(w.bytes, 11);
        assert_eq!(w, digest(&store, "a/b.bin").await.unwrap());
        assert_eq!(get_bytes(&store, "a/b.bin").await.unwrap(), "hello world");
        assert!(exists(&store, "a/b.bin").await.unwrap());
        assert!(!exists(&store, "a/none").await.unwrap());

        let big = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 100]))]);
        let err = put_stream(&store, "a/big", big, 10).await.unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }));
        assert!(
            !exists(&store, "a/big").await.unwrap(),
            "over-limit write left an object"
        );
        assert!(matches!(
            get_bytes(&store, "nope").await,
            Err(StoreError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn local_files() {
        let dir = tempfile::tempdir().unwrap();
        contract(open(&format!("file://{}", dir.path().display())).unwrap()).await;
    }

    #[tokio::test]
    async fn memory() {
        contract(open("memory://").unwrap()).await;
    }

    #[test]
    fn rejects_unknown_schemes() {
        assert!(matches!(
            open("ftp://x"),
            Err(StoreError::InvalidUrl { .. })
        ));
    }
}
