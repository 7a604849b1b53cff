//! Compatibility of JSON Schemas: can a reader holding one schema read everything a
//! writer holding another may write? The rules are listed in the [module docs](super).
//!
//! The check is syntactic and conservative: where it cannot prove that the reader
//! accepts everything the writer may write, it reports an incompatibility.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::shape::{
    accepts_all, allowed_values, alternatives, json_type, list, merge_all_of, ref_of, resolve,
    strings, types, with_base, without_alternatives, ANNOTATIONS, MAX_DEPTH,
};

/// Keywords this module understands; any other keyword of the reader must be unchanged.
const HANDLED: [&str; 25] = [
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "pattern",
    "format",
    "multipleOf",
    "uniqueItems",
    "oneOf",
    "anyOf",
    "allOf",
    "$ref",
];

const LOWER_BOUNDS: [&str; 5] = [
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
];
const UPPER_BOUNDS: [&str; 5] = [
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
];

/// Why data written with `writer` may not be readable with `reader`; empty when it is.
pub fn read_problems(writer: &Value, reader: &Value) -> Vec<String> {
    if writer == reader {
        return vec![];
    }
    let mut cx = Cx::new(writer, reader);
    cx.check(writer, reader, "#", 0);
    let mut seen = HashSet::new();
    cx.problems.retain(|p| seen.insert(p.clone()));
    cx.problems
}

struct Cx<'a> {
    old_root: &'a Value,
    new_root: &'a Value,
    /// Pairs of `$ref`s already compared (or being compared): assumed compatible,
    /// which ends recursion through recursive schemas.
    seen: HashSet<(String, String)>,
    problems: Vec<String>,
}

impl<'a> Cx<'a> {
    fn new(old_root: &'a Value, new_root: &'a Value) -> Self {
        Cx {
            old_root,
            new_root,
            seen: HashSet::new(),
            problems: vec![],
        }
    }

    fn report(&mut self, path: &str, problem: impl Into<String>) {
        self.problems.push(format!("{path}: {}", problem.into()));
    }

    /// The problems of reading `old` data with `new`, without recording them.
    fn trial(&self, old: &Value, new: &Value, depth: usize) -> Vec<String> {
        let mut trial = Cx::new(self.old_root, self.new_root);
        trial.check(old, new, "#", depth);
        trial.problems
    }

    fn check(&mut self, old: &Value, new: &Value, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return self.report(path, "schemas nest too deeply to compare");
        }
        if let (Some(a), Some(b)) = (ref_of(old), ref_of(new)) {
            if !self.seen.insert((a.to_owned(), b.to_owned())) {
                return;
            }
        }
        // An old schema that cannot be resolved may have allowed anything.
        let old = resolve(self.old_root, old).unwrap_or(&Value::Bool(true));
        let new = match resolve(self.new_root, new) {
            Ok(v) => v,
            Err(e) => return self.report(path, e),
        };
        if accepts_all(new) || old == &Value::Bool(false) {
            return;
        }
        let Value::Object(n) = new else {
            return self.report(path, "the new schema rejects every value");
        };
        let o = match old {
            Value::Object(o) => merge_all_of(self.old_root, o),
            _ => Map::new(),
        };
        // allOf in the new schema: the old one must fit every part.
        if let Some(parts) = n.get("allOf").and_then(Value::as_array) {
            for (i, part) in parts.iter().enumerate() {
                self.check(
                    &Value::Object(o.clone()),
                    part,
                    &format!("{path}/allOf/{i}"),
                    depth + 1,
                );
            }
        }
        if self.check_alternatives(&o, n, path, depth) {
            return;
        }
        self.check_types(&o, n, path);
        self.check_values(&o, n, path);
        self.check_bounds(&o, n, path);
        self.check_object(&o, n, path, depth);
        self.check_items(&o, n, path, depth);
        for (k, nv) in n {
            let known = HANDLED.contains(&k.as_str()) || ANNOTATIONS.contains(&k.as_str());
            if !known && o.get(k) != Some(nv) {
                self.report(
                    path,
                    format!("keyword '{k}' added or changed; its compatibility cannot be proven"),
                );
            }
        }
    }

    /// anyOf/oneOf: every alternative the old schema allows must fit some alternative of
    /// the new one. Returns true when the old alternatives were checked against the whole
    /// new schema (nothing left to compare).
    fn check_alternatives(
        &mut self,
        o: &Map<String, Value>,
        n: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> bool {
        let olds: Option<Vec<Value>> = alternatives(o).map(|(_, branches)| {
            branches
                .iter()
                .map(|b| with_base(self.old_root, o, b))
                .collect()
        });
        match (olds, alternatives(n)) {
            (olds, Some((kw, alts))) => {
                let whole = olds.is_none();
                let olds = olds.unwrap_or_else(|| vec![Value::Object(without_alternatives(o))]);
                for (i, ob) in olds.iter().enumerate() {
                    if !alts
                        .iter()
                        .any(|nb| self.trial(ob, nb, depth + 1).is_empty())
                    {
                        let which = if whole {
                            "the old schema".to_owned()
                        } else {
                            format!("alternative {i} of the old schema")
                        };
                        self.report(
                            path,
                            format!("{which} matches no alternative of the new '{kw}'"),
                        );
                    }
                }
                // The new schema's own keywords still apply beside its alternatives.
                let base = Value::Object(without_alternatives(n));
                for ob in &olds {
                    self.check(ob, &base, path, depth + 1);
                }
                true
            }
            (Some(olds), None) => {
                let kw = alternatives(o).map_or("oneOf", |(kw, _)| kw);
                let whole = Value::Object(n.clone());
                for (i, ob) in olds.iter().enumerate() {
                    self.check(ob, &whole, &format!("{path}/{kw}/{i}"), depth + 1);
                }
                true
            }
            (None, None) => false,
        }
    }

    fn check_types(&mut self, o: &Map<String, Value>, n: &Map<String, Value>, path: &str) {
        let Some(nt) = types(n) else { return };
        let covered = |t: &str| nt.contains(t) || (t == "integer" && nt.contains("number"));
        match types(o) {
            Some(ot) => {
                let lost: Vec<&str> = ot.iter().copied().filter(|t| !covered(t)).collect();
                if !lost.is_empty() {
                    self.report(
                        path,
                        format!(
                            "type narrowed from {} to {}: {} no longer accepted",
                            list(&ot),
                            list(&nt),
                            lost.join(", ")
                        ),
                    );
                }
            }
            None => match allowed_values(o) {
                Some(values) if values.iter().all(|v| covered(json_type(v))) => {}
                _ => self.report(
                    path,
                    format!("type {} added where any type was accepted", list(&nt)),
                ),
            },
        }
    }

    fn check_values(&mut self, o: &Map<String, Value>, n: &Map<String, Value>, path: &str) {
        let Some(new_values) = allowed_values(n) else {
            return;
        };
        match allowed_values(o) {
            Some(old_values) => {
                let lost: Vec<&Value> = old_values
                    .into_iter()
                    .filter(|v| !new_values.contains(v))
                    .collect();
                if !lost.is_empty() {
                    let lost: Vec<String> = lost.iter().map(|v| v.to_string()).collect();
                    self.report(
                        path,
                        format!("enum/const narrowed: {} no longer allowed", lost.join(", ")),
                    );
                }
            }
            None => self.report(path, "enum/const added where any value was accepted"),
        }
    }

    fn check_bounds(&mut self, o: &Map<String, Value>, n: &Map<String, Value>, path: &str) {
        for (keywords, lower) in [(LOWER_BOUNDS, true), (UPPER_BOUNDS, false)] {
            for kw in keywords {
                let Some(nb) = n.get(kw).and_then(Value::as_f64) else {
                    continue;
                };
                let ok = match o.get(kw).and_then(Value::as_f64) {
                    Some(ob) if lower => ob >= nb,
                    Some(ob) => ob <= nb,
                    None => false,
                };
                if !ok {
                    self.report(path, format!("'{kw}' added or tightened to {nb}"));
                }
            }
        }
        for kw in ["pattern", "format", "multipleOf"] {
            if let Some(nv) = n.get(kw) {
                if o.get(kw) != Some(nv) {
                    self.report(path, format!("'{kw}' added or changed to {nv}"));
                }
            }
        }
        if n.get("uniqueItems") == Some(&Value::Bool(true))
            && o.get("uniqueItems") != Some(&Value::Bool(true))
        {
            self.report(path, "'uniqueItems' added");
        }
    }

    fn check_object(
        &mut self,
        o: &Map<String, Value>,
        n: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) {
        let old_required = strings(o.get("required"));
        for r in strings(n.get("required")) {
            if !old_required.contains(r) {
                self.report(path, format!("property '{r}' newly required"));
            }
        }
        let empty = Map::new();
        let old_props = o
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let new_props = n
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let old_extra = o.get("additionalProperties");
        let new_extra = n.get("additionalProperties");
        for (k, ov) in old_props {
            let at = format!("{path}/properties/{k}");
            match (new_props.get(k), new_extra) {
                (Some(nv), _) => self.check(ov, nv, &at, depth + 1),
                (None, Some(Value::Bool(false))) => self.report(
                    path,
                    format!("property '{k}' removed from a closed content model (additionalProperties: false)"),
                ),
                (None, Some(extra)) => self.check(ov, extra, &at, depth + 1),
                (None, None) => {}
            }
        }
        for (k, nv) in new_props
            .iter()
            .filter(|(k, _)| !old_props.contains_key(*k))
        {
            let at = format!("{path}/properties/{k}");
            match old_extra {
                Some(Value::Bool(false)) => {}
                Some(extra) if extra != &Value::Bool(true) => self.check(extra, nv, &at, depth + 1),
                _ if accepts_all(resolve(self.new_root, nv).unwrap_or(nv)) => {}
                _ => self.report(
                    path,
                    format!("property '{k}' added to an open content model (data written before may hold any value under that name)"),
                ),
            }
        }
        let at = format!("{path}/additionalProperties");
        match (old_extra, new_extra) {
            (_, None | Some(Value::Bool(true))) | (Some(Value::Bool(false)), _) => {}
            (None | Some(Value::Bool(true)), Some(Value::Bool(false))) => {
                self.report(path, "additionalProperties changed from open to closed")
            }
            (Some(oe), Some(ne)) => self.check(oe, ne, &at, depth + 1),
            (None, Some(ne)) => self.check(&Value::Bool(true), ne, &at, depth + 1),
        }
    }

    fn check_items(
        &mut self,
        o: &Map<String, Value>,
        n: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) {
        let Some(ni) = n.get("items") else { return };
        match (o.get("items"), ni) {
            (_, Value::Array(_)) | (Some(Value::Array(_)), _) => {
                if o.get("items") != Some(ni)
                    || o.get("additionalItems") != n.get("additionalItems")
                {
                    self.report(
                        path,
                        "tuple 'items' changed; compatibility cannot be proven",
                    );
                }
            }
            (oi, _) => {
                let oi = oi.unwrap_or(&Value::Bool(true));
                self.check(oi, ni, &format!("{path}/items"), depth + 1)
            }
        }
    }
}
