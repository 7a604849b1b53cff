use sprocket_media::analyze::{analyze, AnalyzeParams};
use std::sync::atomic::AtomicBool;
#[test]
fn dump() {
    for p in ["/tmp/sprocket-media-bench/bench720.mp4", "/tmp/vt/four.mp4"] {
        let t = std::time::Instant::now();
        let a = analyze(
            std::path::Path::new(p),
            &AnalyzeParams::default(),
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .unwrap();
        let el = t.elapsed().as_secs_f64();
        eprintln!(
            "{p}: {} frames in {el:.2}s = {:.0} fps; {}x{}",
            a.frames,
            a.frames as f64 / el,
            a.width,
            a.height
        );
        for s in &a.shots {
            eprintln!(
                "  {} {}-{} b={:.1} sh={:.2} m={:.2} score={:.3}",
                s.index, s.start_frame, s.end_frame, s.brightness, s.sharpness, s.motion, s.score
            );
        }
        eprintln!("{}", a.detector);
    }
}
