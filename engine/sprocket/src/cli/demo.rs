//! `sprocket demo`: starts `sprocket dev`, submits a video (a generated sample
//! when none is given), follows it and says where the outputs are.

use std::path::PathBuf;

use sprocket_platform::config::Config;

use sprocket_media::sample;
use sprocket_server::dev::{Dev, DevOptions};

pub async fn run(
    cfg: Config,
    opts: DevOptions,
    video: Option<PathBuf>,
    keep_running: bool,
) -> anyhow::Result<()> {
    let dev = Dev::start(&opts, cfg).await?;
    let data = std::fs::canonicalize(&opts.data_dir)?;
    let file = match video {
        Some(f) => f,
        None => {
            let f = data.join("sample.mp4");
            if !f.exists() {
                println!("making a 24 s sample video with six shots: {}", f.display());
                sample::with_cuts_sized(&f, &[75, 100, 60, 90, 150, 125], 25, true, (640, 360))
                    .map_err(|e| anyhow::anyhow!("cannot make the sample video: {e}"))?;
            }
            f
        }
    };
    println!(
        "sprocket dev: API {} | Kafka {} | schema registry {}",
        dev.api_url(),
        dev.infra.bootstrap_servers(),
        dev.infra.registry_url()
    );
    let api = super::client::Api::new(&dev.api_url(), Some(&dev.api_key))?;
    let result = super::client::submit(&api, &file, "highlight", None, true).await;
    if let Ok(id) = &result {
        println!("outputs: {}", data.join("store/jobs").join(id).display());
        println!("archive: {}", data.join("archive/jobs").join(id).display());
        println!(
            "history: kcat -C -b {} -t sprocket.events -e   (while sprocket runs)",
            dev.infra.bootstrap_servers()
        );
    }
    if keep_running && result.is_ok() {
        println!("Sprocket keeps running; Ctrl-C stops it.");
        super::serve::shutdown_signal().await?;
    }
    dev.stop().await;
    result.map(|_| ())
}
