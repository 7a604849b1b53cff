//! The real API server (`sprocket_server::services::start_api`) on a free port, on the
//! bench's database with a pool of a given size.

use std::sync::Arc;

use sprocket_platform::config::Config;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broker::Broker;

pub struct Api {
    pub url: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Api {
    pub async fn start(broker: &Broker, database: &str, pool_size: u32) -> anyhow::Result<Api> {
        let mut cfg = Config::default();
        cfg.kafka.brokers = broker.bootstrap();
        cfg.registry.url = broker.registry_url();
        cfg.database.url = database.to_owned();
        cfg.database.pool_size = pool_size;
        cfg.store.url = "memory://".into();
        cfg.archive.url = "memory://".into();
        cfg.validate()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = watch::channel(false);
        let task = sprocket_server::services::start_api(Arc::new(cfg), listener, stopped).await?;
        Ok(Api { url, stop, task })
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await??;
        Ok(())
    }
}
