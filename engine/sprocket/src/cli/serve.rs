//! The server-side commands.

use std::sync::Arc;

use sprocket_core::Topics;
use sprocket_platform::bus::Bus;
use sprocket_platform::config::Config;
use tokio::sync::watch;

use super::{Cli, Command, TopicsAction};
use sprocket_server::dev::{Dev, EmbeddedRegistry, Infra};
use sprocket_server::services;

pub async fn run(cli: &Cli) -> anyhow::Result<()> {
    let settings = cli.command.settings();
    let cfg = Config::load(settings.file.as_deref(), &settings.flags)?;
    // The API serves /metrics to admin keys too; scrapers read this one.
    if matches!(
        cli.command,
        Command::Projector { .. }
            | Command::Worker { .. }
            | Command::Api { .. }
            | Command::Webhooks { .. }
            | Command::Janitor { .. }
    ) {
        if let Some(addr) = &cfg.metrics.addr {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            eprintln!("metrics on http://{}/metrics", listener.local_addr()?);
            tokio::spawn(sprocket_platform::metrics::serve(
                listener,
                std::future::pending(),
            ));
        }
    }
    match &cli.command {
        Command::Dev { dev } => {
            let data_dir = &dev.data_dir;
            let opts = dev.options();
            let dev = Dev::start(&opts, cfg).await?;
            println!(
                "sprocket dev: API {} | Kafka {} | schema registry {} | data {}",
                dev.api_url(),
                dev.infra.bootstrap_servers(),
                dev.infra.registry_url(),
                data_dir.display()
            );
            println!(
                "admin API key (saved in {}): {}",
                data_dir.join(sprocket_server::auth::DEV_KEY_FILE).display(),
                dev.api_key
            );
            shutdown_signal().await?;
            eprintln!("stopping…");
            let grace = std::time::Duration::from_secs(dev.config.worker.shutdown_grace_s);
            dev.shutdown(grace).await;
        }
        Command::Demo {
            video,
            dev,
            keep_running,
        } => {
            let opts = dev.options();
            super::demo::run(cfg, opts, video.clone(), *keep_running).await?;
        }
        Command::Broker {
            kafka_addr,
            registry_addr,
            faults_addr,
            ..
        } => {
            let topics = Topics::new(cfg.kafka.topic_prefix.clone());
            let infra =
                Infra::start(kafka_addr, registry_addr, &topics, cfg.kafka.partitions).await?;
            if let Some(addr) = faults_addr {
                let listener = tokio::net::TcpListener::bind(addr).await?;
                println!(
                    "sprocket broker: fault injection on http://{}/faults",
                    listener.local_addr()?
                );
                let broker = infra.broker.clone().expect("sprocket broker embeds one");
                tokio::spawn(sprocket_broker::faults::serve(listener, broker));
            }
            println!(
                "sprocket broker: Kafka {} | schema registry {}",
                infra.bootstrap_servers(),
                infra.registry_url()
            );
            shutdown_signal().await?;
        }
        Command::Registry { registry_addr } => {
            let registry = EmbeddedRegistry::start(registry_addr).await?;
            println!("sprocket registry: schema registry {}", registry.url());
            shutdown_signal().await?;
        }
        Command::Migrate { .. } => {
            services::open_projections(&cfg)?;
            println!(
                "migrations applied to {}",
                sprocket_core::redact::password(&cfg.database.url)
            );
        }
        Command::Topics {
            action: TopicsAction::Create { .. },
        } => {
            let bus = Bus::connect(&cfg, services::producer_name("admin")).await?;
            let report = bus.create_topics().await?;
            println!("{report}");
            let differing = report.differing();
            if !differing.is_empty() {
                let names: Vec<&str> = differing.iter().map(|s| s.name.as_str()).collect();
                anyhow::bail!(
                    "{} topic(s) exist unlike Sprocket's configuration and were left as they are: {}",
                    names.len(),
                    names.join(", ")
                );
            }
        }
        Command::Projector { rebuild, .. } => {
            let (stop, stopped) = watch::channel(false);
            let task = services::start_projector(Arc::new(cfg), *rebuild, stopped).await?;
            shutdown_signal().await?;
            let _ = stop.send(true);
            let _ = task.await;
        }
        Command::Webhooks { .. } => {
            let cfg = Arc::new(cfg);
            let projections = sprocket_server::services::open_projections(&cfg)?;
            let (stop, stopped) = watch::channel(false);
            let tasks = sprocket_server::webhooks::start(cfg, projections, stopped).await?;
            println!("sprocket webhooks: delivering");
            shutdown_signal().await?;
            let _ = stop.send(true);
            for t in tasks {
                let _ = t.await;
            }
        }
        Command::Janitor { .. } => {
            let cfg = Arc::new(cfg);
            let projections = sprocket_server::services::open_projections(&cfg)?;
            let (stop, stopped) = watch::channel(false);
            let task = sprocket_server::janitor::start(cfg, projections, stopped).await?;
            println!("sprocket janitor: sweeping");
            shutdown_signal().await?;
            let _ = stop.send(true);
            let _ = task.await;
        }
        Command::Worker { phase, .. } => {
            let grace = std::time::Duration::from_secs(cfg.worker.shutdown_grace_s);
            let w = services::start_worker(Arc::new(cfg), *phase).await?;
            shutdown_signal().await?;
            eprintln!("stopping: in-flight work has {grace:?} to finish");
            w.shutdown(grace).await;
        }
        Command::Api { .. } => {
            let listener = tokio::net::TcpListener::bind(&cfg.api.addr).await?;
            println!("sprocket api on http://{}", listener.local_addr()?);
            let (stop, stopped) = watch::channel(false);
            let task = services::start_api(Arc::new(cfg), listener, stopped).await?;
            shutdown_signal().await?;
            let _ = stop.send(true);
            let _ = task.await;
        }
        Command::Keys {
            action: super::KeysAction::Bootstrap { tenant, .. },
        } => {
            use sprocket_server::auth::{self, Scope};
            let tenant = tenant.as_deref().unwrap_or(&cfg.tenants.default);
            let p = services::open_projections(&cfg)?;
            let (key, secret) =
                auth::create(&p, tenant, &[Scope::Admin], Some("bootstrap".into()))?;
            println!("admin key {} for tenant {tenant} (shown once):", key.id);
            println!("{secret}");
        }
        Command::Config { .. } => print!("{}", cfg.redacted().to_toml()),
        Command::Dlq { action } => match action {
            super::DlqAction::List { .. } => super::dlq::list(&cfg)?,
            super::DlqAction::Redrive {
                id, all, client, ..
            } => super::dlq::redrive(&cfg, &client.api()?, id.as_deref(), *all).await?,
        },
        _ => unreachable!("client commands are handled elsewhere"),
    }
    Ok(())
}

/// A database URL without its password.
/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what orchestrators send).
pub(super) async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
