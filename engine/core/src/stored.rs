//! Stored recipes: named recipes kept as data on `sprocket.recipes`,
//! versioned 1, 2, 3… per name, and how a submission naming one is pinned to
//! the version it runs.
//!
//! The topic is the source of truth: every reader folds its records into a
//! [`RecipeTable`] with the same rule, so every process agrees on what each
//! `name@version` is. A record is accepted only as the next version of its
//! name (`version = latest + 1`); a record claiming a version already taken
//! by another recipe lost a race between two writers and is ignored by every
//! reader alike (the writer sees that and tries again).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Submitted;
use crate::recipe::{Recipe, RecipeRef, BUILTIN};
use crate::CoreError;

/// Most bytes of a stored recipe's JSON, so that a job recording it stays
/// well under Kafka's record limit.
pub const MAX_RECIPE_BYTES: usize = 32 * 1024;

/// Longest recipe name.
pub const MAX_NAME_LEN: usize = 64;

/// Names no recipe may be stored under: `GET /v1/recipes/schema` is the
/// recipe schema's path.
pub const RESERVED: [&str; 1] = ["schema"];

/// Checks a stored recipe's name: 1–64 of `a-z 0-9 _ -`, starting with a
/// letter or digit (`^[a-z0-9][a-z0-9_-]{0,63}$`).
pub fn check_name(name: &str) -> Result<(), CoreError> {
    let mut chars = name.chars();
    let ok = name.len() <= MAX_NAME_LEN
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(CoreError::InvalidRecipe(format!(
            "recipe name {name:?}: use 1-{MAX_NAME_LEN} of a-z, 0-9, '_' or '-', starting with a letter or digit"
        )))
    }
}

/// One stored version of a named recipe: the value of a `sprocket.recipes`
/// record (keyed by the name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecipeStored {
    pub name: String,
    /// 1, 2, 3… per name.
    pub version: u32,
    /// The recipe; its `name` is the stored name.
    pub recipe: Recipe,
    pub stored_at: DateTime<Utc>,
    /// The id of the API key that stored it.
    pub stored_by: String,
}

/// What folding one record into the table did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folded {
    /// The name's next version.
    Stored,
    /// That version with that recipe is known already (a redelivery).
    Duplicate,
    /// The version is taken by another recipe, or skips versions: ignored.
    Conflict,
}

/// What a `PUT` of a recipe under a name does, as the table stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Put<'a> {
    /// The latest version is this very recipe: nothing to write.
    Unchanged(&'a RecipeStored),
    /// Write this version.
    Next(u32),
}

/// Every stored recipe by name, each name's versions in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecipeTable {
    names: BTreeMap<String, Vec<RecipeStored>>,
}

impl RecipeTable {
    /// Folds one record in (see the module's rule).
    pub fn fold(&mut self, record: RecipeStored) -> Folded {
        let versions = self.names.entry(record.name.clone()).or_default();
        let v = record.version as usize;
        if v >= 1 && v == versions.len() + 1 && record.recipe.name == record.name {
            versions.push(record);
            return Folded::Stored;
        }
        match v.checked_sub(1).and_then(|i| versions.get(i)) {
            Some(known) if known.recipe == record.recipe => Folded::Duplicate,
            _ => Folded::Conflict,
        }
    }

    /// Version `version` of `name`, or its latest version.
    pub fn get(&self, name: &str, version: Option<u32>) -> Option<&RecipeStored> {
        let versions = self.names.get(name)?;
        match version {
            None => versions.last(),
            Some(v) => versions.get((v as usize).checked_sub(1)?),
        }
    }

    /// The latest version of every name, by name.
    pub fn latest(&self) -> impl Iterator<Item = &RecipeStored> {
        self.names.values().filter_map(|v| v.last())
    }

    /// How many versions `name` has.
    pub fn versions(&self, name: &str) -> u32 {
        self.names.get(name).map_or(0, |v| v.len() as u32)
    }

    /// What storing `recipe` under `name` would do now.
    pub fn put(&self, name: &str, recipe: &Recipe) -> Put<'_> {
        match self.get(name, None) {
            Some(latest) if latest.recipe == *recipe => Put::Unchanged(latest),
            _ => Put::Next(self.versions(name) + 1),
        }
    }
}

/// Checks a recipe for storing under `name`: the name's syntax, not a
/// built-in's name, the recipe's own name (when it gives one) the same, and
/// the routing slip valid. Returns the recipe as it will be stored.
pub fn storable(name: &str, mut recipe: Recipe) -> Result<Recipe, CoreError> {
    check_name(name)?;
    if BUILTIN.contains(&name) {
        return Err(CoreError::InvalidRecipe(format!(
            "{name:?} is a built-in recipe's name"
        )));
    }
    if RESERVED.contains(&name) {
        return Err(CoreError::InvalidRecipe(format!(
            "{name:?} is a reserved name"
        )));
    }
    if recipe.name.is_empty() {
        recipe.name = name.to_owned();
    }
    if recipe.name != name {
        return Err(CoreError::InvalidRecipe(format!(
            "the recipe's name {:?} is not the name it is stored under, {name:?}",
            recipe.name
        )));
    }
    recipe.validate()?;
    let bytes = serde_json::to_vec(&recipe).map_or(usize::MAX, |b| b.len());
    if bytes > MAX_RECIPE_BYTES {
        return Err(CoreError::OverLimit(format!(
            "the recipe is {bytes} bytes, over the limit of {MAX_RECIPE_BYTES}"
        )));
    }
    Ok(recipe)
}

/// What pinning a submission's recipe came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Pin {
    /// Nothing to change: a built-in by name, or a recipe inline that names
    /// no stored version (or the very version it names).
    Unchanged,
    /// The submission as the job records it: the stored recipe inline, with
    /// its version.
    Pinned(Submitted),
    /// The table has no such name (or version): it may be behind the topic.
    Unknown,
}

/// Pins a submission's recipe against the stored recipes: a name that is
/// not a built-in's becomes that name's recipe inline (its latest version, or
/// the one `recipe_version` asks for) with `recipe_version` set, so the job
/// records exactly what it runs and replays the same whatever is stored
/// later. A recipe inline keeps a `recipe_version` only while the table has
/// that very recipe as that version.
///
/// `caught_up` says the table has read the topic to its end: an inline
/// recipe whose version is still not found then loses its version. A name
/// still not found stays [`Pin::Unknown`]; its submission fails as an
/// unknown recipe.
pub fn pin(s: &Submitted, table: &RecipeTable, caught_up: bool) -> Pin {
    let unversioned = || {
        let mut s = s.clone();
        s.recipe_version = None;
        Pin::Pinned(s)
    };
    match &s.recipe {
        RecipeRef::Name(n) if BUILTIN.contains(&n.as_str()) => match s.recipe_version {
            None => Pin::Unchanged,
            // Built-ins have no versions.
            Some(_) => unversioned(),
        },
        RecipeRef::Name(n) => match table.get(n, s.recipe_version) {
            Some(stored) => {
                let mut s = s.clone();
                s.recipe = RecipeRef::Inline(stored.recipe.clone());
                s.recipe_version = Some(stored.version);
                Pin::Pinned(s)
            }
            None => Pin::Unknown,
        },
        RecipeRef::Inline(r) => match s.recipe_version {
            None => Pin::Unchanged,
            Some(v) => match table.get(&r.name, Some(v)) {
                Some(stored) if stored.recipe == *r => Pin::Unchanged,
                Some(_) => unversioned(),
                None if caught_up => unversioned(),
                None => Pin::Unknown,
            },
        },
    }
}

/// The error of a submission naming a recipe that is neither built in nor
/// stored (at the version it asks for).
pub fn unknown(s: &Submitted) -> CoreError {
    let name = match &s.recipe {
        RecipeRef::Name(n) => n.clone(),
        RecipeRef::Inline(r) => r.name.clone(),
    };
    let name = match s.recipe_version {
        Some(v) => format!("{name}@{v}"),
        None => name,
    };
    CoreError::UnknownRecipe(name, BUILTIN.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Source;
    use serde_json::json;

    fn recipe(name: &str, max_seconds: f64) -> Recipe {
        serde_json::from_value(json!({"name": name, "steps": [
            {"phase": "ingest"}, {"phase": "analyze", "params": {"max_seconds": max_seconds}}
        ]}))
        .unwrap()
    }

    fn stored(name: &str, version: u32, r: Recipe) -> RecipeStored {
        RecipeStored {
            name: name.into(),
            version,
            recipe: r,
            stored_at: Utc::now(),
            stored_by: "k1".into(),
        }
    }

    fn submission(recipe: serde_json::Value, version: Option<u32>) -> Submitted {
        Submitted {
            source: Source::Upload("u".into()),
            recipe: serde_json::from_value(recipe).unwrap(),
            recipe_version: version,
            labels: Default::default(),
            tenant: None,
        }
    }

    #[test]
    fn names_are_bounded() {
        for ok in ["a", "clip-2", "x_y", "0", &"a".repeat(64)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "-a", "_a", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions_follow_each_other_and_the_first_write_of_a_version_wins() {
        let mut t = RecipeTable::default();
        assert_eq!(t.put("clip", &recipe("clip", 1.0)), Put::Next(1));
        assert_eq!(
            t.fold(stored("clip", 1, recipe("clip", 1.0))),
            Folded::Stored
        );
        assert!(matches!(t.put("clip", &recipe("clip", 1.0)), Put::Unchanged(s) if s.version == 1));
        assert_eq!(t.put("clip", &recipe("clip", 2.0)), Put::Next(2));
        // Two writers raced for version 2: the first record is version 2.
        assert_eq!(
            t.fold(stored("clip", 2, recipe("clip", 2.0))),
            Folded::Stored
        );
        assert_eq!(
            t.fold(stored("clip", 2, recipe("clip", 3.0))),
            Folded::Conflict
        );
        assert_eq!(
            t.fold(stored("clip", 2, recipe("clip", 2.0))),
            Folded::Duplicate
        );
        // Versions cannot be skipped, nor start past 1, nor be 0.
        assert_eq!(
            t.fold(stored("clip", 4, recipe("clip", 4.0))),
            Folded::Conflict
        );
        assert_eq!(
            t.fold(stored("other", 2, recipe("other", 1.0))),
            Folded::Conflict
        );
        assert_eq!(
            t.fold(stored("other", 0, recipe("other", 1.0))),
            Folded::Conflict
        );
        // A record whose recipe has another name is not that name's.
        assert_eq!(
            t.fold(stored("other", 1, recipe("clip", 1.0))),
            Folded::Conflict
        );
        assert_eq!(t.versions("clip"), 2);
        assert_eq!(t.get("clip", None).unwrap().recipe, recipe("clip", 2.0));
        assert_eq!(t.get("clip", Some(1)).unwrap().recipe, recipe("clip", 1.0));
        assert!(t.get("clip", Some(3)).is_none() && t.get("clip", Some(0)).is_none());
        assert_eq!(t.latest().count(), 1, "'other' has no version");
    }

    #[test]
    fn storable_recipes_are_named_valid_and_not_built_ins() {
        let r = storable("clip", recipe("", 1.0)).unwrap();
        assert_eq!(r.name, "clip", "an unnamed recipe takes the stored name");
        assert!(storable("clip", recipe("other", 1.0)).is_err());
        assert!(storable("highlight", recipe("highlight", 1.0)).is_err());
        assert!(storable("schema", recipe("schema", 1.0)).is_err());
        assert!(storable("Clip", recipe("Clip", 1.0)).is_err());
        let unordered: Recipe = serde_json::from_value(
            json!({"name": "x", "steps": [{"phase": "render"}, {"phase": "ingest"}]}),
        )
        .unwrap();
        assert_eq!(
            storable("x", unordered).unwrap_err().code(),
            "invalid_recipe"
        );
        let mut big = recipe("big", 1.0);
        big.steps[0]
            .params
            .insert("note".into(), json!("x".repeat(MAX_RECIPE_BYTES)));
        assert_eq!(storable("big", big).unwrap_err().code(), "over_limit");
    }

    #[test]
    fn submissions_pin_the_version_they_run() {
        let mut t = RecipeTable::default();
        t.fold(stored("clip", 1, recipe("clip", 1.0)));
        t.fold(stored("clip", 2, recipe("clip", 2.0)));
        // Built-ins and plain inline recipes stay as they are.
        assert_eq!(
            pin(&submission(json!("minimal"), None), &t, false),
            Pin::Unchanged
        );
        let inline = json!({"name": "mine", "steps": [{"phase": "ingest"}]});
        assert_eq!(
            pin(&submission(inline.clone(), None), &t, false),
            Pin::Unchanged
        );
        // A stored name: the latest version, or the one asked for, inline.
        let Pin::Pinned(p) = pin(&submission(json!("clip"), None), &t, false) else {
            panic!()
        };
        assert_eq!(p.recipe, RecipeRef::Inline(recipe("clip", 2.0)));
        assert_eq!(p.recipe_version, Some(2));
        let Pin::Pinned(p1) = pin(&submission(json!("clip"), Some(1)), &t, false) else {
            panic!()
        };
        assert_eq!(p1.recipe, RecipeRef::Inline(recipe("clip", 1.0)));
        // Pinned already: unchanged, however often it is pinned again.
        assert_eq!(pin(&p1, &t, false), Pin::Unchanged);
        // Unknown names and versions: maybe the table is behind.
        assert_eq!(
            pin(&submission(json!("nope"), None), &t, true),
            Pin::Unknown
        );
        assert_eq!(
            pin(&submission(json!("clip"), Some(3)), &t, true),
            Pin::Unknown
        );
        assert_eq!(
            unknown(&submission(json!("clip"), Some(3))).to_string(),
            "unknown recipe \"clip@3\" (built-in recipes: highlight, minimal)"
        );
        // An inline recipe claiming a version it is not loses the claim.
        let claim = json!({"name": "clip", "steps": [{"phase": "ingest"}]});
        let Pin::Pinned(p) = pin(&submission(claim.clone(), Some(1)), &t, false) else {
            panic!()
        };
        assert_eq!(p.recipe_version, None);
        assert_eq!(
            pin(&submission(claim.clone(), Some(9)), &t, false),
            Pin::Unknown
        );
        let Pin::Pinned(p) = pin(&submission(claim, Some(9)), &t, true) else {
            panic!()
        };
        assert_eq!(p.recipe_version, None);
        // A version on a built-in means nothing and is dropped.
        let Pin::Pinned(p) = pin(&submission(json!("minimal"), Some(1)), &t, false) else {
            panic!()
        };
        assert_eq!(
            (p.recipe, p.recipe_version),
            (RecipeRef::Name("minimal".into()), None)
        );
    }
}
