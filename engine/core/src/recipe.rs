//! Recipes: the routing slip a job carries from phase to phase.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::{CoreError, Phase};

/// One phase of a recipe with its parameters (interpreted by that phase's worker).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "schema", schema(value_type = Object))]
    pub params: Map<String, Value>,
}

/// A resolved recipe: a name and the phases to run, in pipeline order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub name: String,
    pub steps: Vec<Step>,
}

/// What a submission names: a built-in recipe by name, or a recipe inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum RecipeRef {
    Name(String),
    Inline(Recipe),
}

impl Default for RecipeRef {
    fn default() -> Self {
        RecipeRef::Name(DEFAULT_RECIPE.to_owned())
    }
}

/// The recipe used when a submission names none.
pub const DEFAULT_RECIPE: &str = "highlight";

/// Names of the built-in recipes.
pub const BUILTIN: [&str; 2] = ["highlight", "minimal"];

impl Recipe {
    /// A built-in recipe by name.
    ///
    /// * `highlight`: ingest, analyze, render a highlight reel (30 s) and a poster, archive.
    /// * `minimal`: all four phases with the least media work each can do (probe,
    ///   a shot scan of the first second, a poster only, archive) — for benchmarks and smoke tests.
    pub fn builtin(name: &str) -> Option<Recipe> {
        let step = |phase, params: Value| Step {
            phase,
            params: params.as_object().cloned().unwrap_or_default(),
        };
        let steps = match name {
            "highlight" => vec![
                step(Phase::Ingest, json!({})),
                step(Phase::Analyze, json!({})),
                step(
                    Phase::Render,
                    json!({"outputs": ["highlight", "poster"], "target_duration_s": 30.0}),
                ),
                step(Phase::Archive, json!({})),
            ],
            "minimal" => vec![
                step(Phase::Ingest, json!({})),
                step(Phase::Analyze, json!({"max_seconds": 1.0})),
                step(Phase::Render, json!({"outputs": ["poster"]})),
                step(Phase::Archive, json!({})),
            ],
            _ => return None,
        };
        Some(Recipe {
            name: name.to_owned(),
            steps,
        })
    }

    /// Checks the routing slip: it starts with ingest, phases in pipeline order, each once.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |m: String| Err(CoreError::InvalidRecipe(m));
        if self.name.is_empty() {
            return bad("recipe name is empty".into());
        }
        match self.steps.first() {
            Some(s) if s.phase == Phase::Ingest => {}
            _ => return bad("a recipe starts with the ingest phase".into()),
        }
        for w in self.steps.windows(2) {
            if w[0].phase >= w[1].phase {
                return bad(format!(
                    "phases must be in pipeline order, each once: {} then {}",
                    w[0].phase, w[1].phase
                ));
            }
        }
        crate::retention::Overrides::of(self)?;
        Ok(())
    }

    pub fn step(&self, phase: Phase) -> Option<&Step> {
        self.steps.iter().find(|s| s.phase == phase)
    }

    /// The phase after `phase` in this recipe, if any.
    pub fn next_after(&self, phase: Phase) -> Option<Phase> {
        let i = self.steps.iter().position(|s| s.phase == phase)?;
        self.steps.get(i + 1).map(|s| s.phase)
    }

    pub fn phases(&self) -> impl Iterator<Item = Phase> + '_ {
        self.steps.iter().map(|s| s.phase)
    }
}

impl RecipeRef {
    /// Resolves a name to its built-in recipe, or validates an inline one.
    pub fn resolve(&self) -> Result<Recipe, CoreError> {
        let recipe = match self {
            RecipeRef::Name(n) => Recipe::builtin(n)
                .ok_or_else(|| CoreError::UnknownRecipe(n.clone(), BUILTIN.join(", ")))?,
            RecipeRef::Inline(r) => r.clone(),
        };
        recipe.validate()?;
        Ok(recipe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid_and_route_in_order() {
        for name in BUILTIN {
            let r = RecipeRef::Name(name.into()).resolve().unwrap();
            assert_eq!(r.next_after(Phase::Ingest), Some(Phase::Analyze));
            assert_eq!(r.next_after(Phase::Archive), None);
        }
    }

    #[test]
    fn rejects_bad_recipes() {
        assert!(matches!(
            RecipeRef::Name("nope".into()).resolve(),
            Err(CoreError::UnknownRecipe(..))
        ));
        let r: RecipeRef = serde_json::from_value(
            json!({"name": "x", "steps": [{"phase": "render"}, {"phase": "ingest"}]}),
        )
        .unwrap();
        assert!(matches!(r.resolve(), Err(CoreError::InvalidRecipe(_))));
        let r: RecipeRef = serde_json::from_value(
            json!({"name": "x", "steps": [{"phase": "ingest"}, {"phase": "archive"}]}),
        )
        .unwrap();
        let r = r.resolve().unwrap();
        assert_eq!(r.next_after(Phase::Ingest), Some(Phase::Archive));
    }

    /// Found by the `recipe` fuzz target: an integer too large for `u64` is
    /// read as the nearest `f64` and must read back as that same number once
    /// written, or a recorded recipe is not the one that ran.
    #[test]
    fn parameters_read_back_as_written() {
        let text = br#"{"name": "x", "steps": [{"phase": "ingest"}, {"phase": "archive",
            "params": {"n": 1000888888888888888888888888888888888888, "f": 0.30000000000000004}}]}"#;
        let first: Recipe = serde_json::from_slice(text).unwrap();
        let again: Recipe = serde_json::from_slice(&serde_json::to_vec(&first).unwrap()).unwrap();
        assert_eq!(again, first);
    }
}
