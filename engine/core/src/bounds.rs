//! What a submission may ask for: ceilings on its size, its labels and its
//! recipe's runtime parameters, so a submission can neither make the next
//! work item too large for Kafka nor hold a phase for ever.
//!
//! The size and label limits are part of the contract; the recipe ceilings
//! come from configuration (`[limits]`).

use std::collections::BTreeMap;

use crate::event::Submitted;
use crate::recipe::Recipe;
use crate::retry::Runtime;
use crate::CoreError;

/// Most bytes of a submission (`POST /v1/jobs` body, or its JSON on the
/// intake topic).
pub const MAX_SUBMISSION_BYTES: usize = 64 * 1024;
/// Most labels on one job.
pub const MAX_LABELS: usize = 64;
/// Most bytes of all label keys and values together.
pub const MAX_LABEL_BYTES: usize = 16 * 1024;

/// Ceilings on a recipe step's runtime parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    /// Longest `timeout_s` a step may ask for.
    pub max_timeout_s: f64,
    /// Most `retry.max_attempts` a step may ask for.
    pub max_attempts: u32,
    /// Longest retry delay (`initial_delay_ms`, `max_delay_ms`) a step may ask for.
    pub max_retry_delay_ms: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_timeout_s: 6.0 * 3600.0,
            max_attempts: 20,
            max_retry_delay_ms: 3_600_000,
        }
    }
}

impl Bounds {
    /// Checks a submission against every bound; returns its resolved recipe.
    pub fn submission(&self, s: &Submitted) -> Result<Recipe, CoreError> {
        let size = serde_json::to_vec(s).map_or(usize::MAX, |b| b.len());
        if size > MAX_SUBMISSION_BYTES {
            return Err(CoreError::OverLimit(format!(
                "the submission is {size} bytes, over the limit of {MAX_SUBMISSION_BYTES}"
            )));
        }
        labels(&s.labels)?;
        if let Some(t) = &s.tenant {
            crate::ids::tenant(t)?;
        }
        s.source.validate()?;
        let recipe = s.recipe.resolve()?;
        self.recipe(&recipe)?;
        Ok(recipe)
    }

    /// Each step's `timeout_s` and `retry` under the ceilings.
    pub fn recipe(&self, recipe: &Recipe) -> Result<(), CoreError> {
        let none = Runtime {
            retry: Default::default(),
            timeout_s: 1.0,
        };
        for step in &recipe.steps {
            let rt = Runtime::from_params(&step.params, &none)?;
            let over = |what: String| {
                Err(CoreError::OverLimit(format!(
                    "the {} step's {what}",
                    step.phase
                )))
            };
            if rt.timeout_s > self.max_timeout_s {
                return over(format!(
                    "timeout_s {} is over the limit of {}",
                    rt.timeout_s, self.max_timeout_s
                ));
            }
            if rt.retry.max_attempts > self.max_attempts {
                return over(format!(
                    "retry.max_attempts {} is over the limit of {}",
                    rt.retry.max_attempts, self.max_attempts
                ));
            }
            let delay = rt.retry.initial_delay_ms.max(rt.retry.max_delay_ms);
            if delay > self.max_retry_delay_ms {
                return over(format!(
                    "retry delay of {delay} ms is over the limit of {} ms",
                    self.max_retry_delay_ms
                ));
            }
        }
        Ok(())
    }
}

/// At most [`MAX_LABELS`] labels of [`MAX_LABEL_BYTES`] in all.
pub fn labels(labels: &BTreeMap<String, String>) -> Result<(), CoreError> {
    if labels.len() > MAX_LABELS {
        return Err(CoreError::OverLimit(format!(
            "{} labels, over the limit of {MAX_LABELS}",
            labels.len()
        )));
    }
    let bytes: usize = labels.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_LABEL_BYTES {
        return Err(CoreError::OverLimit(format!(
            "labels of {bytes} bytes, over the limit of {MAX_LABEL_BYTES}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RecipeRef, Source};
    use serde_json::json;

    fn submitted(recipe: serde_json::Value, labels: BTreeMap<String, String>) -> Submitted {
        Submitted {
            source: Source::Upload("u1".into()),
            recipe: serde_json::from_value::<RecipeRef>(recipe).unwrap(),
            recipe_version: None,
            labels,
            tenant: None,
        }
    }

    fn inline(params: serde_json::Value) -> serde_json::Value {
        json!({"name": "x", "steps": [{"phase": "ingest", "params": params}]})
    }

    #[test]
    fn recipes_within_the_ceilings_pass_and_over_them_fail() {
        let b = Bounds::default();
        let ok = submitted(json!("minimal"), BTreeMap::new());
        assert!(b.submission(&ok).is_ok());
        let ok = submitted(
            inline(json!({"timeout_s": 60, "retry": {"max_attempts": 5}})),
            BTreeMap::new(),
        );
        assert!(b.submission(&ok).is_ok());
        for (params, says) in [
            (json!({"timeout_s": 1e20}), "timeout_s"),
            (json!({"timeout_s": 21601}), "timeout_s"),
            (
                json!({"retry": {"max_attempts": 4_000_000_000u32}}),
                "max_attempts",
            ),
            (
                json!({"retry": {"initial_delay_ms": 10, "max_delay_ms": 86_400_000u64}}),
                "delay",
            ),
            (
                json!({"retry": {"initial_delay_ms": 7_200_000u64, "max_delay_ms": 7_200_000u64}}),
                "delay",
            ),
        ] {
            let e = b
                .submission(&submitted(inline(params.clone()), BTreeMap::new()))
                .unwrap_err();
            assert_eq!(e.code(), "over_limit", "{params}: {e}");
            assert!(e.to_string().contains(says), "{params}: {e}");
        }
        // Not a number at all is an invalid recipe, as before.
        let e = b
            .submission(&submitted(
                inline(json!({"timeout_s": "soon"})),
                BTreeMap::new(),
            ))
            .unwrap_err();
        assert_eq!(e.code(), "invalid_recipe");
    }

    #[test]
    fn labels_and_size_are_bounded() {
        let b = Bounds::default();
        let many: BTreeMap<_, _> = (0..65).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        let e = b
            .submission(&submitted(json!("minimal"), many))
            .unwrap_err();
        assert!(e.to_string().contains("65 labels"), "{e}");
        let at: BTreeMap<_, _> = (0..64).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert!(b.submission(&submitted(json!("minimal"), at)).is_ok());
        let big = BTreeMap::from([("k".to_owned(), "x".repeat(MAX_LABEL_BYTES))]);
        let e = b.submission(&submitted(json!("minimal"), big)).unwrap_err();
        assert!(e.to_string().contains("labels of"), "{e}");
        // A recipe inline can make the submission itself too large.
        let steps: Vec<_> = (0..2000)
            .map(|i| json!({"phase": "ingest", "params": {"note": format!("{i:040}")}}))
            .collect();
        let e = b
            .submission(&submitted(
                json!({"name": "x", "steps": steps}),
                BTreeMap::new(),
            ))
            .unwrap_err();
        assert!(e.to_string().contains("the submission is"), "{e}");
    }

    /// A tenant named on the intake has a job id's alphabet; anything else
    /// fails the job (`invalid_tenant`), like an invalid recipe.
    #[test]
    fn a_named_tenant_must_be_a_name() {
        let b = Bounds::default();
        let mut s = submitted(json!("minimal"), BTreeMap::new());
        s.tenant = Some("acme-2".into());
        assert!(b.submission(&s).is_ok());
        for bad in ["", "a b", "../x", &"t".repeat(65)] {
            s.tenant = Some(bad.to_owned());
            let e = b.submission(&s).unwrap_err();
            assert_eq!(e.code(), "invalid_tenant", "{bad:?}");
        }
    }
}
