//! When produced messages became visible in the projection database, seen as a
//! reader sees it: a thread of its own polls the projector's `offsets` table
//! (written in the same transaction as the rows) every [`POLL`] on a
//! connection of its own, and notes when each partition's next offset moved.
//! A message at offset `o` is visible from the first poll that read a next
//! offset above `o`; so a lag read this way is late by up to one poll interval
//! plus the poll's own query, never early.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sprocket_projections::{PoolOptions, Projections};

use crate::load::{Sent, Topic};
use crate::stats::{now_ms, Samples};

/// How often the watcher reads the offsets.
pub const POLL: Duration = Duration::from_millis(5);

/// Per topic partition, each next offset read and when it was first read.
#[derive(Debug, Default)]
pub struct Timeline {
    moves: HashMap<(Topic, i32), Vec<(f64, i64)>>,
    pub polls: u64,
}

impl Timeline {
    /// When the message at `offset` was first seen projected.
    fn visible_at(&self, s: &Sent) -> Option<f64> {
        let moves = self.moves.get(&(s.topic, s.partition))?;
        let i = moves.partition_point(|&(_, next)| next <= s.offset);
        moves.get(i).map(|&(at, _)| at)
    }

    /// Whether every message in `sent` is visible.
    pub fn covers(&self, sent: &[Sent]) -> bool {
        sent.iter().all(|s| self.visible_at(s).is_some())
    }
}

/// The lags (ms) of the messages sent from `from` on: from handed to the
/// producer to visible (`samples`), and the part of it before the broker's
/// acknowledgement came back (`produce`). A message never seen projected by
/// `until`, when watching stopped, counts with `until` as its time (a lower
/// bound), and in `missing`.
pub struct Lags {
    pub samples: Samples,
    pub produce: Samples,
    pub missing: usize,
}

pub fn lags(timeline: &Timeline, sent: &[Sent], from: f64, until: f64) -> Lags {
    let mut lags = Lags {
        samples: Samples::default(),
        produce: Samples::default(),
        missing: 0,
    };
    for s in sent.iter().filter(|s| s.at >= from) {
        let at = timeline.visible_at(s).unwrap_or_else(|| {
            lags.missing += 1;
            until
        });
        lags.samples.push(at - s.at);
        lags.produce.push(s.acked - s.at);
    }
    lags
}

pub struct Watcher {
    timeline: Arc<Mutex<Timeline>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Watcher {
    /// Starts polling the projection database at `url`, whose topics are
    /// `intake` and `events`.
    pub fn start(url: &str, intake: String, events: String) -> anyhow::Result<Watcher> {
        let options = PoolOptions {
            size: 1,
            ..PoolOptions::default()
        };
        let db = Projections::connect_with(url, options)?;
        let timeline = Arc::new(Mutex::new(Timeline::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (timeline.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut last: HashMap<(Topic, i32), i64> = HashMap::new();
            while !s.load(Ordering::Relaxed) {
                let offsets = db.offsets()?;
                let at = now_ms();
                let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
                t.polls += 1;
                for p in offsets {
                    let topic = if p.topic == intake {
                        Topic::Intake
                    } else if p.topic == events {
                        Topic::Events
                    } else {
                        continue;
                    };
                    let key = (topic, p.partition);
                    if last.get(&key) != Some(&p.offset) {
                        last.insert(key, p.offset);
                        t.moves.entry(key).or_default().push((at, p.offset));
                    }
                }
                drop(t);
                std::thread::sleep(POLL);
            }
            Ok(())
        });
        Ok(Watcher {
            timeline,
            stop,
            thread: Some(thread),
        })
    }

    /// Whether every message in `sent` is visible yet.
    pub fn covers(&self, sent: &[Sent]) -> bool {
        self.timeline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .covers(sent)
    }

    /// Stops polling; the timeline.
    pub fn stop(mut self) -> anyhow::Result<Timeline> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| anyhow::anyhow!("the watcher panicked"))??;
        }
        let mut t = self.timeline.lock().unwrap_or_else(|e| e.into_inner());
        Ok(std::mem::take(&mut *t))
    }
}
