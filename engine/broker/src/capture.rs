//! A record of every frame a broker relayed, for the capture tool that seeds
//! the fuzz corpus with what librdkafka really sends.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to broker.
    Request,
    /// Broker to client.
    Response,
}

/// Frames in the order the relay read them, across all connections (size
/// prefix included). Clones share one record.
#[derive(Debug, Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<(Direction, Bytes)>>>);

impl Capture {
    pub(crate) fn record(&self, direction: Direction, frame: &Bytes) {
        self.lock().push((direction, frame.clone()));
    }

    /// Takes the frames recorded so far.
    pub fn take(&self) -> Vec<(Direction, Bytes)> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Direction, Bytes)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
