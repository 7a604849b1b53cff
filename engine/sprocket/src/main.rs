use clap::Parser;

fn main() -> anyhow::Result<()> {
    // Before the runtime's threads exist: it sets environment variables.
    sprocket_workers::phases::one_cpu_thread_unless_set();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SPROCKET_LOG")
                .unwrap_or_else(|_| "info,rdkafka=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    sprocket::cli::run(sprocket::cli::Cli::parse()).await
}
