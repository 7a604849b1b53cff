//! A client that claims a frame over the cap loses its connection, and only
//! its connection: the relay goes on serving everyone else.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sprocket_broker::{EmbeddedBroker, MAX_REQUEST_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(10);

/// What was logged at warning level or above, process-wide (the relay logs
/// from a thread of its own).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn capture() -> Log {
        let log = Log::default();
        let writer = log.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        log
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// An ApiVersions v0 request frame.
fn api_versions(correlation_id: i32) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&18i16.to_be_bytes());
    payload.extend_from_slice(&0i16.to_be_bytes());
    payload.extend_from_slice(&correlation_id.to_be_bytes());
    payload.extend_from_slice(&4i16.to_be_bytes());
    payload.extend_from_slice(b"test");
    let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    frame
}

/// Sends an ApiVersions request and reads the response's correlation id.
async fn round_trip(conn: &mut TcpStream, correlation_id: i32) -> i32 {
    conn.write_all(&api_versions(correlation_id)).await.unwrap();
    let size = timeout(T, conn.read_i32()).await.unwrap().unwrap();
    let mut payload = vec![0; size as usize];
    conn.read_exact(&mut payload).await.unwrap();
    i32::from_be_bytes(payload[..4].try_into().unwrap())
}

#[tokio::test]
async fn a_frame_over_the_cap_closes_that_connection_only() {
    let log = Log::capture();
    let broker = EmbeddedBroker::start("127.0.0.1:0").await.unwrap();
    let mut before = TcpStream::connect(broker.addr()).await.unwrap();
    assert_eq!(round_trip(&mut before, 1).await, 1);

    let mut hostile = TcpStream::connect(broker.addr()).await.unwrap();
    assert_eq!(round_trip(&mut hostile, 2).await, 2);
    let claim = 1i32 << 30; // 1 GiB
    assert!(claim as usize > MAX_REQUEST_BYTES);
    hostile.write_all(&claim.to_be_bytes()).await.unwrap();
    hostile.write_all(&[0; 64]).await.unwrap();
    let mut rest = Vec::new();
    let read = timeout(T, hostile.read_to_end(&mut rest))
        .await
        .expect("the connection is closed, not left waiting for 1 GiB");
    // Closed: an end of stream, or a reset if the relay closed with unread data.
    assert!(read.is_err() || rest.is_empty(), "{read:?} {rest:?}");
    let logged = log.text();
    assert!(
        logged.contains("WARN") && logged.contains("1073741824 bytes is over the"),
        "{logged}"
    );

    assert_eq!(round_trip(&mut before, 3).await, 3);
    let mut after = TcpStream::connect(broker.addr()).await.unwrap();
    assert_eq!(round_trip(&mut after, 4).await, 4);
}
