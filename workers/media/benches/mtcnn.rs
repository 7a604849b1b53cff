//! MTCNN images per second on the CPU: Sprocket against facenet-pytorch, on
//! the same fixture photographs, with the same number of threads.
//!
//!     cargo bench -p sprocket-media --bench mtcnn
//!
//! Needs `bash models/fetch.sh`; facenet-pytorch is timed when
//! `.venv-torch/bin/python` exists (see `tests/reference/mtcnn_golden.py`).
//! `MTCNN_BENCH_ITERATIONS` overrides the 20 passes; `RAYON_NUM_THREADS` sets
//! the threads of both. Rates are images over the median pass (one pass = every
//! image once), the mean in brackets.

use candle_core::Device;
use sprocket_media::faces::{default_model_dir, Mtcnn, MTCNN_SUBDIR};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "../tests/photos/mod.rs"]
mod photos;

const FIXTURES: [&str; 4] = [
    "astronaut.png",
    "astronaut_pair.png",
    "camera.png",
    "coffee.png",
];

struct Image {
    name: &'static str,
    rgb: Vec<u8>,
    width: usize,
    height: usize,
}

fn facenet_pytorch(
    repo: &Path,
    paths: &[PathBuf],
    threads: usize,
    iterations: usize,
) -> Option<f64> {
    let python = repo.join(".venv-torch/bin/python");
    if !python.exists() {
        println!("facenet-pytorch: skipped, {} is missing", python.display());
        return None;
    }
    let out = Command::new(&python)
        .arg(repo.join("workers/media/tests/reference/mtcnn_bench.py"))
        .args(["--threads", &threads.to_string()])
        .args(["--iterations", &iterations.to_string()])
        .args(paths)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        println!(
            "facenet-pytorch: failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    print!("{stdout}");
    stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("images_per_second="))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let iterations: usize = std::env::var("MTCNN_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let threads = candle_core::utils::get_num_threads();
    let mtcnn = Mtcnn::load(&default_model_dir().join(MTCNN_SUBDIR), &Device::Cpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let paths: Vec<PathBuf> = FIXTURES.iter().map(|f| photos::fixture(f)).collect();
    let images: Vec<Image> = FIXTURES
        .iter()
        .zip(&paths)
        .map(|(name, path)| {
            let (rgb, width, height) = photos::decode_rgb(path);
            Image {
                name,
                rgb,
                width,
                height,
            }
        })
        .collect();
    for img in &images {
        let faces = mtcnn
            .detect(&img.rgb, img.width, img.height)
            .expect("detect");
        println!(
            "{}: {}×{}, {} face(s)",
            img.name,
            img.width,
            img.height,
            faces.len()
        );
    }
    // One pass is every image once; the rate is taken from the median pass,
    // which a busy shared machine disturbs less than the mean.
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
    let mean = (iterations * images.len()) as f64 / passes.iter().sum::<f64>();
    passes.sort_by(f64::total_cmp);
    let sprocket = images.len() as f64 / passes[passes.len() / 2];
    println!(
        "sprocket images_per_second={sprocket:.3} (mean {mean:.3}) threads={threads} images={} iterations={iterations}",
        images.len()
    );
    if let Some(reference) = facenet_pytorch(&repo, &paths, threads, iterations) {
        println!(
            "ratio sprocket/facenet-pytorch = {:.3}",
            sprocket / reference
        );
    }
}
