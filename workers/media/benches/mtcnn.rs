//! MTCNN images per second on the CPU: Sprocket against facenet-pytorch, on
//! the same fixture photographs, with the same number of threads.
//!
//!     cargo bench -p sprocket-media --bench mtcnn
//!
//! Needs `bash models/fetch.sh`; facenet-pytorch is timed when
//! `.venv-torch/bin/python` exists (`bash scripts/torch-venv.sh` makes it).
//! `MTCNN_BENCH_ITERATIONS` overrides the 20 passes; `RAYON_NUM_THREADS` and
//! `CANDLE_NUM_THREADS` set the threads of both (all cores by default; the
//! `analyze` bench times one thread, as the `sprocket` binary runs). Rates
//! are images over the median pass (one pass = every image once), the mean
//! in brackets.

#[path = "mtcnn/timing.rs"]
mod timing;

fn main() {
    let iterations: usize = std::env::var("MTCNN_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mtcnn = sprocket_media::faces::Mtcnn::shared_default().unwrap_or_else(|e| panic!("{e}"));
    for img in timing::load_images(&timing::fixture_paths()) {
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
    let rates = timing::measure(mtcnn, iterations);
    println!(
        "sprocket images_per_second={:.3} (mean {:.3}) threads={} images={} iterations={}",
        rates.sprocket, rates.sprocket_mean, rates.threads, rates.images, rates.iterations
    );
    match rates.reference {
        Ok(reference) => {
            println!("facenet-pytorch images_per_second={reference:.3}");
            println!(
                "ratio sprocket/facenet-pytorch = {:.3}",
                rates.sprocket / reference
            );
        }
        Err(why) => println!("facenet-pytorch: {why}"),
    }
}
