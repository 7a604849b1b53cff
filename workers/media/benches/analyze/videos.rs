//! The benchmark's videos, made with ffmpeg from lavfi sources and cached
//! under `target/bench-media/` by name (a name changes with its recipe).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn media_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-media");
    std::fs::create_dir_all(&dir).expect("target/bench-media");
    dir.canonicalize().unwrap_or(dir)
}

/// `dir/name`, made by `make(tmp)` when it is not there yet (written under a
/// temporary name first, so an interrupted run leaves no half file).
fn cached(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let path = media_dir().join(name);
    if !path.exists() {
        let tmp = media_dir().join(format!("partial-{name}"));
        eprintln!("making {name} ...");
        let started = Instant::now();
        make(&tmp);
        std::fs::rename(&tmp, &path).expect("rename");
        eprintln!("made {name} in {:.0?}", started.elapsed());
    }
    path
}

fn ffmpeg(args: &[String]) {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// 30 s at 30 fps of eight scenes with hard cuts (moving test patterns, a
/// fractal zoom, a cellular automaton, flat colours with film grain), H.264
/// (libx264 veryfast, CRF 23), `width`x`height`.
pub fn scene_mix(width: u32, height: u32) -> PathBuf {
    let name = format!("scene-mix-30s-{width}x{height}-v1.mp4");
    cached(&name, |out| {
        let size = format!("s={width}x{height}:r=30");
        let sources = [
            format!("testsrc2={size}"),
            "mandelbrot=s=480x270:r=30".to_string(),
            format!("smptehdbars={size}"),
            format!("color=c=0x2040c0:{size}"),
            format!("rgbtestsrc={size}"),
            "life=s=480x270:r=30:mold=10:ratio=0.2:death_color=#303060:life_color=#e0c080"
                .to_string(),
            format!("testsrc={size}"),
            format!("color=c=0xe0a020:{size}"),
        ];
        let treatments = [
            (150, String::new()),
            (120, format!(",scale={width}:{height}")),
            (90, ",noise=alls=8:allf=t".to_string()),
            (120, ",noise=alls=6:allf=t".to_string()),
            (90, String::new()),
            (120, format!(",scale={width}:{height}:flags=neighbor")),
            (90, String::new()),
            (120, ",noise=alls=6:allf=t".to_string()),
        ];
        let mut args = Vec::new();
        let mut graph = String::new();
        for (i, (source, (frames, treatment))) in sources.iter().zip(&treatments).enumerate() {
            args.extend(["-f".into(), "lavfi".into(), "-i".into(), source.clone()]);
            graph += &format!("[{i}:v]trim=end_frame={frames}{treatment}[s{i}];");
        }
        for i in 0..sources.len() {
            graph += &format!("[s{i}]");
        }
        graph += &format!("concat=n={}:v=1:a=0,format=yuv420p[out]", sources.len());
        args.extend([
            "-filter_complex".into(),
            graph,
            "-map".into(),
            "[out]".into(),
        ]);
        args.extend(
            [
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "60",
            ]
            .map(String::from),
        );
        args.push(out.display().to_string());
        ffmpeg(&args);
    })
}

/// 10 minutes of 1080p at 30 fps: a 60-second clip (testsrc2 and smptehdbars
/// taking turns every 5 s, libx264 ultrafast) looped ten times with stream
/// copy, so making it takes about as long as one minute of encoding.
pub fn ten_minutes_1080p() -> PathBuf {
    let clip = cached("clip-60s-1920x1080-v1.mp4", |out| {
        let graph = "[0:v][1:v]overlay=enable='gte(mod(t,10),5)',format=yuv420p[mix]";
        let args = [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=1920x1080:r=30:d=60",
            "-f",
            "lavfi",
            "-i",
            "smptehdbars=s=1920x1080:r=30:d=60",
            "-filter_complex",
            graph,
            "-map",
            "[mix]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "60",
        ];
        let mut args: Vec<String> = args.map(String::from).to_vec();
        args.push(out.display().to_string());
        ffmpeg(&args);
    });
    cached("long-10min-1920x1080-v1.mp4", |out| {
        let args = [
            "-stream_loop".to_string(),
            "9".into(),
            "-i".into(),
            clip.display().to_string(),
            "-c".into(),
            "copy".into(),
            "-f".into(),
            "mp4".into(),
            out.display().to_string(),
        ];
        ffmpeg(&args);
    })
}
