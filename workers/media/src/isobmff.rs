//! Just enough of the ISO base media file format (MP4, MOV, M4A) to tell a whole
//! file from a cut-off one: the top-level boxes must tile the file exactly.
//!
//! ffprobe reads a truncated file happily when its index (`moov`) comes first, so
//! the probe walks the top-level box headers itself: a box that claims more bytes
//! than the file holds means the upload or copy was cut short.

use std::io::{Read, Seek, SeekFrom};

/// Top-level box headers walked at most; real files have a handful.
const MAX_BOXES: usize = 100_000;
/// Boxes that may open an ISO BMFF or QuickTime file.
const FIRST_BOXES: &[&[u8; 4]] = &[
    b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid",
];

/// What the top-level box walk found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Layout {
    /// The boxes end exactly at the end of the file.
    Whole,
    /// The file does not start with a plausible box: not ISO BMFF at all.
    NotIsoBmff,
    /// A box runs past the end of the file.
    Truncated {
        box_type: String,
        needs: u64,
        file_len: u64,
    },
}

/// Walks the top-level boxes of `file` (`file_len` bytes long).
pub(crate) fn layout(mut file: impl Read + Seek, file_len: u64) -> std::io::Result<Layout> {
    let mut offset = 0u64;
    for index in 0..MAX_BOXES {
        if offset == file_len {
            return Ok(Layout::Whole);
        }
        let mut header = [0u8; 16];
        file.seek(SeekFrom::Start(offset))?;
        let want = (file_len - offset).min(16) as usize;
        file.read_exact(&mut header[..want])?;
        if want < 8 {
            return Ok(if index == 0 {
                Layout::NotIsoBmff
            } else {
                truncated("header", offset + 8, file_len)
            });
        }
        let box_type = &header[4..8];
        if !box_type.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return Ok(if index == 0 {
                Layout::NotIsoBmff
            } else {
                truncated("header", offset + 8, file_len)
            });
        }
        if index == 0 && !FIRST_BOXES.iter().any(|b| b.as_slice() == box_type) {
            return Ok(Layout::NotIsoBmff);
        }
        let name = String::from_utf8_lossy(box_type).into_owned();
        let size32 = u32::from_be_bytes(header[0..4].try_into().expect("4 bytes"));
        let size = match size32 {
            // The box runs to the end of the file.
            0 => return Ok(Layout::Whole),
            1 if want < 16 => return Ok(truncated(&name, offset + 16, file_len)),
            1 => u64::from_be_bytes(header[8..16].try_into().expect("8 bytes")),
            n => u64::from(n),
        };
        let header_len = if size32 == 1 { 16 } else { 8 };
        if size < header_len {
            return Ok(if index == 0 {
                Layout::NotIsoBmff
            } else {
                truncated(&name, offset + header_len, file_len)
            });
        }
        let end = offset.saturating_add(size);
        if end > file_len {
            return Ok(truncated(&name, end, file_len));
        }
        offset = end;
    }
    Ok(Layout::Whole)
}

fn truncated(box_type: &str, needs: u64, file_len: u64) -> Layout {
    Layout::Truncated {
        box_type: box_type.to_owned(),
        needs,
        file_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn boxed(kind: &[u8; 4], payload: usize) -> Vec<u8> {
        let mut b = ((payload + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend(std::iter::repeat_n(0u8, payload));
        b
    }

    fn walk(bytes: &[u8]) -> Layout {
        layout(Cursor::new(bytes), bytes.len() as u64).unwrap()
    }

    #[test]
    fn whole_and_truncated_files() {
        let mut file = boxed(b"ftyp", 16);
        file.extend(boxed(b"moov", 100));
        file.extend(boxed(b"mdat", 1000));
        assert_eq!(walk(&file), Layout::Whole);
        let cut = &file[..file.len() / 2];
        assert_eq!(
            walk(cut),
            Layout::Truncated {
                box_type: "mdat".into(),
                needs: file.len() as u64,
                file_len: cut.len() as u64
            }
        );
    }

    #[test]
    fn text_is_not_iso_bmff() {
        assert_eq!(
            walk(b"hello, this is not a video at all\n"),
            Layout::NotIsoBmff
        );
        assert_eq!(walk(b"abc"), Layout::NotIsoBmff);
    }

    #[test]
    fn large_and_open_ended_boxes() {
        let mut file = boxed(b"ftyp", 8);
        let mut large = 1u32.to_be_bytes().to_vec();
        large.extend_from_slice(b"mdat");
        large.extend_from_slice(&(16u64 + 4).to_be_bytes());
        large.extend_from_slice(&[1, 2, 3, 4]);
        file.extend(large);
        assert_eq!(walk(&file), Layout::Whole);
        let mut open = boxed(b"ftyp", 8);
        open.extend_from_slice(&0u32.to_be_bytes());
        open.extend_from_slice(b"mdat");
        open.extend_from_slice(&[9; 50]);
        assert_eq!(walk(&open), Layout::Whole);
    }
}
