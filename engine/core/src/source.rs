use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Where a job's media comes from: exactly one of the four documented forms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    /// An upload id returned by `POST /v1/uploads`.
    Upload(String),
    /// An absolute path under a directory the configuration allows.
    Path(String),
    /// An object-store URI (`file://`, `s3://`, `memory://`).
    Object(String),
    /// An http(s) URL.
    Url(String),
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Upload(_) => "upload",
            Source::Path(_) => "path",
            Source::Object(_) => "object",
            Source::Url(_) => "url",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Source::Upload(s) | Source::Path(s) | Source::Object(s) | Source::Url(s) => s,
        }
    }

    /// The source as events, projections and manifests record it: a URL
    /// without its credentials, query or fragment (the intake's copy keeps
    /// them for the fetch).
    pub fn redacted(&self) -> Source {
        match self {
            Source::Url(u) => Source::Url(crate::redact::for_the_record(u)),
            Source::Object(u) => Source::Object(crate::redact::for_the_record(u)),
            other => other.clone(),
        }
    }

    /// Checks what can be checked without touching the outside world.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |m: &str| Err(CoreError::InvalidSource(m.to_owned()));
        match self {
            Source::Upload(id) if id.is_empty() => bad("upload id is empty"),
            Source::Path(p) if !p.starts_with('/') => bad("path must be absolute"),
            Source::Object(u) if !u.contains("://") => bad("object must be a URI"),
            Source::Url(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                bad("url must be http(s)")
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_is_a_single_key_object() {
        let s: Source = serde_json::from_str(r#"{"upload":"u1"}"#).unwrap();
        assert_eq!(s, Source::Upload("u1".into()));
        assert_eq!(
            serde_json::to_string(&Source::Path("/a".into())).unwrap(),
            r#"{"path":"/a"}"#
        );
        assert!(serde_json::from_str::<Source>(r#"{"upload":"a","path":"/b"}"#).is_err());
        assert!(serde_json::from_str::<Source>(r#"{"ftp":"x"}"#).is_err());
    }
}
