//! Reading back what ffmpeg's HLS muxer wrote (a media playlist's segments
//! and byte ranges, the init segment's `avcC`) and writing the master
//! playlist from it.

use super::Rendition;
use crate::MediaError;
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// One media segment: its duration and its bytes in the rendition's file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub duration_s: f64,
    pub offset: u64,
    pub length: u64,
}

/// The segments of a media playlist (`#EXTINF` + `#EXT-X-BYTERANGE`), or
/// `None` when it lists none or a segment has no byte range.
pub fn segments(text: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    let mut duration = None;
    let mut next_offset = 0;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("#EXTINF:") {
            duration = Some(v.split(',').next()?.trim().parse::<f64>().ok()?);
        } else if let Some(v) = line.strip_prefix("#EXT-X-BYTERANGE:") {
            let (length, offset) = byte_range(v, next_offset)?;
            next_offset = offset + length;
            out.push(Segment {
                duration_s: duration.take()?,
                offset,
                length,
            });
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `<length>[@<offset>]`; without an offset the range follows the last one.
fn byte_range(v: &str, follows: u64) -> Option<(u64, u64)> {
    let v = v.trim().trim_matches('"');
    match v.split_once('@') {
        Some((len, off)) => Some((len.parse().ok()?, off.parse().ok()?)),
        None => Some((v.parse().ok()?, follows)),
    }
}

/// The init segment's bytes: the `#EXT-X-MAP`'s `BYTERANGE` of `media`.
pub fn init_bytes(text: &str, media: &Path) -> Result<Vec<u8>, MediaError> {
    let range = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("#EXT-X-MAP:"))
        .find_map(|attrs| attrs.split_once("BYTERANGE=").map(|(_, r)| r))
        .and_then(|r| byte_range(r.split(',').next().unwrap_or(r), 0));
    let Some((length, offset)) = range.filter(|(l, _)| *l <= 1 << 20) else {
        return Err(MediaError::Tool {
            tool: "ffmpeg",
            path: media.to_path_buf(),
            message: "hls: the playlist has no init segment range".into(),
        });
    };
    let mut file = std::fs::File::open(media).map_err(|e| MediaError::io(media, e))?;
    let mut buf = vec![0; length as usize];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut buf))
        .map_err(|e| MediaError::io(media, e))?;
    Ok(buf)
}

/// The RFC 6381 codec of the H.264 stream whose init segment is `init`:
/// `avc1.` and the SPS's profile, constraint flags and level in hex, read
/// from the `avcC` box.
pub fn avc1(init: &[u8]) -> Option<String> {
    let at = init.windows(4).position(|w| w == b"avcC")?;
    // configurationVersion, then AVCProfileIndication, profile_compatibility
    // and AVCLevelIndication.
    let b = init.get(at + 5..at + 8)?;
    Some(format!("avc1.{:02x}{:02x}{:02x}", b[0], b[1], b[2]))
}

/// The peak and average bitrates of `segments`, bit/s. The peak is the
/// highest segment bitrate (`BANDWIDTH`, as RFC 8216 defines it), with a
/// segment shorter than a second counted together with the one before it, so
/// a sliver at the end cannot claim an absurd rate.
pub fn bandwidths(segments: &[Segment]) -> (u64, u64) {
    let mut merged: Vec<(f64, u64)> = Vec::new();
    for s in segments {
        match merged.last_mut() {
            Some(last) if s.duration_s < 1.0 => {
                last.0 += s.duration_s;
                last.1 += s.length;
            }
            _ => merged.push((s.duration_s, s.length)),
        }
    }
    let rate = |d: f64, bytes: u64| (bytes as f64 * 8.0 / d.max(1e-3)).ceil() as u64;
    let peak = merged.iter().map(|&(d, b)| rate(d, b)).max().unwrap_or(0);
    let total_s: f64 = segments.iter().map(|s| s.duration_s).sum();
    let total_b: u64 = segments.iter().map(|s| s.length).sum();
    (peak, rate(total_s, total_b))
}

/// The width, height and frame rate of `media`'s video stream, from ffprobe.
pub fn video_stream(media: &Path) -> Result<(u32, u32, f64), MediaError> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-protocol_whitelist", "file"])
        .args(["-select_streams", "v:0", "-show_entries"])
        .args(["stream=width,height,avg_frame_rate", "-of", "json"])
        .arg(crate::tool::file_url(media))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| MediaError::io(media, e))?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let s = &json["streams"][0];
    let dim = |k: &str| s[k].as_u64().and_then(|v| u32::try_from(v).ok());
    let rate = s["avg_frame_rate"].as_str().and_then(|r| {
        let (n, d) = r.split_once('/')?;
        let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
        (d > 0.0).then(|| n / d)
    });
    match (out.status.success(), dim("width"), dim("height"), rate) {
        (true, Some(w), Some(h), Some(r)) => Ok((w, h, r)),
        _ => Err(MediaError::Tool {
            tool: "ffprobe",
            path: media.to_path_buf(),
            message: format!(
                "hls: no video stream in a rendition: {}",
                crate::tool::last_line(&String::from_utf8_lossy(&out.stderr))
            ),
        }),
    }
}

/// The master playlist: one `#EXT-X-STREAM-INF` per rendition, in ladder
/// order (highest first), each pointing at its media playlist by a relative
/// URI.
pub fn master(renditions: &[Rendition]) -> String {
    let mut m = String::from("#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for r in renditions {
        let _ = writeln!(
            m,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",\
             RESOLUTION={}x{},FRAME-RATE={:.3}\n{}.m3u8",
            r.bandwidth,
            r.average_bandwidth,
            r.codecs,
            r.width,
            r.height,
            r.frame_rate,
            r.rung.name()
        );
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n\
        #EXT-X-MAP:URI=\"720p.mp4\",BYTERANGE=\"1373@0\"\n\
        #EXTINF:6.000000,\n#EXT-X-BYTERANGE:1939871@1373\n720p.mp4\n\
        #EXTINF:6.000000,\n#EXT-X-BYTERANGE:1927260\n720p.mp4\n\
        #EXTINF:0.500000,\n#EXT-X-BYTERANGE:1000000@3868504\n720p.mp4\n#EXT-X-ENDLIST\n";

    #[test]
    fn segments_and_byte_ranges() {
        let s = segments(LIST).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].offset, s[0].length), (1373, 1939871));
        assert_eq!(s[1].offset, 1373 + 1939871, "a range without @ follows");
        assert_eq!(s[2].duration_s, 0.5);
        assert_eq!(segments("#EXTM3U\n#EXTINF:6,\na.ts\n"), None);
        let (peak, avg) = bandwidths(&s);
        // The half-second sliver is counted with the segment before it.
        assert_eq!(
            peak,
            ((1927260.0 + 1000000.0) * 8.0 / 6.5_f64).ceil() as u64
        );
        assert_eq!(
            avg,
            ((1939871.0 + 1927260.0 + 1000000.0) * 8.0 / 12.5_f64).ceil() as u64
        );
    }

    #[test]
    fn avc1_from_the_avcc_box() {
        let mut init = b"....moov....avcC".to_vec();
        init.extend([1, 0x64, 0x00, 0x1f, 0xff]);
        assert_eq!(avc1(&init).as_deref(), Some("avc1.64001f"));
        assert_eq!(avc1(b"no box here"), None);
    }
}
