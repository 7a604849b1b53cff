//! MTCNN images per second on the CPU, Sprocket's and facenet-pytorch's, on
//! the same fixture photographs with the same number of threads: shared by
//! the `mtcnn` bench and the `analyze` bench's report.

// Each of the two benches uses a part of it.
#![allow(dead_code)]

use sprocket_media::faces::Mtcnn;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "../../tests/photos/mod.rs"]
mod photos;

/// The photographs timed (scikit-image's, from `models/fetch.sh`).
pub const FIXTURES: [&str; 4] = [
    "astronaut.png",
    "astronaut_pair.png",
    "camera.png",
    "coffee.png",
];

/// One photograph, decoded to RGB24 before any timing.
pub struct Image {
    pub name: &'static str,
    pub rgb: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

/// The rates of one measurement.
pub struct Rates {
    /// Sprocket: images over the median pass (one pass = every image once).
    pub sprocket: f64,
    /// Sprocket: images over all passes.
    pub sprocket_mean: f64,
    /// candle's CPU threads (and facenet-pytorch's).
    pub threads: usize,
    pub images: usize,
    pub iterations: usize,
    /// facenet-pytorch, the same way; or why it was not timed.
    pub reference: Result<f64, String>,
}

pub fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

pub fn fixture_paths() -> Vec<PathBuf> {
    FIXTURES.iter().map(|f| photos::fixture(f)).collect()
}

pub fn load_images(paths: &[PathBuf]) -> Vec<Image> {
    FIXTURES
        .iter()
        .zip(paths)
        .map(|(name, path)| {
            let (rgb, width, height) = photos::decode_rgb(path);
            Image {
                name,
                rgb,
                width,
                height,
            }
        })
        .collect()
}

/// Times `iterations` passes of Sprocket's MTCNN over the fixtures (after a
/// warm-up pass), then facenet-pytorch's with the same threads.
pub fn measure(mtcnn: &Mtcnn, iterations: usize) -> Rates {
    let paths = fixture_paths();
    let images = load_images(&paths);
    for img in &images {
        mtcnn
            .detect(&img.rgb, img.width, img.height)
            .expect("detect");
    }
    // The rate is taken from the median pass, which a busy shared machine
    // disturbs less than the mean.
    let mut passes = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        for img in &images {
            std::hint::black_box(
                mtcnn
                    .detect(&img.rgb, img.width, img.height)
                    .expect("detect"),
            );
        }
        passes.push(start.elapsed().as_secs_f64());
    }
    let sprocket_mean = (iterations * images.len()) as f64 / passes.iter().sum::<f64>();
    passes.sort_by(f64::total_cmp);
    let sprocket = images.len() as f64 / passes[passes.len() / 2];
    let threads = candle_core::utils::get_num_threads();
    Rates {
        sprocket,
        sprocket_mean,
        threads,
        images: images.len(),
        iterations,
        reference: facenet_pytorch(&repo(), &paths, threads, iterations),
    }
}

/// facenet-pytorch's rate from `tests/reference/mtcnn_bench.py`, run by
/// `.venv-torch` (made by `scripts/torch-venv.sh`).
fn facenet_pytorch(
    repo: &Path,
    paths: &[PathBuf],
    threads: usize,
    iterations: usize,
) -> Result<f64, String> {
    let python = repo.join(".venv-torch/bin/python");
    if !python.exists() {
        return Err(format!(
            "not timed: {} is missing (`bash scripts/torch-venv.sh` makes it)",
            python.display()
        ));
    }
    let out = Command::new(&python)
        .arg(repo.join("workers/media/tests/reference/mtcnn_bench.py"))
        .args(["--threads", &threads.to_string()])
        .args(["--iterations", &iterations.to_string()])
        .args(paths)
        .output()
        .map_err(|e| format!("could not run {}: {e}", python.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("images_per_second="))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no rate in its output: {stdout}"))
}
