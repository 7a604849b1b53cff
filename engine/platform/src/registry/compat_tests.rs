//! The compatibility rules, table-driven: (case, old schema, new schema, expected
//! problem or `None` when BACKWARD-compatible).

use serde_json::{json, Value};

use super::read_problems;
use super::state::Level;

fn closed(props: Value, required: Value) -> Value {
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

fn cases() -> Vec<(&'static str, Value, Value, Option<&'static str>)> {
    let base = closed(json!({"a": {"type": "string"}}), json!(["a"]));
    vec![
        ("identical", base.clone(), base.clone(), None),
        (
            "optional property added to a closed schema",
            base.clone(),
            closed(
                json!({"a": {"type": "string"}, "b": {"type": "integer"}}),
                json!(["a"]),
            ),
            None,
        ),
        (
            "property newly required",
            base.clone(),
            closed(
                json!({"a": {"type": "string"}, "b": {"type": "integer"}}),
                json!(["a", "b"]),
            ),
            Some("property 'b' newly required"),
        ),
        (
            "required removed",
            base.clone(),
            closed(json!({"a": {"type": "string"}}), json!([])),
            None,
        ),
        (
            "type changed",
            base.clone(),
            closed(json!({"a": {"type": "integer"}}), json!(["a"])),
            Some("#/properties/a: type narrowed"),
        ),
        (
            "type narrowed: number to integer",
            json!({"type": "number"}),
            json!({"type": "integer"}),
            Some("type narrowed from number to integer: number no longer accepted"),
        ),
        (
            "type narrowed: null dropped",
            json!({"type": ["string", "null"]}),
            json!({"type": "string"}),
            Some("type narrowed"),
        ),
        (
            "type widened: integer to number",
            json!({"type": "integer"}),
            json!({"type": "number"}),
            None,
        ),
        (
            "type widened: null added",
            json!({"type": "string"}),
            json!({"type": ["string", "null"]}),
            None,
        ),
        (
            "type added where any was accepted",
            json!({}),
            json!({"type": "string"}),
            Some("type string added where any type was accepted"),
        ),
        (
            "enum narrowed",
            json!({"enum": ["a", "b"]}),
            json!({"enum": ["a"]}),
            Some("\"b\" no longer allowed"),
        ),
        (
            "enum widened",
            json!({"enum": ["a"]}),
            json!({"enum": ["a", "b"]}),
            None,
        ),
        (
            "const changed",
            json!({"const": "x"}),
            json!({"const": "y"}),
            Some("enum/const narrowed"),
        ),
        (
            "const into an enum holding it",
            json!({"const": "x"}),
            json!({"enum": ["x", "y"]}),
            None,
        ),
        (
            "enum added",
            json!({"type": "string"}),
            json!({"type": "string", "enum": ["a"]}),
            Some("enum/const added"),
        ),
        (
            "property removed from a closed schema",
            closed(
                json!({"a": {"type": "string"}, "b": {"type": "string"}}),
                json!(["a"]),
            ),
            base.clone(),
            Some("property 'b' removed from a closed content model"),
        ),
        (
            "property removed from an open schema",
            json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}),
            json!({"type": "object", "properties": {"a": {"type": "string"}}}),
            None,
        ),
        (
            "open to closed",
            json!({"type": "object", "properties": {"a": {"type": "string"}}}),
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}),
            Some("additionalProperties changed from open to closed"),
        ),
        (
            "closed to open",
            base.clone(),
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
            None,
        ),
        (
            "property added to an open schema",
            json!({"type": "object"}),
            json!({"type": "object", "properties": {"b": {"type": "integer"}}}),
            Some("property 'b' added to an open content model"),
        ),
        (
            "nested property narrowed",
            closed(
                json!({"d": closed(json!({"x": {"type": "number"}}), json!([]))}),
                json!(["d"]),
            ),
            closed(
                json!({"d": closed(json!({"x": {"type": "integer"}}), json!([]))}),
                json!(["d"]),
            ),
            Some("#/properties/d/properties/x: type narrowed"),
        ),
        (
            "nested property newly required",
            closed(
                json!({"d": closed(json!({"x": {"type": "number"}}), json!([]))}),
                json!(["d"]),
            ),
            closed(
                json!({"d": closed(json!({"x": {"type": "number"}}), json!(["x"]))}),
                json!(["d"]),
            ),
            Some("#/properties/d: property 'x' newly required"),
        ),
        (
            "array items narrowed",
            json!({"type": "array", "items": {"type": ["string", "integer"]}}),
            json!({"type": "array", "items": {"type": "string"}}),
            Some("#/items: type narrowed"),
        ),
        (
            "array items widened",
            json!({"type": "array", "items": {"type": "string"}}),
            json!({"type": "array", "items": {"type": ["string", "integer"]}}),
            None,
        ),
        (
            "through local $refs",
            json!({"definitions": {"p": {"enum": ["a", "b"]}}, "properties": {"x": {"$ref": "#/definitions/p"}}}),
            json!({"definitions": {"p": {"enum": ["a"]}}, "properties": {"x": {"$ref": "#/definitions/p"}}}),
            Some("#/properties/x: enum/const narrowed"),
        ),
        (
            "oneOf alternative removed",
            json!({"oneOf": [{"type": "string"}, {"type": "integer"}]}),
            json!({"oneOf": [{"type": "string"}]}),
            Some("alternative 1 of the old schema matches no alternative"),
        ),
        (
            "oneOf alternative added",
            json!({"oneOf": [{"type": "string"}]}),
            json!({"oneOf": [{"type": "string"}, {"type": "integer"}]}),
            None,
        ),
        (
            "schema widened into a oneOf",
            json!({"type": "string"}),
            json!({"oneOf": [{"type": "string"}, {"type": "null"}]}),
            None,
        ),
        (
            "oneOf collapsed into a type union",
            json!({"oneOf": [{"type": "string"}, {"type": "integer"}]}),
            json!({"type": ["string", "integer"]}),
            None,
        ),
        (
            "minimum raised",
            json!({"type": "integer", "minimum": 0}),
            json!({"type": "integer", "minimum": 1}),
            Some("'minimum' added or tightened"),
        ),
        (
            "maxLength lowered",
            json!({"type": "string", "maxLength": 9}),
            json!({"type": "string", "maxLength": 3}),
            Some("'maxLength' added or tightened"),
        ),
        (
            "minimum lowered",
            json!({"type": "integer", "minimum": 1}),
            json!({"type": "integer", "minimum": 0}),
            None,
        ),
        (
            "pattern added",
            json!({"type": "string"}),
            json!({"type": "string", "pattern": "^a"}),
            Some("'pattern' added or changed"),
        ),
        (
            "unanalysed keyword added",
            json!({}),
            json!({"not": {"type": "string"}}),
            Some("keyword 'not' added or changed"),
        ),
        (
            "accept-everything reader",
            json!({"type": "string"}),
            json!(true),
            None,
        ),
        (
            "reject-everything reader",
            json!({"type": "string"}),
            json!(false),
            Some("rejects every value"),
        ),
        (
            "recursive schemas terminate",
            json!({"definitions": {"n": {"type": "object", "properties": {"next": {"$ref": "#/definitions/n"}}}}, "$ref": "#/definitions/n"}),
            json!({"definitions": {"n": {"type": "object", "properties": {"next": {"$ref": "#/definitions/n"}, "v": true}}}, "$ref": "#/definitions/n"}),
            None,
        ),
    ]
}

#[test]
fn backward_rules() {
    for (case, old, new, expected) in cases() {
        let problems = read_problems(&old, &new);
        match expected {
            None => assert!(problems.is_empty(), "{case}: unexpected {problems:?}"),
            Some(want) => assert!(
                problems.iter().any(|p| p.contains(want)),
                "{case}: expected a problem containing {want:?}, got {problems:?}"
            ),
        }
    }
}

#[test]
fn levels_pick_the_direction() {
    let narrow = json!({"type": "integer"});
    let wide = json!({"type": "number"});
    let table = [
        (Level::None, &wide, &narrow, true),
        (Level::Backward, &narrow, &wide, true),
        (Level::Backward, &wide, &narrow, false),
        (Level::Forward, &wide, &narrow, true),
        (Level::Forward, &narrow, &wide, false),
        (Level::Full, &narrow, &wide, false),
        (Level::Full, &narrow, &narrow, true),
    ];
    for (level, old, new, ok) in table {
        assert_eq!(
            level.problems(old, new).is_empty(),
            ok,
            "{level:?} {old} -> {new}"
        );
    }
    for level in Level::ALL {
        assert_eq!(Level::parse(level.as_str()), Ok(level));
    }
    assert!(Level::parse("SIDEWAYS").is_err());
}

/// Every embedded event schema is compatible with itself (the oneOf, $ref and closed
/// models they use are understood), and closing one more property is caught.
#[test]
fn the_event_schemas_are_self_compatible() {
    for (kind, text) in crate::codec::catalog::SCHEMAS {
        let schema: Value = serde_json::from_str(text).unwrap();
        let copy: Value = serde_json::from_str(text).unwrap();
        let mut reordered = copy.clone();
        reordered["description"] = json!("changed");
        assert!(
            read_problems(&schema, &reordered).is_empty(),
            "{kind}: {:?}",
            read_problems(&schema, &reordered)
        );
        let mut stricter = copy;
        stricter["required"] = json!([
            "job_id",
            "type",
            "data",
            "event_id",
            "producer",
            "attempt",
            "occurred_at",
            "extra"
        ]);
        assert!(!read_problems(&schema, &stricter).is_empty(), "{kind}");
    }
}
