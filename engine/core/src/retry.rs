//! Retry policy and phase time limits: per-phase defaults, overridable per recipe
//! step (`"retry": {...}`, `"timeout_s": n` in the step's params).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::CoreError;

/// Params keys the runtime owns; the phase's own parameters are the rest.
pub const RUNTIME_PARAMS: [&str; 2] = ["retry", "timeout_s"];

/// Exponential backoff with jitter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub initial_delay_ms: u64,
    pub multiplier: f64,
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_delay_ms: 1000,
            multiplier: 2.0,
            max_delay_ms: 60_000,
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `next` (2 for the first retry), with `jitter` in
    /// [0, 1) spreading it over [½, 1] of the exponential value, so retries of many
    /// jobs that failed together do not arrive together.
    pub fn delay_ms(&self, next: u32, jitter: f64) -> u64 {
        let exp = next.saturating_sub(2).min(63) as i32;
        let base = (self.initial_delay_ms as f64 * self.multiplier.max(1.0).powi(exp))
            .min(self.max_delay_ms as f64);
        (base * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))).round() as u64
    }

    fn validate(&self) -> Result<(), CoreError> {
        let bad = |m: &str| Err(CoreError::InvalidRecipe(format!("retry: {m}")));
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1");
        }
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return bad("multiplier must be a number ≥ 1");
        }
        if self.max_delay_ms < self.initial_delay_ms {
            return bad("max_delay_ms must be ≥ initial_delay_ms");
        }
        Ok(())
    }
}

/// The runtime's view of a step: its retry policy and time limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Runtime {
    pub retry: RetryPolicy,
    pub timeout_s: f64,
}

impl Runtime {
    /// Applies a step's `retry` and `timeout_s` over the defaults.
    pub fn from_params(
        params: &Map<String, Value>,
        defaults: &Runtime,
    ) -> Result<Runtime, CoreError> {
        let mut rt = defaults.clone();
        if let Some(r) = params.get("retry") {
            let mut merged = serde_json::to_value(&rt.retry).expect("policy serializes");
            let obj = r
                .as_object()
                .ok_or_else(|| CoreError::InvalidRecipe("retry must be an object".into()))?;
            for (k, v) in obj {
                merged[k] = v.clone();
            }
            rt.retry = serde_json::from_value(merged)
                .map_err(|e| CoreError::InvalidRecipe(format!("retry: {e}")))?;
        }
        if let Some(t) = params.get("timeout_s") {
            rt.timeout_s = t
                .as_f64()
                .filter(|t| *t > 0.0 && t.is_finite())
                .ok_or_else(|| {
                    CoreError::InvalidRecipe("timeout_s must be a positive number".into())
                })?;
        }
        rt.retry.validate()?;
        Ok(rt)
    }
}

/// A step's params without the runtime's keys: what the phase itself reads.
pub fn phase_params(params: &Map<String, Value>) -> Map<String, Value> {
    params
        .iter()
        .filter(|(k, _)| !RUNTIME_PARAMS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn delays_grow_exponentially_with_jitter_and_a_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_ms(2, 1.0), 1000);
        assert_eq!(p.delay_ms(3, 1.0), 2000);
        assert_eq!(p.delay_ms(4, 1.0), 4000);
        assert_eq!(p.delay_ms(2, 0.0), 500);
        assert_eq!(p.delay_ms(30, 1.0), 60_000, "capped");
        for j in [0.0, 0.3, 0.99] {
            let d = p.delay_ms(3, j);
            assert!((1000..=2000).contains(&d), "{d}");
        }
    }

    #[test]
    fn steps_override_the_defaults_and_bad_values_are_refused() {
        let d = Runtime {
            retry: RetryPolicy::default(),
            timeout_s: 3600.0,
        };
        let p = json!({"retry": {"max_attempts": 5, "initial_delay_ms": 10}, "timeout_s": 2.5, "outputs": []});
        let rt = Runtime::from_params(p.as_object().unwrap(), &d).unwrap();
        assert_eq!(
            (
                rt.retry.max_attempts,
                rt.retry.initial_delay_ms,
                rt.retry.multiplier
            ),
            (5, 10, 2.0)
        );
        assert_eq!(rt.timeout_s, 2.5);
        assert_eq!(
            phase_params(p.as_object().unwrap())
                .keys()
                .collect::<Vec<_>>(),
            ["outputs"]
        );
        for bad in [
            json!({"retry": {"max_attempts": 0}}),
            json!({"retry": {"multiplier": 0.5}}),
            json!({"retry": {"nope": 1}}),
            json!({"timeout_s": -1}),
            json!({"retry": 3}),
        ] {
            assert!(
                Runtime::from_params(bad.as_object().unwrap(), &d).is_err(),
                "{bad}"
            );
        }
    }
}
