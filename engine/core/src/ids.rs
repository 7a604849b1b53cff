use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::CoreError;

/// A job id chosen by the producer: 1–64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct JobId(String);

/// 1–64 characters of `[A-Za-z0-9_-]`: job ids and tenants.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks a tenant's name: 1–64 characters of `[A-Za-z0-9_-]`, like a job id.
pub fn tenant(s: &str) -> Result<&str, CoreError> {
    if is_name(s) {
        Ok(s)
    } else {
        Err(CoreError::InvalidTenant(s.to_owned()))
    }
}

impl JobId {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        if is_name(s) {
            Ok(JobId(s.to_owned()))
        } else {
            Err(CoreError::InvalidJobId(s.to_owned()))
        }
    }

    /// A fresh, time-ordered id for jobs submitted without one.
    pub fn generate() -> Self {
        JobId(uuid::Uuid::now_v7().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        JobId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        assert!(JobId::parse("job_1-A").is_ok());
        assert!(JobId::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn rejects_everything_else() {
        for bad in ["", "a b", "../x", "é", &"a".repeat(65), "a/b", "a.b"] {
            assert!(JobId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
