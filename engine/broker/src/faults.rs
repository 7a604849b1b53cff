//! Fault injection for the embedded broker, over HTTP: `sprocket broker
//! --faults-addr 127.0.0.1:9644` serves `POST /faults`, which the crash and
//! fault harnesses (and anyone rehearsing an outage by hand with curl) use to
//! make the broker misbehave the ways a real cluster does.
//!
//! Bodies, one fault each:
//!
//! * `{"fault": "request_errors", "api": "Produce", "error": "NOT_LEADER_FOR_PARTITION", "count": 3}`:
//!   the next `count` requests of that API fail with that error (names as
//!   librdkafka spells them, without the `RD_KAFKA_RESP_ERR_` prefix).
//! * `{"fault": "down", "ms": 5000}`: the broker refuses service for `ms`.
//! * `{"fault": "rtt", "rtt_ms": 300, "ms": 10000}`: every response is delayed
//!   by `rtt_ms` for `ms`.
//!
//! Each answer says what was applied and, for the timed faults, when it ends.
//! Nothing here exists on a real cluster: it is only served next to the
//! embedded broker, and only when asked for.

use std::ffi::CStr;
use std::sync::Arc;
use std::time::Duration;

use crate::EmbeddedBroker;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use rdkafka_sys as rdsys;
use rdsys::types::RDKafkaApiKey;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// One fault, as posted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    RequestErrors {
        api: String,
        error: String,
        #[serde(default = "one")]
        count: usize,
    },
    Down {
        ms: u64,
    },
    Rtt {
        rtt_ms: u64,
        ms: u64,
    },
}

fn one() -> usize {
    1
}

/// Serves `POST /faults` for `broker` until the task is dropped.
pub async fn serve(listener: TcpListener, broker: Arc<EmbeddedBroker>) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(broker).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await
}

fn router(broker: Arc<EmbeddedBroker>) -> Router {
    Router::new()
        .route("/faults", post(inject))
        .with_state(broker)
}

/// Injects a fault, for a client on this machine only (403 otherwise).
async fn inject(
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    State(broker): State<Arc<EmbeddedBroker>>,
    Json(fault): Json<Fault>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    if !peer.ip().to_canonical().is_loopback() {
        return Err((
            StatusCode::FORBIDDEN,
            Json(json!({"error": "faults are accepted from this machine only"})),
        ));
    }
    let bad = |m: String| (StatusCode::BAD_REQUEST, Json(json!({"error": m})));
    tracing::warn!(?fault, "injecting a fault into the embedded broker");
    match fault {
        Fault::RequestErrors { api, error, count } => {
            let key = api_key(&api).ok_or_else(|| bad(format!("unknown API {api:?}")))?;
            let code = error_code(&error).ok_or_else(|| bad(format!("unknown error {error:?}")))?;
            if count == 0 || count > 10_000 {
                return Err(bad(format!("count must be 1–10000, got {count}")));
            }
            broker.request_errors(key, &vec![code; count]);
            Ok(Json(
                json!({"applied": "request_errors", "api": api, "error": error, "count": count}),
            ))
        }
        Fault::Down { ms } => {
            broker.set_down(true);
            let b = broker.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                b.set_down(false);
                tracing::warn!("embedded broker up again");
            });
            Ok(Json(json!({"applied": "down", "ms": ms})))
        }
        Fault::Rtt { rtt_ms, ms } => {
            let rtt = i32::try_from(rtt_ms).map_err(|_| bad(format!("rtt_ms {rtt_ms}")))?;
            broker.set_rtt(rtt);
            let b = broker.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                b.set_rtt(0);
                tracing::warn!("embedded broker round trips back to normal");
            });
            Ok(Json(json!({"applied": "rtt", "rtt_ms": rtt_ms, "ms": ms})))
        }
    }
}

/// The API keys faults may name.
fn api_key(name: &str) -> Option<RDKafkaApiKey> {
    use RDKafkaApiKey::*;
    Some(match name {
        "Produce" => Produce,
        "Fetch" => Fetch,
        "ListOffsets" => ListOffsets,
        "Metadata" => Metadata,
        "OffsetCommit" => OffsetCommit,
        "OffsetFetch" => OffsetFetch,
        "FindCoordinator" => FindCoordinator,
        "JoinGroup" => JoinGroup,
        "Heartbeat" => Heartbeat,
        "SyncGroup" => SyncGroup,
        "InitProducerId" => InitProducerId,
        "AddPartitionsToTxn" => AddPartitionsToTxn,
        "AddOffsetsToTxn" => AddOffsetsToTxn,
        "EndTxn" => EndTxn,
        "TxnOffsetCommit" => TxnOffsetCommit,
        _ => return None,
    })
}

/// A Kafka error code by librdkafka's name for it (`NOT_COORDINATOR`), from
/// librdkafka's own table of codes.
fn error_code(name: &str) -> Option<rdsys::rd_kafka_resp_err_t> {
    let mut descs: *const rdsys::rd_kafka_err_desc = std::ptr::null();
    let mut count = 0usize;
    // SAFETY: librdkafka fills in a pointer to its static table and its length.
    unsafe { rdsys::rd_kafka_get_err_descs(&mut descs, &mut count) };
    if descs.is_null() {
        return None;
    }
    // SAFETY: `descs` points at `count` entries that live as long as the library.
    let table = unsafe { std::slice::from_raw_parts(descs, count) };
    table.iter().find_map(|d| {
        if d.name.is_null() || (d.code as i32) < 0 {
            return None;
        }
        // SAFETY: non-null names are static C strings.
        let n = unsafe { CStr::from_ptr(d.name) }.to_str().ok()?;
        (n == name).then_some(d.code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_names_resolve() {
        let f: Fault = serde_json::from_value(
            json!({"fault": "request_errors", "api": "EndTxn", "error": "NOT_COORDINATOR"}),
        )
        .unwrap();
        assert_eq!(
            f,
            Fault::RequestErrors {
                api: "EndTxn".into(),
                error: "NOT_COORDINATOR".into(),
                count: 1
            }
        );
        assert!(serde_json::from_value::<Fault>(json!({"fault": "down"})).is_err());
        assert_eq!(
            api_key("TxnOffsetCommit"),
            Some(RDKafkaApiKey::TxnOffsetCommit)
        );
        assert_eq!(api_key("Nope"), None);
        assert_eq!(
            error_code("NOT_COORDINATOR"),
            Some(rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NOT_COORDINATOR)
        );
        assert_eq!(
            error_code("NOT_LEADER_FOR_PARTITION"),
            Some(rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION)
        );
        assert_eq!(error_code("NO_SUCH_ERROR"), None);
    }

    /// Only a client on this machine may inject faults.
    #[tokio::test]
    async fn faults_come_from_this_machine_only() {
        use axum::extract::connect_info::MockConnectInfo;
        let broker = Arc::new(EmbeddedBroker::start("127.0.0.1:0").await.unwrap());
        let fault = json!({"fault": "rtt", "rtt_ms": 1, "ms": 1});
        for (peer, status) in [([10, 1, 2, 3], 403), ([127, 0, 0, 1], 200)] {
            let app = router(broker.clone())
                .layer(MockConnectInfo(std::net::SocketAddr::from((peer, 40000))));
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/faults", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await });
            let got = reqwest::Client::new()
                .post(url)
                .json(&fault)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(got, status, "from {peer:?}");
        }
    }
}
