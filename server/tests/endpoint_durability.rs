//! Durability of the embedded endpoint: the real binary is killed with SIGKILL while writes are
//! in flight, a torn frame is appended to its newest log segment, and a restart on the same
//! data directory must return every acknowledged record, in order, with the same sequence
//! numbers.

mod support;

use aws_sdk_kinesis::{
    Client,
    primitives::Blob,
    types::{PutRecordsRequestEntry, ShardIteratorType},
};
use std::{
    collections::{BTreeMap, HashMap},
    io::Write,
    path::Path,
    process::{Child, Command, Stdio},
};
use streamboard::kinesis::{
    SequenceNumber,
    client::{KinesisTarget, build_client},
};
use support::{WAIT, eventually, free_port, unique_name};

/// The binary under test, killed by pid when dropped.
struct Binary {
    child: Child,
    client: Client,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn spawn(dir: &Path) -> Binary {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_streamboard"))
        .args([
            "endpoint",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir)
        .env("STREAMBOARD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the streamboard binary starts");
    let client = build_client(&KinesisTarget::Local {
        endpoint_url: format!("http://127.0.0.1:{port}"),
    })
    .await;
    let binary = Binary { child, client };
    eventually("the endpoint answers", || async {
        binary.client.list_streams().send().await.is_ok()
    })
    .await;
    binary
}

async fn read_shard(client: &Client, stream: &str, shard: &str) -> Vec<(String, String)> {
    let mut iterator = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator;
    let mut out = Vec::new();
    while let Some(it) = iterator {
        let page = client
            .get_records()
            .shard_iterator(it)
            .send()
            .await
            .unwrap();
        let empty = page.records.is_empty();
        out.extend(page.records.into_iter().map(|r| {
            (
                r.sequence_number,
                String::from_utf8(r.data.into_inner()).unwrap(),
            )
        }));
        iterator = page.next_shard_iterator;
        if empty {
            break;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9_and_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let stream = unique_name("durable");
    let mut binary = spawn(dir.path()).await;
    binary
        .client
        .create_stream()
        .stream_name(&stream)
        .shard_count(3)
        .send()
        .await
        .unwrap();

    // Four writers put batches until the process dies under them; each keeps what was
    // acknowledged.
    let mut writers = Vec::new();
    for w in 0..4 {
        let client = binary.client.clone();
        let stream = stream.clone();
        writers.push(tokio::spawn(async move {
            let mut acked: Vec<(String, String, String)> = Vec::new();
            for batch in 0.. {
                let entries: Vec<_> = (0..50)
                    .map(|i| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(format!("k{w}-{batch}-{i}"))
                            .data(Blob::new(format!("w{w}-b{batch}-r{i}").into_bytes()))
                            .build()
                            .unwrap()
                    })
                    .collect();
                match client
                    .put_records()
                    .stream_name(&stream)
                    .set_records(Some(entries))
                    .send()
                    .await
                {
                    Ok(out) => {
                        for (i, r) in out.records.into_iter().enumerate() {
                            acked.push((
                                format!("w{w}-b{batch}-r{i}"),
                                r.shard_id.unwrap(),
                                r.sequence_number.unwrap(),
                            ));
                        }
                    }
                    Err(_) => break,
                }
            }
            acked
        }));
    }
    // Kill -9 once a good number of writes has been acknowledged, with more in flight.
    let dir_path = dir.path().to_path_buf();
    eventually("some writes are on disk", || {
        let dir_path = dir_path.clone();
        async move {
            std::fs::read_dir(dir_path.join("kinesis/log"))
                .map(|entries| {
                    entries
                        .flatten()
                        .filter_map(|e| e.metadata().ok())
                        .map(|m| m.len())
                        .sum::<u64>()
                        > 200_000
                })
                .unwrap_or(false)
        }
    })
    .await;
    binary.child.kill().expect("SIGKILL");
    binary.child.wait().unwrap();
    let mut acked = Vec::new();
    for writer in writers {
        acked.extend(tokio::time::timeout(WAIT, writer).await.unwrap().unwrap());
    }
    assert!(
        acked.len() >= 200,
        "writes were acknowledged before the kill ({})",
        acked.len()
    );

    // A torn write: half a frame at the end of the newest segment.
    let mut segments: Vec<_> = std::fs::read_dir(dir.path().join("kinesis/log"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    segments.sort();
    std::fs::OpenOptions::new()
        .append(true)
        .open(segments.last().unwrap())
        .unwrap()
        .write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 5, 6])
        .unwrap();

    drop(binary);
    let binary = spawn(dir.path()).await;
    let mut by_shard: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (data, shard, seq) in &acked {
        by_shard
            .entry(shard.clone())
            .or_default()
            .push((seq.clone(), data.clone()));
    }
    for (shard, mut want) in by_shard {
        want.sort_by_key(|(s, _)| SequenceNumber::parse(s).unwrap());
        let got = read_shard(&binary.client, &stream, &shard).await;
        let got_seqs: Vec<SequenceNumber> = got
            .iter()
            .map(|(s, _)| SequenceNumber::parse(s).unwrap())
            .collect();
        assert!(got_seqs.windows(2).all(|w| w[0] < w[1]), "in order");
        let got_map: HashMap<&str, &str> =
            got.iter().map(|(s, d)| (s.as_str(), d.as_str())).collect();
        for (seq, data) in &want {
            assert_eq!(
                got_map.get(seq.as_str()).copied(),
                Some(data.as_str()),
                "acknowledged record {data} ({seq}) on {shard} survived"
            );
        }
    }

    // The restarted endpoint keeps numbering above everything it issued before.
    let after = binary
        .client
        .put_record()
        .stream_name(&stream)
        .partition_key("after")
        .data(Blob::new(b"after".to_vec()))
        .send()
        .await
        .unwrap();
    let max_before = acked
        .iter()
        .map(|(_, _, s)| SequenceNumber::parse(s).unwrap())
        .max()
        .unwrap();
    assert!(SequenceNumber::parse(&after.sequence_number).unwrap() > max_before);
}
