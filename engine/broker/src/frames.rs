//! Whole Kafka frames read off a stream, with a cap on their size.
//!
//! Every Kafka message is a 4-byte big-endian size, then that many bytes. The
//! size is the sender's claim: taken at its word, a client that sends
//! `7f ff ff ff` makes the relay reserve 2 GiB before a single byte of the frame
//! has arrived. So a frame over its direction's cap is refused as soon as its
//! size is read, and below the cap the buffer grows with the bytes that arrive,
//! never to the claimed size at once.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest client request the relay reads, size prefix excluded: Kafka's
/// own default cap (`socket.request.max.bytes`, 100 MiB), past which a Kafka
/// broker closes the connection too. librdkafka's requests stay far below it:
/// its `message.max.bytes` is 1 MB by default.
pub const MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;

/// The largest broker response the relay reads, size prefix excluded. The mock
/// cluster is in the process and trusted, but its responses are as large as
/// clients ask (a Fetch returns up to the client's `fetch.max.bytes`, and at
/// least one whole record batch). This is above any response a librdkafka
/// client accepts by default (`receive.message.max.bytes`, 100 000 000) and
/// above the largest batch a request can carry ([`MAX_REQUEST_BYTES`]), so only
/// a client that raised its own limits past it could miss what it refuses.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// How much the buffer grows by at most per read while a frame arrives.
const READ_CHUNK: usize = 64 * 1024;

/// Why no frame could be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("a frame of {size} bytes is over the {max}-byte cap")]
    TooLarge { size: usize, max: usize },
    #[error("a frame of negative size ({0})")]
    NegativeSize(i32),
    #[error("the stream ended inside a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// Whether the peer broke the protocol (rather than the connection failing).
    pub fn is_violation(&self) -> bool {
        matches!(
            self,
            FrameError::TooLarge { .. } | FrameError::NegativeSize(_)
        )
    }
}

/// The length of the frame at the start of `buf`, size prefix included, once
/// the prefix has arrived; refuses a size that is negative or over `max`.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let size = i32::from_be_bytes(*prefix);
    let size = usize::try_from(size).map_err(|_| FrameError::NegativeSize(size))?;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    Ok(Some(4 + size))
}

/// Reads whole frames (size prefix included) off a stream.
pub(crate) struct Frames<R> {
    io: R,
    buf: BytesMut,
    max: usize,
}

impl<R: AsyncRead + Unpin> Frames<R> {
    /// Frames of at most `max` bytes (size prefix excluded) off `io`.
    pub(crate) fn new(io: R, max: usize) -> Frames<R> {
        Frames {
            io,
            buf: BytesMut::with_capacity(READ_CHUNK),
            max,
        }
    }

    /// The next frame; `None` at the end of the stream. Cancel-safe: a partly
    /// read frame stays buffered.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            let missing = match frame_len(&self.buf, self.max)? {
                Some(len) if self.buf.len() >= len => {
                    return Ok(Some(self.buf.split_to(len).freeze()));
                }
                Some(len) => len - self.buf.len(),
                None => 4 - self.buf.len(),
            };
            // Room for what arrives next, not for what the peer claims.
            self.buf.reserve(missing.min(READ_CHUNK));
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated)
                };
            }
        }
    }

    /// How many bytes the read buffer holds room for.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: [u8; 4] = 0x4000_0000i32.to_be_bytes();

    #[tokio::test]
    async fn frames_are_split_off_a_stream_that_arrives_in_pieces() {
        let (mut tx, rx) = tokio::io::duplex(3);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            tx.write_all(&[0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0, 0, 0, 0, 1, b'c'])
                .await
                .unwrap();
        });
        let mut frames = Frames::new(rx, 16);
        let mut got = Vec::new();
        while let Some(f) = frames.next().await.unwrap() {
            got.push(f.to_vec());
        }
        writer.await.unwrap();
        assert_eq!(
            got,
            vec![
                vec![0, 0, 0, 2, b'a', b'b'],
                vec![0, 0, 0, 0],
                vec![0, 0, 0, 1, b'c']
            ]
        );
    }

    #[tokio::test]
    async fn an_oversized_claim_is_refused_before_anything_is_allocated() {
        let mut frames = Frames::new(&GIB[..], MAX_REQUEST_BYTES);
        let err = frames.next().await.unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { size: 0x4000_0000, max } if max == MAX_REQUEST_BYTES),
            "{err}"
        );
        assert!(err.is_violation());
        assert!(frames.capacity() <= 2 * READ_CHUNK);
    }

    #[tokio::test]
    async fn the_buffer_grows_with_what_arrives_not_with_the_claim() {
        // 99 MiB claimed (under the cap), 10 bytes sent, then the end.
        let mut input = (99i32 * 1024 * 1024).to_be_bytes().to_vec();
        input.extend_from_slice(&[7; 10]);
        let mut frames = Frames::new(&input[..], MAX_REQUEST_BYTES);
        assert!(matches!(frames.next().await, Err(FrameError::Truncated)));
        assert!(frames.capacity() <= 2 * READ_CHUNK);
    }

    #[test]
    fn sizes_are_checked_against_the_cap() {
        assert_eq!(frame_len(&[0, 0, 0], 8).unwrap(), None);
        assert_eq!(frame_len(&[0, 0, 0, 8], 8).unwrap(), Some(12));
        assert!(matches!(
            frame_len(&[0, 0, 0, 9], 8),
            Err(FrameError::TooLarge { size: 9, max: 8 })
        ));
        assert!(matches!(
            frame_len(&[0xff, 0xff, 0xff, 0xff], 8),
            Err(FrameError::NegativeSize(-1))
        ));
    }
}
