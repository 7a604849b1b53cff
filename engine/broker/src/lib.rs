//! The embedded Kafka-protocol broker: librdkafka's mock cluster, memory-only,
//! for `sprocket dev`, `sprocket broker` and tests. It is a stand-in for Kafka
//! and lives in a crate of its own so that nothing on a production path
//! depends on it.
//!
//! The mock cluster binds an ephemeral loopback port. To serve a fixed address
//! (`127.0.0.1:9092` by default) a relay listens there and the broker advertises the
//! relay's address, so every client connection, bootstrap or not, goes through it.
//! The mock cluster does not serve CreateTopics, so Sprocket's topics are created
//! here when the broker starts.
//! The mock cluster has no transaction markers, so the relay holds transactional
//! records until their transaction commits, and aborts transactions that time
//! out ([`relay`] explains). The relay reads every frame a client sends, so its
//! decoder is hardened: frames over [`MAX_REQUEST_BYTES`] are refused, and the
//! decoder is fuzzed (`fuzz/`, through the hidden [`fuzzing`] module).

mod capture;
mod frames;
mod intercept;
mod ledger;
mod protocol;
mod relay;
mod replay;
mod response;
mod txn;
mod wire;

#[doc(hidden)]
/// An HTTP endpoint that injects faults (request errors, broker outages, round-trip
/// time) into the embedded broker, for the fault harness.
pub mod faults;
pub mod fuzzing;

#[cfg(test)]
mod expiry_tests;
#[cfg(test)]
mod protocol_tests;
#[cfg(test)]
mod test_frames;
#[cfg(test)]
mod txn_tests;

pub use frames::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};

use std::ffi::{CStr, CString};
use std::net::SocketAddr;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka_sys as rdsys;

use capture::Capture;
use relay::Relay;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("the mock cluster failed: {0}")]
    Mock(String),
}

/// A running embedded broker. Dropping it stops the broker.
pub struct EmbeddedBroker {
    cluster: *mut rdsys::rd_kafka_mock_cluster_t,
    /// The client handle that owns the mock cluster; must outlive it.
    _owner: BaseProducer,
    addr: SocketAddr,
    relay: Relay,
}

// The mock cluster is driven by its own thread; its API is thread-safe.
unsafe impl Send for EmbeddedBroker {}
unsafe impl Sync for EmbeddedBroker {}

impl EmbeddedBroker {
    /// Starts a one-broker mock cluster reachable at `addr` (port 0 picks one).
    pub async fn start(addr: &str) -> Result<EmbeddedBroker, BrokerError> {
        EmbeddedBroker::launch(addr, None)
    }

    /// Starts the broker, recording every relayed frame in `capture` if given.
    fn launch(addr: &str, capture: Option<Capture>) -> Result<EmbeddedBroker, BrokerError> {
        let listen = |source| BrokerError::Listen {
            addr: addr.to_owned(),
            source,
        };
        let listener = std::net::TcpListener::bind(addr).map_err(listen)?;
        listener.set_nonblocking(true).map_err(listen)?;
        let local = listener
            .local_addr()
            .map_err(|source| BrokerError::Listen {
                addr: addr.to_owned(),
                source,
            })?;
        let owner: BaseProducer = ClientConfig::new()
            .set("client.id", "sprocket-embedded-broker")
            .create()
            .map_err(|e| BrokerError::Mock(e.to_string()))?;
        // SAFETY: the producer handle is valid and outlives the cluster (both are
        // owned by the returned value; Drop destroys the cluster first).
        let cluster = unsafe { rdsys::rd_kafka_mock_cluster_new(owner.client().native_ptr(), 1) };
        if cluster.is_null() {
            return Err(BrokerError::Mock("rd_kafka_mock_cluster_new failed".into()));
        }
        // SAFETY: `cluster` is valid; the returned string lives as long as the cluster.
        let real = unsafe { CStr::from_ptr(rdsys::rd_kafka_mock_cluster_bootstraps(cluster)) }
            .to_string_lossy()
            .into_owned();
        let host = CString::new(local.ip().to_string()).expect("no NUL in an IP");
        // SAFETY: valid cluster and C string; broker ids start at 1.
        unsafe {
            rdsys::rd_kafka_mock_broker_set_host_port(
                cluster,
                1,
                host.as_ptr(),
                local.port() as i32,
            )
        };
        let target = real
            .split(',')
            .next()
            .unwrap_or_default()
            .trim_start_matches("PLAINTEXT://")
            .to_owned();
        let relay = Relay::start(listener, target, capture).map_err(listen)?;
        tracing::info!(addr = %local, "embedded Kafka broker (mock cluster) listening");
        Ok(EmbeddedBroker {
            cluster,
            _owner: owner,
            addr: local,
            relay,
        })
    }

    /// The address clients bootstrap from.
    pub fn bootstrap_servers(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Creates a topic (the mock cluster's own API; CreateTopics is not served).
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), BrokerError> {
        let topic = CString::new(name).map_err(|e| BrokerError::Mock(e.to_string()))?;
        // SAFETY: valid cluster and C string.
        let err = unsafe {
            rdsys::rd_kafka_mock_topic_create(self.cluster, topic.as_ptr(), partitions, 1)
        };
        if err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            Ok(())
        } else {
            Err(BrokerError::Mock(format!("creating topic {name}: {err:?}")))
        }
    }

    /// Makes the next `count` requests of type `api` fail with `error` (fault injection).
    pub fn request_errors(
        &self,
        api: rdsys::types::RDKafkaApiKey,
        errors: &[rdsys::rd_kafka_resp_err_t],
    ) {
        // SAFETY: valid cluster; the slice outlives the call.
        unsafe {
            rdsys::rd_kafka_mock_push_request_errors_array(
                self.cluster,
                api as i16,
                errors.len(),
                errors.as_ptr(),
            )
        };
    }

    /// Takes the broker down or up (fault injection).
    pub fn set_down(&self, down: bool) {
        // SAFETY: valid cluster, broker 1 exists.
        unsafe {
            if down {
                rdsys::rd_kafka_mock_broker_set_down(self.cluster, 1);
            } else {
                rdsys::rd_kafka_mock_broker_set_up(self.cluster, 1);
            }
        }
    }

    /// Delays every response by `rtt_ms` (0 restores; fault injection).
    pub fn set_rtt(&self, rtt_ms: i32) {
        // SAFETY: valid cluster, broker 1 exists.
        unsafe { rdsys::rd_kafka_mock_broker_set_rtt(self.cluster, 1, rtt_ms) };
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.relay.stop();
        // SAFETY: the cluster was created by us and is destroyed once.
        unsafe { rdsys::rd_kafka_mock_cluster_destroy(self.cluster) };
    }
}
