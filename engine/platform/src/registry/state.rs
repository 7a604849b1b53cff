//! The registry's in-memory state: schemas by id, subjects with their versions, and the
//! compatibility configuration. Pure and synchronous; the routes hold it behind a lock.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::compat::read_problems;
use super::RegistryError;

/// A compatibility level (`compatibilityLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    None,
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Level {
    pub const ALL: [Level; 7] = [
        Level::None,
        Level::Backward,
        Level::BackwardTransitive,
        Level::Forward,
        Level::ForwardTransitive,
        Level::Full,
        Level::FullTransitive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    pub fn parse(s: &str) -> Result<Level, RegistryError> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| RegistryError::InvalidCompatibilityLevel(s.to_owned()))
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive
        )
    }

    /// Why `new` may not replace `old` under this level; empty when it may.
    pub fn problems(self, old: &Value, new: &Value) -> Vec<String> {
        let backward = || read_problems(old, new);
        let forward = || {
            read_problems(new, old)
                .into_iter()
                .map(|p| format!("forward: {p}"))
                .collect::<Vec<_>>()
        };
        match self {
            Level::None => vec![],
            Level::Backward | Level::BackwardTransitive => backward(),
            Level::Forward | Level::ForwardTransitive => forward(),
            Level::Full | Level::FullTransitive => {
                let mut p = backward();
                p.extend(forward());
                p
            }
        }
    }
}

/// A version selector: a number or `latest` (also `-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    Latest,
    Number(u32),
}

impl VersionSpec {
    pub fn parse(s: &str) -> Result<VersionSpec, RegistryError> {
        match s {
            "latest" | "-1" => Ok(VersionSpec::Latest),
            _ => match s.parse::<u32>() {
                Ok(n) if (1..=i32::MAX as u32).contains(&n) => Ok(VersionSpec::Number(n)),
                _ => Err(RegistryError::InvalidVersion(s.to_owned())),
            },
        }
    }
}

/// A schema under a subject, as answered by the version and lookup routes.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub schema: String,
}

struct Stored {
    schema: String,
    value: Value,
}

#[derive(Default)]
struct Subject {
    /// (version, schema id, soft-deleted)
    versions: Vec<(u32, u32, bool)>,
    level: Option<Level>,
}

impl Subject {
    fn live(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.versions
            .iter()
            .filter(|v| !v.2)
            .map(|&(version, id, _)| (version, id))
    }
}

/// Everything the registry knows.
#[derive(Default)]
pub struct State {
    /// Schema `id` lives at index `id - 1`.
    schemas: Vec<Stored>,
    by_canonical: HashMap<String, u32>,
    subjects: BTreeMap<String, Subject>,
    global: Level,
}

/// Parses and checks a schema sent by a client; returns its value and canonical form.
pub fn parse_schema(
    schema: &str,
    schema_type: Option<&str>,
) -> Result<(Value, String), RegistryError> {
    match schema_type.unwrap_or("AVRO") {
        "JSON" => {}
        other => {
            return Err(RegistryError::InvalidSchema(format!(
                "schemaType {other} is not supported: this registry stores JSON schemas only (send \"schemaType\": \"JSON\")"
            )))
        }
    }
    let value: Value = serde_json::from_str(schema)
        .map_err(|e| RegistryError::InvalidSchema(format!("not JSON: {e}")))?;
    if !(value.is_object() || value.is_boolean()) {
        return Err(RegistryError::InvalidSchema(
            "a JSON Schema is an object or a boolean".into(),
        ));
    }
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7.detect(&value))
        .build(&value)
        .map_err(|e| RegistryError::InvalidSchema(e.to_string()))?;
    let canonical = canonical(&value);
    Ok((value, canonical))
}

/// JSON with object keys sorted and no whitespace: equal schemas have equal forms.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&m[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

impl State {
    fn subject(&self, name: &str) -> Result<&Subject, RegistryError> {
        self.subjects
            .get(name)
            .filter(|s| s.live().next().is_some())
            .ok_or_else(|| RegistryError::SubjectNotFound(name.to_owned()))
    }

    pub fn level(&self, subject: &str) -> Level {
        self.subjects
            .get(subject)
            .and_then(|s| s.level)
            .unwrap_or(self.global)
    }

    pub fn global_level(&self) -> Level {
        self.global
    }

    pub fn set_global_level(&mut self, level: Level) {
        self.global = level;
    }

    pub fn set_level(&mut self, subject: &str, level: Option<Level>) {
        self.subjects.entry(subject.to_owned()).or_default().level = level;
    }

    /// Registers `schema` under `subject` and returns its id; an identical schema already
    /// under the subject keeps its id, an identical schema elsewhere shares its id.
    pub fn register(
        &mut self,
        subject: &str,
        schema: &str,
        schema_type: Option<&str>,
    ) -> Result<u32, RegistryError> {
        let (value, canon) = parse_schema(schema, schema_type)?;
        if let Some(&id) = self.by_canonical.get(&canon) {
            let existing = self
                .subjects
                .get(subject)
                .map(|s| s.live().any(|(_, i)| i == id));
            if existing == Some(true) {
                return Ok(id);
            }
        }
        let level = self.level(subject);
        let problems = self.problems_against(subject, None, &value, level)?;
        if !problems.is_empty() {
            return Err(RegistryError::Incompatible {
                subject: subject.to_owned(),
                level: level.as_str(),
                messages: problems,
            });
        }
        let id = match self.by_canonical.get(&canon) {
            Some(&id) => id,
            None => {
                self.schemas.push(Stored {
                    schema: schema.to_owned(),
                    value,
                });
                let id = self.schemas.len() as u32;
                self.by_canonical.insert(canon, id);
                id
            }
        };
        let s = self.subjects.entry(subject.to_owned()).or_default();
        let version = s.versions.last().map_or(1, |v| v.0 + 1);
        s.versions.push((version, id, false));
        Ok(id)
    }

    /// Why `value` may not follow the versions of `subject` named by `against`
    /// (`None`: the ones the level names: the latest, or all for a transitive level).
    pub fn problems_against(
        &self,
        subject: &str,
        against: Option<VersionSpec>,
        value: &Value,
        level: Level,
    ) -> Result<Vec<String>, RegistryError> {
        let olds: Vec<u32> = match (against, self.subjects.get(subject)) {
            (Some(spec), _) => vec![self.version(subject, spec)?.id],
            (None, None) => vec![],
            (None, Some(s)) if level.transitive() => s.live().map(|(_, id)| id).collect(),
            (None, Some(s)) => s.live().last().map(|(_, id)| id).into_iter().collect(),
        };
        Ok(olds
            .into_iter()
            .flat_map(|id| level.problems(&self.schemas[id as usize - 1].value, value))
            .collect())
    }

    /// The version of `subject` holding the same schema as `schema`.
    pub fn lookup(
        &self,
        subject: &str,
        schema: &str,
        schema_type: Option<&str>,
    ) -> Result<Entry, RegistryError> {
        let s = self.subject(subject)?;
        let (_, canon) = parse_schema(schema, schema_type)?;
        let not_found = || RegistryError::SchemaNotFound(format!("under subject '{subject}'"));
        let id = *self.by_canonical.get(&canon).ok_or_else(not_found)?;
        let (version, _) = s.live().find(|&(_, i)| i == id).ok_or_else(not_found)?;
        self.entry(subject, version, id)
    }

    fn entry(&self, subject: &str, version: u32, id: u32) -> Result<Entry, RegistryError> {
        Ok(Entry {
            subject: subject.to_owned(),
            version,
            id,
            schema: self.schema(id)?.to_owned(),
        })
    }

    pub fn schema(&self, id: u32) -> Result<&str, RegistryError> {
        id.checked_sub(1)
            .and_then(|i| self.schemas.get(i as usize))
            .map(|s| s.schema.as_str())
            .ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))
    }

    /// The (subject, version) pairs that hold schema `id`.
    pub fn id_versions(&self, id: u32) -> Result<Vec<(String, u32)>, RegistryError> {
        self.schema(id)?;
        Ok(self
            .subjects
            .iter()
            .flat_map(|(name, s)| {
                s.live()
                    .filter(|v| v.1 == id)
                    .map(|(v, _)| (name.clone(), v))
            })
            .collect())
    }

    pub fn subjects(&self) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(_, s)| s.live().next().is_some())
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn versions(&self, subject: &str) -> Result<Vec<u32>, RegistryError> {
        Ok(self.subject(subject)?.live().map(|(v, _)| v).collect())
    }

    pub fn version(&self, subject: &str, spec: VersionSpec) -> Result<Entry, RegistryError> {
        let s = self.subject(subject)?;
        let found = match spec {
            VersionSpec::Latest => s.live().last(),
            VersionSpec::Number(n) => s.live().find(|&(v, _)| v == n),
        };
        let (version, id) = found.ok_or_else(|| RegistryError::VersionNotFound {
            subject: subject.to_owned(),
            version: match spec {
                VersionSpec::Latest => "latest".into(),
                VersionSpec::Number(n) => n.to_string(),
            },
        })?;
        self.entry(subject, version, id)
    }

    /// Deletes a subject's versions and returns their numbers. A soft delete keeps the
    /// numbering (a later registration continues it); a permanent one forgets the subject.
    /// Schemas stay readable by id either way.
    pub fn delete_subject(
        &mut self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<u32>, RegistryError> {
        let versions = match self.subject(subject) {
            Ok(s) => s.live().map(|(v, _)| v).collect(),
            Err(e) if !permanent => return Err(e),
            Err(_) => match self.subjects.get(subject) {
                Some(s) if !s.versions.is_empty() => s.versions.iter().map(|v| v.0).collect(),
                _ => return Err(RegistryError::SubjectNotFound(subject.to_owned())),
            },
        };
        if permanent {
            self.subjects.remove(subject);
        } else if let Some(s) = self.subjects.get_mut(subject) {
            s.versions.iter_mut().for_each(|v| v.2 = true);
        }
        Ok(versions)
    }
}
