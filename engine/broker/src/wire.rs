//! Kafka's primitive wire types: big-endian integers, unsigned varints, strings,
//! bytes and arrays in their classic and compact ("flexible") forms, tagged-field
//! sections; and the CRC-32C that record batches carry.

use std::ops::Range;

use bytes::{BufMut, BytesMut};

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("truncated: {need} bytes needed at offset {at}")]
    Truncated { at: usize, need: usize },
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// A cursor over one frame's bytes.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn at(buf: &'a [u8], pos: usize) -> Reader<'a> {
        Reader { buf, pos }
    }

    /// Offset of the next byte to read.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(WireError::Truncated {
                at: self.pos,
                need: n,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn i8(&mut self) -> Result<i8, WireError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, WireError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, WireError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// An unsigned varint (at most 5 bytes: Kafka's are 32-bit).
    pub(crate) fn uvarint(&mut self) -> Result<u32, WireError> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let b = self.take(1)?[0];
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError::Malformed("varint"))
    }

    /// The length of a nullable string or bytes field; `None` for null.
    fn nullable_len(&mut self, flexible: bool) -> Result<Option<usize>, WireError> {
        if flexible {
            Ok(match self.uvarint()? {
                0 => None,
                n => Some(n as usize - 1),
            })
        } else {
            Ok(match self.i16()? {
                -1 => None,
                n if n < 0 => return Err(WireError::Malformed("string length")),
                n => Some(n as usize),
            })
        }
    }

    /// A nullable string, compact when `flexible`.
    pub(crate) fn nullable_str(&mut self, flexible: bool) -> Result<Option<&'a str>, WireError> {
        match self.nullable_len(flexible)? {
            None => Ok(None),
            Some(n) => std::str::from_utf8(self.take(n)?)
                .map(Some)
                .map_err(|_| WireError::Malformed("utf-8 string")),
        }
    }

    /// A string that must not be null.
    pub(crate) fn str(&mut self, flexible: bool) -> Result<&'a str, WireError> {
        self.nullable_str(flexible)?
            .ok_or(WireError::Malformed("null string"))
    }

    /// A nullable bytes field (compact when `flexible`): where its content lies.
    pub(crate) fn nullable_bytes(
        &mut self,
        flexible: bool,
    ) -> Result<Option<Range<usize>>, WireError> {
        let len = if flexible {
            self.nullable_len(true)?
        } else {
            match self.i32()? {
                -1 => None,
                n if n < 0 => return Err(WireError::Malformed("bytes length")),
                n => Some(n as usize),
            }
        };
        match len {
            None => Ok(None),
            Some(n) => {
                let start = self.pos;
                self.take(n)?;
                Ok(Some(start..start + n))
            }
        }
    }

    /// An array's element count (a null array counts as empty). Every element
    /// takes at least one byte, so a count past the frame's end is refused.
    pub(crate) fn array_len(&mut self, flexible: bool) -> Result<usize, WireError> {
        let n = if flexible {
            (self.uvarint()? as usize).saturating_sub(1)
        } else {
            self.i32()?.max(0) as usize
        };
        if n > self.remaining() {
            return Err(WireError::Malformed("array length"));
        }
        Ok(n)
    }

    /// Skips a tagged-field section.
    pub(crate) fn skip_tags(&mut self) -> Result<(), WireError> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }
}

pub(crate) fn put_uvarint(b: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

/// An array's element count, compact when `flexible`.
pub(crate) fn put_array_len(b: &mut BytesMut, flexible: bool, n: usize) {
    if flexible {
        put_uvarint(b, n as u32 + 1);
    } else {
        b.put_i32(n as i32);
    }
}

/// A nullable string, compact when `flexible`.
pub(crate) fn put_nullable_str(b: &mut BytesMut, flexible: bool, s: Option<&str>) {
    match (s, flexible) {
        (None, true) => put_uvarint(b, 0),
        (None, false) => b.put_i16(-1),
        (Some(s), true) => {
            put_uvarint(b, s.len() as u32 + 1);
            b.put_slice(s.as_bytes());
        }
        (Some(s), false) => {
            b.put_i16(s.len() as i16);
            b.put_slice(s.as_bytes());
        }
    }
}

pub(crate) fn put_str(b: &mut BytesMut, flexible: bool, s: &str) {
    put_nullable_str(b, flexible, Some(s));
}

/// An empty tagged-field section.
pub(crate) fn put_empty_tags(b: &mut BytesMut) {
    b.put_u8(0);
}

const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32C (Castagnoli), the checksum of record batches (magic 2).
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC32C_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn varints_round_trip() {
        for v in [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut b = BytesMut::new();
            put_uvarint(&mut b, v);
            let mut r = Reader::new(&b);
            assert_eq!(r.uvarint().unwrap(), v);
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn strings_round_trip_in_both_forms() {
        for flexible in [false, true] {
            let mut b = BytesMut::new();
            put_str(&mut b, flexible, "txn-1");
            put_nullable_str(&mut b, flexible, None);
            put_str(&mut b, flexible, "");
            let mut r = Reader::new(&b);
            assert_eq!(r.nullable_str(flexible).unwrap(), Some("txn-1"));
            assert_eq!(r.nullable_str(flexible).unwrap(), None);
            assert_eq!(r.str(flexible).unwrap(), "");
            assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn truncated_and_absurd_lengths_are_errors() {
        let mut r = Reader::new(&[0, 5, b'a']);
        assert!(matches!(r.str(false), Err(WireError::Truncated { .. })));
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff]);
        assert_eq!(
            r.array_len(false),
            Err(WireError::Malformed("array length"))
        );
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(r.uvarint(), Err(WireError::Malformed("varint")));
    }

    #[test]
    fn tagged_fields_are_skipped() {
        // Two tags: (0, "ab") and (3, "").
        let mut r = Reader::new(&[2, 0, 2, b'a', b'b', 3, 0, 9]);
        r.skip_tags().unwrap();
        assert_eq!(r.i8().unwrap(), 9);
    }
}
