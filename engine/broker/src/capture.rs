//! A record of every frame a broker relayed, for the capture tool that seeds
//! the fuzz corpus with what librdkafka really sends.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to broker.
    Request,
    /// Broker to client.
    Response,
}

/// One relayed frame.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The client connection it went over, numbered from 0 in accept order
    /// (responses are matched with their requests per connection).
    pub connection: u64,
    pub direction: Direction,
    /// The frame, size prefix included.
    pub frame: Bytes,
}

/// Frames in the order the relay read them, across all connections. Clones
/// share one record.
#[derive(Debug, Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<Captured>>>);

impl Capture {
    pub(crate) fn record(&self, connection: u64, direction: Direction, frame: &Bytes) {
        self.lock().push(Captured {
            connection,
            direction,
            frame: frame.clone(),
        });
    }

    /// Takes the frames recorded so far.
    pub fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Captured>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
