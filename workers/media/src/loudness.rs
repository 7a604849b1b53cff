//! Loudness normalisation in two passes (ITU-R BS.1770): the first measures
//! the audio exactly as the output will carry it (ffmpeg's `loudnorm`
//! analysis), the second applies the one gain that brings it to the target.
//! Where that gain would push peaks over the true-peak ceiling, a limiter
//! working at 192 kHz (so inter-sample peaks are seen) holds just those peaks
//! down, and as limiting frequent peaks lowers the loudness, its output is
//! measured again and the gain made up ([`second_pass`]). (loudnorm's own
//! fallback there, its dynamic mode, needs seconds of lookahead and left a
//! short reel several LU off its target.) A source without audio gets no
//! pass at all.

use crate::encode::Source;
use crate::tool::{Deadlines, Supervised};
use crate::MediaError;
use serde::Deserialize;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long the measuring pass may go without ending (it reads audio only).
const MEASURE_TIMEOUT: Duration = Duration::from_secs(600);

/// The loudness every rendered output with audio is brought to. In a recipe:
/// `"streaming"` (the default: −16 LUFS, true peak ≤ −1 dBTP), `"ebu_r128"`
/// (−23 LUFS, −1 dBTP), `"off"`, or an object with `target_lufs` and
/// `true_peak_db`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loudness {
    /// Integrated loudness, LUFS; `None` leaves the audio as it is.
    pub target_lufs: Option<f64>,
    /// The true-peak ceiling, dBTP.
    pub true_peak_db: f64,
}

impl Default for Loudness {
    fn default() -> Self {
        Loudness::STREAMING
    }
}

impl Loudness {
    /// −16 LUFS, −1 dBTP: what streaming platforms and podcasts use.
    pub const STREAMING: Loudness = Loudness {
        target_lufs: Some(-16.0),
        true_peak_db: -1.0,
    };
    /// EBU R128 broadcast loudness: −23 LUFS.
    pub const EBU_R128: Loudness = Loudness {
        target_lufs: Some(-23.0),
        true_peak_db: -1.0,
    };

    pub(crate) fn validate(&self) -> Result<(), String> {
        let in_range = |v: f64, lo: f64, hi: f64| v.is_finite() && (lo..=hi).contains(&v);
        if let Some(i) = self.target_lufs {
            if !in_range(i, -70.0, -5.0) {
                return Err(format!(
                    "loudness: target_lufs must be in [-70, -5], got {i}"
                ));
            }
        }
        if !in_range(self.true_peak_db, -9.0, 0.0) {
            return Err(format!(
                "loudness: true_peak_db must be in [-9, 0], got {}",
                self.true_peak_db
            ));
        }
        Ok(())
    }

    /// The second pass's filter for audio measured as `m`: the gain to the
    /// target and, where that would break the true-peak ceiling, a limiter
    /// at 192 kHz just under it. `None` when normalising is off or the audio
    /// is silent (no gain can lift it).
    pub fn filter(&self, m: &Measured) -> Option<String> {
        let target = self.target_lufs?;
        if !m.input_i.is_finite() || m.input_i < -70.0 {
            return None;
        }
        let gain = target - m.input_i;
        let limited = !(m.input_tp.is_finite() && m.input_tp + gain <= self.true_peak_db);
        Some(self.gain(gain, limited))
    }

    /// `gain` dB, then (when `limited`) the limiter just under the ceiling,
    /// with a margin for what the AAC encoder adds to peaks.
    fn gain(&self, gain: f64, limited: bool) -> String {
        if !limited {
            return format!("volume={gain:.2}dB");
        }
        let limit = 10f64.powf((self.true_peak_db - 0.5) / 20.0);
        format!(
            "volume={gain:.2}dB,aresample=192000,\
             alimiter=limit={limit:.4}:attack=1:release=50:level=disabled,aresample=48000"
        )
    }

    /// The first pass's filter: loudnorm's analysis, printing its JSON.
    fn measuring(&self) -> String {
        format!(
            "loudnorm=I={}:TP={}:print_format=json",
            self.target_lufs.unwrap_or(-16.0),
            self.true_peak_db
        )
    }
}

/// A recipe's `loudness` as written: a preset's name or the values.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Preset(String),
    Values {
        #[serde(default)]
        target_lufs: Option<f64>,
        #[serde(default)]
        true_peak_db: Option<f64>,
    },
}

impl<'de> Deserialize<'de> for Loudness {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(d)?;
        if let serde_json::Value::Object(map) = &value {
            if let Some(k) = map
                .keys()
                .find(|k| !["target_lufs", "true_peak_db"].contains(&k.as_str()))
            {
                return Err(D::Error::custom(format!(
                    "loudness: unknown field {k:?} (known: target_lufs, true_peak_db)"
                )));
            }
        }
        match serde_json::from_value::<Written>(value).map_err(D::Error::custom)? {
            Written::Preset(name) => match name.as_str() {
                "streaming" => Ok(Loudness::STREAMING),
                "ebu_r128" => Ok(Loudness::EBU_R128),
                "off" => Ok(Loudness {
                    target_lufs: None,
                    ..Loudness::STREAMING
                }),
                other => Err(D::Error::custom(format!(
                    "loudness: unknown preset {other:?} (known: streaming, ebu_r128, off)"
                ))),
            },
            Written::Values {
                target_lufs,
                true_peak_db,
            } => Ok(Loudness {
                target_lufs: Some(target_lufs.unwrap_or(-16.0)),
                true_peak_db: true_peak_db.unwrap_or(-1.0),
            }),
        }
    }
}

/// What the first pass measured (loudnorm's `input_*` figures).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub input_i: f64,
    pub input_tp: f64,
    pub input_lra: f64,
    pub input_thresh: f64,
    pub target_offset: f64,
}

/// The first pass: `graph` is a `-filter_complex` graph over `input` whose
/// output `[a]` is the audio exactly as the output will carry it (before
/// normalising); only audio is decoded.
pub fn measure(
    source: &Source,
    graph: &str,
    loudness: &Loudness,
    cancel: &CancellationToken,
) -> Result<Measured, MediaError> {
    let mut command = Command::new("ffmpeg");
    command
        .args(["-nostdin", "-hide_banner", "-nostats", "-v", "info"])
        .arg("-vn");
    source
        .input(&mut command)
        .arg("-filter_complex")
        .arg(format!("{graph};[a]{}[m]", loudness.measuring()))
        .args(["-map", "[m]", "-f", "null", "-"]);
    let mut run = Supervised::spawn("ffmpeg", &source.path, command)?;
    let deadlines = Deadlines {
        total: Some(MEASURE_TIMEOUT),
        idle: None,
    };
    let ended = run.wait(Some(cancel), deadlines, &mut |_| {})?;
    let log = run.succeeded(ended)?;
    parse_measurement(&log).ok_or_else(|| {
        run.error(format!(
            "loudness: no measurement in ffmpeg's output: {}",
            crate::tool::last_line(&log)
        ))
    })
}

/// The second pass's audio filter for `graph`'s `[a]` (as [`measure`]
/// takes it), `None` when normalising is off or the audio is silent. Where
/// the limiter has to hold peaks down it also lowers the loudness (by as
/// much as the peaks are frequent), so what comes out of it is measured again
/// and the gain made up for that, twice at most.
pub fn second_pass(
    source: &Source,
    graph: &str,
    loudness: &Loudness,
    cancel: &CancellationToken,
) -> Result<Option<String>, MediaError> {
    let Some(target) = loudness.target_lufs else {
        return Ok(None);
    };
    let m = measure(source, graph, loudness, cancel)?;
    let Some(mut filter) = loudness.filter(&m) else {
        return Ok(None);
    };
    if !filter.contains("alimiter") {
        return Ok(Some(filter));
    }
    let mut gain = target - m.input_i;
    for _ in 0..2 {
        let after = measure(source, &then(graph, &filter), loudness, cancel)?;
        let short = target - after.input_i;
        if !short.is_finite() || short.abs() <= 0.3 {
            break;
        }
        gain += short.clamp(-6.0, 6.0);
        filter = loudness.gain(gain, true);
    }
    Ok(Some(filter))
}

/// `graph` (whose output is `[a]`) with `filter` applied to its output.
fn then(graph: &str, filter: &str) -> String {
    let body = graph.strip_suffix("[a]").unwrap_or(graph);
    format!("{body}[pre];[pre]{filter}[a]")
}

/// loudnorm's JSON block, the last `{ … }` in its log.
fn parse_measurement(log: &str) -> Option<Measured> {
    let start = log.rfind('{')?;
    let end = start + log[start..].find('}')?;
    let json: serde_json::Value = serde_json::from_str(&log[start..=end]).ok()?;
    let field = |k: &str| -> Option<f64> {
        let s = json.get(k)?.as_str()?;
        match s.trim() {
            "-inf" => Some(f64::NEG_INFINITY),
            "inf" => Some(f64::INFINITY),
            v => v.parse().ok(),
        }
    };
    Some(Measured {
        input_i: field("input_i")?,
        input_tp: field("input_tp")?,
        input_lra: field("input_lra")?,
        input_thresh: field("input_thresh")?,
        target_offset: field("target_offset")?,
    })
}

/// What ffmpeg's `ebur128` filter (EBU R128 / ITU-R BS.1770) reports for a
/// file's first audio stream: the check the tests and the bench make of every
/// normalised output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Integrated loudness, LUFS.
    pub integrated_lufs: f64,
    /// True peak, dBTP.
    pub true_peak_db: f64,
}

/// Measures `file`'s first audio stream with `ebur128=peak=true`.
pub fn ebur128(file: &Path) -> Result<Report, MediaError> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-nostats", "-v", "info"])
        .arg("-i")
        .arg(file)
        .args([
            "-map",
            "0:a:0",
            "-af",
            "ebur128=peak=true",
            "-f",
            "null",
            "-",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| MediaError::io(file, e))?;
    let log = String::from_utf8_lossy(&out.stderr);
    let summary = log.rsplit("Summary:").next().unwrap_or_default();
    let value = |label: &str| -> Option<f64> {
        summary
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(label))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    match (out.status.success(), value("I:"), value("Peak:")) {
        (true, Some(integrated_lufs), Some(true_peak_db)) => Ok(Report {
            integrated_lufs,
            true_peak_db,
        }),
        _ => Err(MediaError::Tool {
            tool: "ffmpeg",
            path: file.to_path_buf(),
            message: format!("ebur128: no summary ({})", crate::tool::last_line(&log)),
        }),
    }
}

/// The graph for an output that carries the first audio stream whole.
pub fn whole_source_graph() -> &'static str {
    "[0:a:0]anull[a]"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(v: serde_json::Value) -> Result<Loudness, String> {
        let l: Loudness = serde_json::from_value(v).map_err(|e| e.to_string())?;
        l.validate()?;
        Ok(l)
    }

    #[test]
    fn presets_and_values() {
        assert_eq!(read("streaming".into()).unwrap(), Loudness::STREAMING);
        assert_eq!(read("ebu_r128".into()).unwrap().target_lufs, Some(-23.0));
        assert_eq!(read("off".into()).unwrap().target_lufs, None);
        let l = read(serde_json::json!({"target_lufs": -14, "true_peak_db": -2})).unwrap();
        assert_eq!((l.target_lufs, l.true_peak_db), (Some(-14.0), -2.0));
        for bad in [
            serde_json::json!("loud"),
            serde_json::json!({"target_lufs": 3}),
            serde_json::json!({"true_peak_db": 2}),
            serde_json::json!({"gain": 2}),
            serde_json::json!(7),
        ] {
            assert!(read(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_measurement_is_read_from_the_log() {
        let log = "[Parsed_loudnorm_1 @ 0x5]\n{\n\t\"input_i\" : \"-27.61\",\n\t\"input_tp\" : \"-4.47\",\n\
                   \t\"input_lra\" : \"18.06\",\n\t\"input_thresh\" : \"-39.20\",\n\t\"output_i\" : \"-16.58\",\n\
                   \t\"target_offset\" : \"0.58\"\n}\n";
        let m = parse_measurement(log).unwrap();
        assert_eq!(m.input_i, -27.61);
        assert_eq!(m.target_offset, 0.58);
        // -27.61 to -16 is +11.61 dB: peaks at -4.47 would reach +7.14.
        let f = Loudness::STREAMING.filter(&m).unwrap();
        assert!(
            f.starts_with("volume=11.61dB,aresample=192000,alimiter=limit=0.8414:"),
            "{f}"
        );
        assert!(f.ends_with("level=disabled,aresample=48000"), "{f}");
        let quiet_peaks = Measured {
            input_tp: -20.0,
            ..m
        };
        assert_eq!(
            Loudness::STREAMING.filter(&quiet_peaks).as_deref(),
            Some("volume=11.61dB")
        );
        let silent = Measured {
            input_i: f64::NEG_INFINITY,
            ..m
        };
        assert_eq!(Loudness::STREAMING.filter(&silent), None);
        let off = Loudness {
            target_lufs: None,
            ..Loudness::STREAMING
        };
        assert_eq!(off.filter(&m), None);
        assert_eq!(parse_measurement("no json here"), None);
        assert_eq!(
            then(whole_source_graph(), "volume=2dB"),
            "[0:a:0]anull[pre];[pre]volume=2dB[a]"
        );
    }
}
