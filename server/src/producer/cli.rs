//! `streamboard produce`: a source task (stdin lines, a followed file, or a demo generator at
//! a rate) feeds a bounded channel; the batching loop collects up to 500 records / 5 MiB or
//! the linger time, and hands each batch to [`Producer::put`]. A progress line is drawn on
//! stderr when it is a terminal; a summary is printed at exit.

use super::{
    MAX_BYTES_PER_CALL, MAX_RECORDS_PER_CALL, Producer, ProducerRecord, PutReport,
    demo::DemoGenerator,
    settings::{PartitionKeySource, ProduceConfig, ProduceSource},
};
use crate::{
    consumer::policy::KinesisError,
    kinesis::{StreamName, client::build_client},
};
use aws_sdk_kinesis::{Client, types::StreamStatus};
use bytes::Bytes;
use std::{
    io::{IsTerminal, Write},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    sync::mpsc,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Why `produce` could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("cannot read {path}: {source}")]
    Input {
        path: String,
        source: std::io::Error,
    },
    #[error("stream {stream}: {source}")]
    Kinesis {
        stream: StreamName,
        source: KinesisError,
    },
    #[error("stream {stream} did not become ACTIVE within {waited:?}")]
    NotActive {
        stream: StreamName,
        waited: Duration,
    },
}

/// Runs `produce` until the source ends, `--count` is reached, or `shutdown`.
pub async fn run(
    config: ProduceConfig,
    shutdown: CancellationToken,
) -> Result<PutReport, ProduceError> {
    let client = build_client(&config.target).await;
    if let Some(shards) = config.create_stream_shards {
        ensure_stream(&client, &config.stream, shards, Duration::from_secs(300)).await?;
    }
    let producer = Producer::new(client, config.stream.clone())
        .with_stream_arn(config.stream_arn.clone())
        .with_aggregation(config.aggregate);

    let tracker = TaskTracker::new();
    let stop_source = shutdown.child_token();
    let (tx, mut rx) = mpsc::channel::<ProducerRecord>(MAX_RECORDS_PER_CALL * 4);
    let (input_error_tx, mut input_error_rx) = mpsc::channel::<ProduceError>(1);
    {
        let config = config.clone();
        let stop = stop_source.clone();
        tracker.spawn(async move {
            if let Err(error) = source(config, tx, stop).await {
                let _ = input_error_tx.send(error).await;
            }
        });
    }
    tracker.close();

    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut total = PutReport::default();
    let mut last_progress = Instant::now();
    let mut batch = Vec::with_capacity(MAX_RECORDS_PER_CALL);
    let mut batch_bytes = 0usize;
    let mut open = true;
    while open {
        // Collect a batch: wait for the first record, then up to the linger time for more.
        let deadline = tokio::time::sleep(config.linger);
        tokio::pin!(deadline);
        let mut lingering = false;
        loop {
            let next = if lingering {
                tokio::select! {
                    next = rx.recv() => next,
                    _ = &mut deadline => break,
                }
            } else {
                rx.recv().await
            };
            match next {
                Some(record) => {
                    if !lingering {
                        deadline
                            .as_mut()
                            .reset(tokio::time::Instant::now() + config.linger);
                        lingering = true;
                    }
                    batch_bytes += record.data.len() + record.partition_key.len();
                    batch.push(record);
                    if batch.len() >= MAX_RECORDS_PER_CALL || batch_bytes >= MAX_BYTES_PER_CALL {
                        break;
                    }
                }
                None => {
                    open = false;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            total.add(producer.put(std::mem::take(&mut batch)).await);
            batch_bytes = 0;
        }
        if progress && last_progress.elapsed() >= Duration::from_millis(500) {
            last_progress = Instant::now();
            let rate = total.sent as f64 / started.elapsed().as_secs_f64().max(0.001);
            eprint!(
                "\r\x1b[2Ksent {}  failed {}  {:.0} records/s",
                total.sent, total.failed, rate
            );
            let _ = std::io::stderr().flush();
        }
    }
    tracker.wait().await;
    if progress {
        eprintln!();
    }
    let elapsed = started.elapsed().as_secs_f64().max(0.001);
    eprintln!(
        "produced to {}: {} records sent ({} Kinesis records), {} failed, {} retried, {:.1}s, {:.0} records/s",
        config.stream,
        total.sent,
        total.kinesis_records,
        total.failed,
        total.retried,
        elapsed,
        total.sent as f64 / elapsed
    );
    if let Ok(error) = input_error_rx.try_recv() {
        return Err(error);
    }
    Ok(total)
}

/// Creates the stream when it does not exist, then waits until it is ACTIVE.
pub async fn ensure_stream(
    client: &Client,
    stream: &StreamName,
    shards: u32,
    timeout: Duration,
) -> Result<(), ProduceError> {
    let kinesis = |source| ProduceError::Kinesis {
        stream: stream.clone(),
        source,
    };
    let described = client
        .describe_stream_summary()
        .stream_name(stream.as_str())
        .send()
        .await;
    match described {
        Ok(_) => {}
        Err(error) => match KinesisError::from_sdk(&error) {
            KinesisError::NotFound(_) => {
                tracing::info!(%stream, shards, "creating stream");
                let created = client
                    .create_stream()
                    .stream_name(stream.as_str())
                    .shard_count(i32::try_from(shards).unwrap_or(i32::MAX))
                    .send()
                    .await;
                if let Err(error) = created {
                    match KinesisError::from_sdk(&error) {
                        // Someone else created it meanwhile (ResourceInUse): fine.
                        KinesisError::Transient(_) => {}
                        other => return Err(kinesis(other)),
                    }
                }
            }
            other => return Err(kinesis(other)),
        },
    }
    let started = Instant::now();
    loop {
        let status = client
            .describe_stream_summary()
            .stream_name(stream.as_str())
            .send()
            .await
            .map_err(|error| kinesis(KinesisError::from_sdk(&error)))?
            .stream_description_summary()
            .map(|summary| summary.stream_status().clone());
        if status == Some(StreamStatus::Active) {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(ProduceError::NotActive {
                stream: stream.clone(),
                waited: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The partition key of `data` under `source`: the JSON Pointer's value (strings as they are,
/// other values as JSON text), or a random key when absent. Pure apart from the random key.
pub fn partition_key(data: &[u8], source: &PartitionKeySource) -> String {
    if let PartitionKeySource::JsonPointer(pointer) = source
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(data)
        && let Some(found) = value.pointer(pointer)
    {
        let key = match found {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        if !key.is_empty() {
            return key.chars().take(256).collect();
        }
    }
    format!("{:032x}", rand::random::<u128>())
}

async fn source(
    config: ProduceConfig,
    tx: mpsc::Sender<ProducerRecord>,
    stop: CancellationToken,
) -> Result<(), ProduceError> {
    let mut remaining = config.count.unwrap_or(u64::MAX);
    let send = |data: Vec<u8>| ProducerRecord {
        partition_key: partition_key(&data, &config.partition_key),
        explicit_hash_key: None,
        data: Bytes::from(data),
    };
    match &config.source {
        ProduceSource::Demo {
            kind,
            rate_per_sec,
            seed,
        } => {
            let mut generator = DemoGenerator::new(*kind, seed.unwrap_or_else(rand::random));
            let started = tokio::time::Instant::now();
            let mut emitted = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while remaining > 0 {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => return Ok(()),
                }
                let due = (started.elapsed().as_secs_f64() * f64::from(*rate_per_sec)) as u64;
                while emitted < due && remaining > 0 {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as i64)
                        .unwrap_or(0);
                    let line = generator.next_record(now).to_string().into_bytes();
                    if tx.send(send(line)).await.is_err() {
                        return Ok(());
                    }
                    emitted += 1;
                    remaining -= 1;
                }
            }
            Ok(())
        }
        ProduceSource::Stdin => lines(tokio::io::stdin(), false, &mut remaining, &tx, &stop, &send)
            .await
            .map_err(|source| ProduceError::Input {
                path: "stdin".into(),
                source,
            }),
        ProduceSource::File { path, follow } => {
            let input = |source| ProduceError::Input {
                path: path.display().to_string(),
                source,
            };
            let file = tokio::fs::File::open(path).await.map_err(input)?;
            lines(file, *follow, &mut remaining, &tx, &stop, &send)
                .await
                .map_err(input)
        }
    }
}

/// Sends each non-empty line; with `follow`, waits for more at EOF instead of ending.
async fn lines<R: AsyncRead + Unpin>(
    input: R,
    follow: bool,
    remaining: &mut u64,
    tx: &mpsc::Sender<ProducerRecord>,
    stop: &CancellationToken,
    make: &impl Fn(Vec<u8>) -> ProducerRecord,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(input);
    let mut line = Vec::new();
    let mut partial = Vec::new();
    while *remaining > 0 {
        line.clear();
        let read = tokio::select! {
            read = reader.read_until(b'\n', &mut line) => read?,
            _ = stop.cancelled() => return Ok(()),
        };
        if read == 0 {
            if !follow {
                break;
            }
            // At the end of a followed file: poll for appended lines.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                _ = stop.cancelled() => return Ok(()),
            }
        }
        partial.extend_from_slice(&line);
        if !partial.ends_with(b"\n") && follow {
            // A line still being written: wait for its end.
            continue;
        }
        let text: Vec<u8> = std::mem::take(&mut partial);
        let trimmed = text.trim_ascii_end();
        if trimmed.is_empty() {
            continue;
        }
        if tx.send(make(trimmed.to_vec())).await.is_err() {
            return Ok(());
        }
        *remaining -= 1;
    }
    if !partial.trim_ascii_end().is_empty() && *remaining > 0 {
        let _ = tx.send(make(partial.trim_ascii_end().to_vec())).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_key_from_a_json_pointer_or_random() {
        let pointer = PartitionKeySource::JsonPointer("/user".into());
        assert_eq!(partition_key(br#"{"user":"u-1"}"#, &pointer), "u-1");
        assert_eq!(
            partition_key(
                br#"{"user":{"id":7}}"#,
                &PartitionKeySource::JsonPointer("/user/id".into())
            ),
            "7"
        );
        let random = partition_key(b"not json", &pointer);
        assert_eq!(random.len(), 32);
        assert_ne!(random, partition_key(b"not json", &pointer));
        assert_eq!(
            partition_key(br#"{"user":"x"}"#, &PartitionKeySource::Random).len(),
            32
        );
    }

    #[tokio::test]
    async fn lines_skip_blanks_and_stop_at_count() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut remaining = 2;
        let make = |data: Vec<u8>| ProducerRecord {
            partition_key: "k".into(),
            explicit_hash_key: None,
            data: Bytes::from(data),
        };
        lines(
            &b"a\n\nb\r\nc\n"[..],
            false,
            &mut remaining,
            &tx,
            &CancellationToken::new(),
            &make,
        )
        .await
        .unwrap();
        drop(tx);
        let mut got = Vec::new();
        while let Some(record) = rx.recv().await {
            got.push(record.data);
        }
        assert_eq!(got, vec![Bytes::from("a"), Bytes::from("b")]);
    }
}
