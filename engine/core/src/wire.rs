//! The framing of a consumed message, without I/O: bare JSON (first
//! non-whitespace byte `{`) or the Confluent wire format (byte 0 = `0x00`,
//! bytes 1–4 the big-endian schema id, then the JSON). The platform's codec
//! looks the schema up and validates; this only says which form a payload is.

/// A payload's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// JSON with no header.
    Bare(&'a [u8]),
    /// The wire format: the schema id and the JSON after the 5-byte header.
    Registered { schema_id: u32, json: &'a [u8] },
}

/// Says which form `payload` is, or why it is neither (the message to report).
pub fn frame(payload: &[u8]) -> Result<Frame<'_>, String> {
    let start = payload.iter().position(|b| !b.is_ascii_whitespace());
    match start.map(|i| payload[i]) {
        Some(b'{') => Ok(Frame::Bare(payload)),
        Some(0) if payload[0] == 0 && payload.len() >= 5 => Ok(Frame::Registered {
            schema_id: u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]),
            json: &payload[5..],
        }),
        Some(0) if payload[0] == 0 => Err(format!(
            "{} bytes, too short for the 5-byte header",
            payload.len()
        )),
        Some(b) => Err(format!("first byte is {b:#04x}")),
        None => Err("the payload is empty".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_forms_apart() {
        assert_eq!(frame(b" {}"), Ok(Frame::Bare(b" {}")));
        assert_eq!(
            frame(&[0, 0, 0, 1, 2, b'{', b'}']),
            Ok(Frame::Registered {
                schema_id: 258,
                json: b"{}"
            })
        );
        assert!(frame(&[0, 1]).unwrap_err().contains("too short"));
        assert!(frame(b"  ").is_err());
        assert!(frame(b"[1]").unwrap_err().contains("0x5b"));
        // A header after whitespace is not a header.
        assert!(frame(b" \0\0\0\0\0").is_err());
    }
}
