//! Sample videos made with ffmpeg: segments of visibly different content joined
//! by hard cuts at known frames. Used by `sprocket demo` when no video is given,
//! and by the tests, which know where the cuts are.

use std::path::Path;
use std::process::Command;

/// Distinct lavfi sources; consecutive ones differ strongly in hue and structure.
const SOURCES: [&str; 6] = [
    "testsrc2=size={W}x{H}:rate={R}",
    "smptebars=size={W}x{H}:rate={R}",
    "mandelbrot=size={W}x{H}:rate={R}",
    "color=c=0x2040c0:size={W}x{H}:rate={R},noise=alls=30:allf=t",
    "rgbtestsrc=size={W}x{H}:rate={R}",
    "color=c=0xe0a020:size={W}x{H}:rate={R},noise=alls=30:allf=t",
];

/// Writes an H.264 (+AAC when `audio`) MP4 of segments with the given frame
/// counts; returns the cut frames (start of every segment but the first).
pub fn with_cuts(out: &Path, segment_frames: &[u32], fps: u32, audio: bool) -> Vec<u64> {
    with_cuts_sized(out, segment_frames, fps, audio, (320, 180))
        .unwrap_or_else(|e| panic!("making {}: {e}", out.display()))
}

/// Like [`with_cuts`] at a chosen size, returning ffmpeg's failure instead of panicking.
pub fn with_cuts_sized(
    out: &Path,
    segment_frames: &[u32],
    fps: u32,
    audio: bool,
    (w, h): (u32, u32),
) -> Result<Vec<u64>, String> {
    let mut args: Vec<String> = ["-nostdin", "-y", "-v", "error"].map(String::from).into();
    for (i, n) in segment_frames.iter().enumerate() {
        let src = SOURCES[i % SOURCES.len()]
            .replace("{W}", &w.to_string())
            .replace("{H}", &h.to_string())
            .replace("{R}", &fps.to_string());
        args.extend([
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("{src},trim=end_frame={n}"),
        ]);
    }
    let total: u32 = segment_frames.iter().sum();
    if audio {
        let secs = total as f64 / fps as f64;
        args.extend([
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("sine=frequency=440:duration={secs}"),
        ]);
    }
    let mut filter: String = (0..segment_frames.len())
        .map(|i| format!("[{i}:v]"))
        .collect();
    filter.push_str(&format!("concat=n={}:v=1:a=0[v]", segment_frames.len()));
    args.extend([
        "-filter_complex".into(),
        filter,
        "-map".into(),
        "[v]".into(),
    ]);
    if audio {
        args.extend([
            "-map".into(),
            format!("{}:a", segment_frames.len()),
            "-c:a".into(),
            "aac".into(),
        ]);
    }
    args.extend(
        [
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "250",
        ]
        .map(String::from),
    );
    args.push(out.display().to_string());
    // No input from the terminal: ffmpeg reads its stdin for keys, and a
    // background process that does stops.
    let st = Command::new("ffmpeg")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .status()
        .expect("ffmpeg runs");
    assert!(st.success(), "ffmpeg failed making {}", out.display());
    let mut cuts = Vec::new();
    let mut at = 0u64;
    for n in &segment_frames[..segment_frames.len() - 1] {
        at += *n as u64;
        cuts.push(at);
    }
    Ok(cuts)
}

/// Writes an H.264 + AAC MP4 of `photos`, one shot each of `frames` frames at
/// `fps`, at `(w, h)`: each photo letterboxed into the frame and slowly
/// zoomed into and panned across (so faces in it move, as a camera would
/// make them), with hard cuts between them and a tone as the sound. For the
/// demo: real photographs with real faces, from the project's fixtures.
pub fn from_photos(
    out: &Path,
    photos: &[&Path],
    frames: u32,
    fps: u32,
    (w, h): (u32, u32),
) -> Result<(), String> {
    if photos.is_empty() {
        return Err("no photos to make a video of".into());
    }
    let mut args: Vec<String> = ["-nostdin", "-y", "-v", "error"].map(String::from).into();
    for p in photos {
        args.extend(["-i".into(), p.display().to_string()]);
    }
    let secs = (frames as f64 * photos.len() as f64) / fps as f64;
    args.extend([
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("sine=frequency=330:duration={secs}"),
    ]);
    // Twice the output size before zoompan, so the zoom stays sharp; the
    // zoom grows to 1.25 and the window pans from left to right.
    let (w2, h2) = (w * 2, h * 2);
    let mut filter = String::new();
    for i in 0..photos.len() {
        filter.push_str(&format!(
            "[{i}:v]scale={w2}:{h2}:force_original_aspect_ratio=decrease,\
             pad={w2}:{h2}:(ow-iw)/2:(oh-ih)/2,setsar=1,\
             zoompan=z='min(1+0.25*on/{frames},1.25)':x='(iw-iw/zoom)*on/{frames}':\
             y='(ih-ih/zoom)/2':d={frames}:s={w}x{h}:fps={fps},format=yuv420p[v{i}];"
        ));
    }
    for i in 0..photos.len() {
        filter.push_str(&format!("[v{i}]"));
    }
    filter.push_str(&format!("concat=n={}:v=1:a=0[v]", photos.len()));
    args.extend([
        "-filter_complex".into(),
        filter,
        "-map".into(),
        "[v]".into(),
        "-map".into(),
        format!("{}:a", photos.len()),
        "-c:a".into(),
        "aac".into(),
    ]);
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-shortest",
        ]
        .map(String::from),
    );
    args.push(out.display().to_string());
    let done = Command::new("ffmpeg")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    if !done.status.success() {
        return Err(format!(
            "ffmpeg failed making {}: {}",
            out.display(),
            String::from_utf8_lossy(&done.stderr).trim()
        ));
    }
    Ok(())
}
