//! `sprocket demo`: starts `sprocket dev`, submits a video (when none is
//! given, a sample made from real photographs with faces, the fixtures
//! `models/fetch.sh` takes from scikit-image's wheel), follows it, and says
//! where the outputs and the dashboard are.

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
        None => sample_video(&data)?,
    };
    println!(
        "sprocket dev: API {} | Kafka {} | schema registry {}",
        dev.api_url(),
        dev.infra.bootstrap_servers(),
        dev.infra.registry_url()
    );
    println!(
        "dashboard: {}/ (log in with the admin API key below)",
        dev.api_url()
    );
    println!("admin API key: {}", dev.api_key);
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

/// The demo's sample: the fixture photographs, four shots of 4 s with faces
/// in three (an astronaut, a cup of coffee, a cameraman, two astronauts);
/// without the fixtures, a generated pattern video with six shots.
fn sample_video(data: &std::path::Path) -> anyhow::Result<PathBuf> {
    let fixtures = sprocket_media::faces::default_model_dir().join("fixtures");
    let photos: Vec<PathBuf> = [
        "astronaut.png",
        "coffee.png",
        "camera.png",
        "astronaut_pair.png",
    ]
    .iter()
    .map(|p| fixtures.join(p))
    .collect();
    if photos.iter().all(|p| p.exists()) {
        let f = data.join("sample-photos.mp4");
        if !f.exists() {
            println!(
                "making a 16 s sample video from four photographs: {}",
                f.display()
            );
            let refs: Vec<&std::path::Path> = photos.iter().map(PathBuf::as_path).collect();
            sample::from_photos(&f, &refs, 100, 25, (640, 360))
                .map_err(|e| anyhow::anyhow!("cannot make the sample video: {e}"))?;
        }
        return Ok(f);
    }
    let f = data.join("sample.mp4");
    if !f.exists() {
        println!(
            "no fixture photographs in {} (bash models/fetch.sh fetches them); \
             making a 24 s pattern video with six shots: {}",
            fixtures.display(),
            f.display()
        );
        sample::with_cuts_sized(&f, &[75, 100, 60, 90, 150, 125], 25, true, (640, 360))
            .map_err(|e| anyhow::anyhow!("cannot make the sample video: {e}"))?;
    }
    Ok(f)
}
