//! Reading the shape of a JSON Schema node for the compatibility check: local `$ref`s,
//! types, allowed values, alternatives and merged `allOf` parts.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Keywords that never reject a value.
pub const ANNOTATIONS: [&str; 13] = [
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "definitions",
    "$defs",
    "readOnly",
    "writeOnly",
    "deprecated",
    "contentMediaType",
];

/// How deep schemas are compared before giving up (recursive schemas end earlier,
/// through the pairs of `$ref`s already compared).
pub const MAX_DEPTH: usize = 64;

/// A set of type names as written in a schema: `string` or `[string, null]`.
pub fn list(types: &BTreeSet<&str>) -> String {
    match types.len() {
        1 => types
            .iter()
            .next()
            .map_or(String::new(), |t| (*t).to_owned()),
        _ => format!("[{}]", types.iter().copied().collect::<Vec<_>>().join(", ")),
    }
}

pub fn ref_of(schema: &Value) -> Option<&str> {
    schema.get("$ref").and_then(Value::as_str)
}

/// Follows local `$ref`s (`#/definitions/x`) to the schema they name.
pub fn resolve<'b>(root: &'b Value, mut schema: &'b Value) -> Result<&'b Value, String> {
    for _ in 0..MAX_DEPTH {
        let Some(r) = ref_of(schema) else {
            return Ok(schema);
        };
        let pointer = r.strip_prefix('#').ok_or_else(|| {
            format!("$ref '{r}' is not local; its compatibility cannot be proven")
        })?;
        schema = root
            .pointer(pointer)
            .ok_or_else(|| format!("$ref '{r}' points nowhere"))?;
    }
    Err("$ref chain too long".into())
}

/// Whether a schema accepts every value: `true`, or only annotation keywords.
pub fn accepts_all(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(m) => m.keys().all(|k| ANNOTATIONS.contains(&k.as_str())),
        _ => false,
    }
}

/// The schema with the parts of its `allOf` merged in. Where parts share a keyword the
/// last one wins: constraints are lost, never invented, so the old schema only grows.
pub fn merge_all_of(root: &Value, schema: &Map<String, Value>) -> Map<String, Value> {
    let mut merged = schema.clone();
    if let Some(Value::Array(parts)) = merged.remove("allOf") {
        for part in &parts {
            if let Ok(Value::Object(p)) = resolve(root, part) {
                merged.extend(merge_all_of(root, p));
            }
        }
    }
    merged
}

/// One alternative of a schema with the schema's other keywords (the branch wins).
pub fn with_base(root: &Value, base: &Map<String, Value>, branch: &Value) -> Value {
    let mut merged = without_alternatives(base);
    match resolve(root, branch) {
        Ok(Value::Object(b)) => merged.extend(merge_all_of(root, b)),
        Ok(Value::Bool(false)) => return Value::Bool(false),
        _ => {}
    }
    Value::Object(merged)
}

pub fn without_alternatives(schema: &Map<String, Value>) -> Map<String, Value> {
    let mut m = schema.clone();
    m.remove("oneOf");
    m.remove("anyOf");
    m.remove("allOf");
    m
}

pub fn alternatives(schema: &Map<String, Value>) -> Option<(&'static str, &Vec<Value>)> {
    ["oneOf", "anyOf"]
        .into_iter()
        .find_map(|kw| schema.get(kw).and_then(Value::as_array).map(|a| (kw, a)))
}

pub fn types(schema: &Map<String, Value>) -> Option<BTreeSet<&str>> {
    match schema.get("type")? {
        Value::String(t) => Some([t.as_str()].into()),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// The values `enum`/`const` allow, if the schema has either.
pub fn allowed_values(schema: &Map<String, Value>) -> Option<Vec<&Value>> {
    match (schema.get("const"), schema.get("enum")) {
        (Some(c), _) => Some(vec![c]),
        (None, Some(Value::Array(e))) => Some(e.iter().collect()),
        _ => None,
    }
}

pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub fn strings(v: Option<&Value>) -> BTreeSet<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}
