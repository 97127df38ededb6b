//! [`CheckpointSink`]: a receiver of record batches for the consumer's tests and benches, in
//! place of the metrics engine. It commits only the batches' checkpoints, one transaction per
//! drain of the channel, then (optionally) forwards the committed batches to an observer so a
//! test sees the records.

use std::time::Duration;
use streamboard::{
    kinesis::RecordBatch,
    storage::{Database, StorageError},
};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

/// Most batches committed in one transaction.
const MAX_DRAIN: usize = 256;

/// Receives batches and stores their checkpoints.
pub struct CheckpointSink {
    database: Database,
    application: String,
    observer: Option<mpsc::Sender<RecordBatch>>,
}

impl CheckpointSink {
    pub fn new(database: Database, application: impl Into<String>) -> Self {
        Self {
            database,
            application: application.into(),
            observer: None,
        }
    }

    /// Committed batches are forwarded here, in order (the sink waits when it is full).
    pub fn with_observer(mut self, observer: mpsc::Sender<RecordBatch>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Runs on `tracker` until every sender of `batches` is dropped and the channel is drained
    /// (so it outlives the readers at shutdown and commits their in-flight batches).
    pub fn spawn(self, batches: mpsc::Receiver<RecordBatch>, tracker: &TaskTracker) {
        tracker.spawn(self.run(batches));
    }

    async fn run(self, mut batches: mpsc::Receiver<RecordBatch>) {
        let mut drained = Vec::with_capacity(MAX_DRAIN);
        while batches.recv_many(&mut drained, MAX_DRAIN).await > 0 {
            let mut delay = Duration::from_millis(50);
            while let Err(error) = self.commit(&drained).await {
                // The batch must not disappear: retry until the database takes it.
                tracing::error!(%error, ?delay, "committing checkpoints failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            if let Some(observer) = &self.observer {
                for batch in drained.drain(..) {
                    if observer.send(batch).await.is_err() {
                        break;
                    }
                }
            }
            drained.clear();
        }
        tracing::debug!("checkpoint sink drained");
    }

    async fn commit(&self, batches: &[RecordBatch]) -> Result<(), StorageError> {
        let positions: Vec<_> = batches
            .iter()
            .map(|batch| {
                (
                    batch.stream.clone(),
                    batch.shard.clone(),
                    batch.position.clone(),
                )
            })
            .collect();
        self.database
            .save_checkpoints(&self.application, &positions)
            .await
    }
}
