use clap::Parser;

fn main() -> anyhow::Result<()> {
    // OpenSSL first of all, without its exit-time cleanup: libpq (pooled
    // connections opened by background threads) and librdkafka use it from
    // threads that may still be at work when a short command such as
    // `sprocket migrate` returns, and OPENSSL_cleanup under them crashed
    // one exit in five (SIGSEGV in a pool thread's TLS setup).
    openssl_sys::init();
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
