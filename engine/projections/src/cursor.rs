//! Opaque keyset cursors for job listings: the sort key of the last row shown.

use sprocket_core::JobId;

use crate::ProjectionError;

/// Where a page ended: the last job's stored `submitted_at` and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub submitted_at: String,
    pub id: String,
}

impl Cursor {
    /// Hex of `submitted_at|id`: URL-safe and not meant to be read.
    pub fn encode(&self) -> String {
        let raw = format!("{}|{}", self.submitted_at, self.id);
        raw.bytes().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(s: &str) -> Result<Cursor, ProjectionError> {
        let invalid = || ProjectionError::InvalidCursor(s.chars().take(200).collect());
        if !s.len().is_multiple_of(2) || !s.is_ascii() {
            return Err(invalid());
        }
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| invalid())?;
        let raw = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (submitted_at, id) = raw.split_once('|').ok_or_else(invalid)?;
        chrono::DateTime::parse_from_rfc3339(submitted_at).map_err(|_| invalid())?;
        JobId::parse(id).map_err(|_| invalid())?;
        Ok(Cursor {
            submitted_at: submitted_at.to_owned(),
            id: id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_what_it_did_not_write() {
        let c = Cursor {
            submitted_at: "2024-05-01T12:00:00.000000000Z".into(),
            id: "job-1".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "zz", "abc", "6a6f62", "é"] {
            assert!(Cursor::decode(bad).is_err(), "{bad:?} accepted");
        }
        let no_time = Cursor {
            submitted_at: "yesterday".into(),
            id: "j".into(),
        };
        assert!(Cursor::decode(&no_time.encode()).is_err());
    }
}
