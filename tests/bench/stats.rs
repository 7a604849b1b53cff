//! Latency samples and their percentiles, and the clocks they are read from.

use std::time::Instant;

/// Latency samples in milliseconds.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<f64>);

impl Samples {
    pub fn push(&mut self, ms: f64) {
        self.0.push(ms);
    }

    pub fn extend(&mut self, other: &Samples) {
        self.0.extend_from_slice(&other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn max(&self) -> Option<f64> {
        self.pct(100.0)
    }

    /// Nearest-rank percentile (`p` in 0..=100); `None` without samples.
    pub fn pct(&self, p: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
        Some(v[rank.min(v.len()) - 1])
    }

    pub fn p50(&self) -> Option<f64> {
        self.pct(50.0)
    }

    pub fn p99(&self) -> Option<f64> {
        self.pct(99.0)
    }
}

/// A latency cell: `12.3` ms, or `–` without samples.
pub fn ms(v: Option<f64>) -> String {
    match v {
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
        None => "–".into(),
    }
}

/// Milliseconds since the Unix epoch, as a float with microsecond resolution.
pub fn now_ms() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1000.0
}

/// The longest a run waits for its next result before it calls the pipeline
/// stuck (a whole run may take longer: it only has to keep moving).
pub const STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// A stopwatch read in laps: milliseconds since the previous lap.
pub struct Lap(Instant);

impl Lap {
    pub fn start() -> Lap {
        Lap(Instant::now())
    }

    pub fn lap(&mut self) -> f64 {
        let now = Instant::now();
        let ms = (now - self.0).as_secs_f64() * 1000.0;
        self.0 = now;
        ms
    }
}
