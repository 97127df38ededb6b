//! The durable record log: append-only segment files, CRC framing, crash recovery and group
//! commit. Also the atomic rewrite of the small topology file.
//!
//! # Layout
//! `<data-dir>/kinesis/meta.json` holds the topology (streams, shards, hash ranges, parents,
//! sequence counters, the iterator key); it changes only on CreateStream, DeleteStream,
//! resharding and retention changes, and is rewritten atomically (write `meta.json.tmp`,
//! fsync, rename, fsync the directory). `<data-dir>/kinesis/log/<n>.seg` are the record
//! segments, one log for all streams and shards, in write order, rolled at 64 MiB. One log
//! rather than one per shard: a write touching many shards is one frame and one fdatasync, and
//! a segment's records are in arrival order, so retention drops whole old segments.
//!
//! # Framing and recovery
//! A frame is `len: u32 LE | crc32(payload): u32 LE | payload`; the payload is one write (a
//! PutRecord or PutRecords): stream id, then each stored record's shard, sequence number,
//! arrival time, partition key and data. On start every segment is read in order; at the first
//! frame that is short or fails its CRC the file is truncated there (a torn tail from a crash
//! mid-write), and replay continues with the next segment.
//!
//! # fsync policy
//! A write is acknowledged only after its frame is written and `fdatasync`ed. Group commit: the
//! request handlers append encoded frames to a shared buffer; one writer thread takes the whole
//! buffer, writes it, syncs once, then publishes the highest durable LSN (log sequence number)
//! on a watch channel that every waiting request awaits. Concurrent PutRecords therefore share
//! one sync; under load a sync covers every request that arrived during the previous one.

use bytes::{Buf, BufMut, Bytes};
use std::{
    fs::{File, OpenOptions},
    io::{Read, Write},
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex},
    thread::JoinHandle,
    time::Duration,
};
use tokio::sync::watch;

const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
const FRAME_HEADER: usize = 8;
/// Largest frame accepted on replay (a PutRecords is at most 5 MiB of data plus overhead).
const MAX_FRAME: usize = 64 * 1024 * 1024;
/// Pending bytes above which appenders wait for the writer (back-pressure).
const MAX_PENDING_BYTES: usize = 256 * 1024 * 1024;

/// Errors of the log and the metadata file.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the record log failed earlier and accepts no more writes: {0}")]
    Failed(String),
    #[error("the record log is closed")]
    Closed,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LogError + 'a {
    move |source| LogError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// One record inside a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRecord {
    pub shard: u32,
    pub seq: u128,
    pub arrival_ms: i64,
    /// UTF-8 (checked on decode); a slice of the segment, like `data`.
    pub partition_key: Bytes,
    pub data: Bytes,
}

/// Encodes one write's frame (header included).
pub fn encode_frame<'a>(
    stream_id: u64,
    records: impl Iterator<Item = (u32, u128, i64, &'a [u8], &'a [u8])>,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.put_bytes(0, FRAME_HEADER);
    out.put_u64_le(stream_id);
    let count_at = out.len();
    out.put_u32_le(0);
    let mut count = 0u32;
    for (shard, seq, arrival_ms, key, data) in records {
        out.put_u32_le(shard);
        out.put_u128_le(seq);
        out.put_i64_le(arrival_ms);
        out.put_u16_le(key.len() as u16);
        out.put_slice(key);
        out.put_u32_le(data.len() as u32);
        out.put_slice(data);
        count += 1;
    }
    out[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    let payload_len = (out.len() - start - FRAME_HEADER) as u32;
    let crc = crc32fast::hash(&out[start + FRAME_HEADER..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes frames from `bytes`; returns them and the length of the valid prefix.
pub fn decode_frames(bytes: &Bytes) -> (Vec<(u64, Vec<LoggedRecord>)>, usize) {
    let mut frames = Vec::new();
    let mut offset = 0usize;
    while let Some(frame) = decode_frame(bytes, offset) {
        let (stream_id, records, len) = frame;
        frames.push((stream_id, records));
        offset += len;
    }
    (frames, offset)
}

fn decode_frame(bytes: &Bytes, offset: usize) -> Option<(u64, Vec<LoggedRecord>, usize)> {
    let header = bytes.get(offset..offset + FRAME_HEADER)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    if !(12..=MAX_FRAME).contains(&len) {
        return None;
    }
    let start = offset + FRAME_HEADER;
    let payload_slice = bytes.get(start..start + len)?;
    if crc32fast::hash(payload_slice) != crc {
        return None;
    }
    let mut payload = bytes.slice(start..start + len);
    let stream_id = payload.try_get_u64_le().ok()?;
    let count = payload.try_get_u32_le().ok()?;
    let mut records = Vec::with_capacity(count.min(10_000) as usize);
    for _ in 0..count {
        let shard = payload.try_get_u32_le().ok()?;
        let seq = payload.try_get_u128_le().ok()?;
        let arrival_ms = payload.try_get_i64_le().ok()?;
        let key_len = payload.try_get_u16_le().ok()? as usize;
        if payload.remaining() < key_len {
            return None;
        }
        let key = payload.split_to(key_len);
        std::str::from_utf8(&key).ok()?;
        let data_len = payload.try_get_u32_le().ok()? as usize;
        if payload.remaining() < data_len {
            return None;
        }
        let data = payload.split_to(data_len);
        records.push(LoggedRecord {
            shard,
            seq,
            arrival_ms,
            partition_key: key,
            data,
        });
    }
    Some((stream_id, records, FRAME_HEADER + len))
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut file = File::create(&tmp).map_err(io("create", &tmp))?;
        file.write_all(bytes).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("fsync", &tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io("rename", path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))
}

/// Where durability stands: the highest LSN on disk, or the failure that stopped the log.
#[derive(Debug, Clone, PartialEq)]
pub enum Durable {
    Upto(u64),
    Failed(String),
}

struct Pending {
    buf: Vec<u8>,
    last_lsn: u64,
    stop: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    drained: Condvar,
    durable: watch::Sender<Durable>,
    closed_segments: Mutex<Vec<(PathBuf, std::time::SystemTime)>>,
}

/// The open log: appenders hand it frames, one writer thread makes them durable.
pub struct Log {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// Segment file name for number `n`.
fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}.seg"))
}

fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io("list", dir))? {
        let entry = entry.map_err(io("list", dir))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "seg")
            && let Some(n) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
        {
            segments.push((n, path));
        }
    }
    segments.sort();
    Ok(segments)
}

impl Log {
    /// Opens the log in `dir` (created if missing): replays every segment through `replay`,
    /// truncating torn tails, then starts a fresh segment and the writer thread.
    pub fn open(
        dir: &Path,
        mut replay: impl FnMut(u64, Vec<LoggedRecord>),
    ) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        let segments = list_segments(dir)?;
        let mut closed = Vec::new();
        for (_, path) in &segments {
            let mut bytes = Vec::new();
            File::open(path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(io("read", path))?;
            let bytes = Bytes::from(bytes);
            let (frames, valid) = decode_frames(&bytes);
            if valid < bytes.len() {
                tracing::warn!(
                    segment = %path.display(),
                    valid_bytes = valid,
                    dropped_bytes = bytes.len() - valid,
                    "truncating a torn or corrupt log tail"
                );
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io("open", path))?;
                file.set_len(valid as u64).map_err(io("truncate", path))?;
                file.sync_all().map_err(io("fsync", path))?;
            }
            for (stream_id, records) in frames {
                replay(stream_id, records);
            }
            let modified = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .unwrap_or_else(|_| std::time::SystemTime::now());
            closed.push((path.clone(), modified));
        }
        let next = segments.last().map(|(n, _)| n + 1).unwrap_or(1);
        let path = segment_path(dir, next);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io("create", &path))?;
        sync_dir(dir)?;
        let (durable, _) = watch::channel(Durable::Upto(0));
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                buf: Vec::new(),
                last_lsn: 0,
                stop: false,
            }),
            wake: Condvar::new(),
            drained: Condvar::new(),
            durable,
            closed_segments: Mutex::new(closed),
        });
        let writer = std::thread::Builder::new()
            .name("kinesis-log".into())
            .spawn({
                let shared = shared.clone();
                let dir = dir.to_path_buf();
                move || writer_loop(shared, dir, next, path, file)
            })
            .map_err(io("start writer thread for", dir))?;
        Ok(Self {
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Appends one frame stamped `lsn` (callers hand LSNs out in increasing order, under the
    /// model's lock). Waits briefly if the writer is far behind.
    pub fn append(&self, lsn: u64, frame: &[u8]) -> Result<(), LogError> {
        self.append_with(lsn, |buf| buf.extend_from_slice(frame))
    }

    /// As [`Log::append`], with `encode` writing the frame straight onto the end of the pending
    /// buffer (see [`encode_frame`]): no frame buffer of its own, no copy.
    pub fn append_with(&self, lsn: u64, encode: impl FnOnce(&mut Vec<u8>)) -> Result<(), LogError> {
        let mut pending = self
            .shared
            .pending
            .lock()
            .map_err(|_| LogError::Failed("log lock poisoned".into()))?;
        while pending.buf.len() > MAX_PENDING_BYTES && !pending.stop {
            pending = self
                .shared
                .drained
                .wait_timeout(pending, Duration::from_millis(100))
                .map_err(|_| LogError::Failed("log lock poisoned".into()))?
                .0;
        }
        if pending.stop {
            return Err(LogError::Closed);
        }
        if let Durable::Failed(reason) = &*self.shared.durable.borrow() {
            return Err(LogError::Failed(reason.clone()));
        }
        encode(&mut pending.buf);
        pending.last_lsn = lsn;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Highest durable LSN now.
    pub fn durable_lsn(&self) -> u64 {
        match &*self.shared.durable.borrow() {
            Durable::Upto(lsn) => *lsn,
            Durable::Failed(_) => 0,
        }
    }

    /// Waits until `lsn` is on disk.
    pub async fn wait_durable(&self, lsn: u64) -> Result<(), LogError> {
        let mut rx = self.shared.durable.subscribe();
        let state = rx
            .wait_for(|d| match d {
                Durable::Upto(done) => *done >= lsn,
                Durable::Failed(_) => true,
            })
            .await
            .map_err(|_| LogError::Closed)?;
        match &*state {
            Durable::Upto(_) => Ok(()),
            Durable::Failed(reason) => Err(LogError::Failed(reason.clone())),
        }
    }

    /// Closed segments whose last write is older than `older_than`; removes them from the
    /// list and returns their paths for the caller to delete after saving the topology.
    pub fn take_segments_older_than(&self, older_than: std::time::SystemTime) -> Vec<PathBuf> {
        let Ok(mut closed) = self.shared.closed_segments.lock() else {
            return Vec::new();
        };
        let (old, keep): (Vec<_>, Vec<_>) = closed.drain(..).partition(|(_, t)| *t < older_than);
        *closed = keep;
        old.into_iter().map(|(p, _)| p).collect()
    }

    /// Flushes what is pending and stops the writer thread.
    pub fn close(&self) {
        if let Ok(mut pending) = self.shared.pending.lock() {
            pending.stop = true;
            self.shared.wake.notify_one();
        }
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!("the log writer thread panicked");
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.close();
    }
}

fn writer_loop(
    shared: Arc<Shared>,
    dir: PathBuf,
    mut number: u64,
    mut path: PathBuf,
    mut file: File,
) {
    let mut size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = Vec::new();
    loop {
        let (lsn, stop) = {
            let Ok(mut pending) = shared.pending.lock() else {
                return;
            };
            while pending.buf.is_empty() && !pending.stop {
                pending = match shared.wake.wait(pending) {
                    Ok(p) => p,
                    Err(_) => return,
                };
            }
            std::mem::swap(&mut buf, &mut pending.buf);
            shared.drained.notify_all();
            (pending.last_lsn, pending.stop)
        };
        if !buf.is_empty() {
            let result = file
                .write_all(&buf)
                .and_then(|()| file.sync_data())
                .map_err(io("write", &path));
            size += buf.len() as u64;
            buf.clear();
            match result {
                Ok(()) => {
                    shared.durable.send_replace(Durable::Upto(lsn));
                }
                Err(error) => {
                    tracing::error!(%error, "the record log failed; writes now fail");
                    shared
                        .durable
                        .send_replace(Durable::Failed(error.to_string()));
                    return;
                }
            }
            if size >= SEGMENT_BYTES {
                let next_path = segment_path(&dir, number + 1);
                match OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&next_path)
                {
                    Ok(next) => {
                        if let Err(error) = sync_dir(&dir) {
                            tracing::warn!(%error, "cannot fsync the log directory");
                        }
                        if let Ok(mut closed) = shared.closed_segments.lock() {
                            closed.push((path.clone(), std::time::SystemTime::now()));
                        }
                        file = next;
                        path = next_path;
                        number += 1;
                        size = 0;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot roll the log segment; continuing in the current one");
                    }
                }
            }
        }
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u64, n: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let data = vec![b'x'; 10];
        encode_frame(
            stream,
            (0..n).map(|i| {
                (
                    i % 2,
                    100 + u128::from(i),
                    5,
                    b"key".as_slice(),
                    data.as_slice(),
                )
            }),
            &mut out,
        );
        out
    }

    #[test]
    fn frames_round_trip_and_torn_tails_are_cut() {
        let mut bytes = frame(1, 3);
        let first = bytes.len();
        bytes.extend(frame(2, 1));
        let whole = Bytes::from(bytes.clone());
        let (frames, valid) = decode_frames(&whole);
        assert_eq!(valid, whole.len());
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].1.len(), 3);
        assert_eq!(frames[0].1[2].seq, 102);
        assert_eq!(frames[1].0, 2);

        let torn = Bytes::from(bytes[..bytes.len() - 3].to_vec());
        let (frames, valid) = decode_frames(&torn);
        assert_eq!((frames.len(), valid), (1, first));

        let mut corrupt = bytes.clone();
        corrupt[first + 20] ^= 0xff;
        let (frames, valid) = decode_frames(&Bytes::from(corrupt));
        assert_eq!((frames.len(), valid), (1, first));
    }

    #[tokio::test]
    async fn appended_frames_survive_reopen_and_torn_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = Log::open(dir.path(), |_, _| panic!("empty")).unwrap();
            log.append(1, &frame(7, 2)).unwrap();
            log.append(2, &frame(7, 1)).unwrap();
            log.wait_durable(2).await.unwrap();
            assert_eq!(log.durable_lsn(), 2);
            log.close();
        }
        // Simulate a crash mid-write: half a frame at the end of the newest segment.
        let segments = list_segments(dir.path()).unwrap();
        let (_, last) = segments.last().unwrap();
        let half = frame(7, 4);
        OpenOptions::new()
            .append(true)
            .open(last)
            .unwrap()
            .write_all(&half[..half.len() / 2])
            .unwrap();
        let mut seen = Vec::new();
        let log = Log::open(dir.path(), |stream, records| {
            seen.push((stream, records.len()))
        })
        .unwrap();
        assert_eq!(seen, vec![(7, 2), (7, 1)]);
        log.close();
        let mut again = Vec::new();
        let _log = Log::open(dir.path(), |s, r| again.push((s, r.len()))).unwrap();
        assert_eq!(
            again, seen,
            "the torn tail was truncated, later segments are fine"
        );
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!dir.path().join("meta.json.tmp").exists());
    }
}
