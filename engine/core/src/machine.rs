//! What must happen next: the decisions of the job state machine, as plain data.
//!
//! Adapters execute actions; replay (the projector) computes them and ignores them.

use crate::{ErrorInfo, Phase, Recipe};

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Hand the job to this phase's workers (produce a work item to its topic).
    Dispatch(Phase),
    /// The recipe's last phase completed: record `JobSucceeded`.
    Succeed,
    /// A phase failed for good: record `JobFailed`.
    Fail(ErrorInfo),
    /// Stop the work running for this phase (cancellation).
    Abort(Phase),
}

/// After `done` completes, where the routing slip sends the job.
pub fn advance(recipe: &Recipe, done: Phase) -> Action {
    match recipe.next_after(done) {
        Some(next) => Action::Dispatch(next),
        None => Action::Succeed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slip_routes_to_the_next_phase_then_succeeds() {
        let r = Recipe::builtin("highlight").unwrap();
        assert_eq!(advance(&r, Phase::Ingest), Action::Dispatch(Phase::Analyze));
        assert_eq!(advance(&r, Phase::Render), Action::Dispatch(Phase::Archive));
        assert_eq!(advance(&r, Phase::Archive), Action::Succeed);
    }
}
