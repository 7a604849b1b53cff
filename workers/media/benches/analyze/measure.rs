//! The measurements: each runs one thing on one video and returns the frames
//! it handled with its wall-clock and CPU time.

use sprocket_media::analyze::{analyze, AnalyzeParams, BATCH_FRAMES};
use sprocket_media::decode::{ffmpeg_args, DecodeOptions, FrameDecoder};
use sprocket_media::quality::QualityMeter;
use sprocket_media::tensors;
use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// One measurement: frames handled, wall time, and CPU time, all of it and
/// the part spent in this process (the rest is in ffmpeg, ffprobe, Python).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub frames: u64,
    pub wall: Duration,
    pub cpu: Cpu,
}

/// CPU time (user + system) of this process and of the children waited for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub own: Duration,
    pub children: Duration,
}

impl Sample {
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.wall.as_secs_f64()
    }

    pub fn cpu_ms_per_frame(&self) -> f64 {
        let cpu = self.cpu.own + self.cpu.children;
        1000.0 * cpu.as_secs_f64() / self.frames as f64
    }

    pub fn own_cpu_ms_per_frame(&self) -> f64 {
        1000.0 * self.cpu.own.as_secs_f64() / self.frames as f64
    }
}

/// Wall time and CPU time of `work`.
fn timed<T>(work: impl FnOnce() -> T) -> (T, Duration, Cpu) {
    let before = cpu_time();
    let started = Instant::now();
    let value = work();
    let wall = started.elapsed();
    let after = cpu_time();
    let cpu = Cpu {
        own: after.own.saturating_sub(before.own),
        children: after.children.saturating_sub(before.children),
    };
    (value, wall, cpu)
}

fn rusage(who: libc::c_int) -> libc::rusage {
    // SAFETY: getrusage only writes the struct it is given, for which all
    // zeroes is a valid value.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    }
}

fn cpu_time() -> Cpu {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let total = |r: libc::rusage| tv(r.ru_utime) + tv(r.ru_stime);
    Cpu {
        own: total(rusage(libc::RUSAGE_SELF)),
        children: total(rusage(libc::RUSAGE_CHILDREN)),
    }
}

/// Largest peak RSS of the children waited for so far, in KiB.
pub fn children_peak_rss_kib() -> i64 {
    rusage(libc::RUSAGE_CHILDREN).ru_maxrss
}

/// The decoder settings analyze uses with its default parameters.
fn decode_options() -> DecodeOptions {
    let params = AnalyzeParams::default();
    DecodeOptions {
        width: params.analysis_width,
        batch_frames: BATCH_FRAMES,
        max_seconds: params.max_seconds,
        stream: None,
    }
}

/// Analyze's ffmpeg arguments for `video` (see `ffmpeg_args`; analyze
/// starts ffmpeg on the frame rate ffmpeg guesses, and only again with `-r`
/// when the probe disagrees, which it does not on the bench's inputs), with
/// the output muxer swapped for `null` when `null` is set (the `rgb24`
/// conversion still happens).
pub fn decode_args(video: &Path, null: bool) -> Vec<OsString> {
    let mut args = ffmpeg_args(video, &decode_options(), None);
    if null {
        let f = args
            .iter()
            .rposition(|a| a == "-f")
            .expect("an output format");
        assert_eq!(args[f + 1], "rawvideo");
        args[f + 1] = "null".into();
    }
    args
}

/// ffmpeg as analyze runs it, writing to the null muxer.
pub fn decode_null(video: &Path, frames: u64) -> Sample {
    let args = decode_args(video, true);
    let (status, wall, cpu) = timed(|| {
        Command::new("ffmpeg")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("ffmpeg runs")
    });
    assert!(status.success());
    Sample { frames, wall, cpu }
}

/// ffmpeg as analyze runs it, its raw frames read from the pipe and dropped.
pub fn decode_pipe(video: &Path, frame_bytes: u64) -> Sample {
    let args = decode_args(video, false);
    let (bytes, wall, cpu) = timed(|| {
        let mut child = Command::new("ffmpeg")
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg runs");
        let mut stdout = child.stdout.take().expect("piped");
        // The pipe as analyze's decoder sizes it.
        sprocket_media::decode::widen_pipe(&stdout);
        let mut buf = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => bytes += n as u64,
                Err(e) => panic!("reading ffmpeg: {e}"),
            }
        }
        assert!(child.wait().expect("ffmpeg ends").success());
        bytes
    });
    assert_eq!(bytes % frame_bytes, 0, "whole frames");
    Sample {
        frames: bytes / frame_bytes,
        wall,
        cpu,
    }
}

/// Sprocket's decoder (probe, ffmpeg, reader thread, planar batches), the
/// batches dropped.
pub fn decode_batches(video: &Path) -> Sample {
    let cancel = CancellationToken::new();
    let (frames, wall, cpu) = timed(|| {
        let mut decoder = FrameDecoder::open(video, &decode_options()).expect("decoder");
        while decoder
            .next_batch(&mut |_| {}, &cancel)
            .expect("batch")
            .is_some()
        {}
        decoder.frames()
    });
    Sample { frames, wall, cpu }
}

/// The analysis alone: the default detector and the quality meter over the
/// video's batches, decoded beforehand and held in memory as tensors.
pub fn analysis_alone(video: &Path) -> Sample {
    let cancel = CancellationToken::new();
    let mut decoder = FrameDecoder::open(video, &decode_options()).expect("decoder");
    let mut batches = Vec::new();
    while let Some(batch) = decoder.next_batch(&mut |_| {}, &cancel).expect("batch") {
        batches.push(tensors::frames(batch, tensors::device()).expect("tensor"));
    }
    let (frames, wall, cpu) = timed(|| {
        let mut detector = AnalyzeParams::default().shot_detector();
        let mut meter = QualityMeter::new();
        for batch in &batches {
            detector.push(batch).expect("detector");
            meter.measure(batch).expect("quality");
        }
        detector.finish();
        decoder.frames()
    });
    Sample { frames, wall, cpu }
}

/// What analyze found, for the report.
pub struct Found {
    pub frames: u64,
    pub cuts: Vec<u64>,
    pub size: (u32, u32),
}

/// `analyze` with the default parameters.
pub fn sprocket_analyze(video: &Path) -> (Sample, Found) {
    let cancel = CancellationToken::new();
    let params = AnalyzeParams::default();
    // Loaded before the clock starts, as a worker loads it once at start.
    let faces = sprocket_media::faces::Mtcnn::shared_default().expect("MTCNN weights");
    let (analysis, wall, cpu) =
        timed(|| analyze(video, &params, faces, &mut |_| {}, &cancel).expect("analyze"));
    let found = Found {
        frames: analysis.frames,
        cuts: analysis
            .shots
            .iter()
            .skip(1)
            .map(|s| s.start_frame)
            .collect(),
        size: (analysis.width, analysis.height),
    };
    let sample = Sample {
        frames: analysis.frames,
        wall,
        cpu,
    };
    (sample, found)
}

/// PySceneDetect's adaptive detector from the project's `.venv`, when there
/// is one: the sample (wall time as timed inside Python, around `detect`
/// only; CPU time of the whole Python process) and what the script said.
pub fn pyscenedetect(video: &Path) -> Option<(Sample, serde_json::Value)> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = crate_dir.join("../../.venv/bin/python");
    if !python.exists() {
        return None;
    }
    let script = crate_dir.join("tests/reference/scenedetect_speed.py");
    let (output, _, cpu) = timed(|| {
        Command::new(&python)
            .arg(&script)
            .arg(video)
            .output()
            .expect("python runs")
    });
    assert!(
        output.status.success(),
        "scenedetect_speed.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let sample = Sample {
        frames: json["frames"].as_u64().expect("frames"),
        wall: Duration::from_secs_f64(json["seconds"].as_f64().expect("seconds")),
        cpu,
    };
    Some((sample, json))
}
