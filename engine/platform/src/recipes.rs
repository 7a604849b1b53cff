//! The stored recipes as a process that resolves them sees them: the
//! `sprocket.recipes` topic read from its beginning into a
//! [`RecipeTable`](sprocket_core::stored::RecipeTable), like a KTable, and
//! kept up to date while the process runs. The API and the ingest workers
//! each follow it; nothing is stored anywhere else, so a restart reads the
//! same table back from Kafka.
//!
//! Values are bare JSON [`RecipeStored`] records keyed by the recipe's name.
//! A record every reader would refuse ([`RecipeBook::fold`]) is skipped with a
//! warning, the same way everywhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use sprocket_core::event::Submitted;
use sprocket_core::stored::{self, Folded, Pin, RecipeStored, RecipeTable};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bus::{Bus, BusError, Record};

/// How long one catch-up waits for the table to reach the topic's end.
pub const CATCH_UP: Duration = Duration::from_secs(10);

/// The table and how far into each partition it has read.
#[derive(Default)]
struct Read {
    /// The next offset to read, per partition.
    next: HashMap<i32, i64>,
}

/// A process's view of the stored recipes (cheap to clone).
#[derive(Clone)]
pub struct RecipeBook {
    table: Arc<RwLock<RecipeTable>>,
    read: Arc<Mutex<Read>>,
    /// Bumped after every record read, for those waiting on the table.
    moved: watch::Sender<u64>,
    consumer: Arc<Detached>,
    topic: String,
    partitions: i32,
    task: Arc<TaskGuard>,
}

/// Stops the reading task when the last clone of the book goes.
struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The consumer, closed on a thread of its own when the last holder lets
/// go: a librdkafka close never holds a runtime thread ([`crate::bus::close_detached`]).
struct Detached(Option<StreamConsumer>);

impl std::ops::Deref for Detached {
    type Target = StreamConsumer;

    fn deref(&self) -> &StreamConsumer {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            let closing = std::thread::Builder::new()
                .name("kafka-close".into())
                .spawn(move || drop(c));
            if let Err(e) = closing {
                tracing::warn!(error = %e, "no thread to close the recipes consumer on");
            }
        }
    }
}

impl RecipeBook {
    /// Follows `sprocket.recipes` from its beginning (every partition,
    /// assigned: no consumer group is joined or committed to).
    pub fn follow(bus: &Bus) -> Result<RecipeBook, BusError> {
        let group = bus
            .topics
            .named(&format!("recipes-{}", uuid::Uuid::now_v7()));
        let consumer = Arc::new(Detached(Some(bus.consumer(&group)?)));
        let topic = bus.topics.recipes();
        let partitions = bus.partition_count(&consumer, &topic)?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(&topic, p, Offset::Beginning)
                .map_err(BusError::kafka("assigning sprocket.recipes"))?;
        }
        consumer
            .assign(&tpl)
            .map_err(BusError::kafka("assigning sprocket.recipes"))?;
        let (moved, _) = watch::channel(0u64);
        let table = Arc::new(RwLock::new(RecipeTable::default()));
        let read = Arc::new(Mutex::new(Read::default()));
        let task = tokio::spawn(read_loop(
            consumer.clone(),
            table.clone(),
            read.clone(),
            moved.clone(),
        ));
        Ok(RecipeBook {
            table,
            read,
            moved,
            consumer,
            topic,
            partitions,
            task: Arc::new(TaskGuard(task)),
        })
    }

    /// Reads the table as it stands.
    pub fn with<R>(&self, f: impl FnOnce(&RecipeTable) -> R) -> R {
        f(&self.table.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Folds one record into a table, unless it is not a storable recipe
    /// (every reader refuses the same records). What the fold did, or why
    /// the record was refused.
    pub fn fold(table: &mut RecipeTable, record: RecipeStored) -> Result<Folded, String> {
        match stored::storable(&record.name, record.recipe.clone()) {
            Ok(r) if r == record.recipe => Ok(table.fold(record)),
            Ok(_) => Err("its recipe is not named as it is stored".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Waits until the table has read every record on the topic when
    /// called (its end offsets), for at most `within`.
    pub async fn catch_up(&self, within: Duration) -> Result<(), BusError> {
        let (consumer, topic, partitions) =
            (self.consumer.clone(), self.topic.clone(), self.partitions);
        let ends = tokio::task::spawn_blocking(move || {
            (0..partitions)
                .map(|p| {
                    consumer
                        .fetch_watermarks(&topic, p, Duration::from_secs(5))
                        .map(|(_, high)| (p, high))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| BusError::Behind(format!("end offsets of sprocket.recipes: {e}")))?
        .map_err(BusError::kafka("end offsets of sprocket.recipes"))?;
        let reached = || {
            let read = self.read.lock().unwrap_or_else(|e| e.into_inner());
            ends.iter()
                .all(|(p, end)| read.next.get(p).copied().unwrap_or(0) >= *end)
        };
        if self.wait(within, reached).await {
            Ok(())
        } else {
            Err(BusError::Behind(format!(
                "sprocket.recipes was not read to its end offsets {ends:?} within {within:?}"
            )))
        }
    }

    /// Waits until `name@version` is in the table, for at most `within`;
    /// whether it is.
    pub async fn wait_for(&self, name: &str, version: u32, within: Duration) -> bool {
        self.wait(within, || {
            self.with(|t| t.get(name, Some(version)).is_some())
        })
        .await
    }

    /// Pins a submission's recipe ([`stored::pin`]): when the table does not
    /// know the recipe it names, it first reads the topic to its end once.
    /// `Err` when it could not (Kafka did not answer): the caller decides
    /// whether to wait and try again.
    pub async fn pin(&self, s: &Submitted) -> Result<Pin, BusError> {
        match self.with(|t| stored::pin(s, t, false)) {
            Pin::Unknown => {
                self.catch_up(CATCH_UP).await?;
                Ok(self.with(|t| stored::pin(s, t, true)))
            }
            pin => Ok(pin),
        }
    }

    /// Produces `record` (keyed by its name) and waits until this table has
    /// read it back. Whether it won its version: another writer's record of
    /// the same version with another recipe may have come first.
    pub async fn store(
        &self,
        bus: &Bus,
        producer: &FutureProducer,
        record: &RecipeStored,
    ) -> Result<bool, BusError> {
        let payload = serde_json::to_vec(record).expect("a stored recipe serializes");
        let rec = Record {
            topic: self.topic.clone(),
            key: record.name.clone(),
            payload,
            headers: vec![(
                crate::bus::HEADER_PRODUCER.into(),
                bus.producer_name.clone(),
            )],
        };
        let (partition, offset) = bus.send(producer, &rec).await?;
        let past = |read: &Read| read.next.get(&partition).copied().unwrap_or(0) > offset;
        let read_back = self
            .wait(CATCH_UP, || {
                past(&self.read.lock().unwrap_or_else(|e| e.into_inner()))
            })
            .await;
        if !read_back {
            return Err(BusError::Behind(format!(
                "the stored recipe {}@{} ({partition}/{offset}) was not read back within {CATCH_UP:?}",
                record.name, record.version
            )));
        }
        Ok(self.with(|t| {
            t.get(&record.name, Some(record.version))
                .is_some_and(|s| s.recipe == record.recipe)
        }))
    }

    /// Waits until `done` holds, re-checking after each record read.
    async fn wait(&self, within: Duration, done: impl Fn() -> bool) -> bool {
        let mut moved = self.moved.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if done() {
                return true;
            }
            match tokio::time::timeout_at(deadline, moved.changed()).await {
                Ok(Ok(())) => {}
                // The reader stopped, or time is up: one last look.
                _ => return done(),
            }
        }
    }

    /// Whether the reading task still runs.
    pub fn is_following(&self) -> bool {
        !self.task.0.is_finished()
    }
}

async fn read_loop(
    consumer: Arc<Detached>,
    table: Arc<RwLock<RecipeTable>>,
    read: Arc<Mutex<Read>>,
    moved: watch::Sender<u64>,
) {
    loop {
        match consumer.recv().await {
            Ok(m) => {
                let (partition, offset) = (m.partition(), m.offset());
                let record =
                    serde_json::from_slice::<RecipeStored>(m.payload().unwrap_or_default());
                {
                    let mut t = table.write().unwrap_or_else(|e| e.into_inner());
                    match record.map_err(|e| e.to_string()).and_then(|r| {
                        let at = format!("{}@{}", r.name, r.version);
                        RecipeBook::fold(&mut t, r).map(|f| (at, f))
                    }) {
                        Ok((at, Folded::Stored)) => {
                            tracing::info!(recipe = %at, partition, offset, "stored recipe read")
                        }
                        Ok((_, Folded::Duplicate)) => {}
                        Ok((at, Folded::Conflict)) => {
                            tracing::info!(recipe = %at, partition, offset,
                            "a stored recipe's version was taken by an earlier record: ignored")
                        }
                        Err(e) => tracing::warn!(partition, offset, error = %e,
                            "an unreadable record on sprocket.recipes: skipped"),
                    }
                }
                read.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .next
                    .insert(partition, offset + 1);
                moved.send_modify(|n| *n += 1);
            }
            Err(e) => {
                tracing::warn!(error = %e, "sprocket.recipes: consumer error");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
