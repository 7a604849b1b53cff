//! A submission as `POST /v1/jobs` and the intake read it: parsed, then
//! checked against the default bounds (size, labels, source, recipe resolved
//! and its runtime parameters). Besides not panicking: a recipe that resolves
//! writes JSON that parses back to itself and resolves the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sprocket_core::event::Submitted;
use sprocket_core::{Bounds, RecipeRef};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = serde_json::from_slice::<Submitted>(data) {
        if let Ok(recipe) = Bounds::default().submission(&s) {
            let inline = RecipeRef::Inline(recipe.clone());
            let text = serde_json::to_vec(&inline).expect("a recipe serializes");
            let back: RecipeRef = serde_json::from_slice(&text).expect("a written recipe parses");
            assert_eq!(back.resolve().expect("it resolves again"), recipe);
        }
    }
    if let Ok(r) = serde_json::from_slice::<RecipeRef>(data) {
        let _ = r.resolve().map(|recipe| Bounds::default().recipe(&recipe));
    }
});
