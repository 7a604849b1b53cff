//! A submission naming a stored recipe, read on the intake before its
//! acceptance: the job takes the recipe and version its canonical copy on
//! `sprocket.events` records (the ingest worker pins them), in whatever order
//! the topics are read, on SQLite and PostgreSQL alike.

mod support;

use serde_json::json;
use sprocket_core::event::Submitted;
use sprocket_core::{EventBody, JobId, RecipeRef};
use sprocket_projections::{Position, Projections};
use support::history::{at, History};

const EVENTS: &str = "sprocket.events";

/// The intake's copy (naming `clip`) and the events topic's (`clip`
/// version 3 inline) of one submission, then the rest of its history.
fn copies() -> (
    (Position, sprocket_core::Envelope),
    Vec<(Position, sprocket_core::Envelope)>,
) {
    let h = History::successful("job-stored", 0);
    let mut intake = h.events[0].clone();
    let EventBody::JobSubmitted(s) = &mut intake.body else {
        panic!("a history starts with its submission")
    };
    s.recipe = RecipeRef::Name("clip".into());
    let pinned: Submitted = Submitted {
        recipe: RecipeRef::Inline(
            serde_json::from_value(json!({"name": "clip", "steps": [
                {"phase": "ingest"}, {"phase": "analyze"}, {"phase": "render"}, {"phase": "archive"}
            ]}))
            .unwrap(),
        ),
        recipe_version: Some(3),
        ..s.clone()
    };
    let mut events = at(0, 0, &h.events);
    events[0].1.body = EventBody::JobSubmitted(pinned);
    ((Position::new("sprocket.ingest", 1, 7), intake), events)
}

fn the_accepted_copy_pins_the_recipe(p: &Projections) {
    let (intake, events) = copies();
    let id = JobId::parse("job-stored").unwrap();
    p.apply_canonical(std::slice::from_ref(&intake), EVENTS)
        .unwrap();
    let queued = p.job(&id).unwrap().unwrap();
    assert_eq!(queued.recipe, Some(RecipeRef::Name("clip".into())));
    assert_eq!(queued.recipe_version, None, "not accepted yet");
    p.apply_canonical(&events, EVENTS).unwrap();
    let job = p.job(&id).unwrap().unwrap();
    assert_eq!(job.recipe_version, Some(3));
    assert!(matches!(&job.recipe, Some(RecipeRef::Inline(r)) if r.name == "clip"));
    assert_eq!(job.resolved_recipe().unwrap().steps.len(), 4);
    let stored = p.events(&id).unwrap();
    assert_eq!(stored[0].body, events[0].1.body, "the event as accepted");
    let snapshot = p.snapshot().unwrap();

    // Both copies in one batch, either way round: the same rows.
    let mut both = vec![intake.clone()];
    both.extend(events.iter().cloned());
    let mut reversed = events.clone();
    reversed.push(intake);
    for order in [both, reversed] {
        p.reset().unwrap();
        p.apply_canonical(&order, EVENTS).unwrap();
        assert_eq!(p.snapshot().unwrap(), snapshot);
    }
}

on_both!(the_accepted_copy_pins_the_recipe);
