//! The database's disk fills up under the real `streamboard serve`: its data directory is a
//! small tmpfs, filled by a ballast file while a producer puts records. Asserted: ingest pauses
//! with a clear error in `/healthz` (503, `storage_error`) and in the dashboard's live overview,
//! nothing more is stored and nothing stored is corrupted (SQLite's integrity check), and once
//! the ballast is removed ingest resumes by itself and the stored summaries equal the ground
//! truth of every record put: nothing lost, nothing counted twice.
//!
//! The second test fills the disk with SQLite's WAL emptied first, so that every write needs
//! new space, and shows the other writers on the shared pool: an API write (a dashboard) and a
//! query that first brings a roll-up up to date get a clear 507 (not a 500 with SQL text), no
//! failed transaction keeps SQLite's write lock, and once space returns ingest and API writes
//! both succeed on every pooled connection.
//!
//! The engine-level test beside them fails flushes as SQLITE_FULL through a checkpoint hook and
//! shows the pause itself: the batch channel fills and is not drained until a flush commits.
//!
//! Mounting a tmpfs needs root (as `make test` runs here and in CI); run as another user, the
//! test says so and does nothing.

mod support;

use bytes::Bytes;
use futures_util::StreamExt;
use rand::{SeedableRng, rngs::StdRng};
use std::{
    future::Future,
    io::Write,
    path::{Path, PathBuf},
    pin::Pin,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};
use streamboard::{
    engine::{self, EngineSettings},
    kinesis::{ConsumedRecord, RecordBatch, SequenceNumber, ShardId, StreamName},
    producer::Producer,
    storage::{CheckpointHook, Database, StorageError},
};
use support::{
    Peer, create_stream, eventually_within, http_json,
    serve::{Serve, Truth, stored_count, write_config},
    unique_stream,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// A tmpfs of `size_mib` mounted on `path`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size_mib: u32) -> Tmpfs {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs on {path:?} failed");
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the file system refuses (ENOSPC); returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("the ballast file is opened");
    let mut written = 0u64;
    for chunk in [1 << 20, 4096, 512] {
        let block = vec![0x5a_u8; chunk];
        loop {
            match file.write_all(&block) {
                Ok(()) => written += chunk as u64,
                Err(error) if error.kind() == std::io::ErrorKind::StorageFull => break,
                Err(error) => panic!("filling {path:?}: {error}"),
            }
        }
    }
    let _ = file.sync_all();
    written
}

async fn healthz(serve: &Serve) -> (u16, serde_json::Value) {
    serve.wait_ready().await;
    http_json(serve.addr, "GET", "/healthz", None).await
}

#[tokio::test]
async fn ingest_pauses_when_the_disk_is_full_and_resumes_when_space_returns() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("disk_full: not root, cannot mount a tmpfs; this test needs root");
        return;
    }
    let peer = Peer::start().await;
    let stream = unique_stream("diskfull");
    create_stream(&peer.client, &stream, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stream);
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    let _tmpfs = Tmpfs::mount(&data_dir, 16);
    let serve = Serve::spawn(&config, &data_dir, &peer.url, &[]);
    serve.wait_ready().await; // it has migrated the database
    let database = Database::open(&data_dir).await.unwrap();

    // A steady producer (200 records every 100 ms) until told to stop.
    let truth = Truth::default();
    let stop = CancellationToken::new();
    let producing = {
        let producer = Producer::new(peer.client.clone(), StreamName::from(stream.as_str()));
        let (truth, stop) = (truth.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(3);
            while !stop.is_cancelled() {
                truth.put(&producer, &mut rng, 200).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    eventually_within("records stored", Duration::from_secs(30), || async {
        stored_count(&database).await >= 2_000
    })
    .await;
    let (status, health) = healthz(&serve).await;
    assert_eq!(status, 200, "{health}");

    // The disk fills while records keep arriving; the first flush that needs new space fails
    // (SQLite first reuses the space its WAL already has) and /healthz says so.
    let ballast = data_dir.join("ballast");
    let filled = fill(&ballast);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let message = loop {
        let (status, health) = healthz(&serve).await;
        if let (503, Some(text)) = (status, health["storage_error"].as_str()) {
            break text.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/healthz did not report the full disk: {status} {health}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.cancel();
    producing.await.unwrap();
    assert!(message.contains("disk is full"), "{message}");
    assert!(message.contains("ingest is paused"), "{message}");

    // So does the dashboard's live overview.
    let mut socket = support::ws_connect(serve.addr, support::WsOptions::default()).await;
    support::ws_send(
        &mut socket,
        contract::protocol::ClientMessage::Hello {
            protocol: contract::protocol::PROTOCOL_VERSION,
        },
    )
    .await;
    support::ws_send(
        &mut socket,
        contract::protocol::ClientMessage::Subscribe {
            topics: vec![contract::protocol::Topic::Overview],
        },
    )
    .await;
    let shown = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(frame)) = socket.next().await {
            let Ok(text) = frame.into_text() else {
                continue;
            };
            if let Ok(contract::protocol::ServerMessage::Update {
                payload: contract::protocol::LivePayload::Overview(overview),
                ..
            }) = serde_json::from_str(&text)
                && let Some(error) = overview.storage_error
            {
                return error;
            }
        }
        panic!("the WebSocket closed");
    })
    .await
    .expect("the overview shows the storage error");
    assert_eq!(shown, message);

    // Nothing more is stored meanwhile: the count holds still while five more flushes are
    // tried and fail (it stays below what was put), and what is stored is intact.
    let paused_at = stored_count(&database).await;
    let failed_flushes = |health: &serde_json::Value| health["failed_flushes"].as_u64();
    let failed_at = failed_flushes(&healthz(&serve).await.1).expect("failed_flushes while paused");
    eventually_within(
        "five more flushes fail",
        Duration::from_secs(30),
        || async { failed_flushes(&healthz(&serve).await.1).is_some_and(|n| n >= failed_at + 5) },
    )
    .await;
    assert_eq!(
        stored_count(&database).await,
        paused_at,
        "stored while paused"
    );
    assert!(
        paused_at < truth.len(),
        "everything was stored despite the full disk"
    );
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(database.pool())
        .await
        .unwrap();
    assert_eq!(integrity, "ok");

    // Space returns: ingest resumes by itself and every record is stored exactly once.
    std::fs::remove_file(&ballast).unwrap();
    let total = truth.len();
    eventually_within("every record stored", Duration::from_secs(60), || async {
        stored_count(&database).await >= total
    })
    .await;
    eventually_within("/healthz ok again", Duration::from_secs(10), || async {
        healthz(&serve).await.0 == 200
    })
    .await;
    truth.check_stored(&database).await;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(database.pool())
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    eprintln!(
        "disk_full: ballast {} KiB; paused at {paused_at} records with {message:?}; all {total} \
         stored after space returned",
        filled / 1024
    );
    database.close().await;
    drop(serve);
}

/// Fills the disk holding `data_dir` with SQLite's WAL empty: the ballast goes, the WAL is
/// checkpointed and truncated, and the ballast fills the disk again, until the WAL is found
/// still empty after the fill (a flush may commit between the truncation and the fill). Then
/// any write needs space the disk does not have.
async fn fill_with_an_empty_wal(database: &Database, data_dir: &Path, ballast: &Path) -> u64 {
    let wal = data_dir.join("streamboard.db-wal");
    for _ in 0..20 {
        let _ = std::fs::remove_file(ballast);
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(database.pool())
            .await
            .expect("the WAL is checkpointed");
        let filled = fill(ballast);
        let wal_bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if busy == 0 && wal_bytes == 0 {
            return filled;
        }
    }
    panic!("the WAL was never empty after filling the disk");
}

/// An API error answer: its status and its message.
fn api_error(answer: (u16, serde_json::Value)) -> (u16, String) {
    let (status, body) = answer;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    (status, message.to_string())
}

fn dashboard(name: &str) -> serde_json::Value {
    serde_json::json!({
        "version": 1,
        "name": name,
        "panels": [{"title": "Latency", "kind": "timeseries", "x": 0, "y": 0, "w": 8, "h": 4,
                    "queries": [{"metric": support::serve::METRIC, "statistics": ["p99"]}]}],
    })
}

#[tokio::test]
async fn api_writes_and_rollups_fail_clearly_while_the_disk_is_full_and_recover() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("disk_full: not root, cannot mount a tmpfs; this test needs root");
        return;
    }
    let peer = Peer::start().await;
    let stream = unique_stream("diskfullapi");
    create_stream(&peer.client, &stream, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stream);
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    let _tmpfs = Tmpfs::mount(&data_dir, 16);
    let serve = Serve::spawn(&config, &data_dir, &peer.url, &[]);
    serve.wait_ready().await;
    let database = Database::open(&data_dir).await.unwrap();

    let truth = Truth::default();
    let stop = CancellationToken::new();
    let producing = {
        let producer = Producer::new(peer.client.clone(), StreamName::from(stream.as_str()));
        let (truth, stop) = (truth.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(5);
            while !stop.is_cancelled() {
                truth.put(&producer, &mut rng, 200).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    eventually_within("records stored", Duration::from_secs(30), || async {
        stored_count(&database).await >= 1_000
    })
    .await;
    let (status, created) = http_json(
        serve.addr,
        "POST",
        "/api/v1/dashboards",
        Some(dashboard("before")),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    // The last hour at the 1-hour tier: the open hour's roll-up is rebuilt before it is read.
    let rollup_query = || {
        let now_ms = streamboard::clock::now_ms();
        format!(
            "/api/v1/query?metric={}&tier=1h&from={}&to={now_ms}",
            support::serve::METRIC,
            now_ms - 3_600_000
        )
    };
    let (status, answer) = http_json(serve.addr, "GET", &rollup_query(), None).await;
    assert_eq!(status, 200, "{answer}");
    // More records are stored after that roll-up, so the next one has rows to rewrite (a
    // rebuild that finds its rows unchanged writes nothing).
    let rolled_up = stored_count(&database).await;
    eventually_within("more records stored", Duration::from_secs(30), || async {
        stored_count(&database).await > rolled_up
    })
    .await;

    // The disk fills with the WAL empty: ingest pauses, and API writes and roll-ups fail.
    let ballast = data_dir.join("ballast");
    let filled = fill_with_an_empty_wal(&database, &data_dir, &ballast).await;
    eventually_within("ingest pauses", Duration::from_secs(60), || async {
        healthz(&serve).await.0 == 503
    })
    .await;
    let full = api_error(
        http_json(
            serve.addr,
            "POST",
            "/api/v1/dashboards",
            Some(dashboard("while full")),
        )
        .await,
    );
    let (status, message) = &full;
    assert_eq!(*status, 507, "{message}");
    assert!(message.contains("the database's disk is full"), "{message}");
    assert!(!message.to_lowercase().contains("sql"), "{message}");
    let rollup = api_error(http_json(serve.addr, "GET", &rollup_query(), None).await);
    assert_eq!(rollup, full, "the roll-up's answer while the disk is full");

    // No failed transaction holds SQLite's write lock: another connection takes it at once
    // (the server's flush holds it only for its short failed attempts).
    let lock = tokio::time::timeout(
        Duration::from_secs(10),
        database.pool().begin_with("BEGIN IMMEDIATE"),
    )
    .await
    .expect("the write lock is free within 10 s")
    .expect("BEGIN IMMEDIATE");
    lock.rollback().await.unwrap();
    let wal_bytes = std::fs::metadata(data_dir.join("streamboard.db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal_bytes, 0, "a write found space while the disk was full");
    stop.cancel();
    producing.await.unwrap();

    // Space returns: ingest resumes and every pooled connection writes again (more writes
    // than the pool has connections, each answered at its first try).
    std::fs::remove_file(&ballast).unwrap();
    let total = truth.len();
    eventually_within("every record stored", Duration::from_secs(60), || async {
        stored_count(&database).await >= total
    })
    .await;
    truth.check_stored(&database).await;
    for n in 0..12 {
        let name = format!("after {n}");
        let (status, created) = http_json(
            serve.addr,
            "POST",
            "/api/v1/dashboards",
            Some(dashboard(&name)),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let (status, answer) = http_json(serve.addr, "GET", &rollup_query(), None).await;
        assert_eq!(status, 200, "{answer}");
    }
    eventually_within("/healthz ok again", Duration::from_secs(10), || async {
        healthz(&serve).await.0 == 200
    })
    .await;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(database.pool())
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    eprintln!(
        "disk_full: ballast {} KiB; API write and roll-up answered {full:?}; {total} records \
         and 12 API writes stored after space returned",
        filled / 1024
    );
    database.close().await;
    drop(serve);
}

/// A checkpoint hook that fails the flush transaction (as SQLITE_FULL) while `full` is set,
/// and counts the flushes that reach it.
struct FullDisk {
    full: Arc<AtomicBool>,
    attempts: Arc<AtomicU64>,
}

impl CheckpointHook<u64> for FullDisk {
    fn write<'a>(
        &'a mut self,
        _tx: streamboard::storage::Conn<'a>,
        _positions: &'a [(StreamName, ShardId, u64)],
    ) -> Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 'a>> {
        Box::pin(async move {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            if self.full.load(Ordering::SeqCst) {
                return Err(StorageError::Sqlite(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                    Some("database or disk is full".into()),
                )));
            }
            Ok(())
        })
    }
}

fn batch(n: u64) -> RecordBatch<u64> {
    RecordBatch {
        stream: "paused".into(),
        shard: "shardId-000000000000".into(),
        records: vec![ConsumedRecord {
            sequence_number: SequenceNumber::parse(&(n + 1).to_string()).unwrap(),
            sub_sequence: None,
            partition_key: "k".into(),
            data: Bytes::from_static(br#"{"latency_ms":5}"#),
            arrival_time_ms: streamboard::clock::now_ms(),
            explicit_hash_key: None,
        }],
        millis_behind_latest: Some(0),
        position: n,
    }
}

#[tokio::test]
async fn the_engine_stops_taking_batches_while_flushes_fail() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).await.unwrap();
    let full = Arc::new(AtomicBool::new(true));
    let attempts = Arc::new(AtomicU64::new(0));
    let mut config = EngineSettings::default().shell_config();
    config.flush_interval = Duration::from_millis(50);
    let (tracker, shutdown) = (TaskTracker::new(), CancellationToken::new());
    let hook = FullDisk {
        full: full.clone(),
        attempts: attempts.clone(),
    };
    let (engine, batches) =
        engine::shell::spawn::<u64, _>(config, database.clone(), hook, &tracker, shutdown.clone())
            .await
            .unwrap();
    let capacity = batches.max_capacity();

    // The first batch is ingested; its flush fails and ingest pauses, saying why.
    batches.send(batch(0)).await.unwrap();
    eventually_within("the flush fails", Duration::from_secs(10), || async {
        engine.storage_failure().is_some()
    })
    .await;
    let failure = engine.storage_failure().unwrap();
    assert!(
        failure.message.contains("disk is full"),
        "{}",
        failure.message
    );
    let ingested = *engine.ingested().borrow();

    // Batches now wait in the channel until it is full, while flushes keep being retried.
    for n in 1..=capacity as u64 {
        batches.try_send(batch(n)).expect("room in the channel");
    }
    let tried = attempts.load(Ordering::SeqCst);
    eventually_within(
        "two more flush attempts",
        Duration::from_secs(10),
        || async { attempts.load(Ordering::SeqCst) >= tried + 2 },
    )
    .await;
    assert_eq!(
        batches.capacity(),
        0,
        "the engine took batches while paused"
    );
    assert!(batches.try_send(batch(0)).is_err());
    assert_eq!(*engine.ingested().borrow(), ingested);
    assert_eq!(engine.storage_failure().unwrap().since_ms, failure.since_ms);

    // Space returns: the retry commits, ingest resumes and drains the channel.
    full.store(false, Ordering::SeqCst);
    eventually_within("ingest resumes", Duration::from_secs(10), || async {
        engine.storage_failure().is_none() && batches.capacity() == capacity
    })
    .await;
    engine.flush().await.unwrap().unwrap();
    assert_eq!(*engine.ingested().borrow(), ingested + capacity as u64);
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
    database.close().await;
}
