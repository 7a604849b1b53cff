//! A recipe's phase parameters checked as the phases' workers will read
//! them, so that a recipe stored for later use is refused at once for a
//! parameter its phase would refuse when a job runs it.

use sprocket_core::retry::phase_params;
use sprocket_core::{Phase, Recipe};
use sprocket_media::analyze::AnalyzeParams;
use sprocket_media::render::RenderParams;

/// Checks each step's own parameters (the runtime's `timeout_s` and `retry`
/// are the core's: [`sprocket_core::Bounds::recipe`]). Ingest and archive
/// read none of their own.
pub fn check(recipe: &Recipe) -> Result<(), String> {
    for step in &recipe.steps {
        let params = phase_params(&step.params);
        let checked = match step.phase {
            Phase::Analyze => AnalyzeParams::from_params(&params).map(drop),
            Phase::Render => RenderParams::from_params(&params).map(drop),
            Phase::Ingest | Phase::Archive => Ok(()),
        };
        checked.map_err(|e| format!("/steps/{}: {e}", step_index(recipe, step.phase)))?;
    }
    Ok(())
}

fn step_index(recipe: &Recipe, phase: Phase) -> usize {
    recipe
        .steps
        .iter()
        .position(|s| s.phase == phase)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn recipe(steps: serde_json::Value) -> Recipe {
        serde_json::from_value(json!({"name": "r", "steps": steps})).unwrap()
    }

    #[test]
    fn phase_parameters_are_read_as_their_workers_read_them() {
        for name in sprocket_core::recipe::BUILTIN {
            check(&Recipe::builtin(name).unwrap()).unwrap();
        }
        let ok = recipe(json!([
            {"phase": "ingest", "params": {"timeout_s": 60}},
            {"phase": "analyze", "params": {"max_seconds": 2.0, "retry": {"max_attempts": 2}}},
            {"phase": "render", "params": {"outputs": ["poster"]}},
        ]));
        check(&ok).unwrap();
        let e = check(&recipe(json!([
            {"phase": "ingest"}, {"phase": "render", "params": {"outputs": ["gif"]}}
        ])))
        .unwrap_err();
        assert!(e.starts_with("/steps/1: ") && e.contains("gif"), "{e}");
        let e = check(&recipe(json!([
            {"phase": "ingest"}, {"phase": "analyze", "params": {"threshold": -1}}
        ])))
        .unwrap_err();
        assert!(e.contains("/steps/1") && e.contains("threshold"), "{e}");
        let e = check(&recipe(json!([
            {"phase": "ingest"}, {"phase": "analyze", "params": {"colour": "red"}}
        ])))
        .unwrap_err();
        assert!(e.contains("colour"), "{e}");
    }
}
