//! `benches/REPORT.md`: each mode of the bench rewrites its own section
//! (between `<!-- NAME:begin -->` and `<!-- NAME:end -->`) and leaves the rest
//! of the file, notes written by hand included, as it is.

use crate::measure::{decode_args, Found, Sample};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// What is measured, in the order of the table.
pub const METHODS: [&str; 6] = [
    "decode only: ffmpeg → `-f null`",
    "decode only: ffmpeg → pipe, read in Rust",
    "decode only: Sprocket's FrameDecoder (probe, pipe, planar batches)",
    "**Sprocket analyze**",
    "PySceneDetect `detect(AdaptiveDetector())`",
    "analysis alone: shots and quality, no faces (decoded frames held in memory)",
];
pub const NULL: usize = 0;
pub const PIPE: usize = 1;
pub const BATCHES: usize = 2;
pub const ANALYZE: usize = 3;
pub const PYSCENEDETECT: usize = 4;
pub const ALONE: usize = 5;

/// One input's samples, by method, over the rounds.
pub struct VideoRun {
    pub label: &'static str,
    pub path: PathBuf,
    pub samples: Vec<Vec<Sample>>,
    pub found: Option<Found>,
    pub pyscenedetect: Option<serde_json::Value>,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Median and best fps of one method, when it ran.
fn fps(run: &VideoRun, method: usize) -> Option<(f64, f64)> {
    let samples = &run.samples[method];
    let fps: Vec<f64> = samples.iter().map(Sample::fps).collect();
    let best = fps.iter().copied().fold(f64::NAN, f64::max);
    (!samples.is_empty()).then(|| (median(fps), best))
}

pub fn speed_section(
    runs: &[VideoRun],
    rounds: usize,
    load_start: &str,
    took: Duration,
    mtcnn: &crate::mtcnn_timing::Rates,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Speed\n");
    let _ = writeln!(out, "`cargo bench -p sprocket-media --bench analyze`\n");
    machine(&mut out, load_start);
    let _ = writeln!(
        out,
        "* {rounds} rounds, each timing every row below once per input in turn (the \
         analysis alone: once per input); the run took {:.0} s\n",
        took.as_secs_f64()
    );
    let _ = writeln!(out, "### Inputs\n");
    for run in runs {
        inputs(&mut out, run);
    }
    let _ = writeln!(out, "\n### Results\n");
    let _ = writeln!(
        out,
        "fps: frames per wall-clock second, the median over the rounds and the best \
         round (the least disturbed by other work on the machine). CPU: user + system \
         time per frame of all the processes involved (ffprobe, ffmpeg, Python; median), \
         and the part of it in the bench's own process (Sprocket's threads).\n"
    );
    let _ = writeln!(
        out,
        "| input | what | fps (median) | fps (best) | CPU ms/frame | of which in this process |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
    for run in runs {
        for (i, method) in METHODS.iter().enumerate() {
            let Some((fps, best)) = fps(run, i) else {
                continue;
            };
            let samples = &run.samples[i];
            let cpu = median(samples.iter().map(Sample::cpu_ms_per_frame).collect());
            let own = median(samples.iter().map(Sample::own_cpu_ms_per_frame).collect());
            let _ = writeln!(
                out,
                "| {} | {method} | {fps:.0} | {best:.0} | {cpu:.2} | {own:.2} |",
                run.label
            );
        }
    }
    let _ = writeln!(out, "\n### Ratios\n");
    let _ = writeln!(
        out,
        "Analyze's time over the decode-only time (goal: at most 1.15), and analyze's \
         speed over PySceneDetect's (goal: at least 1); from the median fps, and from \
         the best.\n"
    );
    let _ = writeln!(
        out,
        "| input | from | analyze / decode (pipe) | analyze / decode (`-f null`) | analyze speed / PySceneDetect speed |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|");
    for run in runs {
        let (Some(pipe), Some(null), Some(analyze)) =
            (fps(run, PIPE), fps(run, NULL), fps(run, ANALYZE))
        else {
            continue;
        };
        let pysd = fps(run, PYSCENEDETECT);
        for (from, pick) in [("median", 0), ("best", 1)] {
            let get = |v: (f64, f64)| if pick == 0 { v.0 } else { v.1 };
            let versus = pysd.map_or("not run".to_string(), |p| {
                format!("{:.2}", get(analyze) / get(p))
            });
            let _ = writeln!(
                out,
                "| {} | {from} | {:.3} | {:.3} | {versus} |",
                run.label,
                get(pipe) / get(analyze),
                get(null) / get(analyze)
            );
        }
    }
    mtcnn_section(&mut out, mtcnn);
    if let Some(run) = runs.first() {
        let args: Vec<String> = decode_args(&run.path, false)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let _ = writeln!(
            out,
            "\nThe decode-only command, exactly as analyze runs it (for the {} input; \
             `-f null` swaps `-f rawvideo` for `-f null`, keeping `-pix_fmt rgb24`):\n\n\
             ```text\nffmpeg {}\n```",
            run.label,
            args.join(" ")
        );
    }
    out
}

fn inputs(out: &mut String, run: &VideoRun) {
    let name = run.path.file_name().unwrap_or_default().to_string_lossy();
    let bytes = std::fs::metadata(&run.path).map_or(0, |m| m.len());
    let _ = writeln!(
        out,
        "* {}: `{name}` (30 s at 30 fps, H.264, {:.1} Mbit/s)",
        run.label,
        bytes as f64 * 8.0 / 30.0 / 1e6
    );
    if let Some(found) = &run.found {
        let _ = writeln!(
            out,
            "  * Sprocket analyses it at {}x{}; cuts {:?}",
            found.size.0, found.size.1, found.cuts
        );
    }
    if let Some(json) = &run.pyscenedetect {
        let _ = writeln!(
            out,
            "  * PySceneDetect {} decodes it at full size with OpenCV and analyses it at \
             {}x{} (its default downscale: factor {:.2}, linear interpolation); cuts {}",
            json["version"].as_str().unwrap_or("?"),
            json["analysis_width"],
            json["analysis_height"],
            json["downscale"].as_f64().unwrap_or(0.0),
            json["cuts"]
        );
    }
}

/// One row of the peak-memory table.
pub struct RssRow {
    pub label: &'static str,
    pub json: serde_json::Value,
}

pub fn rss_section(rows: &[RssRow], load_start: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Peak memory\n");
    let _ = writeln!(
        out,
        "`cargo bench -p sprocket-media --bench analyze -- --rss`\n"
    );
    machine(&mut out, load_start);
    let _ = writeln!(
        out,
        "\nanalyze (default parameters) runs in a child process; its peak RSS is its \
         `VmHWM`, ffmpeg's is `getrusage(RUSAGE_CHILDREN).ru_maxrss` in the child.\n"
    );
    let _ = writeln!(
        out,
        "| input | frames | analyze s | fps | analyze peak RSS | ffmpeg peak RSS |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for row in rows {
        let json = &row.json;
        let number = |key: &str| json[key].as_f64().unwrap_or(0.0);
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.0} | {:.0} MiB | {:.0} MiB |",
            row.label,
            number("frames"),
            number("seconds"),
            number("frames") / number("seconds"),
            number("analyze_peak_rss_kib") / 1024.0,
            number("ffmpeg_peak_rss_kib") / 1024.0,
        );
    }
    out
}

/// Replaces the section `name` of `benches/REPORT.md` with `body` (appending
/// it when the file has no such section yet).
pub fn write_section(name: &str, body: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/REPORT.md");
    let (begin, end) = (
        format!("<!-- {name}:begin -->"),
        format!("<!-- {name}:end -->"),
    );
    let old = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Analyze benchmark\n".into());
    let section = format!("{begin}\n{body}{end}");
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if b < e => format!("{}{section}{}", &old[..b], &old[e + end.len()..]),
        _ => format!("{}\n{section}\n", old.trim_end()),
    };
    std::fs::write(&path, new).expect("write REPORT.md");
    path
}

fn machine(out: &mut String, load_start: &str) {
    let _ = writeln!(out, "* CPU: {} ({} logical cores)", cpu_model(), cores());
    let _ = writeln!(
        out,
        "* load average (1, 5, 15 min) at start: {load_start}; at end: {}",
        load_average()
    );
    let _ = writeln!(out, "* {}", ffmpeg_version());
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn ffmpeg_version() -> String {
    Command::new("ffmpeg")
        .arg("-version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split(" Copyright").next().unwrap_or(l).into())
        })
        .unwrap_or_else(|| "ffmpeg: unknown version".into())
}

fn mtcnn_section(out: &mut String, rates: &crate::mtcnn_timing::Rates) {
    let _ = writeln!(out, "\n### MTCNN\n");
    let _ = writeln!(
        out,
        "Face detection on the CPU with {} thread(s), on scikit-image's photographs \
         ({}; {} images, 400 to 1024 pixels wide), {} passes after a warm-up; images per \
         second over the median pass (`--bench mtcnn` times it alone, with more passes \
         and any threads):\n",
        rates.threads,
        crate::mtcnn_timing::FIXTURES.join(", "),
        rates.images,
        rates.iterations
    );
    let _ = writeln!(out, "| detector | images/s | Sprocket / facenet-pytorch |");
    let _ = writeln!(out, "|---|---:|---:|");
    let _ = writeln!(
        out,
        "| Sprocket (candle, `faces::Mtcnn`) | {:.2} | |",
        rates.sprocket
    );
    let _ = match &rates.reference {
        Ok(reference) => writeln!(
            out,
            "| facenet-pytorch 2.6.0 (`MTCNN.detect`, torch 2.2.2) | {reference:.2} | {:.2} |",
            rates.sprocket / reference
        ),
        Err(why) => writeln!(out, "| facenet-pytorch | {why} | |"),
    };
}
